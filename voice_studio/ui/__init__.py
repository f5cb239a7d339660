"""The Gradio Blocks of the demo, one module per tab; every word for people is in :mod:`.strings`.

Public endpoints for ``gradio_client`` (documented in the README), each returning plain values:
``/list_speakers``, ``/synthesize``, ``/add_speaker``, ``/compare``, ``/rename_voice``,
``/export_voice``. Every other event is private. Every rule is in
:class:`~voice_studio.service.VoiceService`.
"""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from gsv_core.text.frontend import TextFrontend

from ..service import VoiceService
from .common import session_of, speaker_choices, status_html
from .compare_tab import build_compare_tab, ranking
from .downloads import DOWNLOAD_CACHE
from .pronunciation_tab import build_pronunciation_tab
from .speakers_tab import build_speakers_tab
from .strings import i18n, locale_of, ui
from .synthesize_tab import SynthesizeTab, build_synthesize_tab

__all__ = ["build_app"]

# Injected as a <style> element: the server mounts the app and owns launch-time css.
CSS = """
.gsv-status { margin: 0; font-size: var(--text-sm); }
.gsv-status-details { font-size: var(--text-xs); color: var(--body-text-color-subdued); }
#gsv-parts th, #gsv-parts th * { white-space: nowrap; word-break: keep-all; }
@media (max-width: 480px) {  /* four tabs fit a phone's width instead of hiding behind a menu */
  .tab-wrapper .tab-container button { padding: 0 6px; font-size: var(--text-sm); }  /* measured copy too */
  .gsv-status-note { display: none; }  /* the g2pW note: for whoever runs the server, not a phone's first screen */
}
"""


def build_app(service: VoiceService, get_frontend: Callable[[], TextFrontend]) -> gr.Blocks:
    # delete_cache bounds Gradio's cache of outputs (exports, audio); the mounted app's lifespan runs it
    with gr.Blocks(title="GPT-SoVITS Voice Studio", delete_cache=DOWNLOAD_CACHE) as app:
        gr.HTML(f"<style>{CSS}</style>", padding=False, container=False)
        gr.Markdown(ui("heading"))
        gr.Markdown(ui("intro"))
        gr.Markdown(ui("steps"))
        status = gr.HTML(status_html(service))
        with gr.Tab(ui("tab_synthesize")):
            synthesize = build_synthesize_tab(service)
        with gr.Tab(ui("tab_speakers")):
            managed, library_changes, new_voice = build_speakers_tab(service)
        with gr.Tab(ui("tab_compare")):
            compare = build_compare_tab(service)
        with gr.Tab(ui("tab_pronunciation")):
            build_pronunciation_tab(get_frontend)
        gr.Markdown(ui("language_hint"), elem_classes=["gsv-language-hint"])
        _wire_voice_lists(service, app, synthesize, compare.speakers, managed, compare.ranking, status,
                          library_changes, new_voice)

        def status_line(request: gr.Request = None) -> str:
            return status_html(service, locale_of(request))

        def list_speakers(request: gr.Request = None) -> list[dict]:
            return service.list_speakers(session_of(request))

        gr.Timer(2.0).tick(status_line, None, status, show_progress="hidden", api_visibility="private")  # downloads
        gr.Button(visible=False).click(list_speakers, None, gr.JSON(visible=False), api_name="list_speakers")
    app.i18n_instance = i18n()  # what mount_gradio_app(i18n=...) sets; the server mounts the app
    app.queue(max_size=32, default_concurrency_limit=2)
    return app


def _wire_voice_lists(service: VoiceService, app: gr.Blocks, synthesize: SynthesizeTab, compare_voices: gr.Dropdown,
                      managed: gr.Dropdown, ranking_table: gr.Dataframe, status: gr.HTML,
                      library_changes: list[gr.events.Dependency], new_voice: gr.State) -> None:
    """Every voice list follows the library, with no manual refresh: on load, after add, rename and delete.

    A voice just added is selected in Synthesize; a voice that is gone leaves every selection.
    The selected voice's reference clip plays next to the list, and the language follows it.
    """

    def refresh(added, selected, compared, managed_id, request: gr.Request = None):
        session, locale = session_of(request), locale_of(request)
        voices = service.list_speakers(session)
        ids, choices = {v["id"] for v in voices}, speaker_choices(service, session, locale)
        chosen = added if added in ids else selected if selected in ids else _default_voice(voices, locale)
        return (gr.update(choices=choices, value=chosen),
                gr.update(choices=choices, value=[i for i in compared or [] if i in ids]),
                gr.update(choices=choices, value=managed_id if managed_id in ids else None),
                ranking(service, session, locale), status_html(service, locale), None)

    def show_voice(speaker_id, request: gr.Request = None):
        voice = next((v for v in service.list_speakers(session_of(request)) if v["id"] == speaker_id), None)
        if voice is None:
            return None, gr.update()
        return str(service.reference_path(voice["id"], session_of(request))), voice["language"]

    lists = dict(fn=refresh, inputs=[new_voice, synthesize.speaker, compare_voices, managed],
                 outputs=[synthesize.speaker, compare_voices, managed, ranking_table, status, new_voice],
                 show_progress="hidden", api_visibility="private")
    app.load(**lists)
    synthesize.refresh.click(**lists)
    for change in library_changes:
        change.success(**lists)
    synthesize.speaker.change(show_voice, synthesize.speaker, [synthesize.reference, synthesize.language],
                              show_progress="hidden", api_visibility="private")


def _default_voice(voices: list[dict], locale: str) -> str | None:
    """A first voice that speaks the visitor's language, so that voice, language and examples agree."""
    wanted = ("zh", "all_zh") if locale == "zh" else ("en",)
    return next((v["id"] for v in voices if v["language"] in wanted), voices[0]["id"] if voices else None)
