"""The decoder stage is chosen by the version's decoder family: every registered version has one,
an unknown family is refused by name, and every route (whole, chunks) goes through the one stage."""

import dataclasses

import pytest
import torch

from gsv_core.engine.decoder_stage import DECODER_STAGES, SovitsStage, decoder_stage_for
from gsv_core.versions import VERSIONS


def test_every_version_names_a_registered_decoder_family():
    assert {info.decoder for info in VERSIONS.values()} <= set(DECODER_STAGES)
    assert all(info.decoder == "vits" for info in VERSIONS.values())


def test_unknown_decoder_family_is_refused_by_name():
    future = dataclasses.replace(VERSIONS["v2"], name="v4", decoder="cfm-vocoder")
    with pytest.raises(ValueError, match="v4 uses the 'cfm-vocoder' decoder"):
        decoder_stage_for(future, torch.nn.Identity(), 32000, torch.device("cpu"), False, None)


def test_pipeline_decodes_every_route_through_its_version_stage(reference_dir):
    from gsv_core.engine.pipeline import VoicePipeline

    models = reference_dir / "models"
    pipeline = VoicePipeline.from_paths(models / "s1-tiny.ckpt", models / "s2G-tiny-v2.pth", models / "chinese-hubert-tiny",
                                        models / "chinese-roberta-tiny", official_data=reference_dir / "data")
    stage = pipeline._decoder
    assert isinstance(stage, SovitsStage)
    assert pipeline._gpt.decoder is stage  # chunks mode's streams come from the same stage
    assert stage.mute_similarity is not None
