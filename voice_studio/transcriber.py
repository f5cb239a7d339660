"""Transcribing a reference clip with a Whisper model from the Hub (through transformers).

The model loads on first use and is shared; offline without it in the cache, the error
says which model is missing and how to provide it, at once. :meth:`Transcriber.transcribe`
gives the text of a short clip; :meth:`Transcriber.transcribe_segments` gives timed
segments of a long recording (what ``gsv_core.speakers.recordings.plan_recording`` cuts along) and
the language Whisper heard (to preselect the reference language).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

DEFAULT_MODEL = "openai/whisper-small"
WHISPER_RATE = 16000
# The app's language codes ("all_zh" reads as "zh") and the names Whisper's language tokens decode to.
WHISPER_LANGUAGES = {"zh": "chinese", "en": "english", "ja": "japanese", "ko": "korean", "yue": "cantonese"}


class TimedSegment(NamedTuple):
    """A stretch of speech: seconds from the start of the audio, and what was said."""

    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class TimedTranscript:
    """Whisper's segments in time order, and the language it heard: an app code from
    ``WHISPER_LANGUAGES`` (None when unknown or another language), and Whisper's own name."""

    segments: tuple[TimedSegment, ...]
    language: str | None
    whisper_language: str | None

    @property
    def text(self) -> str:
        return "".join(segment.text for segment in self.segments).strip()


def _whisper_name(language: str | None) -> str | None:
    """Whisper's name of an app language code ("all_zh" -> "chinese"); None when it has none."""
    if language is None:
        return None
    return WHISPER_LANGUAGES.get(language.removeprefix("all_"))


class TranscriptionError(RuntimeError):
    """The recognizer is unavailable or failed."""


class Transcriber:
    """A Whisper recognizer on ``device`` ("cpu", "cuda", "cuda:0", ...), loaded on first use.

    ``load(model, device)`` returns a callable with the transformers ASR pipeline's call
    signature (tests pass fakes); it runs under a lock, once.
    """

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "cpu",
                 load: Callable[[str, str], Callable] | None = None) -> None:
        self.model = model
        self.device = device
        self._load = load or _load_pipeline
        self._recognizer: Callable | None = None
        self._lock = threading.Lock()

    def _get(self) -> Callable:
        with self._lock:
            if self._recognizer is None:
                try:
                    self._recognizer = self._load(self.model, self.device)
                except OSError as error:  # transformers' "not found in cache / cannot connect"
                    raise TranscriptionError(
                        f"the speech recognizer {self.model} is not available ({error}); connect to the internet "
                        "once to download it, or type the transcript"
                    ) from error
            return self._recognizer

    def transcribe(self, samples: np.ndarray, sample_rate: int, language: str | None = None) -> str:
        """Text of mono float samples (n,) at any rate (resampled to 16 kHz)."""
        result = self._get()(_whisper_input(samples, sample_rate), **_language_kwargs(language))
        return str(result["text"]).strip()

    def transcribe_segments(self, samples: np.ndarray, sample_rate: int, language: str | None = None) -> TimedTranscript:
        """Timed segments of mono float samples (n,) at any rate, up to a few minutes long.

        Without ``language`` Whisper detects it (from the first 30 s); with one it is forced.
        Audio over 30 s goes through Whisper's own long-form decoding (transformers does
        this when timestamps are asked for). A last segment Whisper leaves open ends at the
        end of the audio.
        """
        duration = len(samples) / sample_rate
        result = self._get()(
            _whisper_input(samples, sample_rate), return_timestamps=True, return_language=True,
            **_language_kwargs(language),
        )
        segments: list[TimedSegment] = []
        whisper_language = None
        for chunk in result.get("chunks", []):
            start, end = chunk["timestamp"]
            start = float(start) if start is not None else (segments[-1].end_s if segments else 0.0)
            end = float(end) if end is not None else duration
            start = min(start, duration)  # Whisper's 30 s windows can place stamps past the end
            segments.append(TimedSegment(start, min(max(end, start), duration), str(chunk["text"])))
            whisper_language = whisper_language or chunk.get("language")
        whisper_language = whisper_language or _whisper_name(language)
        codes = {name: code for code, name in WHISPER_LANGUAGES.items()}
        return TimedTranscript(tuple(segments), codes.get(whisper_language), whisper_language)


def _whisper_input(samples: np.ndarray, sample_rate: int) -> dict:
    """The ASR pipeline's input dict: float32 (n16,) at 16 kHz."""
    import librosa

    audio = librosa.resample(np.asarray(samples, dtype=np.float32), orig_sr=sample_rate, target_sr=WHISPER_RATE)
    return {"raw": audio, "sampling_rate": WHISPER_RATE}


def _language_kwargs(language: str | None) -> dict:
    name = _whisper_name(language)
    return {"generate_kwargs": {"language": name, "task": "transcribe"}} if name else {}


def _load_pipeline(model: str, device: str) -> Callable:
    from transformers import pipeline

    return pipeline("automatic-speech-recognition", model=model, device=device)
