"""A speaker's conditioning carries the verification embedding similarity needs, so scoring an output
never reads the reference again; v2 with an SV model gets it too, v2 without one gets None."""

import numpy as np
import pytest

from gsv_core.audio import load_reference_audio
from gsv_core.conditioning import SpeakerConditioning
from gsv_core.engine.pipeline import VoicePipeline
from gsv_core.engine.requests import SynthesisOptions
from gsv_core.features.similarity import output_similarity, reference_embedding

TRANSCRIPT = "今天天气不错，我们一起去公园散步吧。"


def _pipeline(reference_dir, sovits="s2G-tiny-v2.pth", sv=True):
    models = reference_dir / "models"
    return VoicePipeline.from_paths(models / "s1-tiny.ckpt", models / sovits, models / "chinese-hubert-tiny",
                                    models / "chinese-roberta-tiny", models / "sv-eres2netv2-tiny.ckpt" if sv else None,
                                    official_data=reference_dir / "data")


@pytest.fixture(scope="module")
def v2_with_sv(reference_dir):
    return _pipeline(reference_dir)


def test_the_conditioning_holds_the_references_verification_embedding(v2_with_sv, reference_dir, tmp_path):
    reference = reference_dir / "cases" / "v2_zh" / "ref.wav"
    speaker = v2_with_sv.prepare_speaker(reference, TRANSCRIPT, "zh")
    samples, rate = load_reference_audio(reference)
    expected = reference_embedding(v2_with_sv.speaker_encoder, samples, rate, v2_with_sv.sample_rate)
    np.testing.assert_allclose(speaker.verification_embedding, expected, rtol=0, atol=1e-6)
    assert speaker.sv_embedding is None  # v2 takes no SV features: only scoring uses the SV model
    speaker.save(tmp_path / "saved")
    np.testing.assert_array_equal(SpeakerConditioning.load(tmp_path / "saved").verification_embedding,
                                  speaker.verification_embedding)


def test_similarity_scores_from_the_stored_embedding_without_the_audio(v2_with_sv, reference_dir, monkeypatch):
    speaker = v2_with_sv.prepare_speaker(reference_dir / "cases" / "v2_zh" / "ref.wav", TRANSCRIPT, "zh")
    result = v2_with_sv.synthesize("你好，世界。", "zh", speaker, SynthesisOptions(top_k=1, seed=2))
    import gsv_core.audio as audio

    monkeypatch.setattr(audio, "load_reference_audio", lambda *a, **k: pytest.fail("the reference was read again"))
    score = v2_with_sv.similarity(speaker, result.audio, result.sample_rate)
    expected = output_similarity(v2_with_sv.speaker_encoder, speaker.verification_embedding, result.audio,
                                 result.sample_rate)
    assert score == expected and -1.0 <= score <= 1.0


def test_without_an_sv_model_there_is_no_similarity(reference_dir):
    pipeline = _pipeline(reference_dir, sv=False)
    speaker = pipeline.prepare_speaker(reference_dir / "cases" / "v2_zh" / "ref.wav", TRANSCRIPT, "zh")
    assert speaker.verification_embedding is None and pipeline.speaker_encoder is None
    assert pipeline.similarity(speaker, np.zeros(32000, np.float32), 32000) is None


def test_conditionings_stored_before_the_embedding_existed_get_a_new_key(reference_dir):
    from gsv_core import weights_key as keys

    models = reference_dir / "models"
    files = [models / "s1-tiny.ckpt"]
    current = keys.weights_key("v2", files)
    keys.CONDITIONING_FORMAT, saved = keys.CONDITIONING_FORMAT - 1, keys.CONDITIONING_FORMAT
    try:
        older = keys.weights_key("v2", files)
    finally:
        keys.CONDITIONING_FORMAT = saved
    assert older != current
