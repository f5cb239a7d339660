"""Chinese readings with g2pW, as the official v2 frontend gets them (``chinese2`` with g2pW on).

:meth:`G2PW.read` takes the segments of one Chinese run (the normalized text cut after each
pause mark, Latin letters removed) and gives one pinyin with tone per character:

1. Each segment is converted to traditional characters (OpenCC ``s2tw``), since the model's
   character lists are traditional.
2. A character the model is asked about (polyphonic, less a few upstream never asks about)
   gets the model's reading; one of the monophonic list gets its listed reading; any other
   gets pypinyin's reading of the segment converted back to simplified characters.
3. All queries of a segment share one window: the segment from 16 characters before its first
   query to 16 after its last. All windows of one call run together; when some window holds
   several queries, each distinct window runs once instead (batch 1, several queries).

The polyphone dictionary (:mod:`gsv_core.text.zh.g2pw_polyphones`) then overrides these readings
word by word, before tone sandhi (:class:`gsv_core.text.zh.g2p.ChineseG2P`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import MappingProxyType

import numpy as np

from .g2pw_model import G2PWModel
from .normalize import to_simplified

CONTEXT_CHARS = 16  # characters of context each side of a segment's queries
LOGGER = logging.getLogger("gsv_core.text.g2pw")


@dataclass(frozen=True)
class ModelQuery:
    """One character the model was asked about, and what it answered."""

    segment: int  # index of the segment in the call
    position: int  # index of the character in its segment
    input_char: str  # the character as given
    char: str  # after s2tw
    window: str  # the (traditional) context the model read
    window_position: int  # index of the character in the window
    label: str  # the chosen label (bopomofo with tone)
    pinyin: str  # the reading used (pypinyin's when the label has no pinyin)
    prob: float  # probability of the label
    margin: float  # its lead over the runner-up


@dataclass(frozen=True)
class G2PWReading:
    """Pinyin per character of each segment, with how the model was used (for checks and tracing)."""

    pinyins: tuple[tuple[str, ...], ...]
    queries: tuple[ModelQuery, ...]
    runs: tuple[tuple[int, int], ...]  # per network run: (queries N, windows B)


def _pypinyin_readings(text: str) -> list[str]:
    """pypinyin's tone-3 reading of each character (its phrase table decides polyphones);
    characters without a reading are kept as they are, one item each."""
    from pypinyin import Style, pinyin

    return [item[0] for item in pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, errors=list)]


class G2PW:
    """The g2pW reader of one frontend: a model, the s2tw converter and the polyphone dictionary.

    Thread-safe: the network session serves concurrent calls, the converter is built once.
    """

    def __init__(self, model: G2PWModel, polyphones: Mapping[str, tuple[str, ...]] | None = None,
                 polyphone_files: Sequence[Path] = ()) -> None:
        """``polyphones``: word -> pinyin per character, overriding the model (see :mod:`.g2pw_polyphones`);
        ``polyphone_files``: where they came from (part of what names a speaker's cached phones)."""
        self.model = model
        self.polyphones: Mapping[str, tuple[str, ...]] = MappingProxyType(dict(polyphones or {}))
        self.files: tuple[Path, ...] = (*model.files, *map(Path, polyphone_files))
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model_dir: Path, tokenizer_dir: Path | None = None, official_data: Path | None = None,
             threads: int | None = None, providers: Sequence[str] | None = None, int8_dir: Path | None = None) -> G2PW:
        """The reader of a model folder, with the polyphone dictionary of ``official_data`` (none without).

        ``tokenizer_dir``: the folder with the vocabulary's ``tokenizer.json`` (default: the
        model folder's ``tokenizer/``); ``threads``: the network's CPU threads (None: the
        runtime's choice); ``providers``: ONNX Runtime execution providers (default: the CPU);
        ``int8_dir``: run the int8 network, made once into that folder (faster, not bit-exact).
        Raises G2PWModelError (a TextError) for an unusable folder, LexiconError for bad dictionaries.
        """
        from .g2pw_polyphones import load_polyphones, polyphone_files

        model = G2PWModel(Path(model_dir), tokenizer_dir, threads, providers, int8_dir)
        if official_data is None:
            return cls(model)
        return cls(model, load_polyphones(official_data), polyphone_files(official_data))

    @cached_property
    def _s2tw(self):
        import opencc

        return opencc.OpenCC("s2tw")

    def _traditional(self, segment: str) -> str:
        with self._lock:  # one converter, built on first use
            converted = self._s2tw.convert(segment)
            if len(converted) == len(segment):
                return converted
            # A phrase rule changed the length (upstream fails here): convert character by character.
            LOGGER.warning("s2tw changed the length of a segment; converting it character by character")
            singles = [self._s2tw.convert(char) for char in segment]
        return "".join(single if len(single) == 1 else char for char, single in zip(segment, singles))

    def read(self, segments: Sequence[str]) -> G2PWReading:
        """Pinyin with tone per character of each segment (see the module docstring)."""
        readings: list[list[str]] = []
        queries: list[tuple[int, int, str, str, str, int]] = []  # segment, position, input, char, window, in-window
        for index, segment in enumerate(segments):
            traditional = self._traditional(segment)
            fallback = _pypinyin_readings(to_simplified(traditional))
            asked = [i for i, char in enumerate(traditional) if char in self.model.asked]
            listed = [None if char in self.model.asked else self.model.monophonic.get(char) for char in traditional]
            # The model's readings replace the asked ones below; an unusable label keeps pypinyin's.
            readings.append([(reading and self.model.to_pinyin(reading)) or fallback[i] for i, reading in enumerate(listed)])
            if asked:
                left = max(0, asked[0] - CONTEXT_CHARS)
                window = traditional[left:asked[-1] + CONTEXT_CHARS + 1]
                queries += [(index, i, segment[i], traditional[i], window, i - left) for i in asked]
        answered, runs = self._ask([(window, at) for *_, window, at in queries])
        results = []
        for (index, position, input_char, char, window, at), (label, prob, margin) in zip(queries, answered):
            pinyin = self.model.to_pinyin(label) or readings[index][position]
            readings[index][position] = pinyin
            results.append(ModelQuery(index, position, input_char, char, window, at, label, pinyin, prob, margin))
        return G2PWReading(tuple(map(tuple, readings)), tuple(results), tuple(runs))

    def _ask(self, queries: Sequence[tuple[str, int]]) -> tuple[list[tuple[str, float, float]], list[tuple[int, int]]]:
        """(label, probability, margin) per (window, position), and the (N, B) of each network run."""
        if not queries:
            return [], []
        encoded = [self.model.encode(window, at) for window, at in queries]
        width = max(len(e.input_ids) for e in encoded)
        groups: dict[str, list[int]] = {}
        for i, (window, _) in enumerate(queries):
            groups.setdefault(window, []).append(i)
        if len(queries) == 1 or len(groups) == len(queries):  # every window holds one query: one run
            batches = [list(range(len(queries)))]
        else:
            batches = list(groups.values())
        answers: list[tuple[str, float, float]] = [("", 0.0, 0.0)] * len(queries)
        runs = []
        for batch in batches:
            shared = len(batch) > 1 and len(groups) < len(queries)
            probs = self.model.probabilities([encoded[i] for i in batch], width, shared)
            runs.append((len(batch), 1 if shared else len(batch)))
            for i, row in zip(batch, probs):
                answers[i] = self._answer(row)
        return answers, runs

    def _answer(self, probs: np.ndarray) -> tuple[str, float, float]:
        best = int(np.argmax(probs))
        runner_up = float(np.partition(probs, -2)[-2]) if len(probs) > 1 else 0.0
        return self.model.labels[best], float(probs[best]), float(probs[best]) - runner_up

