"""A live app on 127.0.0.1 with the tiny official-format models, for the REST, client and browser tests."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    base: str  # http://127.0.0.1:<port>
    service: object  # the app's VoiceService
    _server: object
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def start_live_server(reference_dir: Path, root: Path, *flags: str) -> LiveServer:
    """Serve the app (tiny v2 models, library and logs under ``root``) and wait until its models are loaded."""
    import uvicorn

    from voice_studio.server import build_server, parse_args

    models, port = reference_dir / "models", free_port()
    args = parse_args([
        "--t2s", str(models / "s1-tiny.ckpt"), "--sovits", str(models / "s2G-tiny-v2.pth"),
        "--hubert", str(models / "chinese-hubert-tiny"), "--bert", str(models / "chinese-roberta-tiny"),
        "--speakers-dir", str(root / "speakers"), "--data-dir", str(root / "data"), "--port", str(port), *flags,
    ], environ={})
    app, service = build_server(args)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(base + "/api/speakers", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    service.pipeline()  # wait for the models
    return LiveServer(base, service, server, thread)
