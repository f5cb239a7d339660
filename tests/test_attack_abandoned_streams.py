"""Attack: clients that hang up. A request whose client goes away (a stream closed after its first
bytes, a REST call dropped while it waits or runs, a page closed during its synthesis) must stop:
its slot is given back at once, the models drop it at their next GPT step or decoder chunk (its
batch-mates get exactly what they get alone), and it is logged as cancelled.

Unit tests drive the core with tiny models and a ``should_stop`` that turns True at a chosen
moment; the live tests hang up on a real server (tiny official-format models) over raw sockets.
"""

import dataclasses
import json
import socket
import threading
import time

import numpy as np
import pytest
import torch

from gsv_core.engine.requests import AudioChunk, SynthesisCancelled, SynthesisOptions, SynthesisRequest
from gsv_core.models.sampling import SamplingOptions
from gsv_core.models.t2s import DecodeRow
from test_pipeline_stream import pipeline, speaker  # noqa: F401 - the tiny pipeline and its streaming voice
from test_t2s import _segment, _tiny_model

TEXT = "图书馆里非常安静。只有翻书的声音。"  # two segments for cut5


class StopAfter:
    """A ``should_stop`` that says True from its ``calls``-th question on; counts every question."""

    def __init__(self, calls: int) -> None:
        self.calls, self.asked = calls, 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.asked >= self.calls


class StopWhen:
    """A ``should_stop`` that says True once :meth:`stop` was called (from a callback of the request)."""

    def __init__(self) -> None:
        self.stopped = False

    def stop(self, *_) -> None:
        self.stopped = True

    def __call__(self) -> bool:
        return self.stopped


# -- the GPT stage ------------------------------------------------------------------------

def test_an_abandoned_row_leaves_the_gpt_batch_within_a_step_and_its_batch_mate_keeps_its_tokens():
    model = _tiny_model()  # a neutral EOS: every row runs to max_steps unless stopped
    (phones_a, bert_a), (phones_b, bert_b) = _segment(6, 1), _segment(9, 2)
    options = SamplingOptions(top_k=5)
    abandoned = StopAfter(6)  # True when asked after step 5
    alone = model.generate([DecodeRow(phones_b, bert_b, None, options, torch.Generator().manual_seed(2))], max_steps=40)[0]
    tokens = model.generate([
        DecodeRow(phones_a, bert_a, None, options, torch.Generator().manual_seed(1), should_stop=abandoned),
        DecodeRow(phones_b, bert_b, None, options, torch.Generator().manual_seed(2)),
    ], max_steps=40)
    assert tokens[0] is None and abandoned.asked == 6  # asked once a step, never again once it said stop
    torch.testing.assert_close(tokens[1], alone, rtol=0, atol=0)
    assert len(alone) > 30  # it decoded on long after its batch-mate left


def test_a_lone_abandoned_row_ends_the_decoding_at_once(monkeypatch):
    model = _tiny_model()
    steps = []
    run = model._run
    monkeypatch.setattr(model, "_run", lambda *args: steps.append(1) or run(*args))
    phones, bert = _segment(6, 1)
    tokens = model.generate([DecodeRow(phones, bert, should_stop=StopAfter(4))], max_steps=40, check_every=8)
    assert tokens == [None]
    assert len(steps) == 1 + 3  # the prefill and the steps before the 4th question: none after it


# -- the pipeline: GPT waves, SoVITS calls, streamed chunks ------------------------------------

class DecodeCounter:
    """Counts the decoder calls of the pipeline's SoVITS model (whole segments and streamed chunks)."""

    def __init__(self, monkeypatch, sovits) -> None:
        self.calls = 0
        for name in ("decode", "decode_streaming"):
            original = getattr(sovits, name)
            monkeypatch.setattr(sovits, name, self._counted(original))

    def _counted(self, original):
        def counted(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)
        return counted


def test_a_batch_mate_of_an_abandoned_request_gets_exactly_its_solo_audio(pipeline, speaker):
    options = SynthesisOptions(top_k=5, seed=3, split_method="cut5")
    kept = SynthesisRequest("你好，世界。", "zh", speaker, options)
    alone = pipeline.synthesize_many([kept])[0]
    dropped = SynthesisRequest(TEXT, "zh", speaker, dataclasses.replace(options, seed=4), should_stop=StopAfter(8))
    cancelled, served = pipeline.synthesize_many([dropped, kept])
    assert isinstance(cancelled, SynthesisCancelled)
    np.testing.assert_array_equal(served.audio, alone.audio)
    for ours, theirs in zip(served.segments, alone.segments, strict=True):
        np.testing.assert_array_equal(ours.semantic_tokens, theirs.semantic_tokens)


