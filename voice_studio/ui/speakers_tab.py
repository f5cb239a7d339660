"""The Add speaker tab: upload or record a reference, transcribe it, store it; manage voices."""

from __future__ import annotations

import html
import tempfile
from pathlib import Path

import gradio as gr

from ..errors import ServiceError
from ..service import VoiceService
from .common import LANGUAGES, on_gpu, session_of, speaker_choices


def build_speakers_tab(service: VoiceService, synthesize_speaker: gr.Dropdown) -> gr.Dropdown:
    """Lay out the tab; a new voice is selected in ``synthesize_speaker``. Returns the managed-voice dropdown."""

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
        session = session_of(request)
        try:
            info = service.add_speaker(Path(audio_path), transcript or "", language, name or "", session)
        except (ServiceError, ValueError) as error:
            raise gr.Error(str(error)) from error
        message = f"Added {html.escape(info.name)} ({info.duration_s:.1f} s)."
        return (message, str(service.reference_path(info.id, session)),
                gr.update(choices=speaker_choices(service, session), value=info.id))

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
    add.click(on_gpu(add_speaker), [ref_audio, transcript, ref_language, name, consent],
              [added, stored, synthesize_speaker], api_name="add_speaker")
    with gr.Accordion("Manage voices", open=False):
        return _build_manage_voices(service)


def _build_manage_voices(service: VoiceService) -> gr.Dropdown:
    def rename_voice(speaker_id, new_name, request: gr.Request = None):
        try:
            info = service.rename_speaker(speaker_id or "", new_name or "", session_of(request))
        except (ServiceError, ValueError) as error:
            raise gr.Error(str(error)) from error
        return f"Renamed to {html.escape(info.name)}.", gr.update(choices=speaker_choices(service, session_of(request)))

    def delete_voice(speaker_id, request: gr.Request = None):
        try:
            service.delete_speaker(speaker_id or "", session_of(request))
        except (ServiceError, ValueError) as error:
            raise gr.Error(str(error)) from error
        return "Deleted.", gr.update(choices=speaker_choices(service, session_of(request)), value=None)

    def export_voice(speaker_id, request: gr.Request = None):
        try:
            data = service.export_speaker(speaker_id or "", session_of(request))
        except (ServiceError, ValueError) as error:
            raise gr.Error(str(error)) from error
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
    rename_button.click(rename_voice, [managed, new_name], [message, managed])
    delete_button.click(delete_voice, [managed], [message, managed])
    export_button.click(export_voice, [managed], exported)
    return managed
