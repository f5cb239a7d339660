"""Issue 11: one visitor cannot break the demo. Service-level cases with a stand-in pipeline.

Each case checks the status, the message, that the other requests of the same batch were
served, and that the library on disk is unchanged.
"""

import errno
import io
import json
import logging
import math
import threading
import time
import zipfile

import numpy as np
import pytest
import soundfile as sf

from gsv_core.conditioning import SpeakerConditioning
from gsv_core.engine.requests import SynthesisOptions
from test_service import FakePipeline, _service, _wav
from voice_studio.errors import ServiceError
from voice_studio.limits import Limits, check_options


def _tree(tmp_path) -> list[str]:
    root = tmp_path / "speakers"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".lock" not in p.name and ".tmp" not in p.parts
                  and ".trash" not in p.parts)


def _log(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]


# -- options ------------------------------------------------------------------------------

BAD_OPTIONS = [
    ({"top_k": 1.5}, "top_k must be a whole number"),
    ({"top_k": True}, "top_k must be a whole number"),
    ({"top_k": 10**30}, "top_k must be between 1 and 100"),
    ({"top_k": "15"}, "top_k must be a whole number"),
    ({"seed": "abc"}, "seed must be a whole number"),
    ({"seed": 1.5}, "seed must be a whole number"),
    ({"seed": -1}, "seed must be between 0 and 4294967295"),
    ({"seed": 2**64}, "seed must be between 0 and 4294967295"),
    ({"seed": [1]}, "seed must be a whole number"),
    ({"fragment_interval": math.inf}, "fragment_interval must be a finite number"),
    ({"fragment_interval": 3600}, "fragment_interval must be between 0 and 2"),
    ({"fragment_interval": -0.1}, "fragment_interval must be between 0 and 2"),
    ({"speed": math.nan}, "speed must be a finite number"),
    ({"speed": 0.01}, "speed must be between 0.5 and 2"),
    ({"top_p": 0}, "top_p must be between 0.01 and 1"),
    ({"temperature": 1e9}, "temperature must be between 0.05 and 2"),
    ({"repetition_penalty": "1"}, "repetition_penalty must be a number"),
    ({"split_method": "cut99"}, "split_method must be one of"),
    ({"split_method": ["cut1"]}, "split_method must be one of"),
    ({"batch_size": 10**6}, "unknown options: batch_size"),
    ([1, 2], "options must be a JSON object"),
]


@pytest.mark.parametrize("raw, message", BAD_OPTIONS, ids=[str(case[0]) for case in BAD_OPTIONS])
def test_bad_options_are_refused_with_a_specific_message(raw, message):
    with pytest.raises(ServiceError, match=message.replace("(", r"\(")) as error:
        check_options(raw, Limits())
    assert error.value.status == 400


def test_whole_floats_from_ui_sliders_and_the_largest_seed_are_accepted():
    options = check_options({"top_k": 15.0, "seed": 2**32 - 1, "fragment_interval": 0, "speed": 2}, Limits())
    assert options.top_k == 15 and isinstance(options.top_k, int) and options.seed == 2**32 - 1


def test_options_built_by_the_ui_are_checked_again_by_the_service(tmp_path):
    service = _service(tmp_path)
    speaker = service.add_speaker(_wav(), "你好。", "zh", "Seed", session=None)
    with pytest.raises(ServiceError, match="seed must be between") as error:
        service.synthesis.synthesize("你好", speaker.id, "zh", SynthesisOptions(seed=2**70), None)
    assert error.value.status == 400 and "Overflow" not in str(error.value)
    assert _log(tmp_path)[-1]["outcome"] == "error" and _log(tmp_path)[-1]["status"] == 400


# -- request isolation --------------------------------------------------------------------

class FragilePipeline(FakePipeline):
    """Fails a whole batch with a torch-like message when any of its texts contains 'boom'."""

    def synthesize_many(self, requests):
        if any("boom" in r.text for r in requests):
            self.batches.append(len(requests))
            raise RuntimeError("Overflow when unpacking long long at /srv/torch/csrc/x.cpp:12")
        return super().synthesize_many(requests)


