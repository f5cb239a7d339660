"""The live server with the tiny official-format models: REST API and gradio_client endpoints."""

import io
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import soundfile as sf
from live_server import start_live_server


@pytest.fixture(scope="module")
def server(reference_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("live")
    live = start_live_server(reference_dir, root, "--official-data", str(reference_dir / "data"), "--max-chars", "60")
    yield live.base, live.service, reference_dir, root
    live.stop()


def _add(base, reference_dir, name, **headers):
    wav = (reference_dir / "cases" / "v2_zh" / "ref.wav").read_bytes()
    return httpx.post(base + "/api/speakers", files={"audio": ("ref.wav", wav, "audio/wav")},
                      data={"transcript": "今天天气不错，我们一起去公园散步吧。", "language": "zh", "name": name},
                      headers=headers, timeout=120)


def test_add_list_and_speak_over_rest(server):
    base, service, reference_dir, root = server
    response = _add(base, reference_dir, "Alice <b>")
    assert response.status_code == 201, response.text
    speaker_id = response.json()["id"]
    listed = httpx.get(base + "/api/speakers").json()
    assert any(s["id"] == speaker_id and s["name"] == "Alice <b>" for s in listed)
    tts = httpx.post(base + "/api/tts", json={"text": "你好，世界。", "speaker_id": speaker_id, "language": "zh",
                                               "options": {"top_k": 1, "seed": 3}}, timeout=120)
    assert tts.status_code == 200 and tts.headers["content-type"] == "audio/wav"
    audio, rate = sf.read(io.BytesIO(tts.content))
    assert rate == 32000 and len(audio) > 0.5 * rate and np.isfinite(audio).all()
    log = (root / "data" / "synthesis.jsonl").read_text().splitlines()
    assert '"outcome": "ok"' in log[-1] and speaker_id in log[-1] and "你好" not in log[-1]


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"text": "", "speaker_id": "x"}, 400, "empty"),
        ({"text": "你好" * 40, "speaker_id": "x"}, 400, "limit"),
        ({"text": "你好", "speaker_id": "nobody"}, 404, "unknown speaker"),
        ({"text": "你好", "speaker_id": "x", "options": {"top_k": 0}}, 400, "top_k"),
        ({"text": "你好", "speaker_id": "x", "options": {"volume": 3}}, 400, "unknown options"),
        ({"speaker_id": "x"}, 400, "required"),
    ],
)
def test_tts_errors_are_json(server, body, status, message):
    base = server[0]
    response = httpx.post(base + "/api/tts", json=body, timeout=60)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_tts_refuses_text_with_nothing_to_speak(server):
    base, service, reference_dir, _ = server
    speaker_id = _add(base, reference_dir, "Emoji test").json()["id"]
    response = httpx.post(base + "/api/tts", json={"text": "😀😀😀", "speaker_id": speaker_id}, timeout=60)
    assert response.status_code == 400 and "nothing to speak" in response.json()["error"]


