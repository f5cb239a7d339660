"""ZeroGPU, checked on the CPU with a stand-in ``spaces`` module: handlers get a GPU with a duration
from the text, and synthesis runs inside the call, with no worker thread crossing the boundary."""

import sys
import threading
import types

import pytest
from test_service import FakePipeline, _service, _wav

from gsv_core.engine.requests import SynthesisOptions
from voice_studio.zerogpu import MAX_GPU_S, gpu_task, on_zero_gpu, synthesis_gpu_seconds


@pytest.fixture
def fake_spaces(monkeypatch):
    calls = []

    def gpu(duration):
        def decorate(function):
            def on_gpu(*args, **kwargs):
                calls.append(duration(*args, **kwargs) if callable(duration) else duration)
                return function(*args, **kwargs)
            return on_gpu
        return decorate

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=gpu))
    return calls


def test_the_duration_grows_with_the_text_and_the_voices_and_is_capped():
    assert synthesis_gpu_seconds("你好") < synthesis_gpu_seconds("你好" * 40) < synthesis_gpu_seconds("你好" * 40, voices=3)
    assert synthesis_gpu_seconds("x" * 10_000) == MAX_GPU_S and synthesis_gpu_seconds(None) > 0
    assert on_zero_gpu({"SPACES_ZERO_GPU": "true"}) and not on_zero_gpu({})


def test_a_gpu_task_asks_for_the_duration_of_its_own_call(fake_spaces):
    task = gpu_task(lambda text: text.upper(), lambda text: synthesis_gpu_seconds(text))
    assert task("hello") == "HELLO" and fake_spaces == [synthesis_gpu_seconds("hello")]


def test_served_directly_no_queue_thread_is_started(tmp_path):
    pipeline = FakePipeline()
    service = _service(tmp_path, pipeline, serve_directly=True)
    speaker = service.add_speaker(_wav(), "你好。", "zh", "Direct", session=None)
    before = {t.name for t in threading.enumerate()}
    results = service.synthesis.synthesize_each("你好", [speaker.id, speaker.id], "zh", SynthesisOptions(), None)
    assert len(results) == 2 and pipeline.batches == [2]  # Compare's voices as one batch, inside the call
    assert "synthesis-queue" not in {t.name for t in threading.enumerate()} - before
    pieces = list(service.synthesis.synthesize_stream("你好", speaker.id, "zh", SynthesisOptions(), None))
    assert pieces is not None


def test_the_page_handlers_ask_for_a_gpu_by_text_length(tmp_path, fake_spaces, reference_dir):
    from voice_studio.ui import build_app

    service = _service(tmp_path)
    app = build_app(service, lambda: None)
    synthesize = next(fn for fn in app.fns.values() if getattr(fn, "api_name", None) == "synthesize")
    assert synthesize.fn.__name__ == "on_gpu"  # wrapped by the stand-in spaces.GPU
