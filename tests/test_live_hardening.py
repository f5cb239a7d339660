"""Issue 11 against a live server with the tiny models: bad requests fail alone, bodies are
bounded, admission answers 503 with Retry-After, visitors' keys and the admin token work,
and a load of mixed good and bad requests from 32 clients serves every good one."""

import io
import json
import socket
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import soundfile as sf
from live_server import start_live_server

TOKEN = "s3cret-admin"
TRANSCRIPT = "今天天气不错，我们一起去公园散步吧。"


def _start(reference_dir, root, *extra):
    """The live app with the official dictionaries and room for longer texts, plus ``extra`` flags."""
    return start_live_server(reference_dir, root, "--official-data", str(reference_dir / "data"), "--max-chars", "200",
                             *extra)


@pytest.fixture(scope="module")
def guarded(reference_dir, tmp_path_factory):
    """A public-Space setup: an admin token, a small queue (2 requests at once)."""
    root = tmp_path_factory.mktemp("guarded")
    live = _start(reference_dir, root, "--admin-token", TOKEN, "--max-batch", "1", "--max-waiting", "1",
                  "--max-voices-per-visitor", "2")
    yield live.base, live.service, reference_dir, root
    live.stop()


def _add(base, reference_dir, name, client=None, **headers):
    wav = (reference_dir / "cases" / "v2_zh" / "ref.wav").read_bytes()
    return (client or httpx).post(base + "/api/speakers", files={"audio": ("ref.wav", wav, "audio/wav")},
                                  data={"transcript": TRANSCRIPT, "language": "zh", "name": name},
                                  headers=headers, timeout=120)


def _listing(base) -> list:
    return sorted(s["id"] for s in httpx.get(base + "/api/speakers", params={"all": 1},
                                             headers={"Authorization": f"Bearer {TOKEN}"}).json())


@pytest.fixture(scope="module")
def shared_voice(guarded):
    base, _, reference_dir, _ = guarded
    response = _add(base, reference_dir, "Shared voice", Authorization=f"Bearer {TOKEN}")
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture(scope="module")
def open_server(reference_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("load")
    live = _start(reference_dir, root)
    yield live.base, live.service, reference_dir, root
    live.stop()


@pytest.fixture(scope="module")
def open_voice(open_server):
    base, _, reference_dir, _ = open_server
    response = _add(base, reference_dir, "Open voice")
    assert response.status_code == 201, response.text
    return response.json()["id"]


BAD_TTS = [
    ({"options": {"top_k": 1.5}}, 400, "top_k must be a whole number"),
    ({"options": {"top_k": True}}, 400, "top_k must be a whole number"),
    ({"options": {"seed": "abc"}}, 400, "seed must be a whole number"),
    ({"options": {"seed": 1.5}}, 400, "seed must be a whole number"),
    ({"options": {"seed": 2**64}}, 400, "seed must be between 0 and 4294967295"),
    ({"options": {"fragment_interval": 3600}, "text": "一。二。三。"}, 400, "fragment_interval must be between 0 and 2"),
    ({"text": "1" * 150}, 400, "too long to read in one go"),
    ({"language": ["zh"]}, 400, "'language' must be a string"),
    ({"language": "xx"}, 400, "language"),
]


def test_bad_requests_fail_alone_and_are_logged(open_server, open_voice):
    """Bad and good requests at once on a server that batches (max 4): only the bad ones fail."""
    base, _, _, root = open_server
    shared_voice = open_voice
    before = _listing(base)
    log = root / "data" / "synthesis.jsonl"
    lines_before = len(log.read_text().splitlines()) if log.exists() else 0
    bodies = [{"text": "你好。", "speaker_id": shared_voice, **change} for change, _, _ in BAD_TTS]
    bodies.insert(3, {"text": "你好。", "speaker_id": shared_voice, "options": {"top_k": 1, "seed": 1}})
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(lambda b: httpx.post(base + "/api/tts", json=b, timeout=120), bodies))
    good = responses.pop(3)
    assert good.status_code == 200 and sf.read(io.BytesIO(good.content))[0].size > 0
    for response, (_, status, message) in zip(responses, BAD_TTS):
        assert response.status_code == status and message in response.json()["error"], response.text
        assert "Traceback" not in response.text and "/" not in response.json()["error"].replace("/api", "")
    lines = [json.loads(line) for line in log.read_text().splitlines()[lines_before:]]
    assert sorted(line["outcome"] for line in lines) == ["error"] * len(BAD_TTS) + ["ok"]
    assert _listing(base) == before