@pytest.mark.parametrize("mode", ["chunks", "fragments"])
def test_an_abandoned_stream_stops_at_its_next_chunk(pipeline, speaker, monkeypatch, mode):
    options = SynthesisOptions(top_k=1, seed=5, split_method="cut5", stream=mode, min_chunk_length=8)
    decoder = DecodeCounter(monkeypatch, pipeline.sovits)
    whole = pipeline.synthesize_many([SynthesisRequest(TEXT, "zh", speaker, options)])[0]
    calls_whole, decoder.calls = decoder.calls, 0
    listener = StopWhen()  # the client hangs up on the first piece it hears
    pieces = []
    request = SynthesisRequest(TEXT, "zh", speaker, options, should_stop=listener,
                               on_audio=lambda piece: (pieces.append(piece), listener.stop()))
    (outcome,) = pipeline.synthesize_many([request])
    assert isinstance(outcome, SynthesisCancelled) and whole.duration_s > 1
    assert calls_whole >= 2 and decoder.calls == 1 and len(pieces) == 1


def test_an_abandoned_request_stops_between_its_decoder_calls(pipeline, speaker, monkeypatch):
    """With a speed change, each segment of a GPT batch has its own decoder call: none after the stop."""
    options = SynthesisOptions(top_k=1, seed=5, split_method="cut5", speed=1.25, batch_size=3)
    decoder = DecodeCounter(monkeypatch, pipeline.sovits)
    listener = StopWhen()
    request = SynthesisRequest(TEXT, "zh", speaker, options, should_stop=listener,
                               inspect=lambda name, _: name.startswith("decode_out_") and listener.stop())
    (outcome,) = pipeline.synthesize_many([request])
    assert isinstance(outcome, SynthesisCancelled) and decoder.calls == 1


def test_closing_the_pipelines_own_stream_stops_its_worker(pipeline, speaker, monkeypatch):
    decoder = DecodeCounter(monkeypatch, pipeline.sovits)
    options = SynthesisOptions(top_k=1, seed=5, split_method="cut5", stream="chunks", min_chunk_length=8)
    before = set(threading.enumerate())
    stream = pipeline.synthesize_stream(SynthesisRequest(TEXT, "zh", speaker, options))
    next(stream)
    (worker,) = set(threading.enumerate()) - before
    stream.close()
    worker.join(timeout=120)
    assert not worker.is_alive()
    assert decoder.calls <= 2  # the chunk heard, and at most the one being decoded when it was closed


# -- the service: slots, the queue, the log ------------------------------------------------------

class ListeningPipeline:
    """A stand-in pipeline (see test_service.FakePipeline) whose requests speak one piece, then run until
    their ``should_stop`` says so (at most ``hold_s``), as a long synthesis would; records whether each stopped."""

    def __init__(self, hold_s: float = 30.0) -> None:
        from test_service import FakePipeline

        self._fake = FakePipeline()
        self.hold_s = hold_s
        self.entered = 0
        self.stopped: list[bool] = []

    def __getattr__(self, name):
        return getattr(self._fake, name)

    def synthesize_many(self, requests):
        self.entered += len(requests)
        outcomes = []
        for request in requests:
            if request.on_audio is not None:
                request.on_audio(AudioChunk(np.zeros(320, np.float32), 32000, 0))
            deadline = time.monotonic() + self.hold_s
            while not request.should_stop() and time.monotonic() < deadline:
                time.sleep(0.01)
            self.stopped.append(request.should_stop())
            outcomes.append(SynthesisCancelled() if request.should_stop() else self._fake.synthesize_many([request])[0])
        return outcomes


@pytest.fixture
def desk(tmp_path):
    from test_service import _service, _wav

    pipeline = ListeningPipeline()
    service = _service(tmp_path, pipeline, max_batch=1)
    voice = service.add_speaker(_wav(), "你好。", "zh", "Listener", session=None).id
    return service, pipeline, voice, tmp_path / "log.jsonl"


