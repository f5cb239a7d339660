"""`python app.py` with no flags, no network and no weights: it starts and says what is missing.

Run as a newcomer would run it (a subprocess in the project folder), with an empty
Hugging Face cache and HF_HUB_OFFLINE=1. The speaker library, the pronunciation preview
and the page keep working; synthesis is refused with a message naming the flags.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from browser_page import open_page

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def offline_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("offline")
    shutil.copytree(PROJECT_ROOT / "speakers", root / "speakers")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(root / "hf"), "PORT": str(port),
           "GSV_SPEAKERS_DIR": str(root / "speakers"), "GSV_DATA_DIR": str(root / "data")}
    for variable in ("GSV_T2S", "GSV_SOVITS", "GSV_HUBERT", "GSV_BERT", "GSV_SV"):
        env.pop(variable, None)
    log = open(root / "server.log", "w")
    process = subprocess.Popen([sys.executable, "app.py"], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if process.poll() is not None:
                pytest.fail(f"app.py exited: {(root / 'server.log').read_text()[-3000:]}")
            try:
                if httpx.get(base + "/api/speakers", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_the_library_works_and_synthesis_says_what_is_missing(offline_app):
    speakers = httpx.get(offline_app + "/api/speakers").json()
    assert len(speakers) >= 2 and all(s.get("synthetic") for s in speakers)
    for _ in range(100):  # the failed model lookup is immediate offline, but in the background
        response = httpx.post(offline_app + "/api/tts", json={"text": "你好。", "speaker_id": speakers[0]["id"]}, timeout=60)
        if response.status_code == 503:
            break
        time.sleep(0.2)
    assert response.status_code == 503
    error = response.json()["error"]
    assert "synthesis is unavailable" in error and "--t2s" in error and "s1v3.ckpt" in error


def test_the_page_says_what_is_missing_and_the_preview_works(offline_app):
    from playwright.sync_api import expect

    from gsv_core.text.frontend import TextFrontend

    expected = " ".join(TextFrontend.load().phonemize("你好，world", "zh", "v2").phones)  # what the core says
    with open_page(offline_app + "/") as page:
        expect(page.get_by_text("synthesis unavailable", exact=False)).to_be_visible(timeout=60_000)
        page.get_by_role("tab", name="Pronunciation").click()
        page.get_by_label("Text", exact=True).last.fill("你好，world")
        page.get_by_role("button", name="Show pronunciation").click()
        expect(page.get_by_label("Phones")).to_have_value(expected, timeout=60_000)
