"""Issue 21, point 1: the page's events take only files the page uploaded.

An attacker calls the page's events directly (``/gradio_api/queue/join``, ``/gradio_api/call/...``)
with a ``FileData`` naming a server path instead of an upload: ``/dev/zero`` (Gradio hashed it
forever on the event loop, and the whole server froze), another voice's ``reference.wav`` (a
copy of that voice was added), ``/etc``, a link or ``..`` out of the upload folder. Each is
refused with the one message, before anything opens it, and the server keeps answering.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from live_server import start_live_server
from speaker_fakes import clip_bytes

from voice_studio.page_files import NOT_UPLOADED, PageFileGuard, is_uploaded_file, mount_page

TOKEN = "s3cret-admin"
TRANSCRIPT = "今天天气不错，我们一起去公园散步吧。"
ATTACKS = ("other-voice-absolute", "other-voice-relative", "etc-folder", "etc-passwd",
           "link-out-of-the-upload-folder", "dot-dot-out-of-the-upload-folder", "missing-file", "url", "dev-zero")


def _file(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


# -- the rule ---------------------------------------------------------------------------------------

@pytest.fixture
def upload_dir(tmp_path) -> Path:
    folder = tmp_path / "uploads"
    (folder / "abc").mkdir(parents=True)
    (folder / "abc" / "clip.wav").write_bytes(clip_bytes(seconds=1.0))
    return folder


def test_only_regular_files_inside_the_upload_folder_pass(upload_dir, tmp_path):
    outside = tmp_path / "speakers" / "voice" / "reference.wav"
    outside.parent.mkdir(parents=True)
    outside.write_bytes(clip_bytes(seconds=1.0))
    (upload_dir / "abc" / "link.wav").symlink_to(outside)
    (upload_dir / "abc" / "inner-link.wav").symlink_to(upload_dir / "abc" / "clip.wav")
    (upload_dir / "escape").symlink_to(outside.parent, target_is_directory=True)
    os.mkfifo(upload_dir / "abc" / "pipe.wav")
    genuine = str(upload_dir / "abc" / "clip.wav")
    assert is_uploaded_file(genuine, upload_dir)
    refused = ["/dev/zero", "/etc", "/etc/passwd", str(outside), os.path.relpath(outside), "abc/clip.wav",
               str(upload_dir), str(upload_dir / "abc"), str(upload_dir / "abc" / "missing.wav"),
               str(upload_dir / "abc" / "link.wav"), str(upload_dir / "abc" / "inner-link.wav"),
               str(upload_dir / "escape" / "reference.wav"), str(upload_dir / "abc" / "pipe.wav"),
               f"{upload_dir}/abc/../../speakers/voice/reference.wav", f"{upload_dir}/abc/../abc/clip.wav",
               "https://example.com/clip.wav", genuine + "\x00", "", None, 5, {"path": genuine}]
    assert [path for path in refused if is_uploaded_file(path, upload_dir)] == []
    assert not is_uploaded_file(genuine, upload_dir, max_bytes=100)  # over the size bound


def _guarded_echo(upload_dir: Path):
    """PageFileGuard in front of an app that records every body it gets."""
    seen = []
    app = FastAPI()

    @app.post("/{route:path}")
    async def echo(request: Request):
        seen.append(await request.body())
        return {"ok": True}

    return PageFileGuard(app, upload_dir=upload_dir), seen


def test_the_guard_refuses_a_request_naming_a_server_file_before_the_app_reads_it(upload_dir):
    from fastapi.testclient import TestClient

    guard, seen = _guarded_echo(upload_dir)
    client = TestClient(guard)
    genuine = str(upload_dir / "abc" / "clip.wav")
    for data in ([_file("/dev/zero")], [_file(genuine), "a name", [_file("/etc/passwd")]],
                 [{"value": {"path": "/etc"}}], ["text", _file(str(upload_dir))]):
        response = client.post("/gradio_api/queue/join", json={"data": data, "fn_index": 12, "session_hash": "x"})
        assert response.status_code == 400 and response.json() == {"error": NOT_UPLOADED}
    response = client.post("/gradio_api/call/add_speaker", content=b'{"data": [{"path": "/dev/zero"}]}',
                           headers={"content-type": "text/plain"})  # whatever the content type says
    assert response.status_code == 400 and seen == []
    response = client.post("/gradio_api/queue/join", content=b'{"data": [{"path": "/dev/zero"}]}',
                           headers=[("content-type", "application/json"), ("content-type", "multipart/form-data")])
    assert response.status_code == 400 and seen == []  # the parser reads the first header, not the last
    body = b'{"data": [{"path": "%s", "meta": {"_type": "gradio.FileData"}}, "x"]}' % genuine.encode()
    assert client.post("/gradio_api/queue/join", content=body).status_code == 200 and seen == [body]
    assert client.post("/api/speakers", json={"path": "/dev/zero"}).status_code == 200  # REST takes no paths
    assert client.post("/gradio_api/upload", files={"files": ("a.wav", b"RIFF")}).status_code == 200
    assert client.post("/gradio_api/queue/join", content=b"not json").status_code == 200  # Gradio refuses it itself


def test_gradio_itself_refuses_files_that_were_not_uploaded_in_the_mounted_page(tmp_path):
    """The root cause: mounted with gr.mount_gradio_app alone, Gradio never checked (has_launched stayed
    False); mount_page turns its check on, without our guard in front."""
    import gradio as gr
    from fastapi.testclient import TestClient

    outside = tmp_path / "reference.wav"
    outside.write_bytes(clip_bytes(seconds=1.0))
    received = []
    with gr.Blocks() as blocks:
        upload, out = gr.File(type="filepath"), gr.Textbox()
        gr.Button().click(lambda path: received.append(path) or "taken", upload, out, api_name="take")
    with TestClient(mount_page(FastAPI(), blocks)) as client:
        for path in (str(outside), "/etc/passwd"):
            event = client.post("/gradio_api/call/take", json={"data": [_file(path)]}).json()["event_id"]
            assert "event: error" in client.get(f"/gradio_api/call/take/{event}").text
    assert received == []


def test_handlers_refuse_paths_that_were_not_uploaded(tmp_path, monkeypatch):
    """The second guard, in the UI's handlers: however a handler is reached, it opens no server file."""
    import gradio as gr

    from voice_studio.service import ServiceConfig, VoiceService
    from voice_studio.ui import build_app

    service = VoiceService(ServiceConfig(speakers_dir=tmp_path / "speakers"), load_pipeline=None)
    for method in ("add_speaker", "transcribe_detecting", "plan_recording_upload"):
        monkeypatch.setattr(service, method, lambda *args, **kwargs: pytest.fail("a server path reached the service"))
    handlers = {block_fn.fn.__name__: block_fn.fn for block_fn in build_app(service, lambda: None).fns.values()
                if hasattr(block_fn.fn, "__name__")}
    calls = {"transcribe": lambda path: handlers["transcribe"](path, "zh"),
             "add_speaker": lambda path: handlers["add_speaker"](path, TRANSCRIPT, "zh", "Copy", True, "", None),
             "aux_clips": lambda path: handlers["add_speaker"](None, TRANSCRIPT, "zh", "Copy", True, "", [path]),
             "cut": lambda path: handlers["cut"](path, "", "zh")}
    for name, call in calls.items():
        for path in ("/dev/zero", "/etc", "/etc/passwd", "speakers/x/reference.wav", "/no/such/file.wav"):
            with pytest.raises(gr.Error) as refusal:
                call(path)
            assert refusal.value.message == NOT_UPLOADED, (name, path)


