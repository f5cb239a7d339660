"""Voices from long recordings and auxiliary clips, through the service and REST (issue 14, items 1-2).

The recording is espeak-ng speech with known pauses (``espeak_speech``); Whisper is a fake
with the transformers pipeline's real interface that answers each sentence with its true
time stamps; the models are the speaker library's stand-in ``prepare``.
"""

from __future__ import annotations

import io
import json
import types

import numpy as np
import pytest
import soundfile as sf
from espeak_speech import RATE, espeak_recording, whisper_chunks
from fastapi import FastAPI
from fastapi.testclient import TestClient
from speaker_fakes import FakePrepare, clip_bytes, tree_snapshot
from whisper_fakes import FakeWhisperPipeline

from gsv_core.audio import wav_bytes
from gsv_core.speakers.records import MAX_AUX_CLIPS
from voice_studio.api import add_error_handlers, build_router
from voice_studio.errors import ServiceError
from voice_studio.service import ServiceConfig, VoiceService
from voice_studio.transcriber import Transcriber

SENTENCES = {
    "fox": "The quick brown fox jumps over the lazy dog near the river bank today.",
    "yes": "Yes.",
    "shells": "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    "rain": "The rain in Spain stays mainly in the plain, or so they say.",
    "wood": "How much wood would a woodchuck chuck if it could chuck wood?",
}
USABLE = ("fox", "shells", "rain", "wood")  # "Yes." is too short to be a reference


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> tuple[bytes, dict[str, tuple[float, float]]]:
    path, bounds = espeak_recording(tmp_path_factory.mktemp("speech"), SENTENCES)
    return path.read_bytes(), bounds


@pytest.fixture
def whisper(recording) -> FakeWhisperPipeline:
    return FakeWhisperPipeline(whisper_chunks(SENTENCES, recording[1]))


@pytest.fixture
def service(tmp_path, whisper) -> VoiceService:
    prepare = FakePrepare()
    pipeline = types.SimpleNamespace(prepare_speaker=prepare, weights_key="v2Pro-0000000000000000")
    service = VoiceService(ServiceConfig(speakers_dir=tmp_path / "speakers", log_file=tmp_path / "log.jsonl"),
                           load_pipeline=lambda progress: pipeline)
    service.transcriber = Transcriber("fake/whisper", load=lambda model, device: whisper)
    return service


def _inside(row: dict, bounds: tuple[float, float]) -> bool:
    return bounds[0] - 0.06 <= row["start_s"] and row["end_s"] <= bounds[1] + 0.06


def test_whisper_plans_the_recording_into_numbered_utterances_with_roles(service, recording, whisper):
    audio, bounds = recording
    plan = service.plan_recording_upload(audio).to_json()
    rows = plan["utterances"]
    assert [row["id"] for row in rows] == list(range(1, len(SENTENCES) + 1))
    assert (plan["language"], plan["transcribed_by"], plan["note"]) == ("en", "whisper", None)
    assert plan["duration_s"] == pytest.approx(bounds["wood"][1] + 1.0, abs=0.01)
    for row, (name, text) in zip(rows, SENTENCES.items()):  # time order, each sentence where it was said
        assert row["transcript"] == text and _inside(row, bounds[name]), (name, row)
    roles = {name: row["role"] for row, name in zip(rows, SENTENCES)}
    assert roles["yes"] == "dropped" and rows[1]["problems"][0] == "too short" and rows[1]["score"] == 0
    assert sorted(roles[name] for name in USABLE) == ["aux", "aux", "aux", "main"]
    main = next(row for row in rows if row["role"] == "main")
    assert 3.0 <= main["end_s"] - main["start_s"] <= 10.0 and main["score"] == max(row["score"] for row in rows)
    assert whisper.calls[0]["return_timestamps"] and whisper.calls[0]["generate_kwargs"] is None  # detected


def test_the_automatic_plan_stores_a_main_reference_and_auxiliary_clips_in_one_add(service, recording):
    audio, bounds = recording
    plan = service.plan_recording_upload(audio).to_json()
    info = service.add_speaker_from_recording(audio, None, "From a recording", session=None)
    main = next(row for row in plan["utterances"] if row["role"] == "main")
    assert (info.language, info.transcript, len(info.aux_clips)) == ("en", main["transcript"], 3)
    stored, rate = sf.read(service.library.reference_path(info.id))
    assert rate == RATE and len(stored) / rate <= main["end_s"] - main["start_s"] + 1e-3  # the main cut (trimmed)
    aux_lengths = sorted(round(clip.duration_s, 1) for clip in info.aux_clips)
    expected = sorted(round(row["end_s"] - row["start_s"], 1) for row in plan["utterances"] if row["role"] == "aux")
    assert aux_lengths == pytest.approx(expected, abs=0.15)  # each aux clip is its utterance, trimmed of silence
    assert len(service.library.aux_paths(info.id)) == 3
    prepare = service.pipeline().prepare_speaker
    assert len(prepare.aux_calls) == 1 and len(prepare.aux_calls[0]) == 3  # conditioned on all four clips at once


