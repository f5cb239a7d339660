"""The Compare tab: one text through two to four voices side by side, rated by the team."""

from __future__ import annotations

import time

import gradio as gr

from gsv_core.synthesis import SynthesisOptions

from ..errors import ServiceError
from ..ratings import Rating
from ..service import VoiceService
from .common import LANGUAGES, on_gpu, text_gpu_seconds, progress_reporter, session_of, speaker_choices
from .speakers_tab import ratings_file

MAX_COMPARED = 4


def build_compare_tab(service: VoiceService) -> gr.Dropdown:
    """Lay out the tab; returns its voice dropdown for the app's list wiring."""

    def compare(text, language, speaker_ids, request: gr.Request = None, progress=gr.Progress()):
        speaker_ids = list(speaker_ids or [])
        if not 2 <= len(speaker_ids) <= MAX_COMPARED:
            raise gr.Error(f"Pick two to {MAX_COMPARED} speakers to compare.")
        try:  # one batch: the voices are synthesized together
            results = service.synthesize_each(text, speaker_ids, language, SynthesisOptions(seed=0), session_of(request),
                                              progress=progress_reporter(progress, f"{len(speaker_ids)} voices: "))
        except (ServiceError, ValueError) as error:
            raise gr.Error(str(error)) from error
        clips = [(result.sample_rate, result.audio) for result in results]
        clips += [None] * (MAX_COMPARED - len(clips))
        return (*clips, speaker_ids)

    def save_ratings(request: gr.Request, speaker_ids, text, *scores_and_notes):  # request first: Gradio injects it only there
        if service.ratings is None:
            raise gr.Error("Ratings are not stored on this server.")
        if not speaker_ids:
            raise gr.Error("Compare some voices first.")
        scores, notes = scores_and_notes[:MAX_COMPARED], scores_and_notes[MAX_COMPARED:]
        batch = f"{int(time.time() * 1000)}"
        for number, speaker_id in enumerate(speaker_ids):
            try:
                service.ratings.add(Rating(f"{batch}-{number}", speaker_id, text or "", int(scores[number]),
                                           notes[number] or "", session_of(request)))
            except ValueError as error:
                raise gr.Error(str(error)) from error
        return f"Saved {len(speaker_ids)} ratings."

    def export_ratings():
        try:
            return ratings_file(service, None)
        except ServiceError as error:  # with an admin token set: export from the Admin panel (Add speaker tab)
            raise gr.Error(f"{error}: use 'Export ratings' in the Admin panel of the Add speaker tab.") from error

    gr.Markdown("One text through two to four voices, side by side; rate each clip for the team.")
    limit = service.config.max_chars
    text = gr.Textbox(label="Text to compare", lines=2, max_length=limit)
    language = gr.Dropdown(label="Language", choices=LANGUAGES, value="zh")
    speakers = gr.Dropdown(label="Speakers (2-4)", choices=speaker_choices(service, None), multiselect=True,
                           max_choices=MAX_COMPARED, allow_custom_value=True)
    go = gr.Button("Compare", variant="primary")
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
    go.click(on_gpu(compare, text_gpu_seconds(0, 2)), [text, language, speakers], [*clips, compared], api_name="compare",
             concurrency_limit=service.config.max_batch)
    save.click(save_ratings, [compared, text, *scores, *notes], saved)
    export.click(export_ratings, None, csv_file)
    return speakers
