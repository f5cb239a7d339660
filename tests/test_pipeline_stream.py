"""Streaming and request isolation through the one synthesis path, with the tiny official-format models."""

import dataclasses

import numpy as np
import pytest

from gsv_core.engine.pipeline import VoicePipeline
from gsv_core.engine.requests import SynthesisOptions, SynthesisRequest

TEXT = "图书馆里非常安静，大家都在认真地看书。只有翻书的声音偶尔响起。"


@pytest.fixture(scope="module")
def pipeline(reference_dir):
    models = reference_dir / "models"
    return VoicePipeline.from_paths(models / "s1-tiny.ckpt", models / "s2G-tiny-v2.pth", models / "chinese-hubert-tiny",
                                    models / "chinese-roberta-tiny", official_data=reference_dir / "data")


@pytest.fixture(scope="module")
def speaker(pipeline, reference_dir):
    return pipeline.prepare_speaker(reference_dir / "cases" / "v2_streaming" / "ref.wav", "明天是星期六，我们可以好好休息一下。", "zh")


@pytest.mark.parametrize("mode", ["chunks", "fragments"])
def test_the_stream_arrives_in_pieces_that_add_up_to_the_clip(pipeline, speaker, mode):
    options = SynthesisOptions(top_k=1, seed=5, split_method="cut5", stream=mode, min_chunk_length=8)
    pieces = list(pipeline.synthesize_stream(SynthesisRequest(TEXT, "zh", speaker, options)))
    result = pipeline.synthesize(TEXT, "zh", speaker, options)
    assert len(pieces) > 2 and {piece.sample_rate for piece in pieces} == {result.sample_rate}
    np.testing.assert_array_equal(np.concatenate([piece.audio for piece in pieces]), result.audio)
    assert [piece.segment for piece in pieces] == sorted(piece.segment for piece in pieces)
    assert len(result.segments) >= 2  # several clauses, each closed by its pause


def test_streamed_requests_served_together_get_the_pieces_they_get_alone(pipeline, speaker):
    requests = [SynthesisRequest(text, "zh", speaker, SynthesisOptions(top_k=1, seed=seed, stream="chunks", min_chunk_length=8))
                for text, seed in ((TEXT, 1), ("你好，欢迎使用语音合成系统，这是一个测试句子。", 2))]
    alone = [[p.audio for p in pipeline.synthesize_stream(r)] for r in requests]
    together: list[list[np.ndarray]] = [[], []]
    requests = [dataclasses.replace(r, on_audio=lambda p, i=i: together[i].append(p.audio)) for i, r in enumerate(requests)]
    results = pipeline.synthesize_many(requests)
    assert results[0].timings["requests_in_batch"] == 2
    for ours, theirs in zip(together, alone):
        assert [len(p) for p in ours] == [len(p) for p in theirs]
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_a_request_that_fails_while_decoding_fails_alone(pipeline, speaker):
    broken = dataclasses.replace(speaker, global_embedding=np.ones((1, 8, 1), np.float32))  # not this model's width
    options = SynthesisOptions(top_k=1, seed=3)
    good, bad, streamed = pipeline.synthesize_many([
        SynthesisRequest("你好，世界。", "zh", speaker, options),
        SynthesisRequest("你好，世界。", "zh", broken, options),
        SynthesisRequest(TEXT, "zh", speaker, dataclasses.replace(options, stream="chunks")),
    ])
    assert isinstance(bad, ValueError) and "ge must be" in str(bad)
    np.testing.assert_array_equal(good.audio, pipeline.synthesize("你好，世界。", "zh", speaker, options).audio)
    assert streamed.duration_s > 1


def test_stream_needs_a_mode(pipeline, speaker):
    with pytest.raises(ValueError, match="options.stream"):
        next(pipeline.synthesize_stream(SynthesisRequest("你好。", "zh", speaker)))
    with pytest.raises(ValueError, match="stream must be one of"):
        SynthesisOptions(stream="radio")
