"""SoVITS (s2) training against the official training reference (v2), and the s2 training files.

The replay (two official D + G steps with the recorded draws injected, ``TestV2Replay``) runs
once; it takes tens of seconds on a busy two-core machine, so those tests are marked slow.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from s2_replay_checks import ReplayChecks, load_reference
from s2_tiny import tiny_config, tiny_utterances, write_tiny_pretrained

from gsv_core.checkpoints import CheckpointError, HParams, read_sovits_checkpoint
from gsv_core.engine.pipeline import VoicePipeline
from gsv_core.engine.requests import SynthesisOptions
from gsv_core.models.sovits import load_sovits
from gsv_core.models.sovits.loader import official_to_ours, ours_to_official
from gsv_core.training.atomic import write_atomically
from gsv_core.training.discriminator import MultiPeriodDiscriminator
from gsv_core.training.random_draws import DrawInjector
from gsv_core.training.s2_checkpoints import save_discriminator_weights, save_sovits_weights
from gsv_core.training.s2_data import bucket_batches, collate
from gsv_core.training.s2_model import load_trainable_sovits
from gsv_core.training.s2_replay import build_reference_trainer, prepared_utterances
from gsv_core.versions import VERSIONS

CHILD = Path(__file__).resolve().parent / "s2_train_child.py"


@pytest.fixture(scope="module")
def v2_reference(reference_dir: Path) -> Path:
    folder = reference_dir / "training"
    if not (folder / "s2_step.json").exists():
        pytest.skip(f"no SoVITS training reference at {folder}")
    return folder


class TestV2Replay(ReplayChecks):
    discriminators = 6  # the scale discriminator and periods 2, 3, 5, 7, 11

    @pytest.fixture(scope="class")
    @classmethod
    def reference_folder(cls, v2_reference: Path) -> Path:
        return v2_reference


def test_untrained_export_equals_the_official_savee_file(v2_reference, tmp_path):
    """Exporting the loaded pretrained generator reproduces the official ``savee`` file of it."""
    record, _ = load_reference(v2_reference)
    generator = load_trainable_sovits(v2_reference / "models" / "s2G-train-tiny-full.pth", record["config"])
    official = read_sovits_checkpoint(v2_reference / "models" / "s2G-train-tiny.pth")
    path = save_sovits_weights(generator, tmp_path / "tiny_e0_s0.pth", record["config"], epoch=0, steps=0)
    assert path.read_bytes()[:2] == b"PK"  # v2: a plain zip, as upstream
    ours = torch.load(path, weights_only=True)
    assert list(ours) == ["weight", "config", "info"] and ours["info"] == official.info == "0epoch_0iteration"
    with torch.serialization.safe_globals([(HParams, "utils.HParams")]):
        official_weights = torch.load(v2_reference / "models" / "s2G-train-tiny.pth", weights_only=True)["weight"]
    assert list(ours["weight"]) == list(official_weights)  # same keys, same order, no enc_q
    for key, tensor in official_weights.items():
        assert ours["weight"][key].dtype == torch.float16
        assert torch.equal(ours["weight"][key], tensor), key
    assert ours["config"].keys() == official.config.keys()  # the run's hps (machine paths differ)
    for section in ("train", "data", "model"):
        assert ours["config"][section].keys() == official.config[section].keys(), section
    assert ours["config"]["model"] == official.config["model"]


def test_exported_generator_loads_strictly_and_synthesizes(v2_reference, tmp_path):
    record, _ = load_reference(v2_reference)
    trainer = build_reference_trainer(v2_reference, record["config"])
    path = save_sovits_weights(trainer.generator, tmp_path / "tiny.pth", record["config"], epoch=1, steps=2)
    model = load_sovits(path)
    assert read_sovits_checkpoint(path).info == "1epoch_2iteration"
    spec = torch.rand(1, 1025, 60, generator=torch.Generator().manual_seed(0))
    audio = model.decode_with_reference(
        torch.randint(0, 1024, (1, 1, 20)), torch.randint(0, 700, (1, 12)), spec, generator=torch.Generator().manual_seed(1)
    )
    assert audio.shape == (1, 1, 40 * 640) and torch.isfinite(audio).all() and audio.abs().max() > 0
    ours = {key: tensor for key, tensor in model.state_dict().items()}
    assert ours["text_encoder.text_embedding.weight"].equal(
        trainer.generator.model.text_encoder.text_embedding.weight.detach().half().float()
    )


@pytest.mark.slow
def test_trained_generator_serves_in_the_voice_pipeline(v2_reference, reference_dir, tmp_path):
    """One training step, the official export, then the app's pipeline speaks a case's text with it."""
    record, _ = load_reference(v2_reference)
    trainer = build_reference_trainer(v2_reference, record["config"])
    utterances = prepared_utterances(dict(np.load(v2_reference / "prepared.npz")), ["utt0", "utt1", "utt2", "utt3"])
    trainer.step(collate(list(utterances.values()), VERSIONS["v2"].audio))
    path = save_sovits_weights(trainer.generator, tmp_path / "voice_e1_s1.pth", record["config"], epoch=1, steps=1)
    models = reference_dir / "models"
    pipeline = VoicePipeline.from_paths(
        models / "s1-tiny.ckpt", path, models / "chinese-hubert-tiny", models / "chinese-roberta-tiny",
        official_data=reference_dir / "data",
    )
    case = reference_dir / "cases" / "v2_zh"
    inputs = json.loads((case / "inputs.json").read_text())["inputs"]
    speaker = pipeline.prepare_speaker(case / "ref.wav", inputs["prompt_text"], "zh")
    result = pipeline.synthesize(inputs["text"], "zh", speaker, SynthesisOptions(top_k=1, split_method="cut0", seed=7))
    assert result.audio.size > 0 and np.isfinite(result.audio).all() and np.abs(result.audio).max() > 0


def test_discriminator_round_trips_the_official_file(v2_reference, tmp_path):
    weights = torch.load(v2_reference / "models" / "s2D-train-tiny.pth", weights_only=True)["weight"]
    discriminator = MultiPeriodDiscriminator.from_state_dict(weights, VERSIONS["v2"].discriminator_periods)
    assert len(discriminator.discriminators) == 6
    saved = torch.load(save_discriminator_weights(discriminator, tmp_path / "D.pth"), weights_only=True)
    assert list(saved) == ["weight"] and list(saved["weight"]) == list(weights)
    assert all(torch.equal(saved["weight"][key], tensor) for key, tensor in weights.items())
    with pytest.raises(ValueError, match="needs 8"):  # v2Pro has two more period discriminators
        MultiPeriodDiscriminator.from_state_dict(weights, VERSIONS["v2ProPlus"].discriminator_periods)


def test_official_names_round_trip_through_ours(v2_reference):
    weights = torch.load(v2_reference / "models" / "s2G-train-tiny-full.pth", weights_only=False)["weight"]
    ours = official_to_ours(weights, keep_posterior=True, keep_weight_norm=True)
    kept = [key for key in weights if "_codebook." not in key or key.endswith("_codebook.embed")]
    assert sorted(ours_to_official(key) for key in ours) == sorted(kept)


def test_loader_keeps_the_posterior_only_when_asked(v2_reference):
    full = v2_reference / "models" / "s2G-train-tiny-full.pth"
    assert load_sovits(full).posterior is None
    model = load_sovits(full, keep_posterior=True)
    saved = torch.load(full, weights_only=False)["weight"]["enc_q.pre.weight"].float()
    assert torch.equal(model.posterior.pre.weight, saved)
    with pytest.raises(CheckpointError, match="posterior encoder"):
        load_sovits(v2_reference / "models" / "s2G-train-tiny.pth", keep_posterior=True)
    record, _ = load_reference(v2_reference)
    with pytest.raises(CheckpointError, match="full pretrained file"):
        load_trainable_sovits(v2_reference / "models" / "s2G-train-tiny.pth", record["config"])


def test_eval_mode_draws_nothing(v2_reference):
    """Training dropouts are the identity in eval mode: inference never touches the RNG through them."""
    model = load_sovits(v2_reference / "models" / "s2G-train-tiny.pth")
    assert model.config.p_dropout == 0.1
    codes, phones, spec = torch.randint(0, 1024, (1, 1, 10)), torch.randint(0, 700, (1, 8)), torch.rand(1, 1025, 30)
    with DrawInjector([], {}):  # any draw would raise
        model.decode_with_reference(codes, phones, spec, noise=torch.zeros(1, 16, 20))


def test_bucket_batches_follow_the_official_sampler():
    lengths = [40] * 6 + [350] * 3 + [10]  # the last is outside every bucket
    batches = bucket_batches(lengths, batch_size=2, epoch=3)
    items = sorted(i for batch in batches for i in batch)
    assert items[:6] == list(range(6)) and len(items) == 10 and set(items[6:]) == {6, 7, 8}  # bucket 2 padded to 4
    assert all(len(batch) == 2 and (max(batch) < 6 or min(batch) >= 6) for batch in batches)
    assert batches == bucket_batches(lengths, batch_size=2, epoch=3) != bucket_batches(lengths, batch_size=2, epoch=4)


def test_collate_sorts_rows_and_pads_like_the_official_loader():
    utterances = tiny_utterances(uses_sv=False)
    batch = collate(utterances, VERSIONS["v2"].audio)
    assert list(batch.names) == ["utt2", "utt1", "utt0"]  # longest spectrogram first
    assert batch.spec_lengths.tolist() == [u.wav.numel() // 640 for u in reversed(utterances)]
    assert batch.spec.shape[-1] == 2 * (batch.spec_lengths.max() // 2 + 1)
    assert batch.ssl_lengths.tolist() == batch.spec_lengths.tolist()  # one replicated frame where short
    assert torch.equal(batch.ssl[1, :, batch.ssl_lengths[1] - 1], utterances[1].ssl[0, :, -1])


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path, monkeypatch):
    target = write_atomically(tmp_path / "state.pt", lambda handle: handle.write(b"old"))

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, lambda handle: handle.write(b"new"))
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["state.pt"]


def _child(workdir: Path, state: Path, steps: int, result: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(workdir), str(state), str(steps), str(result)],
        stdout=subprocess.PIPE, text=True, env=env, **kwargs,
    )


@pytest.mark.slow
def test_killed_run_resumes_to_the_parameters_of_an_uninterrupted_run(tmp_path):
    config = tiny_config("v2")
    config["train"].update(epochs=2, batches_per_epoch=3)  # the kill lands in epoch 2, after an epoch end
    write_tiny_pretrained(tmp_path, config)
    (tmp_path / "config.json").write_text(json.dumps(config))
    total = 6
    straight = _child(tmp_path, tmp_path / "straight.pt", total, tmp_path / "straight_result.pt")
    assert straight.wait(timeout=1200) == 0

    killed = _child(tmp_path, tmp_path / "killed.pt", total, tmp_path / "never.pt")
    for line in killed.stdout:
        if line.strip() == "step 4":
            killed.send_signal(signal.SIGKILL)  # mid-run: while step 5 computes or step 4 saves
            break
    assert killed.wait(timeout=600) == -signal.SIGKILL
    assert not (tmp_path / "never.pt").exists()
    resumed = _child(tmp_path, tmp_path / "killed.pt", total, tmp_path / "resumed_result.pt")
    steps_after_restart = [line.strip() for line in resumed.stdout]
    assert resumed.wait(timeout=1200) == 0
    assert steps_after_restart[-1] == f"step {total}" and len(steps_after_restart) < total  # it did resume

    expected = torch.load(tmp_path / "straight_result.pt", weights_only=True)
    got = torch.load(tmp_path / "resumed_result.pt", weights_only=True)
    for model in ("generator", "discriminator"):
        assert expected[model].keys() == got[model].keys()
        different = [key for key, tensor in expected[model].items() if not torch.equal(tensor, got[model][key])]
        assert not different, f"{model}: {different[:5]}"
