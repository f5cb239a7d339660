"""synthesize_many with the batched SoVITS decoder (forced on here; auto uses it on CUDA only).

Every request must get what it gets served alone by a pipeline that decodes call by call:
the same tokens, the same dumps, and audio within 1e-5 (the batch only reorders sums; the
model-level tests in test_sovits_batched.py bound the decoder itself). A request whose decode
fails inside the batch fails alone, and the others then get exactly their solo audio.
"""

import numpy as np
import pytest
import torch

from gsv_core.engine.pipeline import VoicePipeline
from gsv_core.engine.requests import SynthesisOptions, SynthesisRequest
from test_pipeline import two_speakers

ATOL = 1e-5


def _load(reference_dir, dtype=torch.float32) -> VoicePipeline:
    models = reference_dir / "models"
    return VoicePipeline.from_paths(
        models / "s1-tiny.ckpt", models / "s2G-tiny-v2.pth", models / "chinese-hubert-tiny",
        models / "chinese-roberta-tiny", dtype=dtype, official_data=reference_dir / "data", batch_decoder=True,
    )


@pytest.fixture(scope="module")
def batched(reference_dir):
    return _load(reference_dir)


@pytest.fixture(scope="module")
def solo(batched):
    return batched.with_batch_decoder(False)


@pytest.fixture(scope="module")
def speakers(batched, reference_dir):
    return two_speakers(batched, reference_dir)


class DecodeBatchSpy:
    """Wraps ``sovits.decode_batch`` of one pipeline's model: records each call's item count."""

    def __init__(self, monkeypatch, sovits) -> None:
        self.items: list[int] = []
        self.failures = 0
        original = sovits.decode_batch

        def spy(items):
            self.items.append(len(items))
            try:
                return original(items)
            except Exception:
                self.failures += 1
                raise

        monkeypatch.setattr(sovits, "decode_batch", spy)


def _recorded(request: SynthesisRequest, store: dict) -> SynthesisRequest:
    """The request with its dumps, progress and streamed pieces recorded into ``store``."""
    store.update(dumps={}, progress=[], pieces=[])
    return SynthesisRequest(
        request.text, request.language, request.speaker, request.options, decode_noise=request.decode_noise,
        progress=lambda fraction, message: store["progress"].append((fraction, message)),
        inspect=lambda name, array: store["dumps"].__setitem__(name, array),
        on_audio=lambda chunk: store["pieces"].append(chunk.audio),
    )


def _requests(speakers) -> list[SynthesisRequest]:
    return [
        SynthesisRequest("第一句话。第二句话稍微长一点点。第三句！", "zh", speakers[0],
                         SynthesisOptions(top_k=5, temperature=0.8, split_method="cut5", seed=3, batch_size=2)),
        SynthesisRequest("Hello there, how are you today?", "en", speakers[1], SynthesisOptions(top_k=10, seed=4)),
        SynthesisRequest("今天我们慢慢地说第一句话。然后再慢慢地说第二句话。", "zh", speakers[1],
                         SynthesisOptions(top_k=3, split_method="cut5", seed=5, speed=1.25, noise_scale=0.7, batch_size=2)),
        SynthesisRequest("第一句话。第二句话。", "zh", speakers[0], SynthesisOptions(split_method="cut5", seed=6, stream="fragments")),
        SynthesisRequest("流式的一句话。", "zh", speakers[0], SynthesisOptions(seed=7, stream="chunks", min_chunk_length=8)),
    ]


def test_requests_decoded_as_one_batch_sound_as_they_do_alone(batched, solo, speakers, monkeypatch):
    """Different speakers, lengths, speeds (a call per segment), joined segments, fragments; chunks keep their path."""
    spy = DecodeBatchSpy(monkeypatch, batched.sovits)
    records = [{} for _ in _requests(speakers)]
    together = batched.synthesize_many([_recorded(r, store) for r, store in zip(_requests(speakers), records)])
    assert spy.failures == 0 and spy.items[0] == 5  # wave 0: 1 joined call + 1 + 2 per-segment calls + 1; no chunks job
    for request, result, record in zip(_requests(speakers), together, records):
        alone_record: dict = {}
        alone = solo.synthesize_many([_recorded(request, alone_record)])[0]
        for ours, theirs in zip(result.segments, alone.segments, strict=True):
            np.testing.assert_array_equal(ours.semantic_tokens, theirs.semantic_tokens)
            np.testing.assert_allclose(ours.audio, theirs.audio, rtol=0, atol=ATOL)
        np.testing.assert_allclose(result.audio, alone.audio, rtol=0, atol=ATOL)
        assert sorted(record["dumps"]) == sorted(alone_record["dumps"])
        for name, array in record["dumps"].items():
            np.testing.assert_allclose(array, alone_record["dumps"][name], rtol=0, atol=ATOL, err_msg=name)
        assert [m for _, m in record["progress"]] == [m for _, m in alone_record["progress"]]
        assert len(record["pieces"]) == len(alone_record["pieces"])
    assert together[3].segments and len(records[3]["pieces"]) == 2  # fragments: one piece per segment batch