@pytest.mark.parametrize("raw, status, message", [
    (b'{"text": "hi", "speaker_id": "x", "options": {"fragment_interval": Infinity}}', 400, "Infinity"),
    (b'{"text": "hi", "speaker_id": "x", "options": {"speed": NaN}}', 400, "NaN"),
    (b"[" * 100_000 + b"]" * 100_000, 413, "over 64 KB"),
    (b'{"a":' * 5000 + b"1" + b"}" * 5000, 400, "nests deeper than 8"),
    (b'{"text": "' + b"x" * 70_000 + b'"}', 413, "over 64 KB"),
    (b"\xff\xfe not utf-8", 400, "UTF-8"),
], ids=["infinity", "nan", "huge-nesting", "deep-nesting", "over-64-KB", "not-utf8"])
def test_json_bodies_are_bounded(guarded, raw, status, message):
    base = guarded[0]
    response = httpx.post(base + "/api/tts", content=raw, headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == status and message in response.json()["error"]


def test_a_huge_upload_is_refused_by_its_length_before_it_is_read(guarded):
    base = guarded[0]
    port = int(base.rsplit(":", 1)[1])
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /api/speakers HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                     b"Content-Length: 209715200\r\n\r\n--b\r\n")  # 200 MB announced, 5 bytes sent
        reply = b""
        while b"accepts" not in reply and (chunk := sock.recv(4096)):  # the reply may come in pieces
            reply += chunk
    text = reply.decode("latin-1")
    assert text.startswith("HTTP/1.1 413") and "over 20 MB" in text and time.perf_counter() - started < 5


def test_a_chunked_body_is_cut_off_at_the_limit(guarded):
    base = guarded[0]

    def chunks():  # a well-formed multipart start, then 100 MB of file content without a length
        yield b'--b\r\nContent-Disposition: form-data; name="archive"; filename="a.zip"\r\n\r\n'
        for _ in range(100):
            yield b"x" * 2**20

    response = httpx.post(base + "/api/speakers/import", content=chunks(),
                          headers={"Content-Type": "multipart/form-data; boundary=b"}, timeout=60)
    assert response.status_code == 413 and "over 20 MB" in response.json()["error"]


def test_visitor_keys_tokens_and_the_admin(guarded, shared_voice):
    base, _, reference_dir, _ = guarded
    before = _listing(base)
    wrong = _add(base, reference_dir, "Wrong token", Authorization="Bearer guess")
    assert wrong.status_code == 401 and "admin token is wrong" in wrong.json()["error"]
    assert _listing(base) == before
    with httpx.Client() as visitor, httpx.Client() as other:
        added = _add(base, reference_dir, "Mine", client=visitor)  # no X-Session: the cookie is the key
        assert added.status_code == 201 and added.json()["own"] and not added.json()["shared"]
        private_id, key = added.json()["id"], added.headers["X-Session"]
        assert visitor.cookies["gsv_visitor"] == key
        assert private_id in {s["id"] for s in visitor.get(base + "/api/speakers").json()}
        assert private_id in {s["id"] for s in httpx.get(base + "/api/speakers", headers={"X-Session": key}).json()}
        assert private_id not in {s["id"] for s in other.get(base + "/api/speakers").json()}
        assert other.delete(f"{base}/api/speakers/{private_id}").status_code == 404
        assert visitor.delete(f"{base}/api/speakers/{shared_voice}").status_code == 403
        assert visitor.get(base + "/api/speakers", params={"all": 1}).status_code == 403
        assert visitor.get(base + "/api/ratings.csv").status_code == 403
        assert private_id in _listing(base)
        deleted = httpx.delete(f"{base}/api/speakers/{private_id}", headers={"Authorization": f"Bearer {TOKEN}"})
        assert deleted.status_code == 204 and _listing(base) == before


def test_past_the_queue_rest_gets_503_with_retry_after_and_cheap_calls_stay_fast(guarded, shared_voice):
    base = guarded[0]
    body = {"text": "第一句话。第二句话。", "speaker_id": shared_voice, "options": {"top_k": 1, "seed": 1}}
    with ThreadPoolExecutor(max_workers=10) as pool:
        futures = [pool.submit(httpx.post, base + "/api/tts", json=body, timeout=120) for _ in range(10)]
        time.sleep(0.3)
        started = time.perf_counter()
        assert httpx.get(base + "/api/speakers", timeout=30).status_code == 200
        listing_s = time.perf_counter() - started
        responses = [f.result() for f in futures]
    codes = sorted(r.status_code for r in responses)
    assert 503 in codes and 200 in codes and set(codes) == {200, 503}
    busy = [r for r in responses if r.status_code == 503]
    assert all(r.headers["Retry-After"] and "busy" in r.json()["error"] for r in busy)
    assert listing_s < 2.0


