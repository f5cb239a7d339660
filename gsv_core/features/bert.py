"""Phone-level BERT features (chinese-roberta-wwm-ext-large) for the text-to-semantic model.

Upstream feeds each Chinese part's normalized text to the BERT, takes the third-to-last
hidden state (``hidden_states[-3]``), drops the [CLS] and [SEP] rows and repeats each
character's row once per phone of that character (``word2ph``). Parts in any other language
get zeros. The parts' features are concatenated along the phone axis.

Only ``hidden_states[-3]`` is ever used, so the last two encoder layers are dropped after
loading: the remaining encoder's last hidden state is exactly that tensor, and it costs two
layers less.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Protocol

import torch
from transformers import AutoTokenizer, BertModel

BERT_DIM = 1024  # width hard-wired into the s1 model (bert_proj) and the zero features
HIDDEN_STATE_FROM_END = 3  # upstream uses hidden_states[-3]
BERT_LANGUAGES = frozenset({"zh"})  # languages whose parts get real features; the rest get zeros


class TextPartLike(Protocol):
    """What the feature extractor needs from one language run of the text frontend."""

    language: str
    norm_text: str
    phones: Sequence
    word2ph: Sequence[int] | None


class _BertTrunk(BertModel):
    """``BertModel`` that knows the masked-LM / pre-training heads in the files are not needed."""

    _keys_to_ignore_on_load_unexpected = [r"^cls\.", r"(^|\.)pooler\."]


def load_bert_trunk(model_dir: str | os.PathLike, device: str | torch.device, dtype: torch.dtype) -> BertModel:
    """The BERT encoder up to the layer whose output upstream uses, loaded strictly."""
    model, info = _BertTrunk.from_pretrained(
        os.fspath(model_dir), dtype=dtype, add_pooling_layer=False, output_loading_info=True, local_files_only=True
    )
    problems = {key: sorted(value) for key, value in info.items() if value}
    if problems:
        raise ValueError(f"BERT weights in {model_dir} do not match the model: {problems}")
    if model.config.hidden_size != BERT_DIM:
        raise ValueError(f"BERT in {model_dir} is {model.config.hidden_size} wide; GPT-SoVITS needs {BERT_DIM}")
    keep = model.config.num_hidden_layers + 1 - HIDDEN_STATE_FROM_END
    if keep < 0:
        raise ValueError(f"BERT in {model_dir} has too few layers for hidden_states[-{HIDDEN_STATE_FROM_END}]")
    model.encoder.layer = model.encoder.layer[:keep]
    model.config.num_hidden_layers = keep
    return model.to(device).eval()


def _base_language(language: str) -> str:
    return language.removeprefix("all_")


class BertFeatures:
    """Tokenizer plus truncated BERT; turns normalized text into (1024, n_phones) features."""

    def __init__(self, model_dir: str | os.PathLike, device: str | torch.device = "cpu", dtype=torch.float32):
        self.device = torch.device(device)
        self.dtype = dtype
        self.tokenizer = AutoTokenizer.from_pretrained(os.fspath(model_dir), local_files_only=True)
        self.model = load_bert_trunk(model_dir, self.device, dtype)

    @property
    def max_chars(self) -> int:
        """Characters one text part may have: the model's position table less [CLS] and [SEP]."""
        return int(self.model.config.max_position_embeddings) - 2

    @torch.inference_mode()
    def token_features(self, norm_text: str) -> torch.Tensor:
        """(n_tokens, 1024): ``hidden_states[-3]`` of ``norm_text`` with [CLS] and [SEP] removed."""
        inputs = self.tokenizer(norm_text, return_tensors="pt").to(self.device)
        return self.model(**inputs).last_hidden_state[0, 1:-1]

    def phone_features(self, norm_text: str, word2ph: Sequence[int]) -> torch.Tensor:
        """(1024, sum(word2ph)): each character's features repeated once per phone.

        ``word2ph[i]`` is the phone count of ``norm_text[i]``; the tokenizer must give at
        least one token per character (true of Chinese text and punctuation).
        """
        if len(word2ph) != len(norm_text):
            raise ValueError(f"word2ph has {len(word2ph)} entries for {len(norm_text)} characters of {norm_text!r}")
        tokens = self.token_features(norm_text)
        if tokens.shape[0] < len(word2ph):
            raise ValueError(
                f"BERT gave {tokens.shape[0]} tokens for the {len(word2ph)} characters of {norm_text!r}; "
                "phone-level features need one token per character"
            )
        counts = torch.as_tensor(list(word2ph), dtype=torch.long, device=tokens.device)
        return torch.repeat_interleave(tokens[: len(word2ph)], counts, dim=0).T

    @staticmethod
    def reads(part: TextPartLike) -> bool:
        """Whether the model reads this part (Chinese); every other part gets zeros."""
        return _base_language(part.language) in BERT_LANGUAGES

    def part_features(self, part: TextPartLike) -> torch.Tensor:
        """(1024, len(part.phones)): BERT features for a Chinese part, zeros for any other."""
        if self.reads(part):
            if part.word2ph is None:
                raise ValueError(f"the {part.language} part {part.norm_text!r} has no word2ph")
            features = self.phone_features(part.norm_text, part.word2ph)
            if features.shape[1] != len(part.phones):
                raise ValueError(
                    f"word2ph of {part.norm_text!r} counts {features.shape[1]} phones, the part has {len(part.phones)}"
                )
            return features
        return torch.zeros(BERT_DIM, len(part.phones), dtype=self.dtype, device=self.device)

    def sequence_features(self, parts: Iterable[TextPartLike]) -> torch.Tensor:
        """(1024, total phones): the parts' features side by side, as upstream concatenates them."""
        features = [self.part_features(part) for part in parts]
        if not features:
            raise ValueError("no text parts to compute BERT features for")
        return torch.cat(features, dim=1)