def test_a_typed_transcript_skips_whisper_and_its_sentences_go_to_the_utterances(tmp_path, recording):
    audio, bounds = recording

    def no_whisper(model, device):
        raise AssertionError("Whisper must not run when the visitor typed the transcript")

    service = VoiceService(ServiceConfig(speakers_dir=tmp_path / "speakers"), load_pipeline=None)
    service.transcriber = Transcriber(load=no_whisper)
    plan = service.plan_recording_upload(audio, " ".join(SENTENCES.values()), "en").to_json()
    assert (plan["transcribed_by"], plan["language"], plan["note"]) == ("visitor", "en", None)
    assert [row["transcript"] for row in plan["utterances"]] == list(SENTENCES.values())
    for row, name in zip(plan["utterances"], SENTENCES):
        assert _inside(row, bounds[name]), (name, row)
    wrong = service.plan_recording_upload(audio, "One sentence only. And a second.", "en").to_json()
    assert wrong["note"] == ("the transcript has 2 sentences but the recording was cut into 5 utterances: "
                             "type each utterance's transcript")
    assert {row["transcript"] for row in wrong["utterances"]} == {""}


def test_a_transcript_that_does_not_fit_is_refused_and_nothing_is_stored(service, recording, tmp_path):
    before = tree_snapshot(tmp_path / "speakers")
    with pytest.raises(ServiceError, match="has 1 sentence but the recording was cut into 5 utterances"):
        service.add_speaker_from_recording(recording[0], "en", "Mismatch", None, transcript="Only this.")
    assert tree_snapshot(tmp_path / "speakers") == before and service.library.list() == []


def test_the_visitor_picks_another_main_and_corrects_its_transcript(service, recording):
    audio, bounds = recording
    rows = service.plan_recording_upload(audio).to_json()["utterances"]
    wood = next(row for row in rows if _inside(row, bounds["wood"]))
    for row in rows:
        row["role"] = "main" if row is wood else ("aux" if row["role"] in ("main", "aux") else row["role"])
    wood["transcript"] = "How much wood would a woodchuck chuck?"
    info = service.add_speaker_from_recording(audio, "en", "Edited", None, utterances=rows)
    assert info.transcript == "How much wood would a woodchuck chuck?" and len(info.aux_clips) == 3
    stored, rate = sf.read(service.library.reference_path(info.id))
    assert abs(len(stored) / rate - (wood["end_s"] - wood["start_s"])) < 0.5


BAD_CHOICES = [
    (lambda rows: [{**r, "role": "main"} for r in rows], "exactly one utterance must have the role 'main', got 5"),
    (lambda rows: [{**r, "role": "aux"} for r in rows], "exactly one utterance must have the role 'main', got 0"),
    (lambda rows: [{**rows[0], "speaker": "x"}, *rows[1:]], "utterance 1: unknown speaker"),
    (lambda rows: [{"start_s": 1.0, "role": "main"}], "utterance 1: missing end_s"),
    (lambda rows: [{**rows[0], "role": "best"}, *rows[1:]], "role must be one of main, aux, spare, dropped"),
    (lambda rows: [{"start_s": 5.0, "end_s": 500.0, "role": "main"}], "is not a stretch of the"),
    (lambda rows: [{"start_s": "1", "end_s": 5.0, "role": "main"}], "start_s must be a finite number"),
    (lambda rows: [{"start_s": 1.0, "end_s": 5.0, "role": "main", "transcript": 5}], "transcript must be a string"),
    (lambda rows: {"utterances": rows}, "must be a non-empty JSON list"),
    (lambda rows: [{"start_s": 1.0, "end_s": 2.0, "role": "main"}], "between 3 and 10 seconds"),
    (lambda rows: [{"start_s": 1.0, "end_s": 5.0, "role": "main"}] + [{"start_s": 1.0, "end_s": 1.4, "role": "aux"}],
     "auxiliary clip 1 is 0.40 s long; an auxiliary reference must be between 1 and 10 seconds"),
    (lambda rows: [{"start_s": 1.0, "end_s": 5.0, "role": "main"}] + [{"start_s": 1.0, "end_s": 4.0, "role": "aux"}] * 8,
     f"at most {MAX_AUX_CLIPS} auxiliary clips, got 8"),
]


