"""The synthesis queue: grouping, per-request outcomes, whole-batch faults, a bounded wait."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from voice_studio.synthesis_queue import QueueBusy, SynthesisQueue


class Recorder:
    """A ``serve`` that squares numbers, refuses negatives, and can be held on its first call."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.started = threading.Event()

    def __call__(self, requests: list[int]) -> list:
        self.batches.append(list(requests))
        self.started.set()
        self.release.wait(10)
        return [ValueError(f"negative: {r}") if r < 0 else r * r for r in requests]


def test_requests_waiting_behind_a_busy_worker_are_served_together():
    serve = Recorder()
    queue = SynthesisQueue(serve, max_batch=4, gather_s=0.0)
    with ThreadPoolExecutor(max_workers=6) as pool:
        first = pool.submit(queue.submit, 1)
        assert serve.started.wait(5)
        rest = [pool.submit(queue.submit, n) for n in (2, 3, 4, 5, 6)]
        for _ in range(500):
            if queue.waiting == 5:
                break
            threading.Event().wait(0.01)
        serve.release.set()
        assert first.result(5) == 1
        assert [f.result(5) for f in rest] == [4, 9, 16, 25, 36]
    assert serve.batches == [[1], [2, 3, 4, 5], [6]]


def test_an_idle_worker_gathers_requests_that_arrive_together():
    serve = Recorder()
    serve.release.set()
    queue = SynthesisQueue(serve, max_batch=8, gather_s=0.5)
    futures = queue.submit_many([1, 2, 3])
    assert [f.result(5) for f in futures] == [1, 4, 9]
    assert serve.batches == [[1, 2, 3]]


def test_an_error_for_one_request_reaches_only_its_caller():
    serve = Recorder()
    serve.release.set()
    queue = SynthesisQueue(serve, max_batch=4, gather_s=0.2)
    good, bad = queue.submit_many([3, -1])
    assert good.result(5) == 9
    with pytest.raises(ValueError, match="negative: -1"):
        bad.result(5)


def test_a_fault_of_the_whole_batch_reaches_every_caller_and_the_worker_goes_on():
    calls = []

    def serve(requests):
        calls.append(requests)
        if len(calls) == 1:
            raise RuntimeError("device lost")
        return [r + 1 for r in requests]

    queue = SynthesisQueue(serve, max_batch=4, gather_s=0.2)
    for future in queue.submit_many([1, 2]):
        with pytest.raises(RuntimeError, match="device lost"):
            future.result(5)
    assert queue.submit(5) == 6


def test_a_serve_that_loses_outcomes_is_reported():
    queue = SynthesisQueue(lambda requests: requests[:1], max_batch=4, gather_s=0.2)
    for future in queue.submit_many([1, 2]):
        with pytest.raises(RuntimeError, match="1 outcomes for 2 requests"):
            future.result(5)


def test_too_many_waiting_requests_are_refused_with_a_clear_error():
    serve = Recorder()
    queue = SynthesisQueue(serve, max_batch=1, gather_s=0.0, max_waiting=2)
    held = queue.submit_many([1])
    assert serve.started.wait(5)
    queued = queue.submit_many([2, 3])
    with pytest.raises(QueueBusy, match="busy"):
        queue.submit_many([4])
    serve.release.set()
    assert [f.result(5) for f in held + queued] == [1, 4, 9]


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError, match="max_batch"):
        SynthesisQueue(lambda r: r, max_batch=0)