def test_unexpected_errors_are_500_with_an_error_id_in_the_log(guarded, monkeypatch, caplog):
    base, service, _, _ = guarded

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA error: an illegal memory access at /srv/x.py")

    monkeypatch.setattr(service, "list_speakers", broken)
    response = httpx.get(base + "/api/speakers")
    body = response.json()
    assert response.status_code == 500 and body["error_id"] in body["error"] and "CUDA" not in body["error"]
    assert body["error_id"] in caplog.text and "illegal memory access" in caplog.text


# -- load: 32 clients, good and bad requests mixed ----------------------------------------

def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def test_32_clients_with_good_and_bad_requests_every_good_one_is_served(open_server, open_voice):
    base, speaker_id = open_server[0], open_voice
    good = {"text": "你好，世界。", "speaker_id": speaker_id, "options": {"top_k": 1}}
    bad = [{**good, "options": {"seed": "abc"}}, {**good, "text": "1" * 150}, {**good, "speaker_id": "nobody"},
           {**good, "options": {"fragment_interval": 3600}}]
    jobs = [(good, 200) if i % 3 else (bad[i // 3 % len(bad)], None) for i in range(64)]
    rss_before = _rss_mb()

    def send(job):
        started = time.perf_counter()
        response = httpx.post(base + "/api/tts", json=job[0], timeout=120)
        return job, response.status_code, time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(send, jobs))
    wall = time.perf_counter() - started
    good_latencies = sorted(s for (job, expected), code, s in results if expected == 200)
    assert all(code == 200 for (_, expected), code, _ in results if expected == 200)
    assert all(code in (400, 404) for (_, expected), code, _ in results if expected is None)
    p50, p95 = statistics.median(good_latencies), good_latencies[int(0.95 * (len(good_latencies) - 1))]
    print(f"\nload: {len(good_latencies)} good served, {len(results) - len(good_latencies)} bad refused, "
          f"wall {wall:.1f} s, p50 {p50:.2f} s, p95 {p95:.2f} s, RSS {rss_before:.0f} -> {_rss_mb():.0f} MB")
    assert wall < 60


def test_the_page_sets_a_lasting_visitor_cookie(guarded):
    response = httpx.get(guarded[0] + "/")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("gsv_visitor=") and "HttpOnly" in cookie and f"Max-Age={7 * 86400}" in cookie
    again = httpx.get(guarded[0] + "/", cookies={"gsv_visitor": response.cookies["gsv_visitor"]})
    assert "set-cookie" not in again.headers  # the browser keeps its key across reloads
    proxied = httpx.get(guarded[0] + "/", headers={"X-Forwarded-Proto": "https"})
    assert "SameSite=None; Secure" in proxied.headers["set-cookie"]  # also inside the Spaces iframe


def test_the_admin_token_in_the_ui(guarded):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    base, _, reference_dir, _ = guarded
    upload = str(reference_dir / "cases" / "v2_zh" / "ref.wav")
    client = Client(base + "/", verbose=False)
    before = _listing(base)
    with pytest.raises(AppError, match="the admin token is wrong"):
        client.predict(handle_file(upload), TRANSCRIPT, "zh", "UI wrong", True, "guess", api_name="/add_speaker")
    assert _listing(base) == before
    message, _ = client.predict(handle_file(upload), TRANSCRIPT, "zh", "UI shared", True, TOKEN,
                                api_name="/add_speaker")
    assert "Added UI shared" in message and "private" not in message
    shared_id = next(s["id"] for s in httpx.get(base + "/api/speakers").json() if s["name"] == "UI shared")
    with pytest.raises(AppError, match="exporting ratings needs the admin token"):
        client.predict("", api_name="/export_ratings")
    assert str(client.predict(TOKEN, api_name="/export_ratings")).endswith(".csv")
    assert shared_id in {s["id"] for s in client.predict(TOKEN, api_name="/list_every_voice")}
    with pytest.raises(AppError, match="listing every voice needs the admin token"):
        client.predict("", api_name="/list_every_voice")
    with pytest.raises(AppError, match="needs the admin token"):
        client.predict(shared_id, "", api_name="/delete_voice")
    assert client.predict("", TOKEN, api_name="/delete_voice") == "Nothing deleted."  # a cancelled confirm
    assert client.predict(shared_id, TOKEN, api_name="/delete_voice") == "Deleted."
    assert _listing(base) == before


def test_ratings_remember_who_rated(open_server, open_voice):
    from gradio_client import Client

    base, service, reference_dir, _ = open_server
    other = _add(base, reference_dir, "Rated").json()["id"]
    client = Client(base + "/", verbose=False)
    client.predict("你好，世界。", "zh", [open_voice, other], api_name="/compare")
    saved, _ranking = client.predict(4, 2, 3, 3, "clear", "muffled", "", "", api_name="/save_ratings")
    assert saved == "Saved 2 ratings."
    sessions = [row[-1] for row in service.ratings.rows()[-2:]]
    assert all(sessions) and len(set(sessions)) == 1
