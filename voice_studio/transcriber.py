"""Transcribing a reference clip with a Whisper model from the Hub (through transformers).

The model loads on first use and is shared; offline without it in the cache, the error
says which model is missing and how to provide it, at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

DEFAULT_MODEL = "openai/whisper-small"
WHISPER_RATE = 16000
_LANGUAGE_NAMES = {"zh": "chinese", "all_zh": "chinese", "en": "english"}


class TranscriptionError(RuntimeError):
    """The recognizer is unavailable or failed."""


class Transcriber:
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
        """Text of mono float samples at any rate (resampled to 16 kHz)."""
        import librosa

        audio = librosa.resample(np.asarray(samples, dtype=np.float32), orig_sr=sample_rate, target_sr=WHISPER_RATE)
        kwargs = {"generate_kwargs": {"language": _LANGUAGE_NAMES[language], "task": "transcribe"}} if language in _LANGUAGE_NAMES else {}
        result = self._get()({"raw": audio, "sampling_rate": WHISPER_RATE}, **kwargs)
        return str(result["text"]).strip()


def _load_pipeline(model: str, device: str) -> Callable:
    from transformers import pipeline

    return pipeline("automatic-speech-recognition", model=model, device=device)
