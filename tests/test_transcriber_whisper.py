"""transcribe_segments through the real transformers ASR pipeline, with a tiny random Whisper.

Nothing is downloaded (see ``tiny_whisper``: hidden 16, one layer each side). The random
model's words are noise; what is checked is the interface: forced and detected languages,
timed segments inside the audio, long-form audio over 30 s.
"""

from __future__ import annotations

import numpy as np
import pytest

from tiny_whisper import LANGUAGE_CODES, tiny_whisper_pipeline
from voice_studio.transcriber import WHISPER_LANGUAGES, TimedSegment, Transcriber


@pytest.fixture(scope="module")
def transcriber():
    pytest.importorskip("transformers")
    return Transcriber("tiny-random-whisper", device="cpu", load=lambda model, device: tiny_whisper_pipeline(device))


def _check_segments(segments: tuple[TimedSegment, ...], duration: float) -> None:
    assert segments and all(isinstance(s.text, str) for s in segments)
    assert all(0.0 <= s.start_s <= s.end_s <= duration for s in segments)
    assert [s.start_s for s in segments] == sorted(s.start_s for s in segments)


def test_forced_language_and_timed_segments(transcriber):
    audio = np.random.default_rng(0).normal(0, 0.1, 3 * 22050).astype(np.float32)
    result = transcriber.transcribe_segments(audio, 22050, "zh")
    assert (result.language, result.whisper_language) == ("zh", "chinese")
    _check_segments(result.segments, 3.0)


def test_detected_language_on_long_form_audio(transcriber):
    audio = np.random.default_rng(1).normal(0, 0.1, 40 * 16000).astype(np.float32)  # > 30 s: long-form decoding
    result = transcriber.transcribe_segments(audio, 16000)
    assert result.whisper_language in {WHISPER_LANGUAGES.get(c, c) for c in LANGUAGE_CODES} | {"german", "spanish",
                                                                                              "russian", "french"}
    assert result.language in (None, *WHISPER_LANGUAGES)
    _check_segments(result.segments, 40.0)
