"""The page shows speaker similarity and the quality check: the Synthesize tab's line, the checkbox, Compare."""

from __future__ import annotations

import json

import gradio as gr
from test_quality_service import TEXT, ScriptedWhisper, _checked_service
from test_service import _wav
from voice_studio.ui.feedback import stage_message
from voice_studio.ui.strings import say


def _handler(app: gr.Blocks, name: str):
    """The function behind the event whose handler is called ``name`` (as the page's button calls it)."""
    return next(block_fn.fn for block_fn in app.fns.values() if getattr(block_fn.fn, "__name__", "") == name)


def _app(service):
    from voice_studio.ui import build_app

    return build_app(service, lambda: None)


def _no_progress(*args, **kwargs) -> None:
    pass


def test_the_synthesize_handler_reports_similarity_seed_and_the_check(tmp_path):
    service, pipeline, speaker_id = _checked_service(tmp_path, ScriptedWhisper("错。", TEXT))
    synthesize = _handler(_app(service), "synthesize")
    clip, line, history = synthesize(speaker_id, TEXT, "zh", 15, 1.0, 1.0, 1.0, "cut1", 8, True, None,
                                     request=None, progress=_no_progress)
    assert clip[0] == 32000 and len(history) == 1 and pipeline.seeds == [8, 9]
    assert "real-time factor" in line and say("msg_similarity_na", "en") in line and "seed 9" in line
    assert say("msg_quality", "en", cer=0.0, tries=2) in line
    _, plain_line, _ = synthesize(speaker_id, TEXT, "zh", 15, 1.0, 1.0, 1.0, "cut1", 8, False, None,
                                  request=None, progress=_no_progress)
    assert "seed 8" in plain_line and "quality check" not in plain_line


def test_with_the_check_ticked_the_live_button_gives_the_whole_clip(tmp_path):
    service, pipeline, speaker_id = _checked_service(tmp_path, ScriptedWhisper("错。", TEXT))
    live = _handler(_app(service), "synthesize_live")
    outputs = list(live(speaker_id, TEXT, "zh", 15, 1.0, 1.0, 1.0, "cut1", 8, True, None,
                        request=None, progress=_no_progress))
    assert len(outputs) == 1 and pipeline.seeds == [8, 9]  # no live pieces: a played take cannot be retracted
    live_piece, clip, line, _ = outputs[0]
    assert isinstance(live_piece, type(gr.skip())) and clip[0] == 32000 and "seed 9" in line


def test_the_live_path_shows_the_similarity_line_too(tmp_path):
    service, pipeline, speaker_id = _checked_service(tmp_path, ScriptedWhisper(TEXT))
    live = _handler(_app(service), "synthesize_live")
    *_, last = live(speaker_id, TEXT, "zh", 15, 1.0, 1.0, 1.0, "cut1", 4, False, None, request=None,
                    progress=_no_progress)
    assert pipeline.seeds == [4] and say("msg_similarity_na", "en") in last[2] and "seed 4" in last[2]


def test_the_checkbox_follows_the_servers_default(tmp_path):
    for default in (False, True):
        service, _, _ = _checked_service(tmp_path / str(default), ScriptedWhisper(TEXT), quality_check_default=default)
        boxes = [block for block in _app(service).blocks.values()
                 if isinstance(block, gr.Checkbox) and getattr(block.label, "key", None) == "quality_check"]
        assert len(boxes) == 1 and boxes[0].value is default


def test_compare_shows_each_voices_similarity_and_ratings_record_it(tmp_path):
    service, _, first = _checked_service(tmp_path, ScriptedWhisper(TEXT), ratings_path=tmp_path / "ratings.sqlite")
    second = service.add_speaker(_wav(), "你好。", "zh", "Second", session=None).id
    pipeline = service.pipeline()
    conditioning = {id(service.library.conditioning(voice, prepare=pipeline.prepare_speaker, weights_key=pipeline.weights_key)):
                    score for voice, score in ((first, 0.8123), (second, None))}  # the library hands out these objects
    service.synthesis.scorer.score = lambda pipeline, speaker, result: conditioning[id(speaker)]
    app = _app(service)
    *clips, compared = _handler(app, "compare")(TEXT, "zh", [first, second], request=None, progress=_no_progress)
    assert compared["similarities"] == [0.8123, None]
    shown = _handler(app, "show_compared")(compared, request=None)
    rating_labels = [update["label"] for update in shown[4:6]]  # the rating right under each clip
    assert rating_labels == [f"Rating · {say('msg_similarity', 'en', value=0.8123)}",
                             f"Rating · {say('msg_similarity_na', 'en')}"]
    _handler(app, "save_ratings")(None, compared, 4, 2, 3, 3, "", "", "", "")
    settings = [json.loads(row[8]) for row in service.ratings.rows()]
    assert [entry["similarity"] for entry in settings] == [0.8123, None]


def test_a_retry_reads_as_a_step_in_both_languages():
    message = "quality check: error rate 0.45, try 2 of 3"
    assert stage_message(message, "en") == "Quality check: error rate 0.45, another take (2 of 3)"
    assert stage_message(message, "zh") == say("progress_retry", "zh", cer="0.45", number=2, total=3)
