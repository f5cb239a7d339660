"""A quality check for synthesized speech: transcribe it, compare with the text, retry if wrong.

The GPT stage samples, so a take can skip, repeat or garble words; another seed usually
does not. :func:`synthesize_checked` synthesizes, has the output transcribed, and tries
the next seed while the character error rate (CER) stays above a threshold, keeping the
best take.

Why CER and not WER: Chinese and Japanese text has no spaces, so "words" would need a
segmenter whose errors would count as speech errors; characters exist in every script.
Per character, one misrecognised letter of an English word costs one edit instead of a
whole word, so short sentences are not failed by a single ASR slip.

Limits: numbers and symbols read out ("3" vs "three"), and traditional vs simplified
Chinese characters, count as errors; pass a ``normalize`` that maps them if it matters.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

Result = TypeVar("Result")

DEFAULT_MAX_TRIES = 3
# Whisper-small on clean synthetic speech stays well under this; a skipped or repeated phrase does not.
DEFAULT_CER_THRESHOLD = 0.2


def normalize_for_cer(text: str) -> str:
    """``text`` as the characters CER compares: NFKC (full-width -> half-width, compatibility
    forms folded), case-folded, with punctuation, whitespace, control and format characters removed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(c for c in folded if unicodedata.category(c)[0] not in "PZC")


def edit_distance(reference: str, hypothesis: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions) between two strings.

    One numpy row per reference character: substitutions and deletions come from the row
    above; insertions chain along the row, which a running minimum of ``row - j`` resolves
    (``row[j] = min_k<=j (x[k] + j - k)``). 300 x 300 characters take about a millisecond.
    """
    if len(reference) < len(hypothesis):
        reference, hypothesis = hypothesis, reference
    if not hypothesis:
        return len(reference)
    hyp = np.frombuffer(hypothesis.encode("utf-32-le"), dtype=np.uint32)
    columns = np.arange(len(hyp) + 1)
    previous = columns.copy()
    row = np.empty_like(previous)
    for i, char in enumerate(reference, 1):
        row[0] = i
        np.minimum(previous[1:] + 1, previous[:-1] + (hyp != ord(char)), out=row[1:])
        previous = np.minimum.accumulate(row - columns) + columns
    return int(previous[-1])


def character_error_rate(
    reference: str, hypothesis: str, normalize: Callable[[str], str] = normalize_for_cer
) -> float:
    """Edits per reference character after ``normalize``: 0 is perfect; it can exceed 1.

    An empty normalized reference gives 0.0 when the hypothesis is empty too, else 1.0.
    """
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)


@dataclass(frozen=True)
class CheckedResult(Generic[Result]):
    """The best take: its result, CER, the seed that made it, and how many takes were made."""

    result: Result
    cer: float
    tries: int
    seed: int
    transcript: str


@dataclass(frozen=True)
class QualityReport:
    """What a quality check found, for the response and the log: the kept take's CER (None when
    it could not be measured; ``note`` says why), the takes made and the seed of the kept one."""

    cer: float | None
    tries: int
    seed: int
    transcript: str = ""
    note: str = ""


def synthesize_checked(
    synthesize: Callable[[int], Result],
    transcribe: Callable[[Result], str],
    text: str,
    first_seed: int,
    max_tries: int = DEFAULT_MAX_TRIES,
    threshold: float = DEFAULT_CER_THRESHOLD,
    on_retry: Callable[[int, float], None] | None = None,
) -> CheckedResult[Result]:
    """Synthesize with seeds ``first_seed``, ``first_seed + 1``, ... until a take's CER against
    ``text`` is at most ``threshold`` or ``max_tries`` takes were made; the lowest CER wins
    (the earliest among equals).

    ``synthesize(seed)`` makes one take; ``transcribe(take)`` returns its text. ``on_retry(try,
    cer)`` is told before each retry (e.g. a progress message). Exceptions pass through.
    """
    if max_tries < 1:
        raise ValueError(f"max_tries must be at least 1, got {max_tries}")
    best: CheckedResult[Result] | None = None
    for attempt in range(max_tries):
        seed = first_seed + attempt
        take = synthesize(seed)
        transcript = transcribe(take)
        cer = character_error_rate(text, transcript)
        if best is None or cer < best.cer:
            best = CheckedResult(take, cer, attempt + 1, seed, transcript)
        if cer <= threshold:
            break
        if on_retry is not None and attempt + 1 < max_tries:
            on_retry(attempt + 1, cer)
    assert best is not None
    return CheckedResult(best.result, best.cer, attempt + 1, best.seed, best.transcript)
