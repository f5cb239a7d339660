"""Issue 21, the smaller holes, tried as an attacker would on a live public-mode server (admin token,
tiny models): exports that fill the temporary folders, a lone surrogate in the text, look-alike
and mark-flooded voice names, a slow-loris body, and refusals in another shape than ``{"error": ...}``."""

import io
import json
import socket
import tempfile
import time
import zipfile
from pathlib import Path

import httpx
import pytest
from live_server import start_live_server
from speaker_fakes import clip_bytes

from gsv_core.speakers import SpeakerError, SpeakerLibrary

TOKEN = "attack-admin"
TRANSCRIPT = "今天天气不错，我们一起去公园散步吧。"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def attacked(reference_dir, tmp_path_factory):
    """The app in public mode, with Python's temporary folder and Gradio's cache each moved to a folder of
    their own (set before the app is built: Gradio reads GRADIO_TEMP_DIR then), and one shared voice."""
    root = tmp_path_factory.mktemp("attacked")
    temp_dir, gradio_cache = root / "tmp", root / "gradio-cache"
    temp_dir.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_TEMP_DIR", str(gradio_cache))
        patch.setattr(tempfile, "tempdir", str(temp_dir))
        live = start_live_server(reference_dir, root, "--admin-token", TOKEN, "--official-data",
                                 str(reference_dir / "data"))
        voice = _add(live.base, reference_dir, "Shared voice", **ADMIN)
        assert voice.status_code == 201, voice.text
        yield live.base, voice.json()["id"], temp_dir, gradio_cache
        live.stop()


def _add(base, reference_dir, name, transcript=TRANSCRIPT, **headers):
    wav = (reference_dir / "cases" / "v2_zh" / "ref.wav").read_bytes()
    return httpx.post(base + "/api/speakers", files={"audio": ("ref.wav", wav, "audio/wav")},
                      data={"transcript": transcript, "language": "zh", "name": name}, headers=headers, timeout=120)


def _multipart(fields: dict[str, bytes], audio: bytes) -> bytes:
    """A form with raw field bytes (httpx would encode text fields as UTF-8) and an 'audio' file."""
    parts = [b'--attack\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (name.encode(), value)
             for name, value in fields.items()]
    parts.append(b'--attack\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n'
                 b"Content-Type: audio/wav\r\n\r\n" + audio + b"\r\n")
    return b"".join(parts) + b"--attack--\r\n"


def _page_call(base: str, api_name: str, data: list) -> httpx.Response:
    """Join Gradio's queue for one event of the page by raw HTTP, the payload written with JSON escapes
    (``"\\ud800"``) as a browser may (gradio_client writes UTF-8 and cannot send a lone surrogate)."""
    config = httpx.get(base + "/config", timeout=30).json()
    fn_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name)
    body = json.dumps({"data": data, "fn_index": fn_index, "session_hash": "attack-session", "trigger_id": None})
    return httpx.post(base + "/gradio_api/queue/join", content=body.encode("ascii"), timeout=30,
                      headers={"Content-Type": "application/json"})


def _files(*folders: Path) -> set[Path]:
    return {path for folder in folders if folder.exists() for path in folder.rglob("*") if path.is_file()}


def test_fifty_exports_leave_no_temp_files(attacked):
    """Every export used to leave a zip in a new temporary folder (and a new copy in Gradio's cache):
    50 exports, REST and page, must leave a handful of files at most."""
    from gradio_client import Client

    base, voice, temp_dir, gradio_cache = attacked
    before = _files(temp_dir, gradio_cache)
    for _ in range(50):
        response = httpx.get(f"{base}/api/speakers/{voice}/export", timeout=30)
        assert response.status_code == 200 and "speaker.json" in zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    client = Client(base + "/", verbose=False, download_files=False)
    for _ in range(50):
        exported = client.predict(voice, "", api_name="/export_voice")
    assert zipfile.ZipFile(exported["path"]).namelist()[0] == "speaker.json"  # the cached copy the page fetches
    left = _files(temp_dir, gradio_cache) - before
    assert len(left) <= 5, sorted(str(path) for path in left)


