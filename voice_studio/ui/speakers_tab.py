"""The Add speaker tab: upload or record a reference, transcribe it, store it; manage voices; the admin panel."""

from __future__ import annotations

import html
import tempfile
from pathlib import Path

import gradio as gr

from ..errors import ServiceError
from ..service import VoiceService
from .common import LANGUAGES, on_gpu, session_of, speaker_choices

# Runs in the browser before Delete reaches the server; a cancelled delete sends no id.
CONFIRM_DELETE_JS = """(speaker, token) => confirm(`Delete the voice ${speaker}? This cannot be undone.`)
    ? [speaker, token] : ["", token]"""


def access_notice(service: VoiceService) -> str:
    """What the page says about permissions (no admin token: everything is open)."""
    if service.access.open:
        return ("**Team mode:** no admin token is set, so every visitor can add, rename and delete every voice "
                "and export the ratings.")
    days = service.limits.private_voice_ttl_s / 86400
    return (f"Voices you add are private to this browser and are deleted after {days:g} days. "
            "Shared voices are managed by the admin.")


def ratings_file(service: VoiceService, token: str | None) -> str:
    """The ratings as a CSV file for download (ServiceError without the token when one is set)."""
    path = Path(tempfile.mkdtemp(prefix="ratings-")) / "ratings.csv"
    path.write_text(service.ratings_csv(token), encoding="utf-8")
    return str(path)


def _error(error: ServiceError) -> gr.Error:
    return gr.Error(str(error))


def build_speakers_tab(service: VoiceService, synthesize_speaker: gr.Dropdown) -> gr.Dropdown:
    """Lay out the tab; a new voice is selected in ``synthesize_speaker``. Returns the managed-voice dropdown."""

    def transcribe(audio_path, language):
        if not audio_path:
            raise gr.Error("Upload or record the reference first.")
        try:
            return service.transcribe(Path(audio_path), language)
        except ServiceError as error:
            raise _error(error) from error

    def add_speaker(audio_path, transcript, language, name, consent, token="", request: gr.Request = None):
        if not consent:
            raise gr.Error("Please confirm that you have the right to use this voice.")
        if not audio_path:
            raise gr.Error("Upload or record 3-10 seconds of speech first.")
        session = session_of(request)
        try:
            info = service.add_speaker(Path(audio_path), transcript or "", language, name or "", session, token or None)
            stored = str(service.reference_path(info.id, session, token or None))
        except ServiceError as error:
            raise _error(error) from error
        message = f"Added {html.escape(info.name)} ({info.duration_s:.1f} s){'' if info.shared else ', private to you'}."
        return message, stored, gr.update(choices=speaker_choices(service, session), value=info.id)

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
    with gr.Accordion("Admin", open=False, visible=not service.access.open):
        token = gr.Textbox(label="Admin token", type="password", value="",
                           info="Needed to add shared voices and to change or delete any voice.")
        with gr.Row():
            list_all = gr.Button("List every voice")
            export_ratings = gr.Button("Export ratings (CSV)")
        every_voice = gr.JSON(label="Every voice, private ones included")
        ratings_csv = gr.File(label="Ratings CSV", interactive=False)
    transcribe_button.click(on_gpu(transcribe), [ref_audio, ref_language], transcript)
    add.click(on_gpu(add_speaker), [ref_audio, transcript, ref_language, name, consent, token],
              [added, stored, synthesize_speaker], api_name="add_speaker")
    export_ratings.click(_ratings_handler(service), [token], ratings_csv, api_name="export_ratings")
    list_all.click(_list_all_handler(service), [token], every_voice, api_name="list_every_voice")
    with gr.Accordion("Manage voices", open=False):
        return _build_manage_voices(service, token)


def _list_all_handler(service: VoiceService):
    def list_all(token, request: gr.Request = None):
        try:
            return service.list_speakers(session_of(request), token or None, everything=True)
        except ServiceError as error:
            raise _error(error) from error

    return list_all


def _ratings_handler(service: VoiceService):
    def export(token):
        try:
            return ratings_file(service, token or None)
        except ServiceError as error:
            raise _error(error) from error

    return export


def _build_manage_voices(service: VoiceService, token: gr.Textbox) -> gr.Dropdown:
    def rename_voice(speaker_id, new_name, token_value="", request: gr.Request = None):
        session = session_of(request)
        try:
            info = service.rename_speaker(speaker_id or "", new_name or "", session, token_value or None)
        except ServiceError as error:
            raise _error(error) from error
        return f"Renamed to {html.escape(info.name)}.", gr.update(choices=speaker_choices(service, session))

    def delete_voice(speaker_id, token_value="", request: gr.Request = None):
        session = session_of(request)
        if not speaker_id:  # the confirmation was cancelled, or nothing was picked
            return "Nothing deleted.", gr.update()
        try:
            service.delete_speaker(speaker_id, session, token_value or None)
        except ServiceError as error:
            raise _error(error) from error
        return "Deleted.", gr.update(choices=speaker_choices(service, session), value=None)

    def export_voice(speaker_id, token_value="", request: gr.Request = None):
        try:
            data = service.export_speaker(speaker_id or "", session_of(request), token_value or None)
        except ServiceError as error:
            raise _error(error) from error
        path = Path(tempfile.mkdtemp(prefix="voice-export-")) / f"{speaker_id}.zip"
        path.write_bytes(data)
        return str(path)

    managed = gr.Dropdown(label="Voice", choices=speaker_choices(service, None), allow_custom_value=True)
    new_name = gr.Textbox(label="New name", max_length=80)
    with gr.Row():
        rename_button = gr.Button("Rename")
        delete_button = gr.Button("Delete", variant="stop")
        export_button = gr.Button("Export (zip)")
    message = gr.Markdown()
    exported = gr.File(label="Exported voice", interactive=False)
    rename_button.click(rename_voice, [managed, new_name, token], [message, managed])
    delete_button.click(delete_voice, [managed, token], [message, managed], js=CONFIRM_DELETE_JS)
    export_button.click(export_voice, [managed, token], exported)
    return managed
