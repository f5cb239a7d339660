"""The Synthesize tab: a voice, a text, options; the audio and how long it took."""

from __future__ import annotations

import time

import gradio as gr

from gsv_core.synthesis import SynthesisOptions
from gsv_core.text.split import SPLIT_METHODS

from ..errors import ServiceError
from ..service import VoiceService
from .common import LANGUAGES, on_gpu, text_gpu_seconds, progress_reporter, session_of, speaker_choices


def build_synthesize_tab(service: VoiceService) -> tuple[gr.Dropdown, gr.Button]:
    """Lay out the tab; returns its voice dropdown and refresh button for the app's list wiring."""
    limit = service.config.max_chars

    def synthesize(speaker_id, text, language, top_k, top_p, temperature, speed, split_method, seed,
                   request: gr.Request = None, progress=gr.Progress()):
        if not speaker_id:
            raise gr.Error("Pick a speaker first.")
        options = SynthesisOptions(top_k=int(top_k), top_p=float(top_p), temperature=float(temperature), speed=float(speed),
                                   split_method=split_method, seed=None if seed in (None, "", -1) else int(seed))
        started = time.perf_counter()
        try:
            result = service.synthesize(text, speaker_id, language, options, session_of(request),
                                        progress=progress_reporter(progress))
        except (ServiceError, ValueError) as error:
            raise gr.Error(str(error)) from error
        wall = time.perf_counter() - started
        line = f"{result.duration_s:.2f} s of audio in {wall:.2f} s (real-time factor {wall / max(result.duration_s, 1e-6):.2f})"
        return (result.sample_rate, result.audio), line

    with gr.Row():
        speaker = gr.Dropdown(label="Speaker", choices=speaker_choices(service, None), scale=3, allow_custom_value=True)
        refresh = gr.Button("Refresh", scale=1)
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
    go.click(on_gpu(synthesize, text_gpu_seconds(1)), [speaker, text, language, top_k, top_p, temperature, speed, split_method, seed],
             [audio, timing], api_name="synthesize", concurrency_limit=service.config.max_batch)
    return speaker, refresh
