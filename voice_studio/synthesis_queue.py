"""The synthesis queue: requests from many threads, served together in batches by one worker thread.

Synthesis on one device is fastest when one worker owns it: two threads decoding at
once only split the cores, while one decode over several requests shares every weight
read (see ``benchmarks/bench_batching.py``). Callers block in :meth:`SynthesisQueue.submit`
until their own outcome is ready; an exception meant for one request is raised only to
its caller. A waiting request can be withdrawn (its client went away): it leaves the queue
at once and its future is cancelled.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

Request = TypeVar("Request")
Outcome = TypeVar("Outcome")


class QueueBusy(RuntimeError):
    """More requests are waiting than the queue accepts."""


class SynthesisQueue(Generic[Request, Outcome]):
    """Gathers waiting requests into batches of at most ``max_batch`` for ``serve``.

    ``serve(requests)`` returns one outcome per request, in order: a result, or an
    exception for that request alone. While the worker is busy, new requests wait and
    go together into the next batch; an idle worker waits ``gather_s`` after the first
    request for others to join. More than ``max_waiting`` waiting requests raise
    :class:`QueueBusy` at once instead of queueing without bound.

    With ``cost(request)`` (e.g. the expected seconds of audio), a batch takes the oldest
    waiting request plus only those of similar cost (at most ``cost_ratio`` times apart):
    a batch lasts as long as its longest request, so a short request is not held back by
    a long one it could have skipped. The oldest request always goes first: nothing starves.
    """

    def __init__(
        self,
        serve: Callable[[list[Request]], Sequence[Outcome | BaseException]],
        max_batch: int = 4,
        gather_s: float = 0.05,
        max_waiting: int = 32,
        cost: Callable[[Request], float] | None = None,
        cost_ratio: float = 2.0,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.max_batch = max_batch
        self.gather_s = gather_s
        self.max_waiting = max_waiting
        self._serve = serve
        self._cost = cost
        self.cost_ratio = cost_ratio
        self._waiting: deque[tuple[Request, Future]] = deque()
        self._condition = threading.Condition()
        self._worker: threading.Thread | None = None

    def submit(self, request: Request) -> Outcome:
        """Block until ``request`` is served; return its result or raise its exception."""
        return self.submit_many([request])[0].result()

    def submit_many(self, requests: Sequence[Request]) -> list[Future]:
        """Queue several requests at once (they may share a batch); one future each."""
        futures = [Future() for _ in requests]
        with self._condition:
            if len(self._waiting) + len(requests) > self.max_waiting:
                raise QueueBusy(f"the server is busy ({len(self._waiting)} requests waiting); try again in a minute")
            self._waiting.extend(zip(requests, futures))
            if self._worker is None or not self._worker.is_alive():  # first use, or a forked process
                self._worker = threading.Thread(target=self._work, daemon=True, name="synthesis-queue")
                self._worker.start()
            self._condition.notify_all()
        return futures

    def withdraw(self, future: Future) -> bool:
        """Take the request of ``future`` out of the queue and cancel the future, if it is still waiting.

        False when the worker has taken it (or it was never here): a running request stops on its own
        (see ``SynthesisRequest.should_stop``).
        """
        with self._condition:
            position = next((i for i, (_, waiting) in enumerate(self._waiting) if waiting is future), None)
            if position is None:
                return False
            del self._waiting[position]
        return future.cancel()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _next_batch(self) -> list[tuple[Request, Future]]:
        with self._condition:
            while not self._waiting:
                self._condition.wait()
            deadline = time.monotonic() + self.gather_s
            while len(self._waiting) < self.max_batch and (left := deadline - time.monotonic()) > 0:
                self._condition.wait(left)
            return self._take_similar()

    def _take_similar(self) -> list[tuple[Request, Future]]:
        """The oldest waiting request and up to ``max_batch - 1`` others of similar cost (under the lock)."""
        if self._cost is None:
            return [self._waiting.popleft() for _ in range(min(self.max_batch, len(self._waiting)))]
        first = self._waiting.popleft()
        anchor = max(self._cost(first[0]), 1e-3)
        batch, kept = [first], deque()
        while self._waiting:
            item = self._waiting.popleft()
            cost = max(self._cost(item[0]), 1e-3)
            similar = max(cost, anchor) <= self.cost_ratio * min(cost, anchor)
            (batch if similar and len(batch) < self.max_batch else kept).append(item)
        self._waiting = kept
        return batch

    def _work(self) -> None:
        while True:
            # a future cancelled by someone else meanwhile is skipped; the others can no longer be cancelled
            batch = [(request, future) for request, future in self._next_batch() if future.set_running_or_notify_cancel()]
            if not batch:
                continue
            try:
                outcomes = list(self._serve([request for request, _ in batch]))
                if len(outcomes) != len(batch):
                    raise RuntimeError(f"served {len(outcomes)} outcomes for {len(batch)} requests")
            except BaseException as error:  # a fault of the whole batch reaches every caller in it
                outcomes = [error] * len(batch)
            for (_, future), outcome in zip(batch, outcomes):
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
