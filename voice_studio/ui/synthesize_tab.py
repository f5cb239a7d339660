"""The Synthesize tab: a voice (with its reference clip), a text or an example, options; the audio and a history."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass

import gradio as gr

from gsv_core.engine.requests import SynthesisOptions
from gsv_core.text.split import SPLIT_METHODS

from ..errors import ServiceError
from ..served import ServedResult
from ..service import VoiceService
from ..zerogpu import synthesis_gpu_seconds
from .common import LANGUAGES, on_gpu, session_of, similarity_text, speaker_choices
from .feedback import busy_while, int16_audio, progress_reporter, user_error
from .history import build_history, remember
from .page_events import page_cancellation
from .strings import EXAMPLES, locale_of, say, ui


@dataclass(frozen=True)
class SynthesizeTab:
    """What the app wires across tabs: the voice list, its refresh button, the language that follows it."""

    speaker: gr.Dropdown
    refresh: gr.Button
    reference: gr.Audio
    language: gr.Dropdown


def build_synthesize_tab(service: VoiceService) -> SynthesizeTab:
    """Lay out the tab inside the current Blocks context."""
    limit = service.config.max_chars

    def synthesize(speaker_id, text, language, top_k, top_p, temperature, speed, split_method, seed,
                   quality_check=None, history=None, request: gr.Request = None, progress=gr.Progress()):
        """The whole clip at once (the ``/synthesize`` API); ``quality_check`` None: the server's default."""
        locale = locale_of(request)
        options = _options(speaker_id, top_k, top_p, temperature, speed, split_method, seed, locale)
        started = time.perf_counter()
        try:
            result = service.synthesis.synthesize(text, speaker_id, language, options, session_of(request),
                                        progress=progress_reporter(progress, locale), quality_check=quality_check,
                                        cancellation=page_cancellation())
        except (ServiceError, ValueError) as error:
            raise user_error(str(error)) from error
        return _finished(service, result, started, history, speaker_id, text, request, locale)

    def synthesize_live(speaker_id, text, language, top_k, top_p, temperature, speed, split_method, seed,
                        quality_check=None, history=None, request: gr.Request = None, progress=gr.Progress()):
        """The page's path: the voice plays while it is made (chunks), the whole clip lands in Result at the end.

        With the quality check the whole clip comes at once: a take already played cannot be taken back.
        """
        if service.synthesis.quality_wanted(quality_check):
            yield gr.skip(), *synthesize(speaker_id, text, language, top_k, top_p, temperature, speed, split_method,
                                         seed, True, history, request, progress)
            return
        locale = locale_of(request)
        options = _options(speaker_id, top_k, top_p, temperature, speed, split_method, seed, locale)
        started, finished = time.perf_counter(), []
        try:
            stream = service.synthesis.synthesize_stream(text, speaker_id, language, options, session_of(request),
                                               on_result=finished.append, cancellation=page_cancellation())
        except (ServiceError, ValueError) as error:
            raise user_error(str(error)) from error
        try:  # Gradio closes this generator when the page goes away (or Stop is pressed): that cancels the synthesis
            for piece in stream:
                yield (piece.sample_rate, int16_audio(piece.audio)), gr.skip(), gr.skip(), gr.skip()
        except (ServiceError, ValueError) as error:
            raise user_error(str(error)) from error
        finally:
            stream.close()
        yield gr.skip(), *_finished(service, finished[0], started, history, speaker_id, text, request, locale)

    with gr.Row():
        with gr.Column(scale=3, min_width=240):
            speaker = gr.Dropdown(label=ui("voice"), choices=speaker_choices(service, None), value=None,
                                  allow_custom_value=True)
            refresh = gr.Button(ui("refresh"), size="sm")
        reference = gr.Audio(label=ui("reference_clip"), type="filepath", interactive=False, scale=2, min_width=240)
    text = gr.Textbox(label=ui("text"), lines=3, max_length=limit, placeholder=f"≤ {limit}")
    count = gr.Markdown(f"0 / {limit}")
    language = gr.Dropdown(label=ui("language"), choices=LANGUAGES, value="zh")
    with gr.Row():
        for locale in ("zh", "en"):
            gr.Examples(examples=[list(example) for example in EXAMPLES[locale]], inputs=[text, language],
                        example_labels=[example[0] for example in EXAMPLES[locale]], label=ui(f"examples_{locale}"),
                        api_visibility="private")
    options = _build_options(service.config.quality_check_default)
    go = gr.Button(ui("synthesize"), variant="primary")
    live_player = shutil.which("ffmpeg") is not None  # Gradio encodes live audio with ffmpeg; without it, no live player
    live = gr.Audio(label=ui("live"), streaming=True, autoplay=True, interactive=False, elem_id="gsv-live",
                    visible=live_player)
    audio = gr.Audio(label=ui("result"), type="numpy", interactive=False)
    timing = gr.Markdown()
    history = build_history()
    text.change(lambda t: f"{len(t or '')} / {limit}", text, count, show_progress="hidden", api_visibility="private")
    _wire_synthesis(go, [speaker, text, language, *options, history], live, [audio, timing, history],
                    synthesize, synthesize_live, service.config.max_batch, _gpu_seconds(service))
    return SynthesizeTab(speaker, refresh, reference, language)


