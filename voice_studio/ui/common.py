"""What every tab shares: language choices, the ZeroGPU wrapper, the status line, sessions, voice lists."""

from __future__ import annotations

import html
from collections.abc import Callable

import gradio as gr

from ..service import VoiceService
from .strings import say, ui

LANGUAGE_CODES = ("zh", "all_zh", "en")
LANGUAGES = tuple((ui(f"lang_{code}"), code) for code in LANGUAGE_CODES)  # labels in the browser's language


def on_gpu(handler: Callable) -> Callable:
    """Run ``handler`` on a ZeroGPU worker when the ``spaces`` package is there (Hugging Face Spaces).

    The main process never touches CUDA; elsewhere the handler is returned unchanged.
    """
    try:
        import spaces
    except ImportError:
        return handler
    return spaces.GPU(handler)


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
    line = f'<p class="gsv-status">{html.escape(status)}</p>'
    fraction = service.loading_fraction
    if fraction is None:
        return line
    percent = round(100 * fraction)
    return line + f'<progress class="gsv-loading" value="{percent}" max="100" aria-label="model download">{percent}%</progress>'


def session_of(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None) if request is not None else None


def speaker_choices(service: VoiceService, session: str | None, locale: str = "en") -> list[tuple[str, str]]:
    """(label, id) of every voice the session may use, for a dropdown; labels are plain text."""
    yours = ", " + say("yours", locale)
    return [(f"{s['name']} ({s['language']}{yours if s.get('own') else ''})", s["id"]) for s in service.list_speakers(session)]


def voice_names(service: VoiceService, session: str | None) -> dict[str, str]:
    """Display name of every voice the session may use, by id."""
    return {s["id"]: s["name"] for s in service.list_speakers(session)}