def _in_thread(call) -> tuple[threading.Thread, dict]:
    """Run ``call`` in a thread; what it returned or raised lands in the dict."""
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = call()
        except Exception as error:  # noqa: BLE001 - the test looks at it
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_request_cancelled_while_it_waits_leaves_the_queue_and_its_slot_at_once(desk):
    from voice_studio.cancellation import Cancellation, RequestCancelled

    service, pipeline, voice, log = desk
    running, waiting = Cancellation(), Cancellation()
    first, _ = _in_thread(lambda: service.synthesis.synthesize("你好", voice, "zh", SynthesisOptions(), None, cancellation=running))
    assert _wait_for(lambda: pipeline.entered == 1, 10)
    second, outcome = _in_thread(lambda: service.synthesis.synthesize("再见", voice, "zh", SynthesisOptions(), None,
                                                            cancellation=waiting))
    assert _wait_for(lambda: service.synthesis._queue.waiting == 1, 10)
    waiting.cancel()  # its client hangs up while the first request holds the worker
    second.join(timeout=2)
    assert isinstance(outcome["error"], RequestCancelled) and outcome["error"].status == 499
    assert service.synthesis._queue.waiting == 0 and service.synthesis.admission.held == 1
    running.cancel()
    first.join(timeout=5)
    assert pipeline.stopped == [True]  # the running one stopped when asked; the withdrawn one never ran
    assert [json.loads(line)["outcome"] for line in log.read_text().splitlines()] == ["cancelled", "cancelled"]
    assert service.synthesis.admission.held == 0


def test_closing_a_stream_before_its_end_cancels_it_once_even_while_another_thread_reads(desk):
    service, pipeline, voice, log = desk
    stream = service.synthesis.synthesize_stream("你好", voice, "zh", SynthesisOptions(), None)
    first = next(stream)
    assert first.audio.size == 320 and service.synthesis.admission.held == 1
    reader, outcome = _in_thread(lambda: next(stream, "ended"))  # blocked, waiting for the next piece
    time.sleep(0.2)
    stream.close()  # the web layer's answer ended early
    reader.join(timeout=5)
    assert outcome["result"] == "ended" and service.synthesis.admission.held == 0
    assert _wait_for(lambda: pipeline.stopped == [True], 5)
    stream.close()
    assert [json.loads(line)["outcome"] for line in log.read_text().splitlines()] == ["cancelled"]


def test_a_stream_read_to_its_end_is_served_and_closing_it_then_changes_nothing(desk):
    service, pipeline, voice, log = desk
    pipeline.hold_s = 0  # it ends on its own at once
    stream = service.synthesis.synthesize_stream("你好", voice, "zh", SynthesisOptions(), None)
    assert len(list(stream)) == 1 and pipeline.stopped == [False]
    stream.close()
    assert [json.loads(line)["outcome"] for line in log.read_text().splitlines()] == ["ok"]
    assert service.synthesis.admission.held == 0


def test_a_client_found_gone_by_its_probe_leaves_the_queue_within_a_probe_interval(desk):
    """A page's plain handler cannot be told that its page left; its cancellation looks (see ui/page_events)."""
    from voice_studio.cancellation import PROBE_S, Cancellation, RequestCancelled

    service, pipeline, voice, log = desk
    running, page = Cancellation(), {"gone": False}
    first, _ = _in_thread(lambda: service.synthesis.synthesize("你好", voice, "zh", SynthesisOptions(), None, cancellation=running))
    assert _wait_for(lambda: pipeline.entered == 1, 10)
    probed = Cancellation(probe=lambda: page["gone"])
    second, outcome = _in_thread(lambda: service.synthesis.synthesize("再见", voice, "zh", SynthesisOptions(), None,
                                                            cancellation=probed))
    assert _wait_for(lambda: service.synthesis._queue.waiting == 1, 10)
    page["gone"] = True
    second.join(timeout=PROBE_S + 2)
    assert isinstance(outcome.get("error"), RequestCancelled) and service.synthesis._queue.waiting == 0
    running.cancel()
    first.join(timeout=5)
    assert service.synthesis.admission.held == 0 and pipeline.stopped == [True]