def test_a_request_whose_decode_fails_in_the_batch_fails_alone(batched, solo, speakers, monkeypatch):
    """Bad injected noise fails the batch; the jobs are decoded again one by one from their state before it:
    the good ones get exactly their solo audio (generator draws and injected noise not used up by the failed try)."""
    good = SynthesisRequest("你好，世界。", "zh", speakers[0], SynthesisOptions(top_k=1, seed=1))
    tokens = len(solo.synthesize_many([good])[0].segments[0].semantic_tokens)
    noise = np.random.default_rng(0).standard_normal((1, batched.sovits.config.inter_channels, 2 * tokens)).astype(np.float32)
    with_noise = SynthesisRequest(good.text, "zh", speakers[0], good.options, decode_noise=[noise])
    drawn = SynthesisRequest("第一句话。第二句话。", "zh", speakers[1], SynthesisOptions(split_method="cut5", seed=2, speed=0.8))
    bad = SynthesisRequest("再见。", "zh", speakers[0], SynthesisOptions(seed=3), decode_noise=[np.zeros((1, 3, 5), np.float32)])
    spy = DecodeBatchSpy(monkeypatch, batched.sovits)
    outcomes = batched.synthesize_many([with_noise, drawn, bad])
    assert spy.failures == 1
    assert isinstance(outcomes[2], ValueError) and "noise must have the prior's shape" in str(outcomes[2])
    for request, outcome in zip((with_noise, drawn), outcomes):
        np.testing.assert_array_equal(outcome.audio, solo.synthesize_many([request])[0].audio)


def test_a_failing_dump_after_a_batched_decode_fails_only_its_request(batched, solo, speakers):
    def broken_dump(name, array):
        if name.startswith("decode_out_"):
            raise OSError("disk full (simulated)")

    good = SynthesisRequest("你好，世界。", "zh", speakers[0], SynthesisOptions(top_k=1, seed=1))
    broken = SynthesisRequest("再见。", "zh", speakers[1], SynthesisOptions(seed=3), inspect=broken_dump)
    outcomes = batched.synthesize_many([broken, good])
    assert isinstance(outcomes[0], OSError)
    np.testing.assert_allclose(outcomes[1].audio, solo.synthesize_many([good])[0].audio, rtol=0, atol=ATOL)


def test_a_failing_gpt_batch_is_retried_request_by_request(batched, solo, speakers, monkeypatch):
    generate = batched.t2s.generate

    def one_request_at_a_time(rows, *args, **kwargs):
        if len({id(row.generator) for row in rows}) > 1:  # rows of several requests (a request's rows share one)
            raise RuntimeError("out of memory (simulated)")
        return generate(rows, *args, **kwargs)

    monkeypatch.setattr(batched.t2s, "generate", one_request_at_a_time)
    requests = _requests(speakers)[1:3]  # the second has two segments in one GPT batch
    outcomes = batched.synthesize_many(requests)
    monkeypatch.undo()
    for request, outcome in zip(requests, outcomes):
        alone = solo.synthesize_many([request])[0]
        np.testing.assert_allclose(outcome.audio, alone.audio, rtol=0, atol=ATOL)


def test_the_cpu_default_decodes_call_by_call(batched, speakers, monkeypatch):
    auto = batched.with_batch_decoder(None)
    assert batched.batch_decoder and not auto.batch_decoder
    spy = DecodeBatchSpy(monkeypatch, batched.sovits)
    auto.synthesize_many(_requests(speakers)[:2])
    assert spy.items == []


@pytest.mark.parametrize("dtype, min_snr_db", [(torch.float16, 40.0), (torch.bfloat16, 25.0)], ids=["fp16", "bf16"])
def test_half_precision_pipelines_decode_batches(reference_dir, dtype, min_snr_db):
    """fp16 / bf16 on the CPU: the same requests served together, decoded as one batch and call by call
    (the same GPT batch, so the same tokens), agree far closer than half precision is to float32
    (31 dB bf16, 50 dB fp16 for the waveform; test_half_precision.py)."""
    pipeline = _load(reference_dir, dtype)
    speaker = pipeline.prepare_speaker(reference_dir / "cases" / "v2_zh" / "ref.wav", "今天天气不错，我们一起去公园散步吧。", "zh")
    requests = [SynthesisRequest(text, "zh", speaker, SynthesisOptions(top_k=1, seed=seed, speed=speed))
                for text, seed, speed in (("你好。", 1, 1.0), ("欢迎使用语音合成。", 2, 1.25))]
    together = pipeline.synthesize_many(requests)
    call_by_call = pipeline.with_batch_decoder(False).synthesize_many(requests)
    for ours, theirs in zip(together, call_by_call):
        assert np.isfinite(ours.audio).all() and ours.audio.shape == theirs.audio.shape
        error = np.sum((ours.audio - theirs.audio).astype(np.float64) ** 2)
        assert error == 0 or 10 * np.log10(np.sum(theirs.audio.astype(np.float64) ** 2) / error) >= min_snr_db
