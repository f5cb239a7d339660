"""Mixed good and bad /api/tts requests from many clients against a live server (tiny models).

    python benchmarks/bench_load.py [--clients 32] [--requests 96] [--reference ../shared/gsv-reference]

Starts ``app.py`` as its own process on 127.0.0.1 (so its memory is measured alone), adds
one voice, then sends ``--requests`` requests from ``--clients`` threads: two in three good,
one in three bad (bad options, a 150-digit text, an unknown voice, an over-long pause). While
they run, one client adds a voice, to show that cheap calls are not stuck behind synthesis.
Prints p50/p95 latency of the good requests, how many were served, refused (4xx) or busy
(503), and the server's RSS before and after.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
TRANSCRIPT = "今天天气不错，我们一起去公园散步吧。"


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def _serve(reference: Path, root: Path) -> tuple[subprocess.Popen, str]:
    models = reference / "models"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, str(ROOT / "app.py"), "--t2s", str(models / "s1-tiny.ckpt"),
               "--sovits", str(models / "s2G-tiny-v2.pth"), "--hubert", str(models / "chinese-hubert-tiny"),
               "--bert", str(models / "chinese-roberta-tiny"), "--official-data", str(reference / "data"),
               "--speakers-dir", str(root / "speakers"), "--data-dir", str(root / "data"), "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(base + "/api/speakers", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start")


def _add(base: str, reference: Path, name: str) -> httpx.Response:
    wav = (reference / "cases" / "v2_zh" / "ref.wav").read_bytes()
    return httpx.post(base + "/api/speakers", files={"audio": ("ref.wav", wav, "audio/wav")},
                      data={"transcript": TRANSCRIPT, "language": "zh", "name": name}, timeout=300)


def _jobs(speaker_id: str, count: int) -> list[tuple[dict, bool]]:
    good = {"text": "你好，世界。", "speaker_id": speaker_id, "options": {"top_k": 1}}
    bad = [{**good, "options": {"seed": "abc"}}, {**good, "text": "1" * 150}, {**good, "speaker_id": "nobody"},
           {**good, "options": {"fragment_interval": 3600}}, {**good, "options": {"top_k": 1.5}}]
    return [(good, True) if i % 3 else (bad[i // 3 % len(bad)], False) for i in range(count)]


def run(reference: Path, clients: int, requests: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        process, base = _serve(reference, Path(tmp))
        try:
            speaker_id = _add(base, reference, "Load").json()["id"]
            httpx.post(base + "/api/tts", json={"text": "你好。", "speaker_id": speaker_id}, timeout=300)  # warm
            rss_before = _rss_mb(process.pid)

            def send(job):
                started = time.perf_counter()
                response = httpx.post(base + "/api/tts", json=job[0], timeout=300)
                return job[1], response.status_code, time.perf_counter() - started

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=clients + 1) as pool:
                futures = [pool.submit(send, job) for job in _jobs(speaker_id, requests)]
                time.sleep(0.5)
                add_started = time.perf_counter()
                added = _add(base, reference, "During load")
                add_s = time.perf_counter() - add_started
                results = [future.result() for future in futures]
            wall = time.perf_counter() - started
            rss_after = _rss_mb(process.pid)
        finally:
            process.terminate()
            process.wait(30)
    good = sorted(seconds for is_good, code, seconds in results if is_good and code == 200)
    print(f"{clients} clients, {requests} requests in {wall:.1f} s")
    print(f"good: {len(good)} of {sum(1 for r in results if r[0])} served; "
          f"p50 {statistics.median(good):.2f} s, p95 {good[int(0.95 * (len(good) - 1))]:.2f} s")
    print(f"bad: {sum(1 for g, c, _ in results if not g and 400 <= c < 500)} of {sum(1 for r in results if not r[0])} "
          f"refused with 4xx; 503 busy: {sum(1 for _, c, _ in results if c == 503)}; "
          f"5xx other: {sum(1 for _, c, _ in results if c >= 500 and c != 503)}")
    print(f"an add during the load: {added.status_code} in {add_s:.2f} s")
    print(f"server RSS: {rss_before:.0f} MB before, {rss_after:.0f} MB after")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=96)
    parser.add_argument("--reference", type=Path, default=ROOT.parent / "shared" / "gsv-reference")
    args = parser.parse_args()
    run(args.reference, args.clients, args.requests)


if __name__ == "__main__":
    main()