def test_the_queue_withdraws_a_waiting_request_and_skips_one_cancelled_elsewhere():
    from voice_studio.synthesis_queue import SynthesisQueue

    gate, served = threading.Event(), []

    def serve(batch):
        gate.wait(10)
        served.extend(batch)
        return batch

    synthesis_queue = SynthesisQueue(serve, max_batch=1, gather_s=0)
    (busy,) = synthesis_queue.submit_many(["busy"])
    assert _wait_for(lambda: synthesis_queue.waiting == 0, 5)  # the worker holds it
    withdrawn, elsewhere, kept = synthesis_queue.submit_many(["withdrawn", "elsewhere", "kept"])
    assert synthesis_queue.withdraw(withdrawn) and withdrawn.cancelled() and synthesis_queue.waiting == 2
    assert not synthesis_queue.withdraw(busy)  # running: it stops on its own
    assert elsewhere.cancel()  # a caller that cancels its future itself must not kill the worker
    gate.set()
    assert kept.result(timeout=10) == "kept" and busy.result(timeout=1) == "busy" and served == ["busy", "kept"]


# -- live: clients that hang up on a real server ---------------------------------------------

LONG_TEXT = "图书馆里非常安静，大家都在认真地看书。只有翻书的声音偶尔响起。窗外的树叶在风中轻轻摇动。"
SPOKEN = {"top_k": 5, "seed": 4, "split_method": "cut5"}


class OutcomeSpy:
    """Records what the live server's pipeline returned for each request it served."""

    def __init__(self, monkeypatch, pipeline) -> None:
        self.entered, self.outcomes = 0, []
        original = pipeline.synthesize_many

        def spy(requests):
            self.entered += len(requests)
            outcomes = original(requests)
            self.outcomes.extend(outcomes)
            return outcomes

        monkeypatch.setattr(pipeline, "synthesize_many", spy)

    def idle(self) -> bool:
        """Whether every request the pipeline took has come back out."""
        return len(self.outcomes) == self.entered

    def served(self) -> int:
        return sum(not isinstance(outcome, Exception) for outcome in self.outcomes)


@pytest.fixture(scope="module")
def live(reference_dir, tmp_path_factory):
    from live_server import start_live_server
    from test_live_app import _add

    root = tmp_path_factory.mktemp("abandoned")
    server = start_live_server(reference_dir, root, "--official-data", str(reference_dir / "data"), "--max-batch", "2",
                               "--max-waiting", "8")
    response = _add(server.base, reference_dir, "Hung up on")
    assert response.status_code == 201, response.text
    yield server, response.json()["id"], root / "data" / "synthesis.jsonl"
    server.stop()


