"""The Add voice tab: upload or record a reference (with optional auxiliary clips), transcribe it, store it,
or build a voice from a long recording (``recording_panel``); manage voices; the admin panel."""

from __future__ import annotations

import gradio as gr

from ..errors import ServiceError
from ..service import VoiceService
from .common import LANGUAGE_CODES, LANGUAGES, on_gpu, session_of, speaker_choices, uploaded_path
from .downloads import Downloads
from .feedback import busy_while, user_error
from .recording_panel import layout_recording_panel, wire_recording_panel
from .strings import locale_of, say, ui

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


def ratings_file(service: VoiceService, token: str | None, downloads: Downloads) -> str:
    """The ratings as a CSV file for download, among ``downloads``' newest few (ServiceError without
    the token when one is set)."""
    return downloads.write("ratings.csv", service.ratings_csv(token).encode("utf-8"))


def build_speakers_tab(service: VoiceService) -> tuple[gr.Dropdown, list[gr.events.Dependency], gr.State]:
    """Lay out the tab. Returns the managed-voice dropdown, the events that change the library
    (the app refreshes every voice list after them) and the state holding the id of the voice just added.
    """

    def transcribe(audio_path, language):
        """The transcript, and the language Whisper heard preselected (kept when it heard none of ours)."""
        audio = uploaded_path(audio_path)
        if audio is None:
            raise user_error("Upload or record the reference first.")
        try:
            text, heard = service.transcribe_detecting(audio)
        except ServiceError as error:
            raise user_error(str(error)) from error
        return text, heard if heard in LANGUAGE_CODES else language

    def add_speaker(audio_path, transcript, language, name, consent, token="", aux_paths=None,
                    request: gr.Request = None):
        audio, aux = uploaded_path(audio_path), [uploaded_path(path) for path in aux_paths or [] if path]
        if not consent:
            raise user_error(say("msg_consent", locale_of(request)))
        if audio is None:
            raise user_error(say("msg_upload_first", locale_of(request)))
        session = session_of(request)
        try:
            info = service.add_speaker(audio, transcript or "", language, name or "", session, token or None,
                                       aux_audio=aux)
            stored = str(service.reference_path(info.id, session, token or None))
        except (ServiceError, ValueError) as error:
            raise user_error(str(error)) from error
        # shown in a text box: a name is never read as markup
        message = say("msg_added", locale_of(request), name=info.name, seconds=info.duration_s)
        return message, stored, info.id

    gr.Markdown(ui("speakers_intro"))
    gr.Markdown(access_notice(service))  # team mode (everything open), or voices private to this browser
    ref_audio = gr.Audio(label=ui("reference_speech"), sources=["upload", "microphone"], type="filepath")
    with gr.Row():
        transcript = gr.Textbox(label=ui("transcript"), scale=4)
        transcribe_button = gr.Button(ui("transcribe"), scale=1)
    aux_files = gr.File(label=ui("aux_clips"), file_count="multiple", file_types=["audio"], type="filepath")
    with gr.Accordion(ui("long_recording"), open=False):
        recording = layout_recording_panel()
    ref_language = gr.Dropdown(label=ui("language"), choices=LANGUAGES, value="zh")
    name = gr.Textbox(label=ui("name"), max_length=80)
    consent = gr.Checkbox(label=ui("consent"))
    with gr.Row():
        add = gr.Button(ui("add_speaker"), variant="primary")
        add_recording = gr.Button(ui("save_recording"))
    added = gr.Textbox(show_label=False, interactive=False, container=False)
    stored = gr.Audio(label=ui("stored_reference"), interactive=False, type="filepath")
    new_voice = gr.State(None)
    token = _build_admin_panel(service)
    transcribe_button.click(on_gpu(transcribe), [ref_audio, ref_language], [transcript, ref_language], api_visibility="private")
    adding = busy_while(add, on_gpu(add_speaker), [ref_audio, transcript, ref_language, name, consent, token, aux_files],
                        [added, stored, new_voice], api_name="add_speaker")
    from_recording = wire_recording_panel(service, recording, add_recording, [ref_language, name, consent, token],
                                          [added, stored, new_voice])
    with gr.Accordion(ui("manage_voices"), open=False):
        managed, changes = _build_manage_voices(service, token)
    return managed, [adding, from_recording, *changes], new_voice


