"""The service rules with a stand-in pipeline: permissions, private voices, limits, logging, ZeroGPU wrapping."""

import io
import json
import sys
import threading
import time
import types

import numpy as np
import pytest
import soundfile as sf

from gsv_core.conditioning import SpeakerConditioning
from gsv_core.engine.requests import PreparedText, SynthesisOptions, SynthesisResult
from voice_studio.service import ServiceConfig, ServiceError, VoiceService


class FakeFrontend:
    """Cuts at '。' and gives two phones per character, like a simple Chinese frontend."""

    def prepare(self, text, language, version="v2", method="cut1"):
        pieces = [piece for piece in text.split("。") if piece.strip()] or [text]
        return [types.SimpleNamespace(norm_text=piece, phone_ids=tuple(range(2 * len(piece)))) for piece in pieces]


class FakePipeline:
    version = "v2"
    weights_key = "v2-0000000000000000"
    version_info = types.SimpleNamespace(symbols="v2")
    speaker_encoder = None  # v2: no speaker-verification model, so similarity is "not available"
    frontend = FakeFrontend()

    def __init__(self, serve_s: float = 0.0) -> None:
        self.serve_s = serve_s
        self.batches: list[int] = []

    def prepare_text(self, text, language, options):
        sequences = tuple(self.frontend.prepare(text, language, "v2", options.split_method))
        return PreparedText(text, language, options.split_method, "v2", sequences,
                            tuple(len(s.norm_text) for s in sequences), 510)

    def prepare_speaker(self, audio, transcript, language):
        rng = np.random.default_rng(0)
        return SpeakerConditioning(version="v2", ref_spec=rng.random((1, 1025, 4), dtype=np.float32),
                                   global_embedding=rng.random((1, 512, 1), dtype=np.float32))

    def synthesize(self, text, language, speaker, options, progress=None):
        t = np.arange(32000, dtype=np.float32) / 32000
        return SynthesisResult(32000, (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))

    def synthesize_many(self, requests):
        self.batches.append(len(requests))
        time.sleep(self.serve_s)
        results = []
        for r in requests:
            if "😀" in r.text:
                results.append(ValueError("the text has nothing to read"))
                continue
            result = self.synthesize(r.text, r.language, r.speaker, r.options)
            results.append(SynthesisResult(result.sample_rate, result.audio, timings={"requests_in_batch": len(requests)}))
        return results


def _wav(seconds=4.0, rate=16000) -> bytes:
    buffer = io.BytesIO()
    samples = 0.1 * np.random.default_rng(1).standard_normal(int(seconds * rate))
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _service(tmp_path, pipeline=None, **config):
    pipeline = pipeline or FakePipeline()
    return VoiceService(ServiceConfig(speakers_dir=tmp_path / "speakers", log_file=tmp_path / "log.jsonl", **config),
                        load_pipeline=lambda progress: pipeline)


def test_with_a_token_visitors_add_private_voices_and_admins_shared_ones(tmp_path):
    service = _service(tmp_path, admin_token="secret")
    private = service.add_speaker(_wav(), "你好。", "zh", "Mine", session="visitor-1")
    shared = service.add_speaker(_wav(), "你好。", "zh", "Shared", session="admin", token="secret")
    assert not private.shared and shared.shared
    assert {s["id"] for s in service.list_speakers("visitor-1")} == {private.id, shared.id}
    assert {s["id"] for s in service.list_speakers("visitor-2")} == {shared.id}
    with pytest.raises(ServiceError, match="unknown speaker") as error:
        service.synthesis.synthesize("你好", private.id, "zh", SynthesisOptions(), session="visitor-2")
    assert error.value.status == 404
    assert service.synthesis.synthesize("你好", private.id, "zh", SynthesisOptions(), session="visitor-1").duration_s == 1.0


def test_without_a_token_everything_is_shared(tmp_path):
    service = _service(tmp_path)
    assert service.add_speaker(_wav(), "hi.", "en", "Open", session=None).shared


def test_limits_and_log_lines(tmp_path):
    service = _service(tmp_path, max_chars=10)
    speaker = service.add_speaker(_wav(), "你好。", "zh", "Log", session=None)
    with pytest.raises(ServiceError, match="limit is 10"):
        service.synthesis.synthesize("你" * 11, speaker.id, "zh", SynthesisOptions(), None)
    service.synthesis.synthesize("你好", speaker.id, "zh", SynthesisOptions(), None)
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [line["outcome"] for line in lines] == ["error", "ok"]
    assert {"time", "speaker_id", "language", "text_chars", "wall_s"} <= set(lines[1]) and "audio_s" in lines[1]
    assert "text" not in lines[1]  # the text is only logged when configured


