"""This visitor's clips in this session, newest first, each playable and downloadable.

Kept in a ``gr.State`` (per browser tab, gone on reload): nothing about a visitor is stored
on the server beyond what the synthesis log already records.
"""

from __future__ import annotations

import gradio as gr
import numpy as np

from .strings import ui

MAX_CLIPS = 8
TEXT_IN_LABEL = 40


def remember(history: list[dict] | None, clip: tuple[int, np.ndarray], voice: str, text: str) -> list[dict]:
    """``history`` with ``clip`` added (the oldest dropped past :data:`MAX_CLIPS`); labels are plain text."""
    items = list(history or [])
    number = (items[-1]["number"] + 1) if items else 1
    short = text if len(text) <= TEXT_IN_LABEL else text[: TEXT_IN_LABEL - 1] + "…"
    items.append({"number": number, "label": f"{number}. {voice}: {short}", "clip": clip})
    return items[-MAX_CLIPS:]


def build_history() -> gr.State:
    """Lay out the history list; returns the state that synthesis appends to."""
    history = gr.State([])
    with gr.Accordion(ui("history"), open=True, elem_id="gsv-history"):
        @gr.render(inputs=history)
        def show(items: list[dict]) -> None:
            if not items:
                gr.Markdown(ui("history_empty"))
            for item in reversed(items):
                gr.Audio(value=item["clip"], label=item["label"], type="numpy", interactive=False,
                         buttons=["download"], elem_classes=["gsv-history-clip"])
    return history
