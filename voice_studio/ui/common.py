"""What every tab shares: language choices, the ZeroGPU wrapper, the status line, sessions, voice lists,
the check of the files an event receives."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

from ..http_guard import CLIENT_HEADER, NEW_VISITOR_HEADER, VISITOR_KEY_HEADER
from ..page_files import NOT_UPLOADED, is_uploaded_file
from ..service import VoiceService
from ..visitor_keys import page_session_key
from ..zerogpu import BASE_GPU_S, gpu_task, synthesis_gpu_seconds
from .feedback import user_error
from .strings import say, ui

LANGUAGE_CODES = ("zh", "all_zh", "en", "all_ja", "ja", "all_yue", "yue", "all_ko", "ko", "auto", "auto_yue")
LANGUAGES = tuple((ui(f"lang_{code}"), code) for code in LANGUAGE_CODES)  # labels in the browser's language


def on_gpu(handler: Callable, duration: int | Callable[..., int] = BASE_GPU_S) -> Callable:
    """``handler`` with a ZeroGPU GPU attached for ``duration`` seconds (or ``duration(*inputs)``).

    Under ZeroGPU the handler does the GPU work itself (the service serves directly, no worker
    thread); elsewhere it is unchanged. See :mod:`voice_studio.zerogpu`.
    """
    return gpu_task(handler, duration)


def text_gpu_seconds(position: int = 0, voices_position: int | None = None) -> Callable[..., int]:
    """A ``duration`` reading the text from input ``position`` (and the voice list from ``voices_position``)."""
    def duration(*inputs, **_) -> int:
        voices = len(inputs[voices_position] or []) if voices_position is not None else 1
        return synthesis_gpu_seconds(inputs[position] if len(inputs) > position else "", voices)
    return duration


def status_html(service: VoiceService, locale: str = "en") -> str:
    """The status line; while models download or load, with a progress bar.

    When synthesis is off, one sentence says so and what still works; the technical reason
    (paths, flags) waits behind *Details* for whoever runs the server.
    """
    status = service.status
    if status.startswith("synthesis unavailable"):
        return (f'<p class="gsv-status">{html.escape(say("status_offline", locale))}</p>'
                f'<details class="gsv-status-details"><summary>{html.escape(say("status_details", locale))}</summary>'
                f'{html.escape(status.removeprefix("synthesis unavailable: "))}</details>')
    head, _, note = status.partition(" · ")  # "ready: ... · how Chinese polyphones are read"
    note_html = f' <span class="gsv-status-note">· {html.escape(note)}</span>' if note else ""
    line = f'<p class="gsv-status">{html.escape(head)}{note_html}</p>'
    fraction = service.loading_fraction
    if fraction is None:
        return line
    percent = round(100 * fraction)
    return line + f'<progress class="gsv-loading" value="{percent}" max="100" aria-label="model download">{percent}%</progress>'


def uploaded_path(value: str | None) -> Path | None:
    """A file path a handler received, refused (one message for every kind of bad path) unless it is
    a file the page uploaded; None when there is none.

    The second guard: ``PageFileGuard`` refused such paths before Gradio read the request, and
    Gradio's own check (on since ``mount_page``) before it copied anything; see
    :mod:`voice_studio.page_files`. This one holds however a handler is reached.
    """
    if not value:
        return None
    if not is_uploaded_file(value, get_upload_folder()):
        raise user_error(NOT_UPLOADED)
    return Path(value)


def session_of(request: gr.Request | None) -> str | None:
    """The visitor key the RequestGuard settled on: the ``gsv_visitor`` cookie when the server minted
    it (it survives page reloads, unlike Gradio's per-load session hash).

    A caller that keeps no cookies (the guard minted a key for this very request, which would be
    lost at once) is known by its page session instead: :func:`page_session_key` of Gradio's
    session hash and the client's address hash, never the session hash itself (the page chooses
    it, so it may be anything, even another visitor's key)."""
    if request is None:
        return None
    headers = {name.lower(): value for name, value in dict(getattr(request, "headers", None) or {}).items()}
    key, client = headers.get(VISITOR_KEY_HEADER.decode()), headers.get(CLIENT_HEADER.decode())
    session_hash = getattr(request, "session_hash", None)
    if NEW_VISITOR_HEADER.decode() in headers and client and isinstance(session_hash, str) and session_hash:
        return page_session_key(session_hash, client)
    return key or None


def speaker_choices(service: VoiceService, session: str | None, locale: str = "en") -> list[tuple[str, str]]:
    """(label, id) of every voice the session may use, for a dropdown; labels are plain text."""
    yours = ", " + say("yours", locale)
    return [(f"{s['name']} ({s['language']}{yours if s.get('own') else ''})", s["id"]) for s in service.list_speakers(session)]


def similarity_text(similarity: float | None, locale: str = "en") -> str:
    """A result's speaker similarity for people: three decimals, or "not available" (no SV model, short audio)."""
    if similarity is None:
        return say("msg_similarity_na", locale)
    return say("msg_similarity", locale, value=similarity)


def voice_names(service: VoiceService, session: str | None) -> dict[str, str]:
    """Display name of every voice the session may use, by id."""
    return {s["id"]: s["name"] for s in service.list_speakers(session)}
