"""Feedback that stays true: one error at a time, busy buttons, progress by stage, a log line per refusal."""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Callable

import gradio as gr
import numpy as np

from .strings import LOCALE_COOKIE, say

LOGGER = logging.getLogger("voice_studio.ui")
ERROR_SECONDS = 8

# Runs in the browser when a button is pressed: the toasts of earlier actions go, so the only
# message on screen is about what the visitor just did; and the page's language (which the
# footer's Settings may have switched) goes along as a cookie, for the messages of the answer.
# Returns its inputs unchanged.
DISMISS_TOASTS_JS = f"""(...args) => {{
  document.querySelectorAll('.toast-body .toast-close').forEach((button) => button.click());
  document.cookie = '{LOCALE_COOKIE}=' + (document.documentElement.lang || navigator.language) + ';path=/;SameSite=Lax';
  return args;
}}"""

_SEGMENT = re.compile(r"generating segment (\d+) of (\d+)")
_RETRY = re.compile(r"quality check: error rate ([\d.]+), try (\d+) of (\d+)")  # voice_studio.quality_check


def user_error(message: str) -> gr.Error:
    """A refusal for the visitor: shown once, logged as one line, without a traceback (not a fault)."""
    LOGGER.warning("refused: %s", message)  # warning: shown without any logging setup (uvicorn's leaves ours alone)
    return gr.Error(message, duration=ERROR_SECONDS, print_exception=False)


def busy_while(button: gr.Button, fn: Callable, inputs: list, outputs: list, **event) -> gr.events.Dependency:
    """Wire ``button`` to ``fn``, disabled from the click until the work ends (successful or not).

    The click first dismisses old error toasts and disables the button (no queue, so at
    once), then runs ``fn`` with ``event`` (api_name, concurrency ...), then enables it again.
    Returns the event of ``fn`` so that callers can chain more steps on its success.
    """
    disabled = button.click(lambda: gr.update(interactive=False), None, button, js=DISMISS_TOASTS_JS,
                            queue=False, show_progress="hidden", api_visibility="private")
    work = disabled.then(fn, inputs, outputs, **event)
    for ended in (work.success, work.failure):  # (.then is not triggered after a gr.Error in Gradio 6.31)
        ended(lambda: gr.update(interactive=True), None, button, show_progress="hidden", api_visibility="private")
    return work


def progress_reporter(progress: gr.Progress, locale: str, prefix: str = "") -> Callable[[float, str], None]:
    """Progress callback that may be called from any thread; the pipeline's stages read as steps.

    ``gr.Progress`` finds its event through context variables, but synthesis reports from
    the queue's worker thread; so each report runs in a copy of the handler's context.
    Messages the UI does not know (a finer pipeline report) are shown as they come.
    """
    context = contextvars.copy_context()

    def report(fraction: float, message: str) -> None:
        context.run(progress, fraction, desc=prefix + stage_message(message, locale))

    return report


def stage_message(message: str, locale: str) -> str:
    """The pipeline's report as a step the visitor can follow."""
    if message == "reading the text":
        return say("progress_reading", locale)
    if message == "done":
        return say("progress_done", locale)
    segment = _SEGMENT.fullmatch(message)
    if segment:
        return say("progress_segment", locale, number=segment[1], total=segment[2])
    retry = _RETRY.fullmatch(message)
    if retry:
        return say("progress_retry", locale, cer=retry[1], number=retry[2], total=retry[3])
    return message


def int16_audio(samples: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] as int16, the format Gradio encodes without converting (and warning)."""
    return (np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0) * 32767).astype(np.int16)
