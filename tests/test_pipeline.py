"""The pipeline object: speakers, reference-audio rules, no-transcript mode, thread safety."""

import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gsv_core.audio import AudioError
from gsv_core.conditioning import SpeakerConditioning
from gsv_core.engine.pipeline import VoicePipeline
from gsv_core.engine.requests import SynthesisOptions, SynthesisRequest
from gsv_core.text.errors import TextError

GREEDY = SynthesisOptions(top_k=1, split_method="cut0", seed=7)


@pytest.fixture(scope="module")
def pipeline(reference_dir):
    models = reference_dir / "models"
    return VoicePipeline.from_paths(
        models / "s1-tiny.ckpt", models / "s2G-tiny-v2.pth", models / "chinese-hubert-tiny",
        models / "chinese-roberta-tiny", official_data=reference_dir / "data",
    )


def two_speakers(pipeline, reference_dir):
    """A Chinese and an English speaker from the public cases' reference clips."""
    cases = reference_dir / "cases"
    return (
        pipeline.prepare_speaker(cases / "v2_zh" / "ref.wav", "今天天气不错，我们一起去公园散步吧。", "zh"),
        pipeline.prepare_speaker(cases / "v2_zh_en_mixed" / "ref.wav", "This is a short test sentence for voice cloning, thank you.", "en"),
    )


@pytest.fixture(scope="module")
def speakers(pipeline, reference_dir):
    return two_speakers(pipeline, reference_dir)


def test_conditioning_round_trips_through_npy_files(speakers, tmp_path, pipeline):
    speaker = speakers[0]
    speaker.save(tmp_path / "speaker")
    loaded = SpeakerConditioning.load(tmp_path / "speaker")
    for name in ("prompt_semantic", "prompt_phones", "prompt_bert", "ref_spec", "global_embedding"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(speaker, name))
    text = "你好，世界。"
    first = pipeline.synthesize(text, "zh", speaker, GREEDY)
    again = pipeline.synthesize(text, "zh", loaded, GREEDY)
    np.testing.assert_array_equal(first.audio, again.audio)


def test_two_threads_with_two_speakers_each_get_their_own_voice(pipeline, speakers):
    texts = ("今天我们一起去散步吧。", "Hello there, how are you today?")
    languages = ("zh", "en")
    alone = [pipeline.synthesize(t, l, s, GREEDY).audio for t, l, s in zip(texts, languages, speakers)]
    results: dict[int, np.ndarray] = {}

    def run(index: int) -> None:
        for _ in range(2):
            results[index] = pipeline.synthesize(texts[index], languages[index], speakers[index], GREEDY).audio

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index in range(2):
        np.testing.assert_array_equal(results[index], alone[index])


def test_requests_served_together_sound_as_they_do_alone(pipeline, speakers, reference_dir):
    """synthesize_many: per-request seeds, options, speakers (one without a prompt), segment counts."""
    unprompted = pipeline.prepare_speaker(reference_dir / "cases" / "v2_zh" / "ref.wav", "", "zh")
    sampled = SynthesisOptions(top_k=5, temperature=0.8, split_method="cut5", seed=3)
    requests = [
        SynthesisRequest("第一句话。第二句话稍微长一点点。第三句！", "zh", speakers[0], sampled),
        SynthesisRequest("Hello there, how are you today?", "en", speakers[1], SynthesisOptions(top_k=10, seed=4)),
        SynthesisRequest("你好，欢迎使用语音合成。再见。", "zh", unprompted, SynthesisOptions(top_k=3, split_method="cut5", seed=5, speed=1.25)),
        SynthesisRequest("第一句话。第二句话。", "zh", speakers[1], SynthesisOptions(split_method="cut5", seed=6, batch_size=2)),
    ]
    together = pipeline.synthesize_many(requests)
    for request, result in zip(requests, together):
        alone = pipeline.synthesize(request.text, request.language, request.speaker, request.options)
        assert [len(s.semantic_tokens) for s in result.segments] == [len(s.semantic_tokens) for s in alone.segments]
        for ours, theirs in zip(result.segments, alone.segments):
            np.testing.assert_array_equal(ours.semantic_tokens, theirs.semantic_tokens)
        np.testing.assert_allclose(result.audio, alone.audio, atol=1e-5)
        assert result.seed == request.options.seed
    assert len(together[0].segments) == 2 and len(together[1].segments) == 1  # waves of unequal length
    assert together[0].timings["requests_in_batch"] == 4


