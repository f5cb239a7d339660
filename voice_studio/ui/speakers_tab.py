"""The Add speaker tab: upload or record a reference, transcribe it, store it; manage voices."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from ..errors import ServiceError
from ..service import VoiceService
from .common import LANGUAGES, on_gpu, session_of, speaker_choices
from .feedback import busy_while, user_error
from .strings import locale_of, say, ui


def build_speakers_tab(service: VoiceService) -> tuple[gr.Dropdown, list[gr.events.Dependency], gr.State]:
    """Lay out the tab. Returns the managed-voice dropdown, the events that change the library
    (the app refreshes every voice list after them) and the state holding the id of the voice just added.
    """

    def transcribe(audio_path, language):
        if not audio_path:
            raise user_error("Upload or record the reference first.")
        try:
            return service.transcribe(Path(audio_path), language)
        except ServiceError as error:
            raise user_error(str(error)) from error

    def add_speaker(audio_path, transcript, language, name, consent, request: gr.Request = None):
        if not consent:
            raise user_error(say("msg_consent", locale_of(request)))
        if not audio_path:
            raise user_error(say("msg_upload_first", locale_of(request)))
        session = session_of(request)
        try:
            info = service.add_speaker(Path(audio_path), transcript or "", language, name or "", session)
        except (ServiceError, ValueError) as error:
            raise user_error(str(error)) from error
        # shown in a text box: a name is never read as markup
        message = say("msg_added", locale_of(request), name=info.name, seconds=info.duration_s)
        return message, str(service.reference_path(info.id, session)), info.id

    gr.Markdown(ui("speakers_intro"))
    ref_audio = gr.Audio(label=ui("reference_speech"), sources=["upload", "microphone"], type="filepath")
    with gr.Row():
        transcript = gr.Textbox(label=ui("transcript"), scale=4)
        transcribe_button = gr.Button(ui("transcribe"), scale=1)
    ref_language = gr.Dropdown(label=ui("language"), choices=LANGUAGES, value="zh")
    name = gr.Textbox(label=ui("name"), max_length=80)
    consent = gr.Checkbox(label=ui("consent"))
    add = gr.Button(ui("add_speaker"), variant="primary")
    added = gr.Textbox(show_label=False, interactive=False, container=False)
    stored = gr.Audio(label=ui("stored_reference"), interactive=False, type="filepath")
    new_voice = gr.State(None)
    transcribe_button.click(on_gpu(transcribe), [ref_audio, ref_language], transcript, api_visibility="private")
    adding = busy_while(add, on_gpu(add_speaker), [ref_audio, transcript, ref_language, name, consent],
                        [added, stored, new_voice], api_name="add_speaker")
    with gr.Accordion(ui("manage_voices"), open=False):
        managed, changes = _build_manage_voices(service)
    return managed, [adding, *changes], new_voice


def _build_manage_voices(service: VoiceService) -> tuple[gr.Dropdown, list[gr.events.Dependency]]:
    def rename_voice(speaker_id, new_name, request: gr.Request = None):
        try:
            info = service.rename_speaker(speaker_id or "", new_name or "", session_of(request))
        except (ServiceError, ValueError) as error:
            raise user_error(str(error)) from error
        return say("msg_renamed", locale_of(request), name=info.name)

    def delete_voice(speaker_id, request: gr.Request = None):
        try:
            service.delete_speaker(speaker_id or "", session_of(request))
        except (ServiceError, ValueError) as error:
            raise user_error(str(error)) from error
        return say("msg_deleted", locale_of(request))

    def export_voice(speaker_id, request: gr.Request = None):
        try:
            data = service.export_speaker(speaker_id or "", session_of(request))
        except (ServiceError, ValueError) as error:
            raise user_error(str(error)) from error
        path = Path(tempfile.mkdtemp(prefix="voice-export-")) / f"{speaker_id}.zip"
        path.write_bytes(data)
        return str(path)

    managed = gr.Dropdown(label=ui("voice"), choices=speaker_choices(service, None), allow_custom_value=True)
    new_name = gr.Textbox(label=ui("new_name"), max_length=80)
    with gr.Row():
        rename_button = gr.Button(ui("rename"))
        delete_button = gr.Button(ui("delete"), variant="stop")
        export_button = gr.Button(ui("export_voice"))
    message = gr.Textbox(show_label=False, interactive=False, container=False)
    exported = gr.File(label=ui("exported_voice"), interactive=False)
    renamed = rename_button.click(rename_voice, [managed, new_name], message)
    deleted = delete_button.click(delete_voice, [managed], message, api_visibility="private")
    export_button.click(export_voice, [managed], exported)
    return managed, [renamed, deleted]
