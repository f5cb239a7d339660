"""The pronunciation preview tab: normalized text and phones of any sentence (no synthesis models
needed), read by the app's own frontend: with g2pW on, its phones are g2pW's, and one line shows
what g2pW chose for each polyphonic character."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from gsv_core.text.errors import TextError
from gsv_core.text.frontend import TextFrontend
from gsv_core.text.languages import SUPPORTED_LANGUAGE_MODES
from gsv_core.text.symbols import TEXT_VERSIONS

from .feedback import DISMISS_TOASTS_JS, user_error
from .strings import ui

PART_COLUMNS = ["language", "text", "normalized", "phones", "phone ids", "word2ph"]


def preview(frontend: TextFrontend, text: str, language: str, version: str) -> tuple[str, str, list[list[str]], dict]:
    """Normalized text, phones, one table row per language part, and the JSON of a text."""
    try:
        sequence = frontend.phonemize(text, language, version)
    except TextError as exc:
        raise user_error(str(exc)) from exc
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


def polyphone_readings(frontend: TextFrontend, rows: list[list[str]], version: str) -> str:
    """What g2pW read for each polyphonic character of the Chinese parts in ``rows`` (the table
    :func:`preview` gives): "行 hang2 0.97 · ..."; empty with g2pW off, for v1 (which never uses
    it) and for text without such characters."""
    from gsv_core.text.zh.g2p import g2pw_reading

    g2pw = frontend.analyzers.g2pw
    if g2pw is None or version != "v2":
        return ""
    norm_texts = [row[PART_COLUMNS.index("normalized")] for row in rows if row[0] == "zh"]
    queries = [query for norm_text in norm_texts for query in g2pw_reading(norm_text, g2pw).queries]
    return " · ".join(f"{query.input_char} {query.pinyin} {query.prob:.2f}" for query in queries)


def build_pronunciation_tab(get_frontend: Callable[[], TextFrontend]) -> None:
    """Lay out the pronunciation preview inside the current Blocks (or Tab) context."""
    gr.Markdown(ui("pron_intro"))
    with gr.Row():
        text = gr.Textbox(label=ui("text"), value="你好，欢迎使用GPT-SoVITS。", lines=3, scale=4, min_width=240)
        with gr.Column(scale=1, min_width=200):
            language = gr.Dropdown(label=ui("language"), choices=[(ui(f"lang_{mode}"), mode) for mode in SUPPORTED_LANGUAGE_MODES],
                                   value="zh")
            version = gr.Radio(label=ui("version"), choices=list(TEXT_VERSIONS), value="v2")
            button = gr.Button(ui("show_pronunciation"), variant="primary")
    norm_text = gr.Textbox(label=ui("normalized_text"), interactive=False)
    phones = gr.Textbox(label=ui("phones"), interactive=False)
    polyphones = gr.Textbox(label=ui("g2pw_readings"), interactive=False)
    # Unwrapped: a narrow screen scrolls the table sideways instead of breaking headers letter by letter.
    parts = gr.Dataframe(label=ui("parts"), headers=PART_COLUMNS, interactive=False, wrap=False,
                         elem_id="gsv-parts")
    details = gr.JSON(label=ui("details"))

    def run(text_value: str, language_value: str, version_value: str):
        frontend = get_frontend()
        shown = preview(frontend, text_value, language_value, version_value)
        return *shown, polyphone_readings(frontend, shown[2], version_value)

    for trigger in (button.click, text.submit):
        trigger(run, inputs=[text, language, version], outputs=[norm_text, phones, parts, details, polyphones],
                js=DISMISS_TOASTS_JS, api_visibility="private")
