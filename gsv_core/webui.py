"""The Gradio Blocks of the demo: Synthesize, Add speaker (and manage voices), Compare and Pronunciation tabs.

All labels and messages for people live here; every rule is in :class:`VoiceService`.
Named endpoints for ``gradio_client``: ``/synthesize``, ``/add_speaker``, ``/list_speakers``.
"""

from __future__ import annotations

import contextvars
import html
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import gradio as gr

from .synthesis import SynthesisOptions
from .ratings import Rating
from .preview_ui import build_preview_tab
from .service import ServiceError, VoiceService
from .text.frontend import TextFrontend
from .text.split import SPLIT_METHODS

MAX_COMPARED = 4
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


def _reporter(progress: gr.Progress, prefix: str = "") -> Callable[[float, str], None]:
    """Progress callback that may be called from any thread.

    ``gr.Progress`` finds its event through context variables, but synthesis reports from
    the batcher's worker thread; so each report runs in a copy of the handler's context.
    """
    context = contextvars.copy_context()
    return lambda fraction, message: context.run(progress, fraction, desc=prefix + message)


def status_html(service: VoiceService) -> str:
    """The status line; while models download or load, with a progress bar."""
    line = f'<p class="gsv-status">{html.escape(service.status)}</p>'
    fraction = service.loading_fraction
    if fraction is None:
        return line
    percent = round(100 * fraction)
    return line + f'<progress class="gsv-loading" value="{percent}" max="100" aria-label="model download">{percent}%</progress>'


def _session(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None) if request is not None else None


def _choices(service: VoiceService, session: str | None) -> list[tuple[str, str]]:
    return [(f"{s['name']} ({s['language']}{', yours' if s.get('own') else ''})", s["id"]) for s in service.list_speakers(session)]