def test_a_bad_request_served_together_fails_alone(pipeline, speakers):
    requests = [
        SynthesisRequest("😀😀😀", "zh", speakers[0], GREEDY),
        SynthesisRequest("你好，世界。", "zh", speakers[0], GREEDY),
        SynthesisRequest("你好。", "zh", speakers[0].__class__(**{**speakers[0].__dict__, "version": "v2Pro"}), GREEDY),
    ]
    emoji, good, wrong_version = pipeline.synthesize_many(requests)
    assert isinstance(emoji, TextError)
    assert isinstance(wrong_version, ValueError) and "v2Pro" in str(wrong_version)
    np.testing.assert_array_equal(good.audio, pipeline.synthesize("你好，世界。", "zh", speakers[0], GREEDY).audio)


def test_progress_is_reported_to_each_request(pipeline, speakers):
    seen: dict[int, list[float]] = {0: [], 1: []}
    requests = [SynthesisRequest(text, "zh", speakers[0], GREEDY, progress=lambda f, m, i=i: seen[i].append(f))
                for i, text in enumerate(("你好。", "第一句话。第二句话。"))]
    pipeline.synthesize_many(requests)
    for fractions in seen.values():
        assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)


def test_no_transcript_mode_runs_without_a_prompt(pipeline, reference_dir):
    speaker = pipeline.prepare_speaker(reference_dir / "cases" / "v2_zh" / "ref.wav", "", "zh")
    assert not speaker.has_prompt
    result = pipeline.synthesize("你好，欢迎使用语音合成。", "zh", speaker, GREEDY)
    assert result.audio.dtype == np.float32 and result.duration_s > 0.3


def test_long_text_is_split_and_padded_with_pauses(pipeline, speakers):
    options = SynthesisOptions(top_k=1, split_method="cut5", seed=1, fragment_interval=0.3, batch_size=2)
    result = pipeline.synthesize("第一句话。第二句话在这里。第三句话也来了！", "zh", speakers[0], options)
    assert len(result.segments) == 3
    expected = sum(len(s.audio) for s in result.segments) + 3 * int(0.3 * result.sample_rate)
    assert len(result.audio) == expected


def _write(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    sf.write(path, samples, rate)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: _write(p, 0.1 * np.random.default_rng(0).standard_normal(16000 * 2)), "3"),
        (lambda p: _write(p, 0.1 * np.random.default_rng(0).standard_normal(16000 * 11)), "10"),
        (lambda p: _write(p, np.zeros(16000 * 5)), "silen"),
        (lambda p: p.write_bytes(b"this is not audio at all") and p, "audio"),
    ],
    ids=["too-short", "too-long", "silent", "not-audio"],
)
def test_bad_reference_audio_is_refused_with_a_clear_error(pipeline, tmp_path, make, message):
    path = make(tmp_path / "ref.wav")
    with pytest.raises(AudioError, match=message):
        pipeline.prepare_speaker(path, "你好。", "zh")


def test_bad_text_and_options_are_refused(pipeline, speakers):
    with pytest.raises(TextError):
        pipeline.synthesize("  ！？。 ", "zh", speakers[0])
    with pytest.raises(TextError):
        pipeline.synthesize("你好", "klingon", speakers[0])
    with pytest.raises(ValueError, match="top_k"):
        SynthesisOptions(top_k=0)
    with pytest.raises(ValueError, match="speed"):
        SynthesisOptions(speed=10)