def test_the_text_is_logged_when_configured_by_flag_or_environment(tmp_path):
    from voice_studio.server import parse_args

    assert parse_args([], environ={}).log_text is False
    assert parse_args(["--log-text"], environ={}).log_text is True
    assert parse_args([], environ={"GSV_LOG_TEXT": "1"}).log_text is True
    assert parse_args([], environ={"GSV_LOG_TEXT": "0"}).log_text is False
    service = _service(tmp_path, log_text=True)
    speaker = service.add_speaker(_wav(), "你好。", "zh", "Log", session=None)
    service.synthesis.synthesize("你好，世界", speaker.id, "zh", SynthesisOptions(), None)
    line = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[-1])
    assert line["outcome"] == "ok" and line["text"] == "你好，世界" and line["text_chars"] == 5


def test_concurrent_requests_are_served_in_batches_and_logged_with_their_batch(tmp_path):
    pipeline = FakePipeline(serve_s=0.3)
    service = _service(tmp_path, pipeline, max_batch=4)
    speaker = service.add_speaker(_wav(), "你好。", "zh", "Batched", session=None)
    threads = [threading.Thread(target=service.synthesis.synthesize, args=("你好", speaker.id, "zh", SynthesisOptions(), None))
               for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(pipeline.batches) == 6 and max(pipeline.batches) > 1 and max(pipeline.batches) <= 4
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [line["outcome"] for line in lines] == ["ok"] * 6
    assert sorted(line["batch"] for line in lines) == sorted(b for b in pipeline.batches for _ in range(b))


def test_one_text_in_several_voices_shares_a_batch_and_a_bad_one_fails_alone(tmp_path):
    pipeline = FakePipeline()
    service = _service(tmp_path, pipeline)
    ids = [service.add_speaker(_wav(), "你好。", "zh", f"Voice {i}", session=None).id for i in range(3)]
    results = service.synthesis.synthesize_each("你好", ids, "zh", SynthesisOptions(), None)
    assert len(results) == 3 and pipeline.batches == [3]
    with pytest.raises(ServiceError, match="unknown speaker id 'nobody'"):
        service.synthesis.synthesize_each("你好", [ids[0], "nobody"], "zh", SynthesisOptions(), None)
    with pytest.raises(ServiceError, match="nothing to read"):
        service.synthesis.synthesize("😀", ids[0], "zh", SynthesisOptions(), None)
    outcomes = [json.loads(line)["outcome"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert outcomes == ["ok"] * 3 + ["ok", "error", "error"]


def test_too_many_waiting_requests_get_a_busy_error(tmp_path):
    pipeline = FakePipeline(serve_s=1.0)
    service = _service(tmp_path, pipeline, max_batch=1, max_waiting=1)
    speaker = service.add_speaker(_wav(), "你好。", "zh", "Busy", session=None)
    errors: list[ServiceError] = []

    def call():
        try:
            service.synthesis.synthesize("你好", speaker.id, "zh", SynthesisOptions(), None)
        except ServiceError as error:
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
        time.sleep(0.1)
    for thread in threads:
        thread.join()
    assert errors and all(e.status == 503 and "busy" in str(e) for e in errors)
    assert sum(pipeline.batches) == 4 - len(errors)


@pytest.mark.parametrize("payload, message", [(b"", "empty"), (b"x" * (20 * 2**20 + 1), "20 MB"), (b"not audio", "audio")])
def test_bad_uploads_store_nothing(tmp_path, payload, message):
    service = _service(tmp_path)
    with pytest.raises(ServiceError, match=message):
        service.add_speaker(payload, "你好。", "zh", "Bad", session=None)
    assert service.list_speakers(None) == []


def test_missing_weights_are_reported_not_fatal(tmp_path):
    def fail(progress):
        progress(0.5, "s1.ckpt")
        raise FileNotFoundError("s1.ckpt is missing")

    service = VoiceService(ServiceConfig(speakers_dir=tmp_path / "speakers"), load_pipeline=fail)
    with pytest.raises(ServiceError, match="s1.ckpt is missing") as error:
        service.pipeline()
    assert error.value.status == 503 and "unavailable" in service.status
    assert service.list_speakers(None) == []  # the library still works


def test_handlers_run_on_zerogpu_only_when_spaces_is_importable(monkeypatch):
    from voice_studio.ui.common import on_gpu

    handler = lambda: "ran"  # noqa: E731
    monkeypatch.setitem(sys.modules, "spaces", None)  # not importable
    assert on_gpu(handler) is handler
    fake = types.ModuleType("spaces")
    fake.GPU = lambda duration: (lambda fn: (lambda *a, **k: f"on gpu for {duration} s: " + fn(*a, **k)))
    monkeypatch.setitem(sys.modules, "spaces", fake)
    assert on_gpu(handler, duration=30)() == "on gpu for 30 s: ran"


def test_ratings_are_stored_and_exported_as_csv(tmp_path):
    import csv

    from voice_studio.ratings import Rating, RatingStore

    store = RatingStore(tmp_path / "ratings.sqlite")
    store.add(Rating("clip-1", "alice", "你好", 5, 'great, "clear"'))
    store.add(Rating("clip-2", "bob", "你好", 2, "<b>muffled</b>"))
    with pytest.raises(ValueError, match="1 to 5"):
        store.add(Rating("clip-3", "bob", "你好", 6))
    rows = list(csv.DictReader(io.StringIO(store.to_csv())))
    assert [(r["speaker_id"], r["rating"], r["note"]) for r in rows] == [("alice", "5", 'great, "clear"'), ("bob", "2", "<b>muffled</b>")]
    assert len(RatingStore(tmp_path / "ratings.sqlite").rows()) == 2  # persisted


def test_transcription_goes_through_the_recognizer_and_checks_the_audio(tmp_path):
    service = _service(tmp_path)
    service.transcriber._load = lambda model, device: (lambda audio, **kwargs: {"text": " 你好 "})
    assert service.transcribe(_wav(), "zh") == "你好"
    with pytest.raises(ServiceError, match="3"):
        service.transcribe(_wav(seconds=1.0), "zh")


def test_changing_voices_needs_ownership_or_the_token(tmp_path):
    service = _service(tmp_path, admin_token="secret")
    shared = service.add_speaker(_wav(), "你好。", "zh", "Shared", session="a", token="secret")
    mine = service.add_speaker(_wav(), "你好。", "zh", "Mine", session="visitor")
    with pytest.raises(ServiceError, match="admin token") as error:
        service.rename_speaker(shared.id, "Hacked", session="visitor")
    assert error.value.status == 403 and service.library.get(shared.id).name == "Shared"
    with pytest.raises(ServiceError, match="admin token"):
        service.delete_speaker(shared.id, session="visitor")
    assert service.rename_speaker(mine.id, "Renamed", session="visitor").name == "Renamed"
    archive = service.export_speaker(mine.id, session="visitor")
    service.delete_speaker(mine.id, session="visitor")
    assert mine.id not in {s["id"] for s in service.list_speakers("visitor")}
    restored = service.import_speaker(archive, session="visitor")
    assert restored.name == "Renamed" and not restored.shared
    with pytest.raises(ServiceError):
        service.import_speaker(b"not a zip", session="visitor")
    assert service.rename_speaker(shared.id, "Renamed by admin", session=None, token="secret").name == "Renamed by admin"


def test_download_progress_shows_in_the_status(tmp_path):
    release = threading.Event()

    def slow(progress):
        progress(0.25, "s2Gv2ProPlus.pth")
        release.wait(10)
        return FakePipeline()

    service = VoiceService(ServiceConfig(speakers_dir=tmp_path / "speakers"), load_pipeline=slow)
    service.start_loading()
    for _ in range(100):
        if "25%" in service.status:
            break
        time.sleep(0.02)
    assert service.status == "loading models: s2Gv2ProPlus.pth (25%)"
    release.set()
    assert service.pipeline().version == "v2"


def test_uploads_are_stored_without_leading_and_trailing_silence(tmp_path):
    from voice_studio.service import trimmed_wav

    rate = 16000
    speech = 0.2 * np.random.default_rng(2).standard_normal(rate * 4)
    padded = np.concatenate([np.zeros(rate * 2), speech, np.zeros(rate * 3)])
    buffer = io.BytesIO()
    sf.write(buffer, padded, rate, format="WAV", subtype="PCM_16")
    trimmed, _ = sf.read(io.BytesIO(trimmed_wav(buffer.getvalue())))
    assert abs(len(trimmed) / rate - 4.0) < 0.2  # trimming works on 2048-sample frames
    info = _service(tmp_path).add_speaker(buffer.getvalue(), "你好。", "zh", "Padded", session=None)
    assert abs(info.duration_s - 4.0) < 0.2  # 9 s upload, 4 s of speech kept
    assert trimmed_wav(b"not audio") == b"not audio"


def test_model_downloads_show_a_progress_bar_until_ready(tmp_path):
    from voice_studio.ui.common import status_html

    halfway, finish = threading.Event(), threading.Event()

    def load(progress):
        progress(0.5, "s2Gv2ProPlus.pth <b>")
        halfway.set()
        finish.wait(10)
        return FakePipeline()

    service = VoiceService(ServiceConfig(speakers_dir=tmp_path / "speakers"), load_pipeline=load)
    service.start_loading()
    assert halfway.wait(10)
    page = status_html(service)
    assert '<progress class="gsv-loading" value="50" max="100"' in page
    assert "s2Gv2ProPlus.pth &lt;b&gt; (50%)" in page
    finish.set()
    service.pipeline()
    assert status_html(service) == '<p class="gsv-status">ready: GPT-SoVITS v2</p>'