def _wire_synthesis(go: gr.Button, inputs: list, live: gr.Audio, outputs: list, synthesize, synthesize_live,
                    concurrency: int, gpu_seconds) -> None:
    """The button plays the voice live (``/synthesize_stream``) when a live player can be encoded;
    ``/synthesize`` gives the whole clip at once either way."""
    if not live.visible:
        busy_while(go, on_gpu(synthesize, gpu_seconds), inputs, outputs, api_name="synthesize",
                   concurrency_limit=concurrency)
        return
    busy_while(go, on_gpu(synthesize_live, gpu_seconds), inputs, [live, *outputs],
               api_name="synthesize_stream", concurrency_limit=concurrency)
    gr.Button(visible=False).click(on_gpu(synthesize, gpu_seconds), inputs, outputs, api_name="synthesize",
                                   concurrency_limit=concurrency)


def _gpu_seconds(service: VoiceService):
    """ZeroGPU ``duration`` of a click: from the text (input 1), every take counted when the
    quality check (input 9) is on."""
    def duration(*inputs, **_) -> int:
        checked = service.synthesis.quality_wanted(inputs[9] if len(inputs) > 9 else None)
        return synthesis_gpu_seconds(inputs[1] if len(inputs) > 1 else "",
                                     checked_takes=service.limits.quality_max_tries if checked else 0)
    return duration


def _options(speaker_id, top_k, top_p, temperature, speed, split_method, seed, locale: str) -> SynthesisOptions:
    if not speaker_id:
        raise user_error(say("msg_pick_voice", locale))
    return SynthesisOptions(top_k=int(top_k), top_p=float(top_p), temperature=float(temperature), speed=float(speed),
                            split_method=split_method, seed=None if seed in (None, "", -1) else int(seed))


def _finished(service: VoiceService, result: ServedResult, started: float, history, speaker_id, text, request,
              locale: str):
    """The whole clip for Result, the report line and the history, once synthesis has ended."""
    clip = (result.sample_rate, int16_audio(result.audio))
    line = report_line(result, time.perf_counter() - started, locale)
    return clip, line, remember(history, clip, _voice_name(service, speaker_id, request), text)


def report_line(result: ServedResult, wall: float, locale: str) -> str:
    """The line under the audio: timing, speaker similarity, the seed to replay it, and the quality check's finding."""
    duration = result.duration_s
    parts = [say("msg_timing", locale, audio=duration, wall=wall, rtf=wall / max(duration, 1e-6)),
             similarity_text(result.similarity, locale), say("msg_seed", locale, seed=result.seed)]
    report = result.quality
    if report is not None:
        parts.append(say("msg_quality_skipped", locale) if report.cer is None
                     else say("msg_quality", locale, cer=report.cer, tries=report.tries))
    return " · ".join(parts)


def _build_options(quality_check_default: bool) -> list[gr.components.Component]:
    """The sampling options and the quality check, folded away: the defaults are what most visitors want."""
    with gr.Accordion(ui("advanced"), open=False):
        return [
            gr.Slider(1, 100, value=15, step=1, label="top-k"),
            gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="top-p"),
            gr.Slider(0.1, 2.0, value=1.0, step=0.05, label="temperature"),
            gr.Slider(0.5, 2.0, value=1.0, step=0.05, label="speed"),
            gr.Dropdown(label=ui("split_method"), choices=list(SPLIT_METHODS), value="cut1"),
            gr.Number(label=ui("seed"), value=-1, precision=0),
            gr.Checkbox(label=ui("quality_check"), value=quality_check_default),
        ]


def _voice_name(service: VoiceService, speaker_id: str, request: gr.Request | None) -> str:
    return next((s["name"] for s in service.list_speakers(session_of(request)) if s["id"] == speaker_id), speaker_id)
