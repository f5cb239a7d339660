"""SoVITS v2ProPlus training against the official reference in ``training/v2ProPlus/``.

The same checks as ``test_training_s2.py`` for the SV-conditioned generator (sv_emb, PReLU,
ge_to512) and the seven-period discriminator, plus the v2ProPlus export's header bytes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from s2_replay_checks import ReplayChecks, load_reference

from gsv_core.checkpoints import read_sovits_checkpoint
from gsv_core.models.sovits import load_sovits
from gsv_core.training.discriminator import MultiPeriodDiscriminator
from gsv_core.training.s2_checkpoints import save_discriminator_weights, save_sovits_weights
from gsv_core.training.s2_model import load_trainable_sovits
from gsv_core.versions import VERSIONS


@pytest.fixture(scope="module")
def pro_reference(reference_dir: Path) -> Path:
    folder = reference_dir / "training" / "v2ProPlus"
    if not (folder / "s2_step.json").exists():
        pytest.skip(f"no v2ProPlus SoVITS training reference at {folder}")
    return folder


class TestV2ProPlusReplay(ReplayChecks):
    discriminators = 8  # the scale discriminator and periods 2, 3, 5, 7, 11, 17, 23

    @pytest.fixture(scope="class")
    @classmethod
    def reference_folder(cls, pro_reference: Path) -> Path:
        return pro_reference

    @pytest.mark.slow
    def test_the_sv_projection_trains(self, replayed):
        assert any(key.startswith("step1/param_G/sv_emb.") for key in replayed)
        assert any(key.startswith("step1/param_G/ge_to512.") for key in replayed)


def test_export_has_the_v2proplus_header_and_synthesizes(pro_reference, tmp_path):
    """The official savee writes b"06" over the zip magic; our loader detects v2ProPlus from it and synthesizes."""
    record, _ = load_reference(pro_reference)
    full = pro_reference / "models" / "s2G-train-tiny-full.pth"
    generator = load_trainable_sovits(full, record["config"])
    path = save_sovits_weights(generator, tmp_path / "tiny_e1_s2.pth", record["config"], epoch=1, steps=2)
    assert path.read_bytes()[:2] == VERSIONS["v2ProPlus"].header == b"06"
    raw = read_sovits_checkpoint(path)
    assert raw.version.name == "v2ProPlus" and raw.info == "1epoch_2iteration"
    source = torch.load(full, weights_only=True)["weight"]
    assert list(raw.weights) == [key for key in source if not key.startswith("enc_q.")]
    assert all(torch.equal(raw.weights[key], source[key].float()) for key in raw.weights)
    model = load_sovits(path)
    generator_noise = torch.Generator().manual_seed(0)
    spec, sv = torch.rand(1, 1025, 50, generator=generator_noise), torch.randn(1, 20480, generator=generator_noise)
    audio = model.decode_with_reference(
        torch.randint(0, 1024, (1, 1, 15)), torch.randint(0, 700, (1, 10)), spec, sv, generator=generator_noise
    )
    assert audio.shape == (1, 1, 30 * 640) and torch.isfinite(audio).all()


def test_seven_period_discriminator_round_trips(pro_reference, tmp_path):
    weights = torch.load(pro_reference / "models" / "s2D-train-tiny.pth", weights_only=True)["weight"]
    discriminator = MultiPeriodDiscriminator.from_state_dict(weights, VERSIONS["v2ProPlus"].discriminator_periods)
    assert [d.period for d in discriminator.discriminators[1:]] == [2, 3, 5, 7, 11, 17, 23]
    saved = torch.load(save_discriminator_weights(discriminator, tmp_path / "D.pth"), weights_only=True)["weight"]
    assert list(saved) == list(weights) and all(torch.equal(saved[key], weights[key]) for key in weights)
