"""Cancelling a synthesis request whose client went away.

A :class:`Cancellation` belongs to one request (or to the voices of one Compare). The web
layer cancels it when it sees the client leave: a REST connection closed, a page's stream
closed by Gradio. Whatever holds a slot for the request registers how to give it back (the
admission ticket, its place in the queue), so the slot is free at once; the core asks
:meth:`Cancellation.should_stop` between GPT steps and decoder chunks and drops the request
there. The request's one log line then says ``"outcome": "cancelled"``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, wait
from typing import Any

from .errors import ServiceError

CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that left before the answer; nobody receives it
PROBE_S = 0.5  # how often a request waiting for its turn asks its probe whether the client is still there


class RequestCancelled(ServiceError):
    """The outcome of a request whose client went away (no one reads it; the log does)."""

    def __init__(self) -> None:
        super().__init__("the client went away; the synthesis was cancelled", status=CLIENT_CLOSED_REQUEST)


class Cancellation:
    """Set once, from any thread; each hook registered with :meth:`on_cancel` runs once when it is.

    ``probe`` (optional) is asked by :meth:`should_stop` whether the client has gone, for clients
    that can only be looked at, not heard leaving; a True answer cancels. While a request waits
    (:meth:`result`, :meth:`next_item`), the probe is asked every ``PROBE_S`` seconds; while it
    runs, the models ask at every step.
    """

    def __init__(self, probe: Callable[[], bool] | None = None) -> None:
        self._cancelled = threading.Event()
        self._hooks: list[Callable[[], object]] = []
        self._lock = threading.Lock()
        self._probe = probe

    def cancel(self) -> None:
        """Cancel the request: every hook runs now (in this thread), later ones at once when registered."""
        with self._lock:
            if self._cancelled.is_set():
                return
            self._cancelled.set()
            hooks, self._hooks = self._hooks, []
        for hook in hooks:
            hook()

    def should_stop(self) -> bool:
        """Whether the request is cancelled (cheap: the core asks before every decoding step)."""
        if not self._cancelled.is_set() and self._probe is not None and self._probe():
            self.cancel()
        return self._cancelled.is_set()

    def on_cancel(self, hook: Callable[[], object]) -> None:
        """Run ``hook`` when the request is cancelled; at once if it already is."""
        with self._lock:
            if not self._cancelled.is_set():
                self._hooks.append(hook)
                return
        hook()

    def result(self, future: Future) -> Any:
        """``future.result()``, asking the probe while it waits (a request withdrawn on cancelling raises
        CancelledError at once)."""
        while self._probe is not None and not future.done() and not self.should_stop():
            wait([future], timeout=PROBE_S)
        return future.result()

    def next_item(self, items: queue.Queue) -> Any:
        """``items.get()``, asking the probe while it waits (once cancelled, the producer ends soon)."""
        while self._probe is not None and not self.should_stop():
            try:
                return items.get(timeout=PROBE_S)
            except queue.Empty:
                continue
        return items.get()