def _build_admin_panel(service: VoiceService) -> gr.Textbox:
    """The admin token box, listing every voice and exporting ratings (hidden in team mode)."""

    def list_all(token, request: gr.Request = None):
        try:
            return service.list_speakers(session_of(request), token or None, everything=True)
        except ServiceError as error:
            raise user_error(str(error)) from error

    downloads = Downloads()  # the ratings' files, the newest few only

    def export(token):
        try:
            return ratings_file(service, token or None, downloads)
        except ServiceError as error:
            raise user_error(str(error)) from error

    with gr.Accordion("Admin", open=False, visible=not service.access.open):
        token = gr.Textbox(label="Admin token", type="password", value="",
                           info="Needed to add shared voices and to change or delete any voice.")
        with gr.Row():
            list_button = gr.Button("List every voice")
            export_button = gr.Button("Export ratings (CSV)")
        every_voice = gr.JSON(label="Every voice, private ones included")
        ratings_csv = gr.File(label="Ratings CSV", interactive=False)
    # undocumented: hidden from the API page, callable by an admin's script with the token
    export_button.click(export, [token], ratings_csv, api_name="export_ratings", api_visibility="undocumented")
    list_button.click(list_all, [token], every_voice, api_name="list_every_voice", api_visibility="undocumented")
    return token


def _build_manage_voices(service: VoiceService, token: gr.Textbox) -> tuple[gr.Dropdown, list[gr.events.Dependency]]:
    downloads = Downloads()  # the exports' files, the newest few only

    def rename_voice(speaker_id, new_name, token_value="", request: gr.Request = None):
        try:
            info = service.rename_speaker(speaker_id or "", new_name or "", session_of(request), token_value or None)
        except (ServiceError, ValueError) as error:
            raise user_error(str(error)) from error
        return say("msg_renamed", locale_of(request), name=info.name)

    def delete_voice(speaker_id, token_value="", request: gr.Request = None):
        if not speaker_id:  # the confirmation was cancelled, or nothing was picked
            return "Nothing deleted."
        try:
            service.delete_speaker(speaker_id, session_of(request), token_value or None)
        except (ServiceError, ValueError) as error:
            raise user_error(str(error)) from error
        return say("msg_deleted", locale_of(request))

    def export_voice(speaker_id, token_value="", request: gr.Request = None):
        try:
            data = service.export_speaker(speaker_id or "", session_of(request), token_value or None)
        except (ServiceError, ValueError) as error:
            raise user_error(str(error)) from error
        return downloads.write(f"{speaker_id}.zip", data)  # never more than a few on disk

    managed = gr.Dropdown(label=ui("voice"), choices=speaker_choices(service, None), allow_custom_value=True)
    new_name = gr.Textbox(label=ui("new_name"), max_length=80)
    with gr.Row():
        rename_button = gr.Button(ui("rename"))
        delete_button = gr.Button(ui("delete"), variant="stop")
        export_button = gr.Button(ui("export_voice"))
    message = gr.Textbox(show_label=False, interactive=False, container=False)
    exported = gr.File(label=ui("exported_voice"), interactive=False)
    renamed = rename_button.click(rename_voice, [managed, new_name, token], message)
    deleted = delete_button.click(delete_voice, [managed, token], message, api_name="delete_voice",
                                  api_visibility="undocumented", js=CONFIRM_DELETE_JS)
    export_button.click(export_voice, [managed, token], exported)
    return managed, [renamed, deleted]
