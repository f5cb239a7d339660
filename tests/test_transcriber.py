"""Transcription: lazy loading, resampling, the offline error (no model is downloaded)."""

import numpy as np
import pytest

from voice_studio.transcriber import Transcriber, TranscriptionError


def test_loads_once_and_passes_16k_audio():
    calls = []

    def load(model, device):
        calls.append(model)
        return lambda audio, **kwargs: {"text": f" {len(audio['raw'])} samples at {audio['sampling_rate']} "}

    transcriber = Transcriber("tiny/whisper", load=load)
    assert calls == []  # nothing loads before the first request
    assert transcriber.transcribe(np.zeros(32000), 32000, "zh") == "16000 samples at 16000"
    transcriber.transcribe(np.zeros(8000), 8000)
    assert calls == ["tiny/whisper"]


def test_offline_without_the_model_says_what_to_do():
    def load(model, device):
        raise OSError("We couldn't connect to the Hub and the model is not in the cache")

    with pytest.raises(TranscriptionError, match="type the transcript"):
        Transcriber("openai/whisper-small", load=load).transcribe(np.zeros(16000), 16000)
