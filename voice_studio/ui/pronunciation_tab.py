"""The pronunciation preview tab: normalized text and phones of any sentence (no models needed)."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from gsv_core.text.errors import TextError
from gsv_core.text.frontend import TextFrontend
from gsv_core.text.languages import LANGUAGE_MODES
from gsv_core.text.symbols import TEXT_VERSIONS

LANGUAGE_LABELS = {"all_zh": "Chinese only (all_zh)", "zh": "Chinese + English (zh)", "en": "English (en)"}
PART_COLUMNS = ["language", "text", "normalized", "phones", "phone ids", "word2ph"]


def preview(frontend: TextFrontend, text: str, language: str, version: str) -> tuple[str, str, list[list[str]], dict]:
    """Normalized text, phones, one table row per language part, and the JSON of a text."""
    try:
        sequence = frontend.phonemize(text, language, version)
    except TextError as exc:
        raise gr.Error(str(exc)) from exc
    rows = [
        [
            part.language,
            part.text,
            part.norm_text,
            " ".join(part.phones),
            " ".join(map(str, part.phone_ids)),
            "" if part.word2ph is None else " ".join(map(str, part.word2ph)),
        ]
        for part in sequence.parts
    ]
    return sequence.norm_text, " ".join(sequence.phones), rows, sequence.as_dict()


def build_pronunciation_tab(get_frontend: Callable[[], TextFrontend]) -> None:
    """Lay out the pronunciation preview inside the current Blocks (or Tab) context."""
    gr.Markdown("Type a sentence to see how it will be pronounced: normalized text and phones.")
    with gr.Row():
        text = gr.Textbox(label="Text", value="你好，欢迎使用GPT-SoVITS。", lines=3, scale=4)
        with gr.Column(scale=1):
            language = gr.Dropdown(
                label="Language", choices=[(LANGUAGE_LABELS[mode], mode) for mode in LANGUAGE_MODES], value="zh"
            )
            version = gr.Radio(label="Version", choices=list(TEXT_VERSIONS), value="v2")
            button = gr.Button("Show pronunciation", variant="primary")
    norm_text = gr.Textbox(label="Normalized text", interactive=False)
    phones = gr.Textbox(label="Phones", interactive=False)
    parts = gr.Dataframe(label="Parts", headers=PART_COLUMNS, interactive=False, wrap=True)
    details = gr.JSON(label="Phones, ids and word2ph")

    def run(text_value: str, language_value: str, version_value: str):
        return preview(get_frontend(), text_value, language_value, version_value)

    for trigger in (button.click, text.submit):
        trigger(run, inputs=[text, language, version], outputs=[norm_text, phones, parts, details])
