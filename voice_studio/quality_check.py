"""The optional quality check of a synthesis: transcribe each take, retry with the next seed while it is wrong.

Takes are made by :func:`gsv_core.quality.synthesize_checked` with seeds ``seed, seed + 1, ...``
(wrapping past the largest seed); a request without a seed gets one drawn here first, so the
kept seed can be reported and replayed. The recognizer is the service's Whisper, told the
request's language where Whisper knows it. When Whisper is unavailable (offline without its
weights) the first take is kept unchecked and the report says so: a missing recognizer never
fails a synthesis.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from gsv_core.quality import QualityReport, synthesize_checked
from gsv_core.engine.requests import SynthesisResult

from .limits import SEED_MAX, Limits
from .served import ServedResult
from .transcriber import Transcriber, TranscriptionError

ProgressFn = Callable[[float, str], None]
LOGGER = logging.getLogger("voice_studio.quality")
# The seeds the pipeline itself draws lie in [0, 2**31 - 1); drawn ones here too.
DRAWN_SEED_END = 2**31 - 1
RECOGNIZER_UNAVAILABLE = "not checked: the speech recognizer is not available on this server"
RECOGNIZER_FAILED = "not checked: the speech recognizer failed (see the server log)"


class _NoTranscript(Exception):
    """The recognizer could not transcribe ``take``: the check stops, the take is kept."""

    def __init__(self, take: SynthesisResult, tries: int, note: str) -> None:
        super().__init__(note)
        self.take, self.tries, self.note = take, tries, note


def first_seed(seed: int | None) -> int:
    """The request's seed, or a fresh one drawn the way the pipeline draws them."""
    return secrets.randbelow(DRAWN_SEED_END) if seed is None else seed


def nth_seed(first: int, offset: int) -> int:
    """``first + offset``, wrapping within [0, SEED_MAX] (a request may give the largest seed)."""
    return (first + offset) % (SEED_MAX + 1)


class QualityCheck:
    """Runs takes until one transcribes within the CER limit, or the tries run out (see :mod:`gsv_core.quality`)."""

    def __init__(self, transcriber: Transcriber, limits: Limits) -> None:
        self.transcriber = transcriber
        self.max_tries = limits.quality_max_tries
        self.max_cer = limits.quality_max_cer

    def run(self, take: Callable[[int], SynthesisResult], text: str, language: str, seed: int | None,
            progress: ProgressFn | None = None) -> ServedResult:
        """The kept take, its ``quality`` report attached. ``take(seed)`` synthesizes once (and raises
        ServiceError on failure, which ends the check); ``progress`` hears of each retry."""
        first = first_seed(seed)
        tries = 0

        def synthesize(attempt_seed: int) -> SynthesisResult:
            nonlocal tries
            tries += 1
            return take(nth_seed(first, attempt_seed - first))

        def transcribe(result: SynthesisResult) -> str:
            try:
                return self.transcriber.transcribe(result.audio, result.sample_rate, language)
            except TranscriptionError as error:
                LOGGER.warning("quality check skipped: %s", error)
                raise _NoTranscript(result, tries, RECOGNIZER_UNAVAILABLE) from error
            except Exception as error:
                LOGGER.error("quality check: the recognizer failed", exc_info=error)
                raise _NoTranscript(result, tries, RECOGNIZER_FAILED) from error

        def retrying(attempt: int, cer: float) -> None:
            if progress is not None:
                progress(attempt / self.max_tries, f"quality check: error rate {cer:.2f}, try {attempt + 1} "
                                                   f"of {self.max_tries}")

        try:
            checked = synthesize_checked(synthesize, transcribe, text, first, self.max_tries, self.max_cer, retrying)
        except _NoTranscript as skipped:
            report = QualityReport(None, skipped.tries, skipped.take.seed, note=skipped.note)
            return ServedResult(skipped.take, quality=report)
        report = QualityReport(checked.cer, checked.tries, checked.result.seed, checked.transcript)
        return ServedResult(checked.result, quality=report)