def test_fifty_ratings_exports_leave_no_temp_files(attacked):
    """The admin's ratings CSV made a new temporary folder per download, never removed."""
    from gradio_client import Client

    base, _, temp_dir, gradio_cache = attacked
    before = _files(temp_dir, gradio_cache)
    client = Client(base + "/", verbose=False, download_files=False)
    for _ in range(50):
        exported = client.predict(TOKEN, api_name="/export_ratings")
    assert Path(exported["path"]).read_text(encoding="utf-8").startswith("id,")
    left = _files(temp_dir, gradio_cache) - before
    assert len(left) <= 5, sorted(str(path) for path in left)


def test_lone_surrogate_text_is_400(attacked, reference_dir):
    """A JSON "\\ud800" is valid JSON but no text: the language detector failed on it with a 500."""
    base, voice, _, _ = attacked
    for text in ("\\ud800", "你好\\udfff世界。", "\\udc80"):
        body = f'{{"text": "{text}", "speaker_id": "{voice}", "language": "auto"}}'.encode()
        response = httpx.post(base + "/api/tts", content=body, headers={"Content-Type": "application/json"}, timeout=60)
        assert response.status_code == 400 and "not valid text" in response.json()["error"], response.text
    renamed = httpx.patch(f"{base}/api/speakers/{voice}", content=b'{"name": "A\\ud800"}', headers={
        "Content-Type": "application/json", **ADMIN}, timeout=30)
    assert renamed.status_code == 400 and "not valid text" in renamed.json()["error"]
    # multipart: the UTF-8 bytes of a surrogate are no UTF-8; whatever the form parser makes of them is refused
    for field in ("name", "transcript"):
        fields = {"name": b"Surrogate", "transcript": TRANSCRIPT.encode(), "language": b"zh", field: b"A\xed\xa0\x80"}
        added = httpx.post(base + "/api/speakers", content=_multipart(fields, clip_bytes(seconds=4.0)), headers={
            "Content-Type": "multipart/form-data; boundary=attack", **ADMIN}, timeout=60)
        assert added.status_code == 400, added.text
    # the page: gradio_client cannot send a lone surrogate (it writes UTF-8), a browser's JSON escape can
    inputs = {"synthesize": [voice, "你好\ud800世界。", "auto", 5, 1.0, 1.0, 1.0, "cut1", 5, False, None],
              "rename_voice": [voice, "A\ud800", TOKEN], "add_speaker": [None, "你\ud800", "zh", "S", True, TOKEN, None],
              "compare": ["\udfff", "zh", [voice, voice]]}
    for api_name, data in inputs.items():
        refused = _page_call(base, api_name, data)
        assert refused.status_code == 400 and "not valid text" in refused.json()["error"], (api_name, refused.text)
    assert httpx.get(base + "/api/speakers", timeout=10).status_code == 200


def test_cyrillic_lookalike_name_is_a_duplicate(attacked, reference_dir, library, tmp_path):
    """"Аlice" (Cyrillic А), "Ａｌｉｃｅ" (full width) and "ΑLICE" (Greek Α) are "Alice" to a reader."""
    for number, lookalike in enumerate(("Аlice", "Ａｌｉｃｅ", "ΑLICE", "Alіce", "Al\u200dice", "ALICE")):
        fresh = SpeakerLibrary(tmp_path / f"library-{number}")
        fresh.add(clip_bytes(), "t", "en", "Alice", prepare=None, weights_key=None)
        with pytest.raises(SpeakerError, match="a speaker named 'Alice' already exists"):
            fresh.add(clip_bytes(), "t", "en", lookalike, prepare=None, weights_key=None)
        other = fresh.add(clip_bytes(), "t", "en", "Bob", prepare=None, weights_key=None)
        with pytest.raises(SpeakerError, match="already exists"):
            fresh.rename(other.id, lookalike)
    stored = library.add(clip_bytes(), "t", "en", "Ａｌｉｃｅ", prepare=None, weights_key=None)
    assert stored.name == "Ａｌｉｃｅ"  # the display name stays as given
    assert library.add(clip_bytes(), "t", "en", "Alicé", prepare=None, weights_key=None).name == "Alicé"
    base = attacked[0]
    assert _add(base, reference_dir, "Mallory", **ADMIN).status_code == 201
    response = _add(base, reference_dir, "Маllоry", **ADMIN)  # Cyrillic М and о
    assert response.status_code == 400 and "'Mallory' already exists" in response.json()["error"]


