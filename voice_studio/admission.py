"""Admission control: how many synthesis requests the app holds at once, UI and REST together.

A request is admitted (or refused with 503 and ``Retry-After``) before any thread or
queue slot is spent on it: REST checks admission in the event loop, before dispatching
to a worker thread, so no request can wait in an unbounded thread-pool queue. Admitted
requests run on a pool with one thread per admission slot, separate from the pool that
serves the cheap endpoints, so a flood of synthesis never delays listing or adding voices.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from .errors import ServiceError

RETRY_AFTER_S = 10


class Ticket:
    """One admitted request (or several sent together); releases its slots once, when closed."""

    def __init__(self, admission: Admission, count: int) -> None:
        self._admission = admission
        self._count = count

    def close(self) -> None:
        count, self._count = self._count, 0
        if count:
            self._admission._release(count)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class Admission:
    """At most ``capacity`` synthesis requests in the app (running, queued, or being checked)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._held = 0
        self._lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=capacity, thread_name_prefix="synthesis-request")

    @property
    def held(self) -> int:
        return self._held

    def enter(self, count: int = 1) -> Ticket:
        """A ticket for ``count`` requests, or ServiceError 503 (with Retry-After) when full."""
        with self._lock:
            if self._held + count > self.capacity:
                raise ServiceError(
                    f"the server is busy ({self._held} requests in progress); try again in {RETRY_AFTER_S} seconds",
                    status=503, headers={"Retry-After": str(RETRY_AFTER_S)},
                )
            self._held += count
        return Ticket(self, count)

    def _release(self, count: int) -> None:
        with self._lock:
            self._held -= count