def _log_lines(log) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _post(base: str, path: str, body: dict) -> socket.socket:
    """Send a JSON POST over a raw socket (a client that can hang up whenever it likes)."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=120)
    payload = json.dumps(body).encode()
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload)
    return sock


def _read_until(sock: socket.socket, enough) -> bytes:
    """What came until ``enough(received)`` says so (or the server closed)."""
    received = b""
    while not enough(received) and (chunk := sock.recv(4096)):
        received += chunk
    return received


def _body_bytes(received: bytes) -> int:
    head, _, body = received.partition(b"\r\n\r\n")
    return len(body) if _ else 0


def _wait_for(condition, timeout_s: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _settled(service, log, lines_before: int, count: int):
    """A condition: ``count`` new log lines written and no admission slot held any more."""
    return lambda: len(_log_lines(log)) >= lines_before + count and service.synthesis.admission.held == 0


def test_streams_abandoned_after_their_first_bytes_are_cancelled_and_free_the_server(live, monkeypatch):
    server, speaker_id, log = live
    spy = OutcomeSpy(monkeypatch, server.service.pipeline())
    lines_before = len(_log_lines(log))
    body = {"text": LONG_TEXT, "speaker_id": speaker_id, "language": "zh", "stream": True, "options": SPOKEN}
    # half hang up once the WAV header came (queued or just started), half once the first audio came
    thresholds = [44, 44, 44, 44, 200, 200]
    sockets = [_post(server.base, "/api/tts", body) for _ in thresholds]
    for sock, threshold in zip(sockets, thresholds):
        received = _read_until(sock, lambda r, t=threshold: _body_bytes(r) > t)
        assert received.startswith(b"HTTP/1.1 200") and b"RIFF" in received
        sock.close()
    assert _wait_for(_settled(server.service, log, lines_before, len(thresholds))), server.service.synthesis.admission.held
    lines = _log_lines(log)[lines_before:]
    assert [line["outcome"] for line in lines] == ["cancelled"] * len(thresholds), lines
    assert all(line["status"] == 499 for line in lines)
    assert server.service.synthesis._queue.waiting == 0
    assert _wait_for(spy.idle)  # a request the worker was decoding stops at its next step or chunk
    assert spy.served() == 0 and all(isinstance(o, SynthesisCancelled) for o in spy.outcomes), spy.outcomes
    started = time.perf_counter()
    answer = _post(server.base, "/api/tts", {**body, "text": "你好。", "stream": False})
    reply = _read_until(answer, lambda r: False)  # to the end: the server closes the connection
    print(f"\nthe next request after {len(thresholds)} abandoned streams: {time.perf_counter() - started:.2f} s")
    assert reply.startswith(b"HTTP/1.1 200") and spy.served() == 1
    assert _log_lines(log)[-1]["outcome"] == "ok"


def test_rest_calls_dropped_while_they_wait_or_run_are_cancelled(live, monkeypatch):
    server, speaker_id, log = live
    spy = OutcomeSpy(monkeypatch, server.service.pipeline())
    lines_before = len(_log_lines(log))
    body = {"text": LONG_TEXT, "speaker_id": speaker_id, "language": "zh", "options": SPOKEN}
    sockets = [_post(server.base, "/api/tts", body) for _ in range(4)]  # two served together, two waiting
    assert _wait_for(lambda: spy.entered >= 1)
    for sock in sockets:
        sock.close()
    assert _wait_for(_settled(server.service, log, lines_before, len(sockets))), server.service.synthesis.admission.held
    assert [line["outcome"] for line in _log_lines(log)[lines_before:]] == ["cancelled"] * len(sockets)
    assert _wait_for(spy.idle) and spy.served() == 0, spy.outcomes


PAGE_INPUTS = {
    "synthesize": lambda voice: [voice, LONG_TEXT, "zh", 5, 1.0, 1.0, 1.0, "cut5", 4, False, None],
    "synthesize_stream": lambda voice: [voice, LONG_TEXT, "zh", 5, 1.0, 1.0, 1.0, "cut5", 4, False, None],
    "compare": lambda voice: [LONG_TEXT, "zh", [voice, voice]],
}


def _page_event(base: str, api_name: str, data: list) -> socket.socket:
    """Join the page's queue as the browser does, and open its event stream (a raw socket to close)."""
    import httpx

    config = httpx.get(base + "/config", timeout=30).json()
    fn_index = next((d["id"] for d in config["dependencies"] if d.get("api_name") == api_name), None)
    if fn_index is None:
        pytest.skip(f"the page has no /{api_name} here (the live player needs ffmpeg)")
    session = f"hangup{time.monotonic_ns()}"
    joined = httpx.post(f"{base}{config['api_prefix']}/queue/join", timeout=30, json={
        "data": data, "event_data": None, "fn_index": fn_index, "trigger_id": None, "session_hash": session})
    assert joined.status_code == 200, joined.text
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=120)
    sock.sendall(f"GET {config['api_prefix']}/queue/data?session_hash={session} HTTP/1.1\r\nHost: {host}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    return sock


@pytest.mark.parametrize("api_name", list(PAGE_INPUTS))
def test_a_page_closed_during_its_synthesis_cancels_it(live, monkeypatch, api_name):
    server, speaker_id, log = live
    spy = OutcomeSpy(monkeypatch, server.service.pipeline())
    lines_before = len(_log_lines(log))
    sock = _page_event(server.base, api_name, PAGE_INPUTS[api_name](speaker_id))
    assert b"process_starts" in _read_until(sock, lambda r: b"process_starts" in r)
    assert _wait_for(lambda: spy.entered >= 1)  # the models are at it
    sock.close()  # the visitor closes the tab
    voices = 2 if api_name == "compare" else 1
    assert _wait_for(_settled(server.service, log, lines_before, voices)), server.service.synthesis.admission.held
    assert [line["outcome"] for line in _log_lines(log)[lines_before:]] == ["cancelled"] * voices
    assert _wait_for(spy.idle) and spy.served() == 0, spy.outcomes
