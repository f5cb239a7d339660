"""A streamed synthesis request as its caller sees it: the pieces as the worker makes them, then one end.

The end is exactly one of: the last piece was read (the outcome is logged, a failure raised as
ServiceError), or the caller closed the stream first because its client went away (the request
is cancelled: its slot is freed at once, the models drop it at their next step or chunk, and it
is logged as cancelled). ``close`` may come from another thread than the one reading, and after
the end it changes nothing, so a web layer can always call it when its response ends.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

from gsv_core.engine.requests import AudioChunk

from .admission import Ticket
from .cancellation import Cancellation, RequestCancelled
from .errors import ServiceError


class SynthesisStream(Iterator[AudioChunk]):
    """Iterate for the pieces; :meth:`close` before the end cancels the request."""

    def __init__(self, cancellation: Cancellation, ticket: Ticket, settle: Callable[[Future, Any], None],
                 fail: Callable[[ServiceError], None]) -> None:
        """``settle(future, info)`` logs a finished request (raising ServiceError when it failed);
        ``fail(error)`` logs one that did not end in audio."""
        self._pieces: queue.Queue = queue.Queue()
        self._cancellation, self._ticket, self._settle, self._fail = cancellation, ticket, settle, fail
        self._future: Future | None = None
        self._checked: Any = None  # the desk's checked request, handed back to ``settle`` at the end
        self._ended = False
        self._lock = threading.Lock()

    def put(self, piece: AudioChunk) -> None:
        """Hand over one piece (the request's ``on_audio``, called from the synthesizing thread)."""
        self._pieces.put(piece)

    def follow(self, future: Future, checked: Any) -> None:
        """The queued request's outcome: its end comes when ``future`` is done (``checked``: the desk's request)."""
        self._future, self._checked = future, checked
        pieces = self._pieces
        future.add_done_callback(lambda _: pieces.put(None))

    def __next__(self) -> AudioChunk:
        piece = None if self._ended else self._cancellation.next_item(self._pieces)
        if piece is not None:
            return piece
        if self._claim_end():
            with self._ticket:
                try:
                    self._settle(self._future, self._checked)
                except ServiceError as error:
                    self._fail(error)
                    raise
        raise StopIteration

    def close(self) -> None:
        """Stop listening: a request that has not ended is cancelled and logged as such; else nothing."""
        if self._claim_end():
            self._cancellation.cancel()
            self._ticket.close()
            self._fail(RequestCancelled())

    def _claim_end(self) -> bool:
        """True for the first caller to end the stream (reading its end, or closing it)."""
        with self._lock:
            ended, self._ended = self._ended, True
        return not ended