def test_combining_mark_flood_name_refused(attacked, reference_dir, library):
    """Marks stacked on a letter ("zalgo") cover the text around a name and make names look alike."""
    for flood in ("A" + "\u0301" * 5 + "lice", "Alice" + "\u0336" * 60, "\u0300\u0301\u0302",
                  "a\u0300\u0301\u0302b\u0301\u0302\u0303"):
        with pytest.raises(SpeakerError, match="combining marks"):
            library.add(clip_bytes(), "t", "en", flood, prepare=None, weights_key=None)
    for name in ("Nguyễn Thị Ánh", "प्रिया", "مُحَمَّد", "Zoë", "e\u0301\u0302 x"):  # real names keep their marks
        assert library.add(clip_bytes(), "t", "en", name, prepare=None, weights_key=None).name
    response = _add(attacked[0], reference_dir, "Eve" + "\u0489" * 30, **ADMIN)
    assert response.status_code == 400 and "combining marks" in response.json()["error"]


@pytest.fixture(scope="module")
def slow_server(reference_dir, tmp_path_factory):
    """A server whose bodies must arrive within 2 s, and whose Gradio cache is swept every second."""
    root = tmp_path_factory.mktemp("slow")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_TEMP_DIR", str(root / "gradio-cache"))
        patch.setattr("voice_studio.ui.DOWNLOAD_CACHE", (1, 3), raising=False)  # every second: what is over 3 s
        live = start_live_server(reference_dir, root, "--admin-token", TOKEN, "--body-timeout-s", "2")
        yield live, root / "gradio-cache"
        live.stop()


