"""``python -m gsv_core train-replay`` on the public training reference: every reproduced array
against the recorded one, within the training README's tolerances, and the exported s1 file
against the official one."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from gsv_core.models.t2s import DecodeRow, load_t2s
from test_sv import assert_fbank_close
from test_training_prepare import assert_prepared_equal

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# training/README.md, "Determinism and tolerance (s1)"
LOSS_RTOL, GRAD_ATOL, PARAM_ATOL = 1e-5, 1e-4, 1e-6


def assert_recorded_close(arrays: dict, reference: dict, prefix: str, atol: float) -> int:
    """Every recorded array whose name starts with ``prefix`` within ``atol``; returns how many."""
    names = [n for n in reference if n.startswith(prefix)]
    for name in names:
        np.testing.assert_allclose(arrays[name], reference[name], rtol=0, atol=atol, err_msg=name)
    return len(names)


def _replay(reference: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "gsv_core", "train-replay", str(reference), "--out", str(out), *extra],
                          env=env, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def replayed(training_dir: Path, tmp_path_factory) -> tuple[dict[str, np.ndarray], Path]:
    out = tmp_path_factory.mktemp("replay")
    completed = _replay(training_dir, out / "replay.npz", "--s1-ckpt", str(out / "s1.ckpt"))
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "stage prepare:" in completed.stdout and "stage s1:" in completed.stdout
    with np.load(out / "replay.npz") as npz:
        return {name: npz[name] for name in npz.files}, out / "s1.ckpt"


@pytest.fixture(scope="module")
def recorded(training_dir: Path):
    with np.load(training_dir / "prepared.npz") as prepared, np.load(training_dir / "s1_step.npz") as s1:
        arrays = {**{n: prepared[n] for n in prepared.files}, **{n: s1[n] for n in s1.files}}
    return json.loads((training_dir / "s1_step.json").read_text(encoding="utf-8")), arrays


@pytest.mark.slow
def test_replayed_preparation_equals_prepared_npz(training_dir, replayed):
    arrays, _ = replayed
    with np.load(training_dir / "prepared.npz") as npz:
        names = list(npz.files)
        assert_prepared_equal(arrays, {n: npz[n] for n in names}, names)


@pytest.mark.slow
def test_replayed_batches_are_the_recorded_batches(replayed, recorded):
    arrays, _ = replayed
    meta, reference = recorded
    for b in range(len(meta["batches"])):
        for suffix in ("phoneme_ids", "phoneme_ids_len", "semantic_ids", "semantic_ids_len"):
            assert np.array_equal(arrays[f"batch{b}_{suffix}"], reference[f"batch{b}_{suffix}"]), (b, suffix)


@pytest.mark.slow
def test_every_batch_loss_and_accuracy(replayed, recorded):
    arrays, _ = replayed
    meta, reference = recorded
    for b, info in enumerate(meta["batches"]):
        np.testing.assert_allclose(arrays[f"batch{b}_loss"], reference[f"batch{b}_loss"], rtol=LOSS_RTOL, err_msg=str(b))
        assert float(arrays[f"batch{b}_acc"]) == pytest.approx(info["acc"], abs=1e-6)


@pytest.mark.slow
def test_step_1_gradients(replayed, recorded):
    arrays, _ = replayed
    meta, reference = recorded
    assert assert_recorded_close(arrays, reference, "step1_grad/", GRAD_ATOL) == len(meta["param_names"])


@pytest.mark.slow
def test_parameters_after_every_step(replayed, recorded):
    arrays, _ = replayed
    meta, reference = recorded
    for step in range(1, len(meta["steps"]) + 1):
        assert assert_recorded_close(arrays, reference, f"step{step}_param/", PARAM_ATOL) == len(meta["param_names"])


@pytest.mark.slow
def test_learning_rate_of_every_step(replayed, recorded):
    arrays, _ = replayed
    meta, _ = recorded
    assert [arrays[f"step{s + 1}_lr"].tolist() for s in range(len(meta["steps"]))] == [s["lr"] for s in meta["steps"]]


@pytest.mark.slow
def test_exported_s1_checkpoint_is_the_official_file(training_dir, replayed):
    _, path = replayed
    ours = torch.load(path, map_location="cpu", weights_only=True)
    official = torch.load(training_dir / "models" / "s1-tiny-after2steps-e1.ckpt", map_location="cpu", weights_only=True)
    assert isinstance(ours, OrderedDict) and list(ours) == list(official) == ["weight", "config", "info"]
    assert ours["info"] == official["info"] == "GPT-e1"
    assert list(ours["weight"]) == list(official["weight"])
    for name, tensor in official["weight"].items():
        assert ours["weight"][name].dtype == tensor.dtype == torch.float16, name
        assert torch.equal(ours["weight"][name], tensor), name  # fp16 of the step-2 parameters
    assert sorted(ours["config"]) == sorted(official["config"])
    for section in ("train", "optimizer", "data", "model", "inference"):
        assert sorted(ours["config"][section]) == sorted(official["config"][section]), section
        for key, value in official["config"][section].items():
            if not (isinstance(value, str) and value.startswith("/")):  # machine paths are sanitised in the json
                assert ours["config"][section][key] == value, (section, key)


@pytest.mark.slow
def test_exported_s1_checkpoint_loads_strictly_and_generates(replayed, training_dir):
    _, path = replayed
    model = load_t2s(path)
    with np.load(training_dir / "prepared.npz") as npz:
        phones, bert, prompt = (torch.from_numpy(npz[f"utt0_{name}"]) for name in ("phone_ids", "bert", "semantic"))
    tokens = model.generate([DecodeRow(phones=phones, bert=bert, prompt=prompt[:20])], max_steps=30)
    assert tokens[0].dtype == torch.long and 0 < len(tokens[0]) <= 30
    assert int(tokens[0].max()) < 1024


@pytest.mark.slow
def test_replay_of_the_v2ProPlus_folder_reproduces_its_preparation(training_dir, tmp_path):
    folder = training_dir / "v2ProPlus"
    if not (folder / "prepared.json").is_file():
        pytest.skip(f"v2ProPlus training reference not found at {folder}")
    completed = _replay(folder, tmp_path / "replay.npz", "--stage", "prepare")
    assert completed.returncode == 0, completed.stderr[-3000:]
    with np.load(tmp_path / "replay.npz") as npz, np.load(folder / "prepared.npz") as reference:
        ours, recorded_arrays = {n: npz[n] for n in npz.files}, {n: reference[n] for n in reference.files}
    # every array of the official preparation but the SV network's output (its checkpoint is not shipped)
    expected = sorted(n for n in recorded_arrays if not n.endswith("_sv_emb"))
    assert sorted(ours) == expected
    assert_prepared_equal(ours, recorded_arrays, [n for n in expected if not n.endswith("_sv_fbank")])
    for name in (n for n in expected if n.endswith("_sv_fbank")):
        key = name.removesuffix("_sv_fbank")
        assert_fbank_close(ours[name][None], recorded_arrays[name][None], recorded_arrays[f"{key}_sv_wav16k"])


def test_a_folder_without_a_reference_is_refused(tmp_path, capsys):
    from gsv_core.__main__ import main

    assert main(["train-replay", str(tmp_path), "--out", str(tmp_path / "o.npz"), "--native-isa"]) == 2
    assert "holds none of the stages" in capsys.readouterr().err
    assert main(["train-replay", str(tmp_path), "--out", str(tmp_path / "o.npz"), "--stage", "s9", "--native-isa"]) == 2
    assert "unknown stage" in capsys.readouterr().err


def test_every_stage_has_the_documented_signature():
    from gsv_core.training.replay import STAGES

    assert [stage.name for stage in STAGES][:2] == ["prepare", "s1"]
    for stage in STAGES:
        parameters = list(inspect.signature(stage.function()).parameters)
        assert parameters == ["reference_dir"], stage.name