@pytest.mark.parametrize("edit, message", BAD_CHOICES)
def test_bad_choices_are_refused_clearly_and_nothing_is_stored(service, recording, tmp_path, edit, message):
    rows = service.plan_recording_upload(recording[0]).to_json()["utterances"]
    before = tree_snapshot(tmp_path / "speakers")
    with pytest.raises(ServiceError, match=message.replace("(", r"\(")) as error:
        service.add_speaker_from_recording(recording[0], "en", "Bad", None, utterances=edit(rows))
    assert error.value.status == 400
    assert tree_snapshot(tmp_path / "speakers") == before


def test_an_overlong_recording_is_refused_by_its_header_before_decoding(service, monkeypatch):
    import gsv_core.speakers.recordings as recordings_module

    def never(*args, **kwargs):
        raise AssertionError("an over-long recording must not be decoded")

    monkeypatch.setattr(recordings_module, "load_mono", never)  # what load_recording decodes with
    overlong = wav_bytes(np.zeros(181 * 8000, np.float32), 8000)
    for call in (lambda: service.plan_recording_upload(overlong),
                 lambda: service.add_speaker_from_recording(overlong, "en", "Long", None)):
        with pytest.raises(ServiceError, match="the recording is 181 s long; recordings of at most 180 s are accepted"):
            call()


def test_auxiliary_clips_of_a_short_reference_are_checked_like_the_main_one(service, tmp_path):
    main = clip_bytes(seconds=4.0)
    info = service.add_speaker(main, "Hello there.", "en", "With aux", None,
                               aux_audio=[clip_bytes(330.0, 2.0), clip_bytes(440.0, 1.5)])
    assert [round(clip.duration_s, 1) for clip in info.aux_clips] == [2.0, 1.5]
    before = tree_snapshot(tmp_path / "speakers")
    with pytest.raises(ServiceError, match="auxiliary clip 2 is 0.50 s long"):
        service.add_speaker(main, "Hello.", "en", "Short aux", None, aux_audio=[clip_bytes(seconds=2.0), clip_bytes(seconds=0.5)])
    with pytest.raises(ServiceError, match=f"at most {MAX_AUX_CLIPS} auxiliary clips, got {MAX_AUX_CLIPS + 1}"):
        service.add_speaker(main, "Hello.", "en", "Many aux", None, aux_audio=[clip_bytes(seconds=2.0)] * (MAX_AUX_CLIPS + 1))
    with pytest.raises(ServiceError, match="auxiliary clip 1 is silent"):
        service.add_speaker(main, "Hello.", "en", "Silent aux", None, aux_audio=[wav_bytes(np.zeros(32000, np.float32), 16000)])
    assert tree_snapshot(tmp_path / "speakers") == before


# -- REST -------------------------------------------------------------------------------------------

@pytest.fixture
def client(service) -> TestClient:
    app = FastAPI()
    add_error_handlers(app)
    app.include_router(build_router(service))
    return TestClient(app)


def test_rest_plans_a_recording_and_adds_a_voice_from_the_edited_plan(client, recording):
    audio, bounds = recording
    response = client.post("/api/recordings/plan", files={"recording": ("talk.wav", audio, "audio/wav")})
    assert response.status_code == 200, response.text
    rows = response.json()["utterances"]
    main = next(row for row in rows if row["role"] == "main")
    main["transcript"] = "Corrected words."
    response = client.post("/api/speakers", files={"recording": ("talk.wav", audio, "audio/wav")},
                           data={"name": "Rest recording", "language": "en", "utterances": json.dumps(rows)})
    assert response.status_code == 201, response.text
    added = response.json()
    assert added["transcript"] == "Corrected words." and len(added["aux_clips"]) == 3
    listed = {s["id"]: s for s in client.get("/api/speakers").json()}
    assert len(listed[added["id"]]["aux_clips"]) == 3
    automatic = client.post("/api/speakers", files={"recording": ("talk.wav", audio, "audio/wav")},
                            data={"name": "Automatic"})  # no utterances: the automatic plan, the heard language
    assert automatic.status_code == 201 and automatic.json()["language"] == "en"