def _concurrently(service, calls):
    """Run ``service.synthesis.synthesize(*call)`` for every call at once; (result or ServiceError) per call."""
    outcomes = [None] * len(calls)

    def run(index, call):
        try:
            outcomes[index] = service.synthesis.synthesize(*call)
        except ServiceError as error:
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_a_request_that_fails_its_whole_batch_fails_alone_with_an_error_id(tmp_path, caplog):
    pipeline = FragilePipeline(serve_s=0.3)
    service = _service(tmp_path, pipeline, max_batch=4)
    speaker = service.add_speaker(_wav(), "你好。", "zh", "Batch", session=None)
    before = _tree(tmp_path)
    texts = ["你好", "boom", "世界", "再见"]
    with caplog.at_level(logging.ERROR, logger="voice_studio.errors"):
        outcomes = _concurrently(service, [(t, speaker.id, "zh", SynthesisOptions(), None) for t in texts])
    bad = outcomes[1]
    assert isinstance(bad, ServiceError) and bad.status == 500 and bad.error_id
    assert "error id" in str(bad) and "Overflow" not in str(bad) and "/srv" not in str(bad)
    assert all(o.duration_s == 1.0 for i, o in enumerate(outcomes) if i != 1)
    assert max(pipeline.batches) > 1  # the culprit really shared a batch, then was served alone
    assert bad.error_id in caplog.text and "Overflow when unpacking" in caplog.text  # the log has the cause
    lines = _log(tmp_path)
    assert sorted(line["outcome"] for line in lines) == ["error", "ok", "ok", "ok"]
    assert [line["error_id"] for line in lines if line["outcome"] == "error"] == [bad.error_id]
    assert _tree(tmp_path) == before


def test_text_too_long_after_normalization_is_refused_before_it_joins_a_batch(tmp_path):
    pipeline = FakePipeline(serve_s=0.2)
    service = _service(tmp_path, pipeline, max_chars=200)
    speaker = service.add_speaker(_wav(), "你好。", "zh", "Digits", session=None)
    calls = [("1" * 150, speaker.id, "zh", SynthesisOptions(), None)] + [
        ("你好", speaker.id, "zh", SynthesisOptions(), None)] * 3
    outcomes = _concurrently(service, calls)
    assert isinstance(outcomes[0], ServiceError) and outcomes[0].status == 400
    assert "too long to read in one go" in str(outcomes[0]) and "Add punctuation" in str(outcomes[0])
    assert all(o.duration_s == 1.0 for o in outcomes[1:]) and sum(pipeline.batches) == 3
    assert sorted(line["outcome"] for line in _log(tmp_path)) == ["error", "ok", "ok", "ok"]


def test_audio_that_would_be_too_long_is_refused(tmp_path):
    service = _service(tmp_path, max_chars=400, limits=Limits(max_output_s=5.0))
    speaker = service.add_speaker(_wav(), "你好。", "zh", "Long", session=None)
    with pytest.raises(ServiceError, match="the audio would last about 25 s; the limit is 5 s"):
        service.synthesis.synthesize("你好。" * 10, speaker.id, "zh", SynthesisOptions(fragment_interval=2.0), None)
    with pytest.raises(ServiceError, match="41 segments; the limit is 40"):
        service.synthesis.synthesize("好。" * 41, speaker.id, "zh", SynthesisOptions(), None)


def test_unexpected_errors_get_a_generic_message_and_an_id(tmp_path, caplog):
    pipeline = FragilePipeline()
    service = _service(tmp_path, pipeline)
    speaker = service.add_speaker(_wav(), "你好。", "zh", "Alone", session=None)
    with caplog.at_level(logging.ERROR), pytest.raises(ServiceError) as error:
        service.synthesis.synthesize("boom", speaker.id, "zh", SynthesisOptions(), None)
    assert error.value.status == 500 and f"(error id {error.value.error_id})" in str(error.value)
    assert "Traceback" in caplog.text and error.value.error_id in caplog.text


# -- admission ----------------------------------------------------------------------------

