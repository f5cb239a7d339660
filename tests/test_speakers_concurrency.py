"""Speaker library under concurrent writers: threads of one process and several processes."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gsv_core.speakers import SpeakerError, SpeakerLibrary
from speaker_fakes import FakePrepare, clip_bytes

KEY = "v2-0123456789abcdef"
THREADS = 8
PROCESSES = 3
ADDS_PER_PROCESS = 4


def test_threads_adding_at_once_lose_nothing(tmp_path: Path):
    library = SpeakerLibrary(tmp_path)
    prepare = FakePrepare()
    start = threading.Barrier(THREADS)

    def add_one(index: int) -> str:
        audio = clip_bytes(200 + 25 * index)
        start.wait()
        name = "Chorus" + "!" * index  # distinct names (they must be) that share one derived id
        return library.add(audio, f"take {index}", "en", name, prepare=prepare, weights_key=KEY).id

    with ThreadPoolExecutor(THREADS) as pool:
        ids = list(pool.map(add_one, range(THREADS)))
    assert sorted(ids) == sorted(["chorus"] + [f"chorus-{n}" for n in range(2, THREADS + 1)])
    fresh = SpeakerLibrary(tmp_path)
    assert fresh.problems == [] and sorted(s.id for s in fresh.list()) == sorted(ids)
    assert sorted(s.transcript for s in fresh.list()) == sorted(f"take {i}" for i in range(THREADS))


def test_threads_adding_one_name_at_once_store_it_once(tmp_path: Path):
    library = SpeakerLibrary(tmp_path)
    start = threading.Barrier(THREADS)

    def add_one(index: int) -> str:
        audio = clip_bytes(200 + 25 * index)
        start.wait()
        try:
            return library.add(audio, "", "en", "Echo", prepare=None, weights_key=None).id
        except SpeakerError as error:
            return str(error)

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(add_one, range(THREADS)))
    assert outcomes.count("echo") == 1 and sum("already exists" in o for o in outcomes) == THREADS - 1
    assert [s.name for s in SpeakerLibrary(tmp_path).list()] == ["Echo"]


def test_threads_asking_for_one_speaker_prepare_it_once(tmp_path: Path):
    library = SpeakerLibrary(tmp_path)
    info = library.add(clip_bytes(), "hello", "en", "Solo", prepare=None, weights_key=None)
    prepare = FakePrepare()
    start = threading.Barrier(THREADS)

    def fetch(_: int):
        start.wait()
        return library.conditioning(info.id, prepare=prepare, weights_key=KEY)

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(fetch, range(THREADS)))
    assert len(prepare.calls) == 1 and all(result is results[0] for result in results)


def _add_from_process(root: str, worker: int, start, results) -> None:
    library = SpeakerLibrary(root)
    prepare = FakePrepare()
    clips = [clip_bytes(150 + 40 * worker + 7 * n) for n in range(ADDS_PER_PROCESS)]
    start.wait()
    for n, clip in enumerate(clips):
        name = f"Crowd {'!' * (worker * ADDS_PER_PROCESS + n)}"  # distinct names, one derived id
        results.put(library.add(clip, f"worker {worker} take {n}", "en", name, prepare=prepare, weights_key=KEY).id)


def test_processes_adding_at_once_lose_nothing(tmp_path: Path):
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(PROCESSES), context.Queue()
    workers = [
        context.Process(target=_add_from_process, args=(str(tmp_path), worker, start, results))
        for worker in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    total = PROCESSES * ADDS_PER_PROCESS
    ids = [results.get(timeout=60) for _ in range(total)]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert sorted(ids) == sorted(["crowd"] + [f"crowd-{n}" for n in range(2, total + 1)])
    fresh = SpeakerLibrary(tmp_path)
    assert fresh.problems == []
    assert sorted(s.id for s in fresh.list()) == sorted(ids)
    expected = sorted(f"worker {w} take {n}" for w in range(PROCESSES) for n in range(ADDS_PER_PROCESS))
    assert sorted(s.transcript for s in fresh.list()) == expected
    assert not any((tmp_path / ".tmp").iterdir())