def _wav(samples, rate, subtype="PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def _noise(seconds, rate=16000):
    return 0.1 * np.random.default_rng(0).standard_normal(int(seconds * rate)).astype(np.float32)


# (id, upload bytes, REST status, words the message must contain)
BAD_UPLOADS = [
    ("not-audio", lambda: b"definitely not audio", 400, "not a readable audio file"),
    ("corrupt-wav", lambda: b"RIFF\x00\x00\x00\x00WAVEfmt ", 400, "not a readable audio file"),
    ("empty", lambda: b"", 400, "empty"),
    ("under-3-s", lambda: _wav(_noise(2), 16000), 400, "2.00 s long; the reference must be between 3 and 10 seconds"),
    ("over-10-s", lambda: _wav(_noise(12), 16000), 400, "12.00 s long; the reference must be between 3 and 10 seconds"),
    ("silence", lambda: _wav(np.zeros(16000 * 5), 16000), 400, "silent"),
    ("over-20-MB", lambda: b"RIFF" + bytes(21 * 2**20), 413, "over 20 MB"),
    ("an-hour-in-14-MB", lambda: _wav(_noise(3600, 4000), 4000, "PCM_U8"), 400, "3600.00 s long"),
    ("an-hour-in-57-MB", lambda: _wav(_noise(3600, 8000), 8000), 413, "over 20 MB"),
]


@pytest.mark.parametrize("payload, status, message", [c[1:] for c in BAD_UPLOADS], ids=[c[0] for c in BAD_UPLOADS])
def test_bad_uploads_are_refused_over_rest_and_nothing_is_stored(server, payload, status, message):
    base = server[0]
    before = httpx.get(base + "/api/speakers").json()
    response = httpx.post(base + "/api/speakers", files={"audio": ("x.wav", payload(), "audio/wav")},
                          data={"transcript": "你好。", "language": "zh", "name": "Bad"}, timeout=120)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert httpx.get(base + "/api/speakers").json() == before


@pytest.mark.parametrize("payload, status, message", [c[1:] for c in BAD_UPLOADS], ids=[c[0] for c in BAD_UPLOADS])
def test_bad_uploads_are_explained_in_the_ui_and_nothing_is_stored(server, tmp_path, payload, status, message):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    base = server[0]
    before = httpx.get(base + "/api/speakers").json()
    upload = tmp_path / "upload.wav"
    upload.write_bytes(payload())
    client = Client(base + "/", verbose=False)
    with pytest.raises(AppError, match=re.escape(message)):
        client.predict(handle_file(str(upload)), "你好。", "zh", "Bad", True, api_name="/add_speaker")
    assert httpx.get(base + "/api/speakers").json() == before


@pytest.mark.parametrize(
    "text, message",
    [("", "the text is empty"), ("你好" * 40, "80 characters; the limit is 60"), ("😀😀😀", "the text has nothing to speak")],
    ids=["empty", "over-the-limit", "only-emoji"],
)
def test_bad_text_is_explained_in_the_ui(server, text, message):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    base, _, reference_dir, _ = server
    speaker_id = _add(base, reference_dir, f"Text check: {message}").json()["id"]  # display names are unique
    client = Client(base + "/", verbose=False)
    with pytest.raises(AppError, match=re.escape(message)):
        client.predict(speaker_id, text, "zh", 1, 1.0, 1.0, 1.0, "cut1", 5, api_name="/synthesize")
    with pytest.raises(AppError, match="unknown speaker id 'nobody'"):
        client.predict("nobody", "你好。", "zh", 1, 1.0, 1.0, 1.0, "cut1", 5, api_name="/synthesize")


def test_add_speaker_takes_auxiliary_clips_as_an_optional_seventh_argument(server, tmp_path):
    """Over gradio_client as over REST, and the tiny models condition on every clip (speak with the voice)."""
    from gradio_client import Client, handle_file

    base, _, reference_dir, _ = server
    upload = tmp_path / "ref.wav"
    upload.write_bytes((reference_dir / "cases" / "v2_zh" / "ref.wav").read_bytes())
    clip, rate = sf.read(upload)
    aux = []
    for number, (start, seconds) in enumerate([(0.0, 1.5), (1.0, 2.5)], 1):  # stretches of the same voice
        aux.append(tmp_path / f"aux-{number}.wav")
        sf.write(aux[-1], clip[int(start * rate):int((start + seconds) * rate)], rate)
    client = Client(base + "/", verbose=False)
    message, _ = client.predict(handle_file(str(upload)), "今天天气不错，我们一起去公园散步吧。", "zh", "With aux", True, "",
                                [handle_file(str(path)) for path in aux], api_name="/add_speaker")
    assert message.startswith("Added With aux (")
    stored = next(s for s in httpx.get(base + "/api/speakers").json() if s["name"] == "With aux")
    assert [c["duration_s"] for c in stored["aux_clips"]] == pytest.approx([1.5, 2.5], abs=0.05)
    tts = httpx.post(base + "/api/tts", json={"text": "你好。", "speaker_id": stored["id"], "language": "zh"}, timeout=120)
    assert tts.status_code == 200 and len(tts.content) > 1000


def test_html_in_a_name_is_stored_as_text_and_shown_escaped(server, tmp_path):
    from gradio_client import Client, handle_file

    base, _, reference_dir, _ = server
    name = '<img src=x onerror="alert(1)"> Eve'
    upload = tmp_path / "ref.wav"
    upload.write_bytes((reference_dir / "cases" / "v2_zh" / "ref.wav").read_bytes())
    client = Client(base + "/", verbose=False)
    message, stored = client.predict(handle_file(str(upload)), "今天天气不错，我们一起去公园散步吧。", "zh", name, True,
                                     api_name="/add_speaker")
    assert message.startswith(f"Added {name} (")  # plain text, shown in a text box: never parsed as markup
    assert str(stored).endswith(".wav")
    assert name in {s["name"] for s in httpx.get(base + "/api/speakers").json()}


def test_many_clients_at_once_lose_nothing(server):
    base, service, reference_dir, root = server
    names = [f"Client {i}" for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda n: _add(base, reference_dir, n), names))
    assert [r.status_code for r in responses] == [201] * 8
    ids = {r.json()["id"] for r in responses}
    listed = {s["id"] for s in httpx.get(base + "/api/speakers").json()}
    assert ids <= listed and len(ids) == 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: httpx.post(base + "/api/tts", json={
            "text": "你好。", "speaker_id": i, "options": {"top_k": 1, "seed": 1}}, timeout=300), sorted(ids)))
    assert [r.status_code for r in results] == [200] * 8
    log = [json.loads(line) for line in (root / "data" / "synthesis.jsonl").read_text().splitlines()]
    assert max(line.get("batch", 1) for line in log[-8:]) > 1, "concurrent requests should share batches"


