"""Hosting: the Space's Python satisfies every pinned requirement, and a process started with a
Space's environment listens where a Space expects it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, metadata
from pathlib import Path

import httpx
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _front_matter() -> dict:
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match, "README.md has no front matter"
    return yaml.safe_load(match.group(1))


def _pinned(path: Path) -> list[Requirement]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def test_the_space_python_satisfies_every_pinned_requirement():
    front = _front_matter()
    assert front["sdk"] == "gradio" and front["app_file"] == "app.py"
    python = Version(str(front["python_version"]))
    checked = 0
    for requirement in _pinned(PROJECT_ROOT / "requirements.txt"):
        assert str(requirement.specifier).startswith("=="), f"{requirement} is not pinned"
        try:
            requires_python = metadata(requirement.name).get("Requires-Python")
        except PackageNotFoundError:
            pytest.fail(f"{requirement.name} is pinned but not installed")
        if requires_python:
            assert python in Requirement(f"x{requires_python}").specifier, f"{requirement.name} needs Python {requires_python}"
            checked += 1
    assert checked >= 10
    assert front["sdk_version"] == next(str(r.specifier)[2:] for r in _pinned(PROJECT_ROOT / "requirements.txt")
                                        if r.name == "gradio")


def test_the_spacefile_runs_the_same_python():
    spacefile = yaml.safe_load((PROJECT_ROOT / "Spacefile").read_text())
    micro = spacefile["micros"][0]
    python = str(_front_matter()["python_version"])
    assert any(f"python{python}" in command for command in micro["commands"])
    assert micro["run"].endswith("app.py --host 0.0.0.0")


def _listening_sockets() -> set[tuple[str, int]]:
    """(address, port) of every IPv4 TCP socket in LISTEN state, from /proc/net/tcp."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A":
            address, port = local.split(":")
            octets = [str(int(address[i:i + 2], 16)) for i in range(6, -1, -2)]
            found.add((".".join(octets), int(port, 16)))
    return found


def test_a_process_with_a_space_environment_listens_on_all_interfaces(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GSV_", "GRADIO_"))}
    env.pop("PORT", None)
    env.update({"SPACE_ID": "someone/voice-studio", "SYSTEM": "spaces", "GRADIO_SERVER_NAME": "0.0.0.0",
                "GRADIO_SERVER_PORT": str(port), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
                "GSV_SPEAKERS_DIR": str(tmp_path / "speakers"), "GSV_DATA_DIR": str(tmp_path / "data")})
    log = open(tmp_path / "server.log", "w")
    process = subprocess.Popen([sys.executable, "app.py"], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            if process.poll() is not None:
                pytest.fail(f"app.py exited: {(tmp_path / 'server.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/speakers", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert ("0.0.0.0", port) in _listening_sockets()
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
