"""REST latency with the tiny official-format models, and a burst of concurrent clients.

    python benchmarks/bench_api.py [--clients 8] [--reference ../shared/gsv-reference]

Starts the real server on 127.0.0.1 (a free port) with the tiny models, then measures:
GET /api/speakers, POST /api/speakers (a 7 s reference), POST /api/tts (a short sentence),
each as median of several calls; then N clients at once each add a voice and synthesize,
counting errors and voices missing from the list afterwards (both should be 0).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402


def _start(reference: Path, root: Path) -> str:
    import uvicorn

    from voice_studio.server import build_server, parse_args

    models = reference / "models"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = parse_args([
        "--t2s", str(models / "s1-tiny.ckpt"), "--sovits", str(models / "s2G-tiny-v2.pth"),
        "--hubert", str(models / "chinese-hubert-tiny"), "--bert", str(models / "chinese-roberta-tiny"),
        "--speakers-dir", str(root / "speakers"), "--data-dir", str(root / "data"), "--port", str(port),
    ], environ={})
    app, service = build_server(args)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(base + "/api/speakers", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    service.pipeline()
    return base


def _timed(call) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = call()
    return time.perf_counter() - start, response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference", type=Path, default=ROOT.parent / "shared" / "gsv-reference")
    args = parser.parse_args()
    wav = (args.reference / "cases" / "v2_zh" / "ref.wav").read_bytes()
    form = {"transcript": "今天天气不错，我们一起去公园散步吧。", "language": "zh"}

    def add(name: str) -> httpx.Response:
        return httpx.post(base + "/api/speakers", files={"audio": ("ref.wav", wav, "audio/wav")},
                          data={**form, "name": name}, timeout=300)

    def tts(speaker_id: str) -> httpx.Response:
        return httpx.post(base + "/api/tts", json={"text": "你好，欢迎使用语音合成。", "speaker_id": speaker_id,
                                                   "options": {"seed": 1}}, timeout=300)

    with tempfile.TemporaryDirectory() as scratch:
        base = _start(args.reference, Path(scratch))
        report: dict = {"clients": args.clients}
        adds = [_timed(lambda i=i: add(f"Latency {i}")) for i in range(args.repeats)]
        speaker_id = adds[0][1].json()["id"]
        lists = [_timed(lambda: httpx.get(base + "/api/speakers")) for _ in range(args.repeats)]
        speaks = [_timed(lambda: tts(speaker_id)) for _ in range(args.repeats)]
        report["median_s"] = {
            "GET /api/speakers": statistics.median(t for t, _ in lists),
            "POST /api/speakers": statistics.median(t for t, _ in adds),
            "POST /api/tts": statistics.median(t for t, _ in speaks),
        }

        def client(number: int) -> tuple[str | None, list[int]]:
            added = add(f"Burst {number}")
            new_id = added.json().get("id") if added.status_code == 201 else None
            spoken = tts(new_id) if new_id else None
            return new_id, [added.status_code] + ([spoken.status_code] if spoken is not None else [])

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            results = list(pool.map(client, range(args.clients)))
        listed = {s["id"] for s in httpx.get(base + "/api/speakers").json()}
        report["burst"] = {
            "wall_s": time.perf_counter() - start,
            "errors": sum(1 for _, codes in results for code in codes if code >= 400),
            "lost_speakers": sum(1 for new_id, _ in results if new_id is None or new_id not in listed),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
