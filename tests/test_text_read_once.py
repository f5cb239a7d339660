"""A request's text is read once: the desk checks its limits on the pipeline's PreparedText and the
request carries it, so the frontend runs once per request (it used to run in the desk and again in
the pipeline), for a plain, a streamed and a Compare request alike."""

from gsv_core.engine.requests import SynthesisOptions
from test_quality_service import _tiny_pipeline, _tiny_service


def test_the_frontend_runs_once_per_request(tmp_path, reference_dir, monkeypatch):
    pipeline = _tiny_pipeline(reference_dir, "s2G-tiny-v2.pth")
    service, speaker_id = _tiny_service(tmp_path, reference_dir, pipeline)
    calls = []
    inner = type(pipeline.frontend).prepare
    monkeypatch.setattr(type(pipeline.frontend), "prepare",
                        lambda self, text, *args, **kwargs: calls.append(text) or inner(self, text, *args, **kwargs))
    options = SynthesisOptions(top_k=1, seed=3)
    text = "你好，世界。今天天气不错。"
    result = service.synthesis.synthesize(text, speaker_id, "zh", options, None)
    assert calls == [text] and result.duration_s > 0
    calls.clear()
    results = service.synthesis.synthesize_each(text, [speaker_id, speaker_id], "zh", options, None)
    assert calls == [text, text] and len(results) == 2  # one read per request of the Compare batch
    calls.clear()
    pieces = list(service.synthesis.synthesize_stream(text, speaker_id, "zh", options, None, mode="fragments"))
    assert calls == [text] and pieces