def _trickle(port: int, path: str, content_type: str, body: bytes, seconds: float) -> tuple[bytes, float, bool]:
    """Send a request's headers, then ``body`` a byte every 0.3 s; (reply, seconds to it, closed by the server)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode())
        started, reply = time.monotonic(), b""
        sock.settimeout(0.3)
        for byte in body:
            if time.monotonic() - started > seconds:
                break
            try:
                sock.sendall(bytes([byte]))
                chunk = sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:  # the server closed the connection while we were sending
                chunk = b""
            if not chunk:
                return reply, time.monotonic() - started, True
            reply += chunk
        return reply, time.monotonic() - started, False


_FORM_START = b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\n'


@pytest.mark.parametrize("path, content_type, body", [
    ("/api/tts", "application/json", b'{"text": "' + b"a" * 1000 + b'"}'),
    ("/api/speakers", "multipart/form-data; boundary=b", _FORM_START + b"a" * 1000),
    ("/gradio_api/upload", "multipart/form-data; boundary=b", _FORM_START + b"a" * 1000),  # the page's upload route
], ids=["rest-json", "rest-upload", "page-upload"])
def test_slowloris_body_times_out(slow_server, path, content_type, body):
    """Headers, then a valid body a byte every 0.3 s: the connection and a handler were held for good."""
    live, _ = slow_server
    port = int(live.base.rsplit(":", 1)[1])
    reply, seconds, closed = _trickle(port, path, content_type, body, seconds=15)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert closed and 1.5 < seconds < 8, (closed, seconds)
    assert "did not arrive in time" in json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]
    started = time.monotonic()
    assert httpx.get(live.base + "/api/speakers", timeout=10).status_code == 200
    assert time.monotonic() - started < 2


def test_a_slow_but_steady_upload_still_gets_through(slow_server, reference_dir):
    """A second per 32 KB received on top of the bound: a 470 KB upload at 64 KB/s (about 7 s, past the
    2 s bound) is read to its end (and then refused for what it is: no zip)."""
    live, _ = slow_server
    wav = (reference_dir / "cases" / "v2_zh" / "ref.wav").read_bytes()
    form = (b'--attack\r\nContent-Disposition: form-data; name="archive"; filename="voice.zip"\r\n'
            b"Content-Type: application/zip\r\n\r\n" + wav + b"\r\n--attack--\r\n")

    def pieces():
        for start in range(0, len(form), 16 * 2**10):
            time.sleep(0.25)
            yield form[start:start + 16 * 2**10]

    started = time.monotonic()
    response = httpx.post(live.base + "/api/speakers/import", content=pieces(), timeout=120, headers={
        "Content-Type": "multipart/form-data; boundary=attack", "Content-Length": str(len(form)), **ADMIN})
    assert time.monotonic() - started > 5
    assert response.status_code == 400 and "not a valid zip" in response.json()["error"], response.text


def test_the_page_cache_of_exports_is_emptied_on_schedule(slow_server, reference_dir):
    """The mounted app runs Gradio's delete_cache: a cached export older than its age goes."""
    from gradio_client import Client

    live, gradio_cache = slow_server
    voice = _add(live.base, reference_dir, "Cached", **ADMIN).json()["id"]
    exported = Client(live.base + "/", verbose=False, download_files=False).predict(voice, "", api_name="/export_voice")
    assert Path(exported["path"]).is_file() and gradio_cache in Path(exported["path"]).parents
    deadline = time.monotonic() + 10
    while Path(exported["path"]).exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not Path(exported["path"]).exists()


def test_every_refusal_has_error_shape(attacked, reference_dir):
    """404 for an unknown route and 405 for a wrong method reached the Gradio app mounted at / and came
    back as {"detail": ...}, as did Starlette's own refusal of a form without a boundary."""
    base, voice, _, _ = attacked
    json_type = {"Content-Type": "application/json"}
    cases = [
        ("GET", "/api/nothing-here", {}, 404),
        ("GET", "/api", {}, 404),
        ("POST", "/api/speakers/import/zip/x", {}, 404),
        ("PUT", "/api/speakers", {}, 405),
        ("GET", "/api/tts", {}, 405),
        ("DELETE", f"/api/speakers/{voice}/export", {}, 405),
        ("POST", "/api/speakers", {"data": {"transcript": "x"}}, 422),
        ("GET", "/api/speakers?all=maybe", {}, 422),
        ("POST", "/api/speakers", {"content": b"--b\r\n", "headers": {"Content-Type": "multipart/form-data"}}, 400),
        ("POST", "/api/tts", {"content": b"[1]", "headers": json_type}, 400),
        ("POST", "/api/tts", {"content": b'{"text": "' + b"x" * 70_000 + b'"}', "headers": json_type}, 413),
        ("DELETE", f"/api/speakers/{voice}", {"headers": {"Authorization": "Bearer wrong"}}, 401),
        ("DELETE", f"/api/speakers/{voice}", {}, 403),
        ("GET", "/api/ratings.csv", {}, 403),
        ("GET", "/api/speakers/nobody/export", {}, 404),
    ]
    for method, path, request, status in cases:
        response = httpx.request(method, base + path, timeout=30, **request)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        body = response.json()
        assert isinstance(body.get("error"), str) and set(body) <= {"error", "error_id"}, (method, path, body)
        assert "Traceback" not in response.text and "/" not in body["error"].replace("/api", ""), body
    allowed = httpx.put(base + "/api/speakers", timeout=10).headers["allow"]
    assert allowed == "GET, POST"
