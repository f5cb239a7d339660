"""SpeakerConditioning refuses values that would break synthesis, whatever their source."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gsv_core import conditioning as c
from gsv_core.conditioning import ConditioningError, ConditioningLimits, SpeakerConditioning
from gsv_core.versions import VERSIONS


def _arrays(version: str = "v2Pro", tokens: int = 9, phones: int = 5, frames: int = 6) -> dict:
    pro = VERSIONS[version].uses_sv
    return {
        "version": version,
        "ref_spec": np.zeros((1, 1025, frames), np.float32),
        "global_embedding": np.zeros((1, 1024 if pro else 512, 1), np.float32),
        "prompt_semantic": np.arange(tokens) % 1024,
        "prompt_phones": np.arange(phones) % 732,
        "prompt_bert": np.zeros((1024, phones), np.float32),
        "sv_embedding": np.zeros((1, 20480), np.float32) if pro else None,
    }


def test_the_widths_match_the_model_config_and_the_goldens(reference_dir):
    from gsv_core.models.sovits import config

    assert (c.CODEBOOK_SIZE, c.NUM_SYMBOLS_V2, c.SV_DIM, c.GIN_CHANNELS) == (
        config.CODEBOOK_SIZE, config.NUM_SYMBOLS_V2, config.SV_DIM, config.MRTE_WIDTH)
    for version, info in VERSIONS.items():
        shapes = json.loads((reference_dir / "shapes" / f"s2_{version}.json").read_text())
        assert shapes["config"]["model"]["gin_channels"] == (c.GIN_CHANNELS_SV if info.uses_sv else c.GIN_CHANNELS)


def test_default_limits_fit_a_ten_second_reference():
    limits = ConditioningLimits()
    assert limits.max_prompt_tokens >= (10 + 0.3) * 25  # 25 Hz codes of 10 s plus HuBERT's padding
    for version in VERSIONS.values():
        assert limits.max_ref_frames >= 10 * version.audio.sampling_rate / version.audio.hop_length
    for version in VERSIONS:
        SpeakerConditioning(**_arrays(version, tokens=250, phones=400, frames=500)).validate(limits)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"version": "v3"}, "unknown model version"),
        ({"version": ["v2"]}, "must be strings"),
        ({"prompt_text": 5}, "must be strings"),
        ({"metadata": []}, "metadata must be a dict"),
        ({"prompt_semantic": np.array([0, 1024])}, r"prompt_semantic holds values in \[0, 1024\]"),
        ({"prompt_semantic": np.array([-1, 3])}, "prompt_semantic holds values"),
        ({"prompt_semantic": np.array([1.5, 2.0])}, "prompt_semantic must hold integers"),
        ({"prompt_semantic": np.array([], np.int64)}, "prompt_semantic is empty"),
        ({"prompt_phones": np.array([1, 2, 3, 4, 732])}, "prompt_phones holds values"),
        ({"prompt_bert": np.zeros((1024, 4), np.float32)}, r"prompt_bert must have shape \(1024, 5\)"),
        ({"prompt_bert": np.full((1024, 5), np.nan, np.float32)}, "prompt_bert contains NaN"),
        ({"prompt_bert": None}, "come together"),
        ({"ref_spec": np.zeros((1, 1024, 6), np.float32)}, "ref_spec must be"),
        ({"ref_spec": np.zeros((2, 1025, 6), np.float32)}, "ref_spec must be"),
        ({"ref_spec": np.zeros((1, 1025, 0), np.float32)}, "ref_spec must be"),
        ({"ref_spec": np.full((1, 1025, 6), np.inf, np.float32)}, "ref_spec contains NaN"),
        ({"global_embedding": np.zeros((1, 1024, 2), np.float32)}, "global_embedding must be"),
        ({"global_embedding": np.full((1, 1024, 1), np.nan, np.float32)}, "global_embedding contains NaN"),
        ({"sv_embedding": np.zeros((1, 512), np.float32)}, r"sv_embedding must have shape \(1, 20480\)"),
        ({"sv_embedding": np.full((1, 20480), -np.inf, np.float32)}, "sv_embedding contains NaN"),
        ({"ref_spec": np.zeros(6, np.float32)}, "'ref_spec' must have 3 dims"),
        ({"ref_spec": np.full((1, 1025, 6), "x")}, "ref_spec must hold real numbers"),
    ],
)
def test_construction_refuses_bad_values(change, message):
    with pytest.raises(ConditioningError, match=message):
        SpeakerConditioning(**{**_arrays(), **change})


@pytest.mark.parametrize(
    "arrays, message",
    [
        (_arrays(tokens=301), "prompt_semantic has 301 tokens, at most 300"),
        (_arrays(phones=513), "prompt_phones has 513 phones, at most 512"),
        (_arrays(frames=751), "ref_spec has 751 frames, at most 750"),
        ({**_arrays(), "global_embedding": np.zeros((1, 64, 1), np.float32)}, r"must be \(1, 1024, 1\) for v2Pro"),
        ({**_arrays("v2"), "global_embedding": np.zeros((1, 1024, 1), np.float32)}, r"must be \(1, 512, 1\) for v2"),
        ({**_arrays(), "sv_embedding": None}, "sv_embedding must be present for v2Pro"),
        ({**_arrays("v2"), "sv_embedding": np.zeros((1, 20480), np.float32)}, "sv_embedding must be absent for v2"),
    ],
)
def test_validate_refuses_what_the_released_models_cannot_take(arrays, message):
    conditioning = SpeakerConditioning(**arrays)  # tiny test models may build such a conditioning
    with pytest.raises(ConditioningError, match=message):
        conditioning.validate()


def test_limits_are_configurable():
    conditioning = SpeakerConditioning(**_arrays(tokens=400))
    assert conditioning.validate(ConditioningLimits(max_prompt_tokens=400)) is conditioning
    with pytest.raises(ConditioningError, match="at most 300"):
        conditioning.validate()


# -- several references ----------------------------------------------------------------------

def _multi(references: int = 3, version: str = "v2Pro") -> dict:
    arrays = _arrays(version)
    rng = np.random.default_rng(references)
    per_reference = rng.standard_normal((references, *arrays["global_embedding"].shape)).astype(np.float32)
    return {**arrays, "reference_embeddings": per_reference, "global_embedding": per_reference.mean(0)}


def test_several_references_round_trip(tmp_path):
    conditioning = SpeakerConditioning(**_multi(3)).validate()
    assert conditioning.reference_count == 3 and conditioning.per_reference_embeddings.shape == (3, 1, 1024, 1)
    conditioning.save(tmp_path / "multi")
    loaded = SpeakerConditioning.load(tmp_path / "multi")
    np.testing.assert_array_equal(loaded.reference_embeddings, conditioning.reference_embeddings)
    np.testing.assert_array_equal(loaded.global_embedding, conditioning.global_embedding)
    SpeakerConditioning(**_arrays()).save(tmp_path / "multi")  # saving a single reference over it drops the file
    assert not (tmp_path / "multi" / "reference_embeddings.npy").exists()


def test_a_stored_single_reference_voice_still_loads(tmp_path):
    single = SpeakerConditioning(**_arrays())
    single.save(tmp_path / "old")
    assert {p.name for p in (tmp_path / "old").iterdir()} == {"conditioning.json"} | {
        f"{n}.npy" for n in ("prompt_semantic", "prompt_phones", "prompt_bert", "ref_spec", "global_embedding",
                             "sv_embedding")}
    loaded = SpeakerConditioning.load(tmp_path / "old").validate()
    assert loaded.reference_embeddings is None and loaded.reference_count == 1
    np.testing.assert_array_equal(loaded.per_reference_embeddings, single.global_embedding[None])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: {**a, "reference_embeddings": a["reference_embeddings"][:1],
                    "global_embedding": a["reference_embeddings"][0]}, "references >= 2"),
        (lambda a: {**a, "reference_embeddings": a["reference_embeddings"][:, :, :512]}, "reference_embeddings must be"),
        (lambda a: {**a, "reference_embeddings": a["reference_embeddings"][0]}, "must have 4 dims"),
        (lambda a: {**a, "global_embedding": a["global_embedding"] + 1e-3}, "not the mean of reference_embeddings"),
        (lambda a: {**a, "reference_embeddings": np.full_like(a["reference_embeddings"], np.nan)},
         "reference_embeddings contains NaN"),
    ],
)
def test_construction_refuses_inconsistent_references(change, message):
    with pytest.raises(ConditioningError, match=message):
        SpeakerConditioning(**change(_multi()))


def test_validate_limits_the_number_of_references():
    assert c.MAX_REFERENCES == ConditioningLimits().max_references == 8
    SpeakerConditioning(**_multi(8)).validate()
    too_many = SpeakerConditioning(**_multi(9))
    with pytest.raises(ConditioningError, match="9 references, at most 8"):
        too_many.validate()
    assert too_many.validate(ConditioningLimits(max_references=9)) is too_many
    with pytest.raises(ConditioningError, match=r"must be \(1, 512, 1\) for v2"):
        SpeakerConditioning(**{**_multi(2), "version": "v2", "sv_embedding": None}).validate()