# -- against a live server --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def live(reference_dir, tmp_path_factory):
    """A public-Space setup (admin token) with one shared voice, whose reference the attacks name."""
    root = tmp_path_factory.mktemp("attack-files")
    server = start_live_server(reference_dir, root, "--official-data", str(reference_dir / "data"),
                               "--admin-token", TOKEN)
    wav = (reference_dir / "cases" / "v2_zh" / "ref.wav").read_bytes()
    added = httpx.post(server.base + "/api/speakers", files={"audio": ("ref.wav", wav, "audio/wav")},
                       data={"transcript": TRANSCRIPT, "language": "zh", "name": "Shared"},
                       headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
    assert added.status_code == 201, added.text
    config = httpx.get(server.base + "/config").json()
    events = {dep["api_name"]: dep["id"] for dep in config["dependencies"]}
    yield server, root, root / "speakers" / added.json()["id"] / "reference.wav", events, wav
    server.stop()


def _library(base: str) -> list[str]:
    return sorted(s["id"] for s in httpx.get(base + "/api/speakers", params={"all": 1},
                                             headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5).json())


def _attack_path(kind: str, reference: Path, root: Path, upload_dir: Path) -> str:
    return {"dev-zero": "/dev/zero", "other-voice-absolute": str(reference),
            "other-voice-relative": str(reference.relative_to(root)),  # the server runs in ``root``, as on a Space
            "etc-folder": "/etc", "etc-passwd": "/etc/passwd",
            "link-out-of-the-upload-folder": str(upload_dir / "link.wav"),
            "dot-dot-out-of-the-upload-folder": str(upload_dir) + "/.." * 12 + str(reference),
            "missing-file": str(upload_dir / "missing.wav"), "url": "http://127.0.0.1:9/clip.wav"}[kind]


def _event_calls(events: dict, attack: dict, genuine: dict) -> dict:
    """Every way the page's file-taking events can be given ``attack``: (route, body) by name."""
    def join(name, data):
        return "/gradio_api/queue/join", {"data": data, "fn_index": events[name], "session_hash": "attacker",
                                          "event_data": None, "trigger_id": None}
    add = [attack, TRANSCRIPT, "zh", "Copy", True, "", None]
    return {"add_speaker (call)": ("/gradio_api/call/add_speaker", {"data": add}),
            "add_speaker (queue)": join("add_speaker", add),
            "aux clips": join("add_speaker", [genuine, TRANSCRIPT, "zh", "Copy", True, "", [genuine, attack]]),
            "a text box given a file": join("add_speaker", [genuine, TRANSCRIPT, "zh", attack, True, "", None]),
            "transcribe": join("transcribe", [attack, "zh"]),
            "cut": join("cut", [attack, "", "zh"])}


def _upload(base: str, wav: bytes, client: httpx.Client | None = None) -> dict:
    response = (client or httpx).post(base + "/gradio_api/upload", files={"files": ("ref.wav", wav, "audio/wav")},
                                      timeout=30)
    assert response.status_code == 200, response.text
    return _file(response.json()[0])


@pytest.fixture
def upload_subdir():
    from gradio.utils import get_upload_folder

    folder = Path(get_upload_folder()) / f"attack-{secrets.token_hex(8)}"
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder)


