"""The Gradio Blocks of the demo: Synthesize, Add speaker and Pronunciation tabs.

All labels and messages for people live here; every rule is in :class:`VoiceService`.
Named endpoints for ``gradio_client``: ``/synthesize``, ``/add_speaker``, ``/list_speakers``.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from pathlib import Path

import gradio as gr

from .pipeline import SynthesisOptions
from .preview_ui import build_preview_tab
from .service import ServiceError, VoiceService
from .text.frontend import TextFrontend
from .text.split import SPLIT_METHODS

LANGUAGES = [("Chinese + English (zh)", "zh"), ("Chinese only (all_zh)", "all_zh"), ("English (en)", "en")]


def on_gpu(handler: Callable) -> Callable:
    """Run ``handler`` on a ZeroGPU worker when the ``spaces`` package is there (Hugging Face Spaces).

    The main process never touches CUDA; elsewhere the handler is returned unchanged.
    """
    try:
        import spaces
    except ImportError:
        return handler
    return spaces.GPU(handler)


def _session(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None) if request is not None else None


def _choices(service: VoiceService, session: str | None) -> list[tuple[str, str]]:
    return [(f"{s['name']} ({s['language']}{', yours' if s.get('own') else ''})", s["id"]) for s in service.list_speakers(session)]


def build_app(service: VoiceService, get_frontend: Callable[[], TextFrontend]) -> gr.Blocks:
    limit = service.config.max_chars

    def list_speakers(request: gr.Request = None) -> list[dict]:
        return service.list_speakers(_session(request))

    def refresh(request: gr.Request = None):
        return gr.update(choices=_choices(service, _session(request))), service.status

    def synthesize(speaker_id, text, language, top_k, top_p, temperature, speed, split_method, seed,
                   request: gr.Request = None, progress=gr.Progress()):
        if not speaker_id:
            raise gr.Error("Pick a speaker first.")
        options = SynthesisOptions(top_k=int(top_k), top_p=float(top_p), temperature=float(temperature), speed=float(speed),
                                   split_method=split_method, seed=None if seed in (None, "", -1) else int(seed))
        started = time.perf_counter()
        try:
            result = service.synthesize(text, speaker_id, language, options, _session(request),
                                        progress=lambda f, m: progress(f, desc=m))
        except (ServiceError, ValueError) as error:
            raise gr.Error(str(error)) from error
        wall = time.perf_counter() - started
        line = f"{result.duration_s:.2f} s of audio in {wall:.2f} s (real-time factor {wall / max(result.duration_s, 1e-6):.2f})"
        return (result.sample_rate, result.audio), line

    def add_speaker(audio_path, transcript, language, name, consent, request: gr.Request = None):
        if not consent:
            raise gr.Error("Please confirm that you have the right to use this voice.")
        if not audio_path:
            raise gr.Error("Upload or record 3-10 seconds of speech first.")
        try:
            info = service.add_speaker(Path(audio_path), transcript or "", language, name or "", _session(request))
        except (ServiceError, ValueError) as error:
            raise gr.Error(str(error)) from error
        message = f"Added {html.escape(info.name)} ({info.duration_s:.1f} s)."
        return message, str(service.library.reference_path(info.id)), gr.update(choices=_choices(service, _session(request)), value=info.id)

    with gr.Blocks(title="GPT-SoVITS Voice Studio") as app:
        gr.Markdown("# GPT-SoVITS Voice Studio")
        status = gr.Markdown(service.status)
        with gr.Tab("Synthesize"):
            with gr.Row():
                speaker = gr.Dropdown(label="Speaker", choices=_choices(service, None), scale=3, allow_custom_value=True)
                refresh_button = gr.Button("Refresh", scale=1)
            text = gr.Textbox(label="Text", lines=4, max_length=limit, placeholder=f"Up to {limit} characters")
            count = gr.Markdown(f"0 / {limit} characters")
            language = gr.Dropdown(label="Language", choices=LANGUAGES, value="zh")
            with gr.Accordion("Advanced", open=False):
                top_k = gr.Slider(1, 100, value=15, step=1, label="top-k")
                top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="top-p")
                temperature = gr.Slider(0.1, 2.0, value=1.0, step=0.05, label="temperature")
                speed = gr.Slider(0.5, 2.0, value=1.0, step=0.05, label="speed")
                split_method = gr.Dropdown(label="Split method", choices=list(SPLIT_METHODS), value="cut1")
                seed = gr.Number(label="Seed (-1: random)", value=-1, precision=0)
            go = gr.Button("Synthesize", variant="primary")
            audio = gr.Audio(label="Result", type="numpy", interactive=False)
            timing = gr.Markdown()
            text.change(lambda t: f"{len(t or '')} / {limit} characters", text, count, show_progress="hidden")
            go.click(on_gpu(synthesize), [speaker, text, language, top_k, top_p, temperature, speed, split_method, seed],
                     [audio, timing], api_name="synthesize", concurrency_limit=2)
        with gr.Tab("Add speaker"):
            gr.Markdown("Upload or record 3-10 seconds of clean speech and type what is said.")
            ref_audio = gr.Audio(label="Reference speech", sources=["upload", "microphone"], type="filepath")
            transcript = gr.Textbox(label="Transcript")
            ref_language = gr.Dropdown(label="Language", choices=LANGUAGES, value="zh")
            name = gr.Textbox(label="Name", max_length=80)
            consent = gr.Checkbox(label="I have the right to use this voice, and the speaker agreed to it")
            add = gr.Button("Add speaker", variant="primary")
            added = gr.Markdown()
            stored = gr.Audio(label="Stored reference", interactive=False, type="filepath")
            add.click(on_gpu(add_speaker), [ref_audio, transcript, ref_language, name, consent], [added, stored, speaker],
                      api_name="add_speaker")
        with gr.Tab("Pronunciation"):
            build_preview_tab(get_frontend)
        refresh_button.click(refresh, None, [speaker, status])
        listing = gr.JSON(visible=False)
        app.load(refresh, None, [speaker, status])
        gr.Button(visible=False).click(list_speakers, None, listing, api_name="list_speakers")
    app.queue(max_size=32, default_concurrency_limit=2)
    return app