def build_app(service: VoiceService, get_frontend: Callable[[], TextFrontend]) -> gr.Blocks:
    limit = service.config.max_chars

    def list_speakers(request: gr.Request = None) -> list[dict]:
        return service.list_speakers(_session(request))

    def refresh(request: gr.Request = None):
        choices = _choices(service, _session(request))
        return gr.update(choices=choices), gr.update(choices=choices), gr.update(choices=choices), status_html(service)

    def synthesize(speaker_id, text, language, top_k, top_p, temperature, speed, split_method, seed,
                   request: gr.Request = None, progress=gr.Progress()):
        if not speaker_id:
            raise gr.Error("Pick a speaker first.")
        options = SynthesisOptions(top_k=int(top_k), top_p=float(top_p), temperature=float(temperature), speed=float(speed),
                                   split_method=split_method, seed=None if seed in (None, "", -1) else int(seed))
        started = time.perf_counter()
        try:
            result = service.synthesize(text, speaker_id, language, options, _session(request),
                                        progress=_reporter(progress))
        except (ServiceError, ValueError) as error:
            raise gr.Error(str(error)) from error
        wall = time.perf_counter() - started
        line = f"{result.duration_s:.2f} s of audio in {wall:.2f} s (real-time factor {wall / max(result.duration_s, 1e-6):.2f})"
        return (result.sample_rate, result.audio), line

    def transcribe(audio_path, language):
        if not audio_path:
            raise gr.Error("Upload or record the reference first.")
        try:
            return service.transcribe(Path(audio_path), language)
        except ServiceError as error:
            raise gr.Error(str(error)) from error

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

    def compare(text, language, speaker_ids, request: gr.Request = None, progress=gr.Progress()):
        speaker_ids = list(speaker_ids or [])
        if not 2 <= len(speaker_ids) <= MAX_COMPARED:
            raise gr.Error(f"Pick two to {MAX_COMPARED} speakers to compare.")
        try:  # one batch: the voices are synthesized together
            results = service.synthesize_each(text, speaker_ids, language, SynthesisOptions(seed=0), _session(request),
                                              progress=_reporter(progress, f"{len(speaker_ids)} voices: "))
        except (ServiceError, ValueError) as error:
            raise gr.Error(str(error)) from error
        clips = [(result.sample_rate, result.audio) for result in results]
        clips += [None] * (MAX_COMPARED - len(clips))
        return (*clips, speaker_ids)

    def save_ratings(speaker_ids, text, *scores_and_notes, request: gr.Request = None):
        if service.ratings is None:
            raise gr.Error("Ratings are not stored on this server.")
        if not speaker_ids:
            raise gr.Error("Compare some voices first.")
        scores, notes = scores_and_notes[:MAX_COMPARED], scores_and_notes[MAX_COMPARED:]
        batch = f"{int(time.time() * 1000)}"
        for number, speaker_id in enumerate(speaker_ids):
            try:
                service.ratings.add(Rating(f"{batch}-{number}", speaker_id, text or "", int(scores[number]),
                                           notes[number] or "", _session(request)))
            except ValueError as error:
                raise gr.Error(str(error)) from error
        return f"Saved {len(speaker_ids)} ratings."

    def export_ratings():
        if service.ratings is None:
            raise gr.Error("Ratings are not stored on this server.")
        path = service.ratings.path.with_suffix(".csv")
        path.write_text(service.ratings.to_csv(), encoding="utf-8")
        return str(path)

    def rename_voice(speaker_id, new_name, request: gr.Request = None):
        try:
            info = service.rename_speaker(speaker_id or "", new_name or "", _session(request))
        except (ServiceError, ValueError) as error:
            raise gr.Error(str(error)) from error
        return f"Renamed to {html.escape(info.name)}.", gr.update(choices=_choices(service, _session(request)))

    def delete_voice(speaker_id, request: gr.Request = None):
        try:
            service.delete_speaker(speaker_id or "", _session(request))
        except (ServiceError, ValueError) as error:
            raise gr.Error(str(error)) from error
        return "Deleted.", gr.update(choices=_choices(service, _session(request)), value=None)

    def export_voice(speaker_id, request: gr.Request = None):
        try:
            data = service.export_speaker(speaker_id or "", _session(request))
        except (ServiceError, ValueError) as error:
            raise gr.Error(str(error)) from error
        folder = Path(tempfile.mkdtemp(prefix="voice-export-"))
        path = folder / f"{speaker_id}.zip"
        path.write_bytes(data)
        return str(path)

    with gr.Blocks(title="GPT-SoVITS Voice Studio") as app:
        gr.Markdown("# GPT-SoVITS Voice Studio")
        status = gr.HTML(status_html(service))
        gr.Timer(2.0).tick(lambda: status_html(service), None, status, show_progress="hidden")  # download progress
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
                     [audio, timing], api_name="synthesize", concurrency_limit=service.config.max_batch)
        with gr.Tab("Add speaker"):
            gr.Markdown("Upload or record 3-10 seconds of clean speech and type what is said.")
            ref_audio = gr.Audio(label="Reference speech", sources=["upload", "microphone"], type="filepath")
            with gr.Row():
                transcript = gr.Textbox(label="Transcript", scale=4)
                transcribe_button = gr.Button("Transcribe automatically", scale=1)
            ref_language = gr.Dropdown(label="Language", choices=LANGUAGES, value="zh")
            name = gr.Textbox(label="Name", max_length=80)
            consent = gr.Checkbox(label="I have the right to use this voice, and the speaker agreed to it")
            add = gr.Button("Add speaker", variant="primary")
            added = gr.Markdown()
            stored = gr.Audio(label="Stored reference", interactive=False, type="filepath")
            transcribe_button.click(on_gpu(transcribe), [ref_audio, ref_language], transcript)
            add.click(on_gpu(add_speaker), [ref_audio, transcript, ref_language, name, consent], [added, stored, speaker],
                      api_name="add_speaker")
            with gr.Accordion("Manage voices", open=False):
                managed = gr.Dropdown(label="Voice", choices=_choices(service, None), allow_custom_value=True)
                new_name = gr.Textbox(label="New name", max_length=80)
                with gr.Row():
                    rename_button = gr.Button("Rename")
                    delete_button = gr.Button("Delete", variant="stop")
                    export_button = gr.Button("Export (zip)")
                managed_message = gr.Markdown()
                exported = gr.File(label="Exported voice", interactive=False)
                rename_button.click(rename_voice, [managed, new_name], [managed_message, managed])
                delete_button.click(delete_voice, [managed], [managed_message, managed])
                export_button.click(export_voice, [managed], exported)
        with gr.Tab("Compare"):
            gr.Markdown("One text through two to four voices, side by side; rate each clip for the team.")
            compare_text = gr.Textbox(label="Text to compare", lines=2, max_length=limit)
            compare_language = gr.Dropdown(label="Language", choices=LANGUAGES, value="zh")
            compare_speakers = gr.Dropdown(label="Speakers (2-4)", choices=_choices(service, None), multiselect=True,
                                           max_choices=MAX_COMPARED, allow_custom_value=True)
            compare_go = gr.Button("Compare", variant="primary")
            clips, scores, notes = [], [], []
            with gr.Row():
                for i in range(MAX_COMPARED):
                    with gr.Column(min_width=160):
                        clips.append(gr.Audio(label=f"Clip {i + 1}", interactive=False, type="numpy"))
                        scores.append(gr.Slider(1, 5, value=3, step=1, label="Rating"))
                        notes.append(gr.Textbox(label="Note", max_length=2000))
            compared = gr.State([])
            save = gr.Button("Save ratings")
            saved = gr.Markdown()
            export = gr.Button("Export ratings (CSV)")
            csv_file = gr.File(label="Ratings CSV", interactive=False)
            compare_go.click(on_gpu(compare), [compare_text, compare_language, compare_speakers], [*clips, compared],
                             api_name="compare", concurrency_limit=service.config.max_batch)
            save.click(save_ratings, [compared, compare_text, *scores, *notes], saved)
            export.click(export_ratings, None, csv_file)
        with gr.Tab("Pronunciation"):
            build_preview_tab(get_frontend)
        refresh_button.click(refresh, None, [speaker, compare_speakers, managed, status])
        listing = gr.JSON(visible=False)
        app.load(refresh, None, [speaker, compare_speakers, managed, status])
        gr.Button(visible=False).click(list_speakers, None, listing, api_name="list_speakers")
    app.queue(max_size=32, default_concurrency_limit=2)
    return app