def test_past_the_queue_requests_get_503_with_retry_after_and_are_logged(tmp_path):
    pipeline = FakePipeline(serve_s=0.5)
    service = _service(tmp_path, pipeline, max_batch=1, max_waiting=2)
    speaker = service.add_speaker(_wav(), "你好。", "zh", "Busy", session=None)
    outcomes = _concurrently(service, [("你好", speaker.id, "zh", SynthesisOptions(), None)] * 8)
    busy = [o for o in outcomes if isinstance(o, ServiceError)]
    served = [o for o in outcomes if not isinstance(o, ServiceError)]
    assert len(served) >= 3 and busy and all(b.status == 503 and b.headers["Retry-After"] for b in busy)
    assert all("busy" in str(b) for b in busy) and service.synthesis.admission.held == 0
    assert len(_log(tmp_path)) == 8


def test_what_admission_lets_in_is_never_refused_by_the_queue(tmp_path):
    """Admission holds max_waiting + max_batch; requests submitted before the worker takes any
    all count as waiting, and the queue must not refuse them (it did, under load, at random)."""
    service = _service(tmp_path, FakePipeline(), max_batch=1, max_waiting=2)
    speaker = service.add_speaker(_wav(), "你好。", "zh", "Three", session=None)
    results = service.synthesis.synthesize_each("你好", [speaker.id] * 3, "zh", SynthesisOptions(), None)
    assert len(results) == 3 and service.synthesis.admission.held == 0
    assert [line["outcome"] for line in _log(tmp_path)] == ["ok"] * 3


def test_a_short_request_is_not_batched_behind_a_long_one():
    from voice_studio.synthesis_queue import SynthesisQueue

    batches, release = [], threading.Event()

    def serve(requests):
        batches.append(list(requests))
        release.wait(5)
        return requests

    queue = SynthesisQueue(serve, max_batch=4, gather_s=0.0, cost=float)
    first = queue.submit_many([1.0])
    for _ in range(100):
        if batches:
            break
        time.sleep(0.01)
    waiting = queue.submit_many([2.0, 60.0, 1.5, 2.5])
    release.set()
    assert [f.result(5) for f in first + waiting] == [1.0, 2.0, 60.0, 1.5, 2.5]
    assert batches == [[1.0], [2.0, 1.5, 2.5], [60.0]]


# -- permissions --------------------------------------------------------------------------

def test_a_wrong_token_is_refused_not_taken_for_a_visitor(tmp_path):
    service = _service(tmp_path, admin_token="secret")
    with pytest.raises(ServiceError, match="the admin token is wrong") as error:
        service.add_speaker(_wav(), "你好。", "zh", "Sneaky", session="visitor", token="guess")
    assert error.value.status == 401 and _tree(tmp_path) == []


def test_visitors_voices_are_bounded_and_private_ids_reveal_nothing(tmp_path):
    service = _service(tmp_path, admin_token="secret", limits=Limits(max_voices_per_visitor=2, max_voices=3))
    a = service.add_speaker(_wav(), "你好。", "zh", "Alice", session="visitor-a")
    b = service.add_speaker(_wav(), "你好。", "zh", "Alice", session="visitor-b")
    assert a.id.startswith("alice-") and b.id.startswith("alice-") and a.id != b.id and "alice-2" not in (a.id, b.id)
    shared = service.add_speaker(_wav(), "你好。", "zh", "Alice!", session=None, token="secret")
    assert shared.id == "alice"  # no numbering: nothing tells that private Alices exist
    before = _tree(tmp_path)
    with pytest.raises(ServiceError, match="library is full") as error:
        service.add_speaker(_wav(), "你好。", "zh", "More", session="visitor-a")
    assert error.value.status == 507 and _tree(tmp_path) == before


def test_a_visitor_may_keep_only_so_many_voices(tmp_path):
    service = _service(tmp_path, admin_token="secret", limits=Limits(max_voices_per_visitor=1))
    service.add_speaker(_wav(), "你好。", "zh", "One", session="visitor")
    before = _tree(tmp_path)
    with pytest.raises(ServiceError, match="you have 1 voices") as error:
        service.add_speaker(_wav(), "你好。", "zh", "Two", session="visitor")
    assert error.value.status == 429 and _tree(tmp_path) == before
    assert service.add_speaker(_wav(), "你好。", "zh", "Other", session="other-visitor")