def test_gradio_client_endpoints(server):
    from gradio_client import Client

    base, _, reference_dir, _ = server
    speaker_id = _add(base, reference_dir, "Gradio client").json()["id"]
    client = Client(base + "/", verbose=False)
    speakers = client.predict(api_name="/list_speakers")
    assert speaker_id in {s["id"] for s in speakers}
    audio, line = client.predict(speaker_id, "你好，世界。", "zh", 1, 1.0, 1.0, 1.0, "cut1", 5, api_name="/synthesize")
    assert "real-time factor" in line
    data, rate = sf.read(audio if isinstance(audio, str) else audio["path"])
    assert rate == 32000 and len(data) > 0


def test_compare_two_voices_and_store_ratings(server):
    from gradio_client import Client

    base, service, reference_dir, _ = server
    ids = [_add(base, reference_dir, f"Compare {i}").json()["id"] for i in range(2)]
    client = Client(base + "/", verbose=False)
    outputs = client.predict("你好，世界。", "zh", ids, api_name="/compare")
    clips = [clip for clip in outputs[:4] if clip]
    assert len(clips) == 2
    for clip in clips:
        data, rate = sf.read(clip if isinstance(clip, str) else clip["path"])
        assert rate == 32000 and len(data) > 0


def test_rename_export_delete_import_over_rest(server):
    base, _, reference_dir, _ = server
    speaker_id = _add(base, reference_dir, "Round trip").json()["id"]
    renamed = httpx.patch(f"{base}/api/speakers/{speaker_id}", json={"name": "Round trip 2"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Round trip 2"
    archive = httpx.get(f"{base}/api/speakers/{speaker_id}/export")
    assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
    assert httpx.delete(f"{base}/api/speakers/{speaker_id}").status_code == 204
    assert httpx.delete(f"{base}/api/speakers/{speaker_id}").status_code == 404
    imported = httpx.post(f"{base}/api/speakers/import", files={"archive": ("s.zip", archive.content, "application/zip")})
    assert imported.status_code == 201 and imported.json()["name"] == "Round trip 2"
    bad = httpx.post(f"{base}/api/speakers/import", files={"archive": ("s.zip", b"garbage", "application/zip")})
    assert bad.status_code == 400 and bad.json()["error"]


def test_manage_voices_from_the_ui(server):
    from gradio_client import Client

    base, _, reference_dir, _ = server
    speaker_id = _add(base, reference_dir, "UI managed").json()["id"]
    client = Client(base + "/", verbose=False)
    message = client.predict(speaker_id, "UI renamed", api_name="/rename_voice")
    assert message == "Renamed to UI renamed."
    exported = client.predict(speaker_id, api_name="/export_voice")
    assert str(exported).endswith(".zip")  # deleting from the page: test_browser.py (not a public endpoint)


PUBLIC_ENDPOINTS = {"/list_speakers", "/synthesize", "/synthesize_stream", "/add_speaker", "/compare", "/rename_voice",
                    "/export_voice"}


def test_only_documented_endpoints_are_public_and_return_plain_values(server):
    from gradio_client import Client

    base, _, reference_dir, _ = server
    client = Client(base + "/", verbose=False)
    api = client.view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == PUBLIC_ENDPOINTS and not api["unnamed_endpoints"]
    speaker_id = _add(base, reference_dir, "Plain values").json()["id"]
    for value in (client.predict(api_name="/list_speakers"), client.predict(speaker_id, "Plain 2", api_name="/rename_voice")):
        assert "__type__" not in json.dumps(value)  # no gr.update dicts


def test_synthesis_reports_progress_to_the_page(server):
    """Progress comes from the batcher's thread and must still reach the caller's event."""
    from gradio_client import Client

    base, _, reference_dir, _ = server
    speaker_id = _add(base, reference_dir, "Progress").json()["id"]
    client = Client(base + "/", verbose=False)
    job = client.submit(speaker_id, "第一句话。第二句话。第三句话。第四句话。第五句话。", "zh", 1, 1.0, 1.0, 1.0, "cut5", 5,
                        api_name="/synthesize")
    seen = set()
    while not job.done():
        for unit in job.status().progress_data or []:
            seen.add(unit.desc)
        time.sleep(0.005)
    job.result()
    steps = [desc for desc in seen if desc and "generating speech, segment" in desc]
    assert len(steps) >= 2, seen  # one report per segment, as a numbered step


def test_server_log_has_no_traceback_for_user_errors_and_no_audio_conversion_warning(server, capfd, caplog):
    import warnings

    from gradio_client import Client
    from gradio_client.exceptions import AppError

    base, _, reference_dir, _ = server
    speaker_id = _add(base, reference_dir, "Quiet log").json()["id"]
    client = Client(base + "/", verbose=False)
    capfd.readouterr()
    caplog.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(AppError, match="the text is empty"):
            client.predict(speaker_id, "", "zh", 1, 1.0, 1.0, 1.0, "cut1", 5, api_name="/synthesize")
        client.predict(speaker_id, "你好。", "zh", 1, 1.0, 1.0, 1.0, "cut1", 5, api_name="/synthesize")
    logged = capfd.readouterr()
    assert "Traceback" not in logged.out + logged.err  # a refusal is not a fault
    refusals = [r.getMessage() for r in caplog.records if r.name == "voice_studio.ui"]
    assert refusals == ["refused: the text is empty"]  # one line per refusal
    assert not [w for w in caught if "16-bit int" in str(w.message)]  # int16 audio handed to Gradio


def test_gradio_client_iterates_the_streamed_pieces(server):
    from gradio_client import Client

    base, _, reference_dir, _ = server
    speaker_id = _add(base, reference_dir, "Client stream").json()["id"]
    client = Client(base + "/", verbose=False)
    job = client.submit(speaker_id, "你好，欢迎使用语音合成。今天天气很好！", "zh", 1, 1.0, 1.0, 1.0, "cut5", 5,
                        api_name="/synthesize_stream")
    pieces = [outputs for outputs in job]
    assert len(pieces) >= 3  # several live pieces, then the whole clip
    clip, line = job.outputs()[-1][1:]
    audio, rate = sf.read(clip)
    assert rate == 32000 and len(audio) > 0.5 * rate and "real-time factor" in line
