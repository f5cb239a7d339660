"""The Gradio Blocks of the demo, one module per tab; all labels and messages for people live here.

Named endpoints for ``gradio_client``: ``/synthesize``, ``/add_speaker``, ``/list_speakers``,
``/compare``. Every rule is in :class:`~voice_studio.service.VoiceService`.
"""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from gsv_core.text.frontend import TextFrontend

from ..service import VoiceService
from .common import session_of, speaker_choices, status_html
from .compare_tab import build_compare_tab
from .pronunciation_tab import build_pronunciation_tab
from .speakers_tab import access_notice, build_speakers_tab
from .synthesize_tab import build_synthesize_tab

__all__ = ["build_app"]


def build_app(service: VoiceService, get_frontend: Callable[[], TextFrontend]) -> gr.Blocks:
    with gr.Blocks(title="GPT-SoVITS Voice Studio") as app:
        gr.Markdown("# GPT-SoVITS Voice Studio")
        status = gr.HTML(status_html(service))
        gr.Markdown(access_notice(service))  # team mode (everything open) or private voices
        gr.Timer(2.0).tick(lambda: status_html(service), None, status, show_progress="hidden")  # download progress
        with gr.Tab("Synthesize"):
            speaker, refresh_button = build_synthesize_tab(service)
        with gr.Tab("Add speaker"):
            managed = build_speakers_tab(service, speaker)
        with gr.Tab("Compare"):
            compare_speakers = build_compare_tab(service)
        with gr.Tab("Pronunciation"):
            build_pronunciation_tab(get_frontend)

        def refresh(request: gr.Request = None):
            choices = speaker_choices(service, session_of(request))
            return gr.update(choices=choices), gr.update(choices=choices), gr.update(choices=choices), status_html(service)

        def list_speakers(request: gr.Request = None) -> list[dict]:
            return service.list_speakers(session_of(request))

        refresh_button.click(refresh, None, [speaker, compare_speakers, managed, status])
        app.load(refresh, None, [speaker, compare_speakers, managed, status])
        gr.Button(visible=False).click(list_speakers, None, gr.JSON(visible=False), api_name="list_speakers")
    app.queue(max_size=32, default_concurrency_limit=2)
    return app
