"""REST streaming against the live server with the tiny models: a WAV with an open length,
read piece by piece with a real HTTP client while the synthesis is still running."""

import json
import time

import httpx
import numpy as np
import pytest
from live_server import start_live_server
from test_live_app import _add

TEXT = "图书馆里非常安静，大家都在认真地看书，只有翻书的声音偶尔响起。"


@pytest.fixture(scope="module")
def server(reference_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("streaming")
    live = start_live_server(reference_dir, root, "--official-data", str(reference_dir / "data"))
    yield live.base, live.service, reference_dir, root
    live.stop()


def _stream(base, speaker_id, stream, **extra):
    body = {"text": TEXT, "speaker_id": speaker_id, "language": "zh", "stream": stream,
            "options": {"top_k": 1, "seed": 4, "split_method": "cut5"}, **extra}
    arrivals, data = [], b""
    started = time.perf_counter()
    with httpx.stream("POST", base + "/api/tts", json=body, timeout=300) as response:
        status, headers = response.status_code, response.headers
        for piece in response.iter_raw():
            arrivals.append((time.perf_counter() - started, len(piece)))
            data += piece
    return status, headers, data, arrivals, time.perf_counter() - started


@pytest.mark.parametrize("mode", [True, "fragments"])
def test_the_voice_arrives_in_pieces_before_the_synthesis_ends(server, mode):
    base, service, reference_dir, root = server
    speaker_id = _add(base, reference_dir, f"Streamer {mode}").json()["id"]
    status, headers, data, arrivals, total = _stream(base, speaker_id, mode)
    assert status == 200 and headers["content-type"] == "audio/wav" and headers["x-sample-rate"] == "32000"
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt " and data[36:40] == b"data"
    assert data[40:44] == b"\xff\xff\xff\xff"  # open length: played as it arrives
    samples = np.frombuffer(data[44:], dtype=np.int16)
    assert len(samples) > 32000 and np.abs(samples).max() > 0
    assert len(arrivals) > 2  # several pieces came over the wire
    first_audio = next(t for t, _ in arrivals if t > 0 and sum(n for s, n in arrivals if s <= t) > 44)
    assert first_audio < total * 0.9, (first_audio, total)  # the first piece well before the end
    log = json.loads((root / "data" / "synthesis.jsonl").read_text().splitlines()[-1])
    assert log["outcome"] == "ok" and log["streamed"] is True


def test_a_refused_stream_is_still_a_json_error(server):
    base, *_ = server
    status, headers, data, _, _ = _stream(base, "nobody-here", True)
    assert status == 404 and json.loads(data)["error"].startswith("unknown speaker")
    status, _, data, _, _ = _stream(base, "nobody-here", "radio")
    assert status == 400 and "stream" in json.loads(data)["error"]
