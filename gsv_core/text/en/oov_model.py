"""The learned spelling-to-sound fallback for words no dictionary knows.

A numpy re-implementation of g2p_en's character-level GRU encoder-decoder (256 units, greedy
decoding, at most 20 phones), reading the weights file that ships inside the g2p_en wheel
(``checkpoint20.npz``, Apache-2.0). It computes in float32 like the original; the input
projections of the 29 graphemes and 74 phonemes are precomputed once, so a step costs one
(1, 256) x (256, 768) product.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from gsv_core.text.en.resources import package_file

GRAPHEMES = ("<pad>", "<unk>", "</s>", *"abcdefghijklmnopqrstuvwxyz")
_VOWELS = ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW")
_CONSONANTS = "B CH D DH F G HH JH K L M N NG P R S SH T TH V W Y Z ZH".split()
# g2p_en's output vocabulary: 4 specials, then the ARPAbet sorted (including a bare "UW").
PHONEMES = ("<pad>", "<unk>", "<s>", "</s>", *sorted([v + s for v in _VOWELS for s in "012"] + _CONSONANTS + ["UW"]))
_UNK_GRAPHEME, _END_GRAPHEME = 1, 2
_START_PHONEME, _END_PHONEME = 2, 3
MAX_PHONES = 20


@dataclass(frozen=True)
class _Gru:
    """One GRU layer. ``input_table`` holds W_ih x + b_ih for every vocabulary entry, (vocab, 3H)."""

    input_table: np.ndarray
    w_hh_t: np.ndarray  # (H, 3H)
    b_hh: np.ndarray  # (3H,)

    @classmethod
    def build(cls, embedding: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray):
        return cls(embedding @ w_ih.T + b_ih, np.ascontiguousarray(w_hh.T), b_hh)

    def step(self, token: int, h: np.ndarray) -> np.ndarray:
        """h (1, H) -> next h (1, H), gates ordered reset, update, new (PyTorch's layout)."""
        from_input = self.input_table[token]
        from_hidden = h @ self.w_hh_t + self.b_hh
        size = h.shape[-1]
        reset_update = 1 / (1 + np.exp(-(from_input[: 2 * size] + from_hidden[:, : 2 * size])))
        reset, update = reset_update[:, :size], reset_update[:, size:]
        new = np.tanh(from_input[2 * size :] + reset * from_hidden[:, 2 * size :])
        return (1 - update) * new + update * h


class SpellingModel:
    """g2p_en's grapheme-to-phoneme seq2seq: ``predict("flibber") -> ["F", "L", "IH1", ...]``."""

    def __init__(self, weights: Mapping[str, np.ndarray]):
        if weights["dec_emb"].shape[0] != len(PHONEMES) or weights["enc_emb"].shape[0] != len(GRAPHEMES):
            raise ValueError("g2p_en weights do not match its grapheme/phoneme vocabularies")
        self._encoder = _Gru.build(*(weights[f"enc_{name}"] for name in ("emb", "w_ih", "w_hh", "b_ih", "b_hh")))
        self._decoder = _Gru.build(*(weights[f"dec_{name}"] for name in ("emb", "w_ih", "w_hh", "b_ih", "b_hh")))
        self._out_w_t = np.ascontiguousarray(weights["fc_w"].T)  # (H, 74)
        self._out_b = weights["fc_b"]
        self._grapheme_ids = {g: i for i, g in enumerate(GRAPHEMES)}

    def predict(self, word: str) -> list[str]:
        """Phones for a lower-case word; characters outside a-z count as unknown graphemes."""
        h = np.zeros((1, self._encoder.w_hh_t.shape[0]), np.float32)
        for char in word:
            h = self._encoder.step(self._grapheme_ids.get(char, _UNK_GRAPHEME), h)
        h = self._encoder.step(_END_GRAPHEME, h)
        phones: list[str] = []
        token = _START_PHONEME
        for _ in range(MAX_PHONES):
            h = self._decoder.step(token, h)
            token = int((h @ self._out_w_t + self._out_b).argmax())
            if token == _END_PHONEME:
                break
            phones.append(PHONEMES[token])
        return phones


@lru_cache(maxsize=1)
def load_spelling_model() -> SpellingModel:
    """The model with the weights shipped in the installed g2p_en wheel (loaded once)."""
    with np.load(package_file("g2p_en", "checkpoint20.npz")) as archive:
        return SpellingModel({name: archive[name] for name in archive.files})


@lru_cache(maxsize=8192)
def predict_phones(word: str) -> tuple[str, ...]:
    """Cached ``load_spelling_model().predict(word)``."""
    return tuple(load_spelling_model().predict(word))
