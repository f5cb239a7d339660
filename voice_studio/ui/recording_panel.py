"""The Add voice tab's long-recording panel: cut a recording into utterances, review them, store the voice.

The visitor uploads up to three minutes of speech and presses *Cut into utterances*; the
table shows every utterance with its times, transcript (editable), problems and role; a
dropdown picks another main reference (the auxiliaries follow: the best others), another
plays any utterance. Saving uses the tab's name, language and consent, like the short path,
and its own button beside *Add speaker*.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import gradio as gr

from ..errors import ServiceError
from ..recording_plan import PlannedUtterance, RecordingView, with_main
from ..service import VoiceService
from .common import LANGUAGE_CODES, on_gpu, session_of, uploaded_path
from .feedback import busy_while, int16_audio, user_error
from .strings import locale_of, say, ui

COLUMN_KEYS = ("col_number", "col_start", "col_end", "col_said", "col_problems", "col_role")
TRANSCRIPT_COLUMN = COLUMN_KEYS.index("col_said")


@dataclass(frozen=True)
class RecordingPanel:
    """The panel's components; :func:`wire_recording_panel` connects them once the tab's shared ones exist."""

    recording: gr.Audio
    transcript: gr.Textbox
    cut: gr.Button
    note: gr.Textbox
    table: gr.Dataframe
    main: gr.Dropdown
    play: gr.Dropdown
    player: gr.Audio
    plan: gr.State  # {"path": the planned recording, "rows": [row JSON, ...]}


def layout_recording_panel() -> RecordingPanel:
    """Lay out the panel (inside the tab's *Long recording* accordion); events come later."""
    gr.Markdown(ui("recording_intro"))
    recording = gr.Audio(label=ui("recording"), sources=["upload", "microphone"], type="filepath", elem_id="gsv-recording")
    transcript = gr.Textbox(label=ui("recording_text"), lines=2)
    cut = gr.Button(ui("cut"))
    note = gr.Textbox(show_label=False, interactive=False, container=False)
    table = gr.Dataframe(label=ui("utterances"), headers=[say(key) for key in COLUMN_KEYS], type="array",
                         datatype=["number", "number", "number", "str", "str", "str"], interactive=True,
                         static_columns=[i for i in range(len(COLUMN_KEYS)) if i != TRANSCRIPT_COLUMN],
                         wrap=True, elem_id="gsv-utterances")
    with gr.Row():
        main = gr.Dropdown(label=ui("main_reference"), choices=[], interactive=True)
        play = gr.Dropdown(label=ui("play_utterance"), choices=[], interactive=True)
    player = gr.Audio(label=ui("utterance_clip"), interactive=False, type="numpy")
    return RecordingPanel(recording, transcript, cut, note, table, main, play, player, gr.State(None))


def rows_table(rows: tuple[PlannedUtterance, ...], locale: str) -> dict:
    """The table's value: headers in ``locale``, one row per utterance."""
    data = [[row.id, row.start_s, row.end_s, row.transcript,
             ", ".join(say(f"problem_{problem}", locale) for problem in row.problems), say(f"role_{row.role}", locale)]
            for row in rows]
    return {"headers": [say(key, locale) for key in COLUMN_KEYS], "data": data}


def edited_rows(plan: dict | None, table: list | None) -> tuple[PlannedUtterance, ...]:
    """The planned rows with the transcripts as the visitor edited them in the table (matched by number)."""
    if not plan:
        raise ServiceError("cut the recording into utterances first")
    typed = {}
    for line in table or []:
        try:
            typed[int(float(line[0]))] = str(line[TRANSCRIPT_COLUMN] or "").strip()
        except (TypeError, ValueError, IndexError):
            continue  # a row the visitor added or emptied: not an utterance
    rows = [PlannedUtterance(**{**row, "problems": tuple(row["problems"])}) for row in plan["rows"]]
    return tuple(replace(row, transcript=typed.get(row.id, row.transcript)) for row in rows)


def wire_recording_panel(service: VoiceService, panel: RecordingPanel, save: gr.Button,
                         shared: list[gr.components.Component], added: list[gr.components.Component]) -> gr.events.Dependency:
    """Connect the panel and its ``save`` button. ``shared``: the tab's language, name, consent and
    admin token; ``added`` receives (message, stored reference, new voice id) as the short path's do.
    Returns the save event (it changes the library)."""
    language = shared[0]

    def cut(path, text, chosen_language, request: gr.Request = None):
        locale, recording = locale_of(request), uploaded_path(path)
        if recording is None:
            raise user_error(say("msg_recording_first", locale))
        try:  # with a typed transcript the language is the visitor's; else Whisper says which it heard
            view = service.plan_recording_upload(recording, text or None, chosen_language if text else None)
        except ServiceError as error:
            raise user_error(str(error)) from error
        heard = view.language if view.language in LANGUAGE_CODES else chosen_language
        return (*_plan_outputs(view, locale), {"path": path, "rows": [row.to_json() for row in view.utterances]}, heard)

    def play(number, plan):
        row = next((r for r in (plan or {}).get("rows", []) if r["id"] == number), None)
        if row is None:
            return None
        try:
            rate, samples = service.recording_clip(Path(plan["path"]), row["start_s"], row["end_s"])
        except ServiceError as error:
            raise user_error(str(error)) from error
        return rate, int16_audio(samples)

    def store(plan, table, main_id, chosen_language, voice_name, agreed, token_value="", request: gr.Request = None):
        locale = locale_of(request)
        if not agreed:
            raise user_error(say("msg_consent", locale))
        session = session_of(request)
        try:
            if main_id is None:
                raise ServiceError(say("msg_pick_main", locale))
            rows = with_main(edited_rows(plan, table), int(main_id))
            info = service.add_speaker_from_recording(Path(plan["path"]), chosen_language, voice_name or "", session,
                                                      token_value or None, utterances=[row.to_json() for row in rows])
            stored = str(service.reference_path(info.id, session, token_value or None))
        except (ServiceError, ValueError) as error:
            raise user_error(str(error)) from error
        message = say("msg_added_recording", locale, name=info.name, seconds=info.duration_s, aux=len(info.aux_clips))
        return message, stored, info.id

    busy_while(panel.cut, on_gpu(cut), [panel.recording, panel.transcript, language],
               [panel.table, panel.main, panel.play, panel.note, panel.plan, language], api_visibility="private")
    panel.main.input(choose_main, [panel.main, panel.table, panel.plan], [panel.table, panel.plan], api_visibility="private")
    panel.play.input(play, [panel.play, panel.plan], panel.player, api_visibility="private")
    panel.table.input(relabel, [panel.table, panel.plan, panel.main, panel.play], [panel.main, panel.play],
                      api_visibility="private", show_progress="hidden")
    return busy_while(save, on_gpu(store), [panel.plan, panel.table, panel.main, *shared], added,
                      api_visibility="private")


def choose_main(main_id, table, plan, request: gr.Request = None):
    """The table and plan with the picked main reference; the auxiliaries follow (the best others)."""
    if not plan or main_id is None:
        return gr.update(), plan
    try:
        rows = with_main(edited_rows(plan, table), int(main_id))
    except ServiceError as error:
        raise user_error(str(error)) from error
    return rows_table(rows, locale_of(request)), {**plan, "rows": [row.to_json() for row in rows]}


def relabel(table, plan, main_id, number):
    """The pickers name the utterances by their corrected words."""
    if not plan:
        return gr.update(), gr.update()
    rows = edited_rows(plan, table)
    usable = [row for row in rows if row.role != "dropped"]
    return (gr.update(choices=[_choice(row) for row in usable], value=main_id),
            gr.update(choices=[_choice(row) for row in rows], value=number))


def _plan_outputs(view: RecordingView, locale: str) -> tuple:
    """The table, the main-reference and player choices, and the message for a new plan."""
    rows, main = view.utterances, view.main
    usable = [row for row in rows if row.role != "dropped"]
    aux = sum(row.role == "aux" for row in rows)
    message = view.note or (say("msg_cut", locale, count=len(rows), main=main.id, aux=aux) if main
                            else say("msg_no_main", locale))
    return (rows_table(rows, locale), gr.update(choices=[_choice(row) for row in usable], value=main.id if main else None),
            gr.update(choices=[_choice(row) for row in rows], value=None), message)


def _choice(row: PlannedUtterance) -> tuple[str, int]:
    words = f" {row.transcript[:40]}" if row.transcript else ""
    return f"#{row.id} {row.start_s:.1f}-{row.end_s:.1f} s{words}", row.id
