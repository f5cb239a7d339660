"""The web UI: the Blocks build, and the pronunciation preview gives the official phones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def app_module():
    from voice_studio.ui import pronunciation_tab

    return pronunciation_tab


@pytest.fixture(scope="module")
def frontend(official_data_dir):
    from gsv_core.text.frontend import TextFrontend

    return TextFrontend.load(official_data=official_data_dir)


def test_app_builds(frontend, tmp_path):
    import gradio as gr

    from voice_studio.service import ServiceConfig, VoiceService
    from voice_studio.ui import build_app

    service = VoiceService(ServiceConfig(speakers_dir=tmp_path / "speakers"), load_pipeline=None)
    app = build_app(service, lambda: frontend)
    assert isinstance(app, gr.Blocks)
    labels = {getattr(getattr(block, "label", None), "key", None) for block in app.blocks.values()}  # gr.I18n keys
    assert {"text", "language", "version", "normalized_text", "phones", "parts"} <= labels


def test_preview_matches_official(app_module, frontend, reference_dir):
    rows = [json.loads(line) for line in (reference_dir / "text" / "frontend_public.jsonl").read_text("utf-8").splitlines()]
    row = next(r for r in rows if r["id"] == "pub-mix-002.zh.v2")
    norm_text, phones, parts, details = app_module.preview(frontend, row["text"], row["language"], row["version"])
    assert norm_text == row["norm_text"]
    assert phones.split() == row["phones"]
    assert [part[0] for part in parts] == [part["lang"] for part in row["parts"]]
    assert details == {key: row[key] for key in ("norm_text", "phones", "phone_ids", "word2ph")}


def test_preview_shows_errors(app_module, frontend):
    import gradio as gr

    with pytest.raises(gr.Error, match="unknown text version"):
        app_module.preview(frontend, "你好", "zh", "v7")