def test_the_admin_lists_and_deletes_every_voice_visitors_cannot(tmp_path):
    service = _service(tmp_path, admin_token="secret")
    private = service.add_speaker(_wav(), "你好。", "zh", "Private", session="visitor")
    with pytest.raises(ServiceError, match="needs the admin token") as error:
        service.list_speakers("visitor", everything=True)
    assert error.value.status == 403
    assert private.id in {s["id"] for s in service.list_speakers(None, "secret", everything=True)}
    assert private.id not in {s["id"] for s in service.list_speakers(None, "secret")}
    service.delete_speaker(private.id, session=None, token="secret")
    assert _tree(tmp_path) == []


def test_private_voices_expire(tmp_path):
    service = _service(tmp_path, admin_token="secret", limits=Limits(private_voice_ttl_s=3600))
    private = service.add_speaker(_wav(), "你好。", "zh", "Private", session="visitor")
    shared = service.add_speaker(_wav(), "你好。", "zh", "Shared", session=None, token="secret")
    assert service.sweeper.sweep(now=time.time() + 60) == []
    assert service.sweeper.sweep(now=time.time() + 3601) == [private.id]
    assert [s["id"] for s in service.list_speakers(None, "secret", everything=True)] == [shared.id]


def test_ratings_export_needs_the_token_when_one_is_set(tmp_path):
    from voice_studio.ratings import Rating

    service = _service(tmp_path, admin_token="secret", ratings_path=tmp_path / "r.sqlite")
    service.ratings.add(Rating("c1", "alice", "你好", 4, "note", "visitor-key"))
    with pytest.raises(ServiceError, match="exporting ratings needs the admin token") as error:
        service.ratings_csv(None)
    assert error.value.status == 403
    exported = service.ratings_csv("secret")  # who rated, as a keyed hash: never the visitor key itself
    assert service.ratings.rater_of("visitor-key") in exported and "visitor-key" not in exported
    with pytest.raises(ServiceError, match="wrong"):
        service.ratings_csv("nope")


def test_without_a_token_the_page_says_everything_is_open(tmp_path):
    from voice_studio.ui.speakers_tab import access_notice

    assert "Team mode" in access_notice(_service(tmp_path))
    assert "private to this browser" in access_notice(_service(tmp_path / "b", admin_token="secret"))


# -- disk, races --------------------------------------------------------------------------

def test_adds_are_refused_when_the_disk_is_nearly_full(tmp_path):
    service = _service(tmp_path, limits=Limits(min_free_disk_bytes=2**62))
    with pytest.raises(ServiceError, match="short of disk space") as error:
        service.add_speaker(_wav(), "你好。", "zh", "Full", session=None)
    assert error.value.status == 507 and _tree(tmp_path) == []


def test_disk_full_while_writing_is_a_clear_507(tmp_path, monkeypatch):
    service = _service(tmp_path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/srv/speakers/.tmp/x")

    monkeypatch.setattr(service.library, "add", full)
    with pytest.raises(ServiceError, match="disk is full") as error:
        service.add_speaker(_wav(), "你好。", "zh", "Full", session=None)
    assert error.value.status == 507 and "/srv" not in str(error.value)


def test_deleting_a_voice_while_its_embeddings_are_computed_is_a_404_not_a_500(tmp_path):
    class SlowPrepare(FakePipeline):
        def prepare_speaker(self, audio, transcript, language):
            time.sleep(0.5)
            return super().prepare_speaker(audio, transcript, language)

    pipeline = SlowPrepare()
    service = _service(tmp_path, pipeline)
    speaker = service.add_speaker(_wav(), "你好。", "zh", "Racy", session=None)
    pipeline.weights_key = "v2-1111111111111111"  # new weights: embeddings are computed on next use
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(_concurrently(service, [
        ("你好", speaker.id, "zh", SynthesisOptions(), None)])[0]))
    thread.start()
    time.sleep(0.2)
    service.delete_speaker(speaker.id, session=None)
    thread.join()
    assert isinstance(outcome[0], ServiceError) and outcome[0].status == 404
    assert "deleted while it was being prepared" in str(outcome[0])
    assert _tree(tmp_path) == []


# -- audio --------------------------------------------------------------------------------

