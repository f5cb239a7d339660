"""Voice similarity: cosine of ERes2NetV2 verification embeddings (tiny official-format checkpoint)."""

from __future__ import annotations

import numpy as np
import pytest

from gsv_core.features.sv import SpeakerEncoder
from gsv_core.features.similarity import cosine_similarity, speaker_embedding, to_sv_input, voice_similarity


@pytest.fixture(scope="module")
def encoder(reference_models_dir):
    return SpeakerEncoder.from_checkpoint(reference_models_dir / "sv-eres2netv2-tiny.ckpt")


def _voice(rate: int, pitch: float, seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """A buzzy vowel-like signal: harmonics of ``pitch`` with a slow vibrato and a little noise."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * pitch * (t + 0.002 * np.sin(2 * np.pi * 5 * t))
    wave = sum(np.sin(k * phase) / k for k in range(1, 12))
    noise = np.random.default_rng(seed).normal(0, 0.02, t.size)
    return (0.3 * wave / np.abs(wave).max() + noise).astype(np.float32)


def test_same_audio_scores_one_and_different_audio_less(encoder):
    reference = _voice(16000, 120)
    assert voice_similarity(encoder, reference, reference, 16000) == pytest.approx(1.0, abs=1e-6)
    other = _voice(16000, 310, seed=1)
    forward = voice_similarity(encoder, reference, other, 16000)
    backward = voice_similarity(encoder, other, reference, 16000)
    assert -1.0 <= forward < 0.999
    assert forward == pytest.approx(backward, abs=1e-9)


def test_output_is_resampled_to_16k_like_the_pipeline(encoder):
    reference = _voice(16000, 120)
    at_32k = _voice(32000, 120)
    assert to_sv_input(at_32k, 32000).shape == (32000,)
    assert speaker_embedding(encoder, reference, 16000).shape == (192,)
    resampled = voice_similarity(encoder, reference, at_32k, 32000)
    # the tiny random network puts every input close together (0.993 for another pitch):
    # the same signal through the resampler must still come out closer than that
    assert resampled > 0.999 > voice_similarity(encoder, reference, _voice(32000, 310, seed=1), 32000)


def test_no_encoder_means_not_available_and_short_clips_are_refused(encoder):
    assert voice_similarity(None, np.zeros(16000), np.zeros(32000), 32000) is None
    with pytest.raises(ValueError, match="too short"):
        voice_similarity(encoder, _voice(16000, 120), np.zeros(100, np.float32), 32000)


def test_cosine_similarity_edges():
    a = np.array([1.0, 0.0, 0.0])
    assert cosine_similarity(a, -a) == -1.0 and cosine_similarity(a, np.zeros(3)) == 0.0
    assert cosine_similarity(a, np.array([1.0, 1.0, 0.0])) == pytest.approx(2 ** -0.5)
    with pytest.raises(ValueError, match="widths"):
        cosine_similarity(a, np.zeros(2))