def test_rest_takes_repeated_aux_audio_fields(client):
    files = [("audio", ("ref.wav", clip_bytes(seconds=4.0), "audio/wav")),
             ("aux_audio", ("a.wav", clip_bytes(330.0, 2.0), "audio/wav")),
             ("aux_audio", ("b.wav", clip_bytes(440.0, 3.0), "audio/wav"))]
    response = client.post("/api/speakers", files=files, data={"name": "Three clips", "transcript": "Hi.", "language": "en"})
    assert response.status_code == 201, response.text
    assert [clip["duration_s"] for clip in response.json()["aux_clips"]] == [2.0, 3.0]
    plain = client.post("/api/speakers", files={"audio": ("ref.wav", clip_bytes(seconds=4.0), "audio/wav")},
                        data={"name": "One clip", "transcript": "你好。"})  # the old form still works, zh by default
    assert plain.status_code == 201 and plain.json()["language"] == "zh" and plain.json()["aux_clips"] == []


def test_rest_refuses_mixed_or_malformed_requests(client, recording, tmp_path):
    audio = recording[0]
    ref = ("ref.wav", clip_bytes(seconds=4.0), "audio/wav")
    talk = ("talk.wav", audio, "audio/wav")
    cases = [
        ({"audio": ref, "recording": talk}, {}, "send either 'audio'"),
        ({}, {}, "send either 'audio'"),
        ({"recording": talk, "aux_audio": ref}, {}, "send no 'aux_audio'"),
        ({"audio": ref}, {"utterances": "[]"}, "'utterances' come with a 'recording'"),
        ({"recording": talk}, {"utterances": "{not json"}, "'utterances' must be a JSON list"),
        ({"recording": talk}, {"utterances": '[{"start_s": NaN, "end_s": 4, "role": "main"}]'}, "not a number JSON allows"),
        ({"recording": talk}, {"utterances": "[" * 20 + "]" * 20}, "nests deeper than 8 levels"),
        ({"recording": talk}, {"utterances": "[]", "transcript": "Hi."}, "either a transcript of the whole recording"),
        ({"recording": talk}, {"language": "klingon"}, "language"),
        ({"recording": ("x.wav", b"not audio", "audio/wav")}, {}, "not a readable audio file"),
    ]
    before = tree_snapshot(tmp_path / "speakers")
    for files, data, message in cases:
        response = client.post("/api/speakers", files=files, data={"name": "Refused", **data})
        assert response.status_code == 400 and message in response.json()["error"], (message, response.text)
    assert tree_snapshot(tmp_path / "speakers") == before
    plan = client.post("/api/recordings/plan", files={"recording": ("x.wav", b"", "audio/wav")})
    assert plan.status_code == 400 and plan.json()["error"] == "the audio file is empty"


def test_whisper_runs_on_the_app_device(tmp_path):
    from voice_studio.server import transcriber_device, parse_args

    service = VoiceService(ServiceConfig(speakers_dir=tmp_path / "speakers", transcriber_device="cuda:0"), None)
    assert service.transcriber.device == "cuda:0"  # nothing is loaded before the first request
    args = parse_args(["--device", "cpu", "--speakers-dir", str(tmp_path / "s")], environ={})
    assert transcriber_device(args) == "cpu"


def test_sentences_roles_and_table_edits_without_audio():
    from voice_studio.recording_plan import PlannedUtterance, split_sentences, with_main
    from voice_studio.ui.recording_panel import edited_rows

    assert split_sentences(' Hello there. "How are you?" Fine! ') == ["Hello there.", '"How are you?"', "Fine!"]
    assert split_sentences("你好。我很好！还有") == ["你好。", "我很好！", "还有"] and split_sentences("") == []
    rows = (PlannedUtterance(1, 0.0, 4.0, "a.", (), 0.9, "main"), PlannedUtterance(2, 4.5, 5.0, "b.", ("too short",), 0, "dropped"),
            *(PlannedUtterance(n, 5.0 * n, 5.0 * n + 4, f"{n}.", (), 0.1 * n, "aux") for n in (3, 4, 5, 6)))
    picked = with_main(rows, 3)
    assert [row.role for row in picked] == ["aux", "dropped", "main", "spare", "aux", "aux"]  # the best-scored others aid
    with pytest.raises(ServiceError, match="utterance 2 cannot be the main reference \\(too short\\)"):
        with_main(rows, 2)
    with pytest.raises(ServiceError, match="there is no utterance 9"):
        with_main(rows, 9)
    plan = {"path": "x.wav", "rows": [row.to_json() for row in rows]}
    table = [[1, 0.0, 4.0, " Edited. ", "", "main"], ["", None, None, "a row the visitor added", "", ""], [7, 0, 0, "?", "", ""]]
    edited = edited_rows(plan, table)
    assert [row.transcript for row in edited] == ["Edited.", "b.", "3.", "4.", "5.", "6."]
    with pytest.raises(ServiceError, match="cut the recording into utterances first"):
        edited_rows(None, table)


