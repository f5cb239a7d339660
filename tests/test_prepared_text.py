"""Text is read once: ``prepare_text`` gives what synthesis would read, a request carrying it is not
read again, a prepared text must belong to its request, and BERT's positions are enforced."""

import numpy as np
import pytest

from gsv_core.engine.requests import SynthesisOptions, SynthesisRequest
from gsv_core.text.errors import TextError
from test_pipeline_stream import pipeline, speaker  # noqa: F401 - the tiny pipeline and a voice

GREEDY = SynthesisOptions(top_k=1, split_method="cut5", seed=3)
TEXT = "今天天气不错。我们去公园吧！"


def test_prepared_text_is_what_the_frontend_reads(pipeline):
    prepared = pipeline.prepare_text(TEXT, "zh", GREEDY)
    expected = pipeline.frontend.prepare(TEXT, "zh", "v2", "cut5")
    assert [s.phone_ids for s in prepared.sequences] == [s.phone_ids for s in expected] and len(expected) == 2
    assert prepared.phone_counts == [len(s.phone_ids) for s in expected]
    assert prepared.segment_chars == [len(s.norm_text) for s in expected]
    assert prepared.max_bert_chars == pipeline.bert.model.config.max_position_embeddings - 2


def test_a_request_with_its_prepared_text_is_not_read_again(pipeline, speaker, monkeypatch):
    alone = pipeline.synthesize(TEXT, "zh", speaker, GREEDY)
    prepared = pipeline.prepare_text(TEXT, "zh", GREEDY)
    calls = []
    inner = type(pipeline.frontend).prepare
    monkeypatch.setattr(type(pipeline.frontend), "prepare", lambda self, *a, **k: calls.append(a) or inner(self, *a, **k))
    outcome = pipeline.synthesize_many([SynthesisRequest(TEXT, "zh", speaker, GREEDY, prepared_text=prepared)])[0]
    assert calls == []
    np.testing.assert_array_equal(outcome.audio, alone.audio)


def test_a_prepared_text_of_another_request_is_refused(pipeline, speaker):
    other = pipeline.prepare_text("你好。", "zh", GREEDY)
    outcome = pipeline.synthesize_many([SynthesisRequest(TEXT, "zh", speaker, GREEDY, prepared_text=other)])[0]
    assert isinstance(outcome, ValueError) and "another text" in str(outcome)


def test_a_segment_longer_than_berts_positions_is_refused_by_synthesis(pipeline, speaker):
    limit = pipeline.bert.max_chars
    long_chinese = "天" * (limit + 5)  # one segment (cut0 does not split) that BERT reads
    prepared = pipeline.prepare_text(long_chinese, "zh", SynthesisOptions(split_method="cut0"))
    assert prepared.bert_chars == (len(prepared.sequences[0].norm_text),) and prepared.bert_chars[0] > limit
    with pytest.raises(TextError, match=f"reads at most {limit}"):
        pipeline.synthesize(long_chinese, "zh", speaker, SynthesisOptions(split_method="cut0", top_k=1, seed=1))
    english = pipeline.prepare_text("word " * (limit // 4), "en", SynthesisOptions(split_method="cut0"))
    assert english.bert_chars == (0,)  # BERT never reads English: zeros, no position limit
    english.check_positions()
