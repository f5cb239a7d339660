"""The Compare tab: one text through two to four voices side by side, rated by the team.

Ratings are tied to what made the clips: the compared text, language and seed are kept in a
``gr.State`` when the clips are made, never read back from the (editable) text box, with one
clip id per voice that the server signs for the rater (one rating per clip: saving twice is
refused). Each clip shows its voice's speaker similarity (output vs. reference), which each
saved rating records. The ranking names only voices the viewer may use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import gradio as gr

from gsv_core.engine.requests import SynthesisOptions

from ..errors import ServiceError
from ..ratings import Rating
from ..service import VoiceService
from .common import LANGUAGES, on_gpu, session_of, similarity_text, speaker_choices, text_gpu_seconds, voice_names
from .feedback import busy_while, int16_audio, progress_reporter, user_error
from .downloads import Downloads
from .page_events import page_cancellation
from .speakers_tab import ratings_file
from .strings import locale_of, say, ui

MAX_COMPARED = 4
SEED = 0  # one seed for every voice: the voices differ, not the draw


@dataclass(frozen=True)
class CompareTab:
    """What the app refreshes: the voice list and the ranking (it names voices)."""

    speakers: gr.Dropdown
    ranking: gr.Dataframe


def build_compare_tab(service: VoiceService) -> CompareTab:
    """Lay out the tab inside the current Blocks context."""

    def compare(text, language, speaker_ids, request: gr.Request = None, progress=gr.Progress()):
        locale, session, speaker_ids = locale_of(request), session_of(request), list(speaker_ids or [])
        if not 2 <= len(speaker_ids) <= MAX_COMPARED:
            raise user_error(say("msg_pick_compare", locale, count=len(speaker_ids)))
        try:  # one batch: the voices are synthesized together
            results = service.synthesis.synthesize_each(text, speaker_ids, language, SynthesisOptions(seed=SEED), session,
                                              progress=progress_reporter(progress, locale, f"{len(speaker_ids)} × "),
                                              cancellation=page_cancellation())
        except (ServiceError, ValueError) as error:
            raise user_error(str(error)) from error
        clips = [(result.sample_rate, int16_audio(result.audio)) for result in results]
        clips += [None] * (MAX_COMPARED - len(clips))
        return (*clips, {"speaker_ids": speaker_ids, "clip_ids": service.new_clip_ids(speaker_ids, text, session),
                         "text": text, "settings": {"language": language, "seed": SEED},
                         "similarities": [result.similarity for result in results]})

    def show_compared(compared, request: gr.Request = None):
        """Each clip labelled by its voice, its similarity in the label of its rating right under it
        (no block of its own: compact on a phone); the rating blocks of unused slots hidden."""
        locale, names = locale_of(request), voice_names(service, session_of(request))
        ids = (compared or {}).get("speaker_ids", [])
        similarities = (compared or {}).get("similarities", [None] * len(ids))
        unused = [gr.update()] * (MAX_COMPARED - len(ids))
        labels = [gr.update(label=names.get(i, i)) for i in ids] + unused
        ratings = [gr.update(label=f"{say('rating', locale)} · {similarity_text(value, locale)}")
                   for value in similarities] + unused
        return (*labels, *ratings, *[gr.update(visible=number < len(ids)) for number in range(MAX_COMPARED)])

    def save_ratings(request: gr.Request, compared, *scores_and_notes):  # request first: Gradio injects it only there
        """The ratings of the last Compare, once: its clip ids are refused the second time."""
        locale, session = locale_of(request), session_of(request)
        if service.ratings is None:
            raise user_error(say("msg_no_ratings", locale))
        if not compared or len(compared.get("clip_ids") or []) != len(compared["speaker_ids"]):
            raise user_error(say("msg_compare_first", locale))
        scores, notes = scores_and_notes[:MAX_COMPARED], scores_and_notes[MAX_COMPARED:]
        similarities = compared.get("similarities") or [None] * len(compared["speaker_ids"])
        ratings = [Rating(clip_id, speaker_id, compared["text"], int(scores[number]), notes[number] or "", session,
                          json.dumps({**compared["settings"], "similarity": similarities[number]}, sort_keys=True))
                   for number, (clip_id, speaker_id) in enumerate(zip(compared["clip_ids"], compared["speaker_ids"]))]
        try:
            count = service.save_ratings(ratings)
        except ServiceError as error:
            raise user_error(say("msg_rated_already", locale) if error.status == 409 else str(error)) from error
        return say("msg_saved", locale, count=count), ranking(service, session, locale)

    gr.Markdown(ui("compare_intro"))
    text = gr.Textbox(label=ui("compare_text"), lines=2, max_length=service.config.max_chars)
    with gr.Row():
        language = gr.Dropdown(label=ui("language"), choices=LANGUAGES, value="zh", min_width=240)
        speakers = gr.Dropdown(label=ui("compare_voices"), choices=speaker_choices(service, None), multiselect=True,
                               max_choices=MAX_COMPARED, allow_custom_value=True, scale=3, min_width=240)
    go = gr.Button(ui("compare"), variant="primary")
    columns, clips, scores, notes = _build_clip_columns()
    compared = gr.State(None)
    save = gr.Button(ui("save_ratings"))
    saved = gr.Markdown()
    table = gr.Dataframe(value=ranking(service, None), label=ui("ranking"), interactive=False, elem_id="gsv-ranking",
                         datatype=["str", "number", "number"])
    export = gr.Button(ui("export_ratings"), size="sm")
    csv_file = gr.File(label=ui("ratings_csv"), interactive=False, visible=False)
    made = busy_while(go, on_gpu(compare, text_gpu_seconds(0, 2)), [text, language, speakers], [*clips, compared], api_name="compare",
                      concurrency_limit=service.config.max_batch)
    made.success(show_compared, compared, [*clips, *scores, *columns], api_visibility="private",
                 show_progress="hidden")
    busy_while(save, save_ratings, [compared, *scores, *notes], [saved, table], api_name="save_ratings",
               api_visibility="undocumented")
    downloads = Downloads()  # the ratings' files, the newest few only
    export.click(lambda: _export(service, downloads), None, csv_file, api_visibility="private")
    return CompareTab(speakers, table)


def ranking(service: VoiceService, session: str | None, locale: str = "en") -> dict:
    """The ranking table: voice name (plain text), number of ratings, mean rating; headers in ``locale``.
    Only voices ``session`` may use appear (:meth:`VoiceService.voice_ranking`)."""
    rows = [[name, score.count, round(score.mean, 2)] for name, score in service.voice_ranking(session)]
    return {"headers": [say(key, locale) for key in ("col_voice", "col_count", "col_mean")], "data": rows}


def _build_clip_columns() -> tuple[list[gr.Column], list[gr.Audio], list[gr.Slider], list[gr.Textbox]]:
    """One column per compared voice (clip, rating, note), hidden until it holds a clip."""
    columns, clips, scores, notes = [], [], [], []
    with gr.Row():
        for number in range(MAX_COMPARED):
            with gr.Column(min_width=160, visible=False) as column:
                columns.append(column)
                clips.append(gr.Audio(label=f"{number + 1}", interactive=False, type="numpy",
                                      elem_classes=["gsv-compare-clip"]))
                scores.append(gr.Slider(1, 5, value=3, step=1, label=ui("rating")))
                notes.append(gr.Textbox(label=ui("note"), max_length=2000))
    return columns, clips, scores, notes


def _export(service: VoiceService, downloads: Downloads) -> dict:
    if service.ratings is None:
        raise user_error(say("msg_no_ratings"))
    try:
        return gr.update(value=ratings_file(service, None, downloads), visible=True)
    except ServiceError as error:  # with an admin token set: export from the Admin panel (Add voice tab)
        raise user_error(f"{error}: use 'Export ratings' in the Admin panel of the Add voice tab.") from error