def test_visitors_are_checked_before_whisper_runs(tmp_path, recording, whisper):
    from dataclasses import replace

    from voice_studio.limits import Limits

    pipeline = types.SimpleNamespace(prepare_speaker=FakePrepare(), weights_key="v2Pro-0000000000000000")
    config = ServiceConfig(speakers_dir=tmp_path / "speakers", admin_token="secret",
                           limits=replace(Limits(), max_voices_per_visitor=1))
    service = VoiceService(config, load_pipeline=lambda progress: pipeline)
    service.transcriber = Transcriber(load=lambda model, device: whisper)
    with pytest.raises(ServiceError, match="a private voice needs a visitor key"):
        service.add_speaker_from_recording(recording[0], "en", "No key", session=None)
    private = service.add_speaker_from_recording(recording[0], "en", "Mine", session="visitor-1")
    assert not private.shared and private.owner_session == "visitor-1" and len(private.aux_clips) == 3
    calls = len(whisper.calls)
    with pytest.raises(ServiceError, match="you have 1 voices") as error:
        service.add_speaker_from_recording(recording[0], "en", "Second", session="visitor-1")
    assert error.value.status == 429 and len(whisper.calls) == calls  # refused before transcribing
    shared = service.add_speaker_from_recording(recording[0], "en", "Shared", session=None, token="secret")
    assert shared.shared


def test_the_plan_runs_through_the_real_transformers_pipeline(tmp_path, recording):
    """A tiny random Whisper (``tiny_whisper``: its words are noise) behind the real ASR pipeline, long-form."""
    pytest.importorskip("transformers")
    from tiny_whisper import tiny_whisper_pipeline

    audio, bounds = recording
    service = VoiceService(ServiceConfig(speakers_dir=tmp_path / "speakers"), load_pipeline=None)
    service.transcriber = Transcriber("tiny-random-whisper", load=lambda model, device: tiny_whisper_pipeline(device))
    plan = service.plan_recording_upload(audio, language="en").to_json()
    rows = plan["utterances"]
    assert (plan["transcribed_by"], plan["language"]) == ("whisper", "en") and rows
    assert [row["id"] for row in rows] == list(range(1, len(rows) + 1))
    assert all(0.0 <= row["start_s"] < row["end_s"] <= plan["duration_s"] for row in rows)
    assert [row["start_s"] for row in rows] == sorted(row["start_s"] for row in rows)
    assert all(row["role"] in ("main", "aux", "spare", "dropped") for row in rows)
    assert sum(row["role"] == "main" for row in rows) <= 1


def test_whisper_takes_at_most_max_transcriptions_uploads_at_once_and_the_rest_get_503(tmp_path, recording, whisper):
    """A visitor who sends recording after recording holds at most ``max_transcriptions`` places at
    Whisper; the next upload is refused at once (503 + Retry-After) instead of queueing, and the
    places come back when a transcription ends, failed or not."""
    import threading

    from voice_studio.limits import Limits

    entered, release = threading.Semaphore(0), threading.Event()

    def slow_whisper(*args, **kwargs):
        entered.release()
        release.wait(30)
        return whisper(*args, **kwargs)

    service = VoiceService(ServiceConfig(speakers_dir=tmp_path / "speakers", limits=Limits(max_transcriptions=1)),
                           load_pipeline=None)
    service.transcriber = Transcriber("fake/whisper", load=lambda model, device: slow_whisper)
    audio = recording[0]
    first = threading.Thread(target=service.plan_recording_upload, args=(audio,))
    first.start()
    assert entered.acquire(timeout=30)  # the first upload is at Whisper
    with pytest.raises(ServiceError) as busy:
        service.plan_recording_upload(audio)
    assert busy.value.status == 503 and busy.value.headers["Retry-After"] == "10"
    assert "speech recognizer is busy" in str(busy.value)
    with pytest.raises(ServiceError) as busy_clip:  # the Add voice tab's Transcribe shares the places
        service.transcribe_detecting(clip_bytes(seconds=4.0))
    assert busy_clip.value.status == 503
    release.set()
    first.join(30)
    assert service.plan_recording_upload(audio).to_json()["utterances"]  # the place came back
    with pytest.raises(ValueError, match="max_transcriptions"):
        Limits(max_transcriptions=0)