def _flac_silence(seconds: float, rate: int = 96000) -> bytes:
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", rate, 2, format="FLAC", subtype="PCM_16") as out:
        block = np.zeros((rate * 10, 2), dtype=np.int16)
        for _ in range(int(seconds // 10)):
            out.write(block)
    return buffer.getvalue()


def test_a_long_compressed_upload_is_refused_by_its_header_before_decoding(tmp_path, monkeypatch):
    import gsv_core.audio

    payload = _flac_silence(1200)
    assert len(payload) < 2 * 2**20  # 20 minutes of 96 kHz stereo silence in a small file
    decoded = []
    monkeypatch.setattr(gsv_core.audio.soundfile, "read", lambda *a, **k: decoded.append(1))
    service = _service(tmp_path)
    started = time.perf_counter()
    with pytest.raises(ServiceError, match="1200.00 s long; the reference must be between 3 and 10 seconds"):
        service.add_speaker(payload, "你好。", "zh", "Long", session=None)
    assert time.perf_counter() - started < 2 and decoded == [] and _tree(tmp_path) == []
    with pytest.raises(gsv_core.audio.AudioError, match="1200.00 s long"):
        gsv_core.audio.load_reference_audio(payload)


# -- start-up and models ------------------------------------------------------------------

def test_partial_model_flags_name_the_missing_one(capsys):
    from voice_studio.server import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--t2s", "s1.ckpt", "--sovits", "s2.pth", "--hubert", "hubert"], environ={})
    assert "missing: --bert" in capsys.readouterr().err


def test_limits_come_from_flags_and_environment():
    from voice_studio.server import parse_args

    args = parse_args(["--max-fragment-interval", "1.5", "--max-upload-mb", "5"], environ={"GSV_MAX_VOICES": "9"})
    assert args.limits.max_fragment_interval_s == 1.5 and args.limits.max_upload_bytes == 5 * 2**20
    assert args.limits.max_voices == 9 and args.limits.max_phones_per_segment == Limits().max_phones_per_segment


def test_missing_weights_are_reported_without_paths_or_argument_names(tmp_path):
    from gsv_core.hub import ModelFilesError
    from voice_studio.service import ServiceConfig, VoiceService

    def offline(progress):
        raise ModelFilesError("GPT-SoVITS v2ProPlus needs 1 file(s) not found in /root/.cache/huggingface/hub:\n"
                              "  - s1v3.ckpt\npass local_dir= or t2s=, sovits=", ["s1v3.ckpt"])

    service = VoiceService(ServiceConfig(speakers_dir=tmp_path / "speakers"), load_pipeline=offline)
    with pytest.raises(ServiceError) as error:
        service.pipeline()
    for text in (str(error.value), service.status):
        assert "s1v3.ckpt" in text and "/root" not in text and "local_dir" not in text and "t2s=" not in text
    assert error.value.status == 503 and error.value.headers["Retry-After"]


# -- imported voices (value validation lands with the speakers branch) ----------------------

def _archive_with(tmp_path, **arrays) -> bytes:
    class PromptPipeline(FakePipeline):
        def prepare_speaker(self, audio, transcript, language):
            base = super().prepare_speaker(audio, transcript, language)
            return SpeakerConditioning(version="v2", ref_spec=base.ref_spec, global_embedding=base.global_embedding,
                                       prompt_semantic=np.arange(20, dtype=np.int64),
                                       prompt_phones=np.arange(10, dtype=np.int64),
                                       prompt_bert=np.zeros((1024, 10), dtype=np.float32))

    service = _service(tmp_path / "source", PromptPipeline())
    speaker = service.add_speaker(_wav(), "你好。", "zh", "Exported", session=None)
    original = zipfile.ZipFile(io.BytesIO(service.export_speaker(speaker.id, None)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for member in original.infolist():
            data = original.read(member)
            name = member.filename.rsplit("/", 1)[-1].removesuffix(".npy")
            if name in arrays:
                buffer = io.BytesIO()
                np.save(buffer, arrays[name], allow_pickle=False)
                data = buffer.getvalue()
            archive.writestr(member, data)
    return out.getvalue()


@pytest.mark.parametrize("bad", [np.full(20, 10**9, dtype=np.int64), np.full(20, -5, dtype=np.int64)],
                         ids=["token-ids-past-the-codebook", "negative-token-ids"])
def test_an_imported_voice_with_a_bad_prompt_semantic_is_refused(tmp_path, bad):
    archive = _archive_with(tmp_path, prompt_semantic=bad)
    service = _service(tmp_path / "target", admin_token="secret")
    with pytest.raises(ServiceError) as error:
        service.import_speaker(archive, session="visitor")
    assert error.value.status == 400 and "prompt_semantic" in str(error.value)
    assert service.list_speakers(None, "secret", everything=True) == []


def test_the_ui_knows_a_visitor_by_the_cookie_not_by_the_page_load():
    import types

    from test_attack_visitor_keys import as_the_app_sees
    from voice_studio.ui.common import session_of
    from voice_studio.visitor_keys import VisitorKeys, page_session_key

    keys = VisitorKeys(b"s" * 32, 3600)
    client = keys.client_tag("203.0.113.7")
    key = keys.mint(client)  # the key the server set on the first response

    def page(session_hash, **headers):  # a Gradio request as the app sees it behind the RequestGuard
        return types.SimpleNamespace(headers=as_the_app_sees(keys, headers), session_hash=session_hash)

    first_load = page("load-1", Cookie=f"gsv_visitor={key}")
    reload = page("load-2", Cookie=f"gsv_visitor={key}")
    assert session_of(first_load) == session_of(reload) == key
    forged = page("load-3", Cookie="gsv_visitor=x; y")
    assert session_of(forged) == page_session_key("load-3", client)  # a malformed key is never used
    no_cookie_jar = page("load-4")
    assert session_of(no_cookie_jar) == page_session_key("load-4", client)  # a key minted for this request alone would be lost at once


def test_an_sv_checkpoint_that_does_not_fit_the_sovits_model_is_refused_at_load(reference_dir, tmp_path):
    from voice_studio.server import _pipeline_loader, parse_args
    from voice_studio.service import ServiceConfig, VoiceService

    models = reference_dir / "models"
    args = parse_args(["--t2s", str(models / "s1-tiny.ckpt"), "--sovits", str(models / "s2G-tiny-v2Pro.pth"),
                       "--hubert", str(models / "chinese-hubert-tiny"), "--bert", str(models / "chinese-roberta-tiny"),
                       "--sv", str(models / "sv-eres2netv2-tiny.ckpt"), "--official-data", str(reference_dir / "data")],
                      environ={})
    service = VoiceService(ServiceConfig(speakers_dir=tmp_path / "speakers"), _pipeline_loader(args))
    with pytest.raises(ServiceError, match="do not belong together") as error:
        service.pipeline()
    assert error.value.status == 503 and "ready" not in service.status and "do not belong together" in service.status
    assert str(models) not in service.status


def test_a_v2pro_model_without_its_sv_checkpoint_is_refused_at_load(reference_dir, tmp_path):
    from voice_studio.server import _pipeline_loader, parse_args
    from voice_studio.service import ServiceConfig, VoiceService

    models = reference_dir / "models"
    args = parse_args(["--t2s", str(models / "s1-tiny.ckpt"), "--sovits", str(models / "s2G-tiny-v2Pro.pth"),
                       "--hubert", str(models / "chinese-hubert-tiny"), "--bert", str(models / "chinese-roberta-tiny"),
                       "--official-data", str(reference_dir / "data")], environ={})
    service = VoiceService(ServiceConfig(speakers_dir=tmp_path / "speakers"), _pipeline_loader(args))
    with pytest.raises(ServiceError, match="needs the speaker-verification checkpoint: start the app with --sv"):
        service.pipeline()


def test_the_largest_request_the_limits_allow_stays_small_in_memory():
    """Memory per request is bounded by the output-duration limit: float32 audio at 32 kHz."""
    from voice_studio.limits import check_segments

    limits = Limits()
    worst = SynthesisOptions(speed=limits.speed[0], fragment_interval=limits.max_fragment_interval_s)
    with pytest.raises(ServiceError, match="the limit is 120 s"):
        check_segments([limits.max_phones_per_segment] * limits.max_segments, [100] * limits.max_segments, worst,
                       limits, None)
    assert limits.max_output_s * 32000 * 4 < 16 * 2**20  # at most 15 MB of output audio per request