@pytest.mark.parametrize("kind", ATTACKS)
def test_raw_event_calls_naming_server_files_are_refused_with_one_message(live, kind, upload_subdir, monkeypatch):
    server, root, reference, events, wav = live
    monkeypatch.chdir(root)
    (upload_subdir / "link.wav").symlink_to(reference)
    before = _library(server.base)
    attack = _file(_attack_path(kind, reference, root, upload_subdir))
    with httpx.Client(base_url=server.base, timeout=3) as client:
        for name, (route, body) in _event_calls(events, attack, _upload(server.base, wav, client)).items():
            response = client.post(route, json=body)
            assert (response.status_code, response.json()) == (400, {"error": NOT_UPLOADED}), name
    assert _library(server.base) == before  # no copy of the voice was added


def test_a_server_probed_with_dev_zero_keeps_answering_within_a_second(live):
    server, _, reference, events, wav = live
    genuine = _upload(server.base, wav)
    for name, (route, body) in _event_calls(events, _file("/dev/zero"), genuine).items():
        httpx.post(server.base + route, json=body, timeout=3)
    for _ in range(5):
        started = time.perf_counter()
        assert httpx.get(server.base + "/api/speakers", timeout=1).status_code == 200
        assert time.perf_counter() - started < 1
        time.sleep(0.2)


def test_a_genuine_upload_still_adds_a_voice(live):
    server, _, _, _, wav = live
    before = _library(server.base)
    with httpx.Client(base_url=server.base, timeout=120) as visitor:  # keeps the visitor cookie
        main, aux = _upload(server.base, wav, visitor), _upload(server.base, clip_bytes(seconds=2.0), visitor)
        event = visitor.post("/gradio_api/call/add_speaker",
                             json={"data": [main, TRANSCRIPT, "zh", "Uploaded", True, "", [aux]]})
        assert event.status_code == 200, event.text
        stream = visitor.get(f"/gradio_api/call/add_speaker/{event.json()['event_id']}").text
    assert "event: complete" in stream and "Added Uploaded" in stream, stream[-500:]
    assert len(_library(server.base)) == len(before) + 1
