"""Transcription: lazy loading, resampling, the offline error (no model is downloaded)."""

import numpy as np
import pytest

from voice_studio.transcriber import TimedSegment, Transcriber, TranscriptionError
from whisper_fakes import FakeWhisperPipeline


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


def test_segments_come_with_times_and_the_detected_language():
    fake = FakeWhisperPipeline([(" The quick brown fox.", (0.0, 3.2)), (" It jumps.", (3.5, None))])
    transcriber = Transcriber("tiny/whisper", device="cuda:0", load=lambda model, device: fake)
    result = transcriber.transcribe_segments(np.zeros(8 * 44100, np.float32), 44100)
    assert result.segments == (TimedSegment(0.0, 3.2, " The quick brown fox."), TimedSegment(3.5, 8.0, " It jumps."))
    assert [tuple(s) for s in result.segments][0] == (0.0, 3.2, " The quick brown fox.")
    assert (result.language, result.whisper_language, result.text) == ("en", "english", "The quick brown fox. It jumps.")
    call = fake.calls[0]
    assert (call["samples"], call["rate"], call["return_timestamps"], call["return_language"]) == (128000, 16000, True, True)
    assert call["generate_kwargs"] is None  # nothing forced: Whisper detects the language


def test_a_given_language_is_forced_and_unknown_ones_map_to_none():
    fake = FakeWhisperPipeline([("今天天气不错。", (0.0, 2.0))], detected="french")
    transcriber = Transcriber(load=lambda model, device: fake)
    forced = transcriber.transcribe_segments(np.zeros(32000, np.float32), 16000, "all_zh")
    assert fake.calls[-1]["generate_kwargs"] == {"language": "chinese", "task": "transcribe"}
    assert (forced.language, forced.segments[0].end_s) == ("zh", 2.0)
    detected = transcriber.transcribe_segments(np.zeros(32000, np.float32), 16000)
    assert (detected.language, detected.whisper_language) == (None, "french")
    assert transcriber.transcribe(np.zeros(16000, np.float32), 16000, "ja") == "今天天气不错。"
    assert fake.calls[-1]["generate_kwargs"] == {"language": "japanese", "task": "transcribe"}


def test_segments_feed_the_recording_planner():
    from gsv_core.speakers.recordings import plan_recording

    rate = 16000
    t = np.arange(4 * rate) / rate
    speech = (0.3 * np.sin(2 * np.pi * 200 * t) * (1 + np.sin(2 * np.pi * 4 * t)) / 2).astype(np.float32)
    recording = np.concatenate([speech, np.zeros(rate, np.float32), speech])
    fake = FakeWhisperPipeline([(" One sentence.", (0.0, 4.0)), (" Another one.", (5.0, None))])
    result = Transcriber(load=lambda model, device: fake).transcribe_segments(recording, rate)
    plan = plan_recording(recording, rate, result.segments)
    assert plan.main.transcript == "One sentence." and plan.auxiliaries[0].transcript == "Another one."
