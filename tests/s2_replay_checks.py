"""Checks shared by the SoVITS training-reference tests (v2 in ``training/``, v2ProPlus in ``training/v2ProPlus/``).

Tolerances are the references' READMEs' suggestions (measured between 1 and 2 threads of the
official run): losses rtol 1e-5; gradient norms rtol 1e-3; D parameters atol 1e-6; G
parameters atol 1e-5 except <= 0.01 % of elements, which Adam moves by up to about lr because
their true gradient is near zero (rounding noise); the attention key biases, whose true
gradient is exactly zero (softmax ignores them), atol 1e-3 (and at most lr per step).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import torch

from gsv_core.training.random_draws import DrawRecorder, RecordedDraws
from gsv_core.training.s2_data import collate
from gsv_core.training.s2_replay import build_reference_trainer, prepared_utterances, replay_s2
from gsv_core.training.s2_start import draw_like_official_start, official_start_draws

OP_NAMES = {"uniform_": "aten.uniform_.default", "normal_": "aten.normal_.default", "randn": "aten.randn.default",
            "random_": "aten.random_.default"}

KEY_BIAS_SUFFIXES = (".conv_k.bias", "ref_enc.slf_attn.w_ks.bias")
LOSS_RTOL = 1e-5
GRAD_RTOL = 1e-3
D_PARAM_ATOL = 1e-6
G_PARAM_ATOL = 1e-5
G_OUTLIER_FRACTION = 1e-4  # 0.01 %
KEY_BIAS_ATOL = 1e-3
FORWARD_RTOL = 1e-4  # of each array's largest magnitude
LOG_MEL_ATOL = 5e-4  # y_hat_mel: log mels up to ~11, through an STFT


def load_reference(folder: Path) -> tuple[dict, dict[str, np.ndarray]]:
    record = json.loads((folder / "s2_step.json").read_text())
    with np.load(folder / "s2_step.npz") as file:
        return record, dict(file)


def is_key_bias(name: str) -> bool:
    return name.endswith(KEY_BIAS_SUFFIXES)


def check_losses(replayed: dict[str, np.ndarray], record: dict, recorded: dict[str, np.ndarray]) -> None:
    for key, expected in recorded.items():
        if "/loss/" in key:
            np.testing.assert_allclose(replayed[key], expected, rtol=LOSS_RTOL, err_msg=key)
    for index, step in enumerate(record["steps"]):
        for name, expected in step["losses"].items():
            key = f"step{index + 1}/loss/{name}"
            if key in replayed and not isinstance(expected, list):
                np.testing.assert_allclose(replayed[key], expected, rtol=LOSS_RTOL, err_msg=key)


def check_forward(replayed: dict[str, np.ndarray], recorded: dict[str, np.ndarray]) -> list[str]:
    checked = []
    for key, expected in recorded.items():
        if "/fwd/" not in key:
            continue
        ours = replayed[key]
        assert ours.shape == expected.shape, key
        if expected.dtype.kind in "iu" or key.endswith(("/y_mask", "/ids_slice", "/codes")):
            np.testing.assert_array_equal(ours, expected, err_msg=key)
        else:
            atol = LOG_MEL_ATOL if key.endswith("/y_hat_mel") else FORWARD_RTOL * float(np.abs(expected).max())
            np.testing.assert_allclose(ours, expected, rtol=0, atol=atol, err_msg=key)
        checked.append(key)
    return checked


def check_parameters(replayed: dict[str, np.ndarray], record: dict, recorded: dict[str, np.ndarray]) -> None:
    lr = max(record["steps"][0]["lr_G_groups"])
    d_keys = [key for key in recorded if key.startswith("step1/param_D/")]
    g_keys = [key for key in recorded if key.startswith("step1/param_G/")]
    assert d_keys and g_keys
    assert {key for key in replayed if key.startswith("step1/param_D/")} == set(d_keys)
    for key in d_keys:
        np.testing.assert_allclose(replayed[key], recorded[key], rtol=0, atol=D_PARAM_ATOL, err_msg=key)
    outliers, total = 0, 0
    for key in g_keys:
        diff = np.abs(replayed[key].astype(np.float64) - recorded[key])
        if is_key_bias(key):
            assert diff.max() <= KEY_BIAS_ATOL, key
            continue
        total += diff.size
        outliers += int((diff > G_PARAM_ATOL).sum())
        assert diff.max() <= 2 * lr, f"{key}: {diff.max():.3g} is more than Adam's step could explain"
    assert outliers <= G_OUTLIER_FRACTION * total, f"{outliers} of {total} G values differ by more than {G_PARAM_ATOL}"
    # what the reference says did not change must not change here either (ssl_proj, no gradient)
    unchanged = record["steps"][0]["G_params_unchanged"]
    assert unchanged and not any(f"step1/param_G/{name}" in replayed for name in unchanged)


def check_gradients_and_lrs(replayed: dict[str, np.ndarray], record: dict) -> None:
    for index, step in enumerate(record["steps"]):
        prefix = f"step{index + 1}"
        for which in ("G", "D"):
            grads = step[f"grad_{which}"]
            ours = {key.split("/", 2)[2]: value for key, value in replayed.items() if key.startswith(f"{prefix}/grad_{which}/")}
            assert set(ours) == set(grads["norms"]), f"{prefix} {which}: tensors with a gradient differ"
            assert not set(grads["no_grad"]) & set(ours)
            for name, expected in grads["norms"].items():
                if is_key_bias(name):  # rounding noise around an exact zero
                    assert ours[name] < 1e-5, name
                else:
                    np.testing.assert_allclose(ours[name], expected, rtol=GRAD_RTOL, err_msg=f"{prefix} {name}")
            np.testing.assert_allclose(replayed[f"{prefix}/grad_{which}_total"], grads["total"], rtol=GRAD_RTOL)
        assert float(replayed[f"{prefix}/lr_D"]) == step["lr_D"][0]
        assert replayed[f"{prefix}/lr_G_groups"].tolist() == step["lr_G_groups"]


def check_batches(replayed: dict[str, np.ndarray], record: dict, recorded: dict[str, np.ndarray]) -> None:
    """Our collate of the prepared arrays builds the recorded batches (our spectrogram within float noise)."""
    for index in range(len(record["steps"])):
        for name in ("text", "text_lengths", "spec_lengths", "ssl_lengths", "y_lengths"):
            key = f"step{index + 1}/batch/{name}"
            np.testing.assert_array_equal(replayed[key], recorded[key], err_msg=key)
    np.testing.assert_allclose(replayed["step1/batch/spec"], recorded["step1/batch/spec"], rtol=1e-4, atol=1e-4)


class ReplayChecks:
    """The replay tests of one reference folder. A test module subclasses this as ``Test...``,
    sets ``discriminators`` (scale + period discriminators) and provides the fixture
    ``reference_folder``; the replay runs once per class (tens of seconds: marked slow)."""

    discriminators: int

    @pytest.fixture(scope="class")
    @classmethod
    def replayed(cls, reference_folder: Path) -> dict[str, np.ndarray]:
        return replay_s2(reference_folder)

    @pytest.mark.slow
    def test_replay_losses_match_the_official_steps(self, reference_folder, replayed):
        record, recorded = load_reference(reference_folder)
        check_losses(replayed, record, recorded)

    @pytest.mark.slow
    def test_replay_forward_outputs_match(self, reference_folder, replayed):
        record, recorded = load_reference(reference_folder)
        checked = check_forward(replayed, recorded)
        assert len(checked) == len(record["steps"]) * (14 + 3 * self.discriminators)  # 14 tensors + 3 score lists

    @pytest.mark.slow
    def test_replay_parameters_after_step1_match(self, reference_folder, replayed):
        record, recorded = load_reference(reference_folder)
        check_parameters(replayed, record, recorded)

    @pytest.mark.slow
    def test_replay_gradient_norms_and_learning_rates_match(self, reference_folder, replayed):
        record, _ = load_reference(reference_folder)
        check_gradients_and_lrs(replayed, record)

    @pytest.mark.slow
    def test_replay_builds_the_recorded_batches(self, reference_folder, replayed):
        record, recorded = load_reference(reference_folder)
        check_batches(replayed, record, recorded)

    def test_start_draws_are_the_official_construction_and_loader_draws(self, reference_folder):
        record, _ = load_reference(reference_folder)
        trainer = build_reference_trainer(reference_folder, record["config"])
        ours = [(OP_NAMES[op], shape) for op, shape in official_start_draws(trainer.generator, trainer.discriminator)]
        before_first_batch = record["rng_calls"][: record["steps"][0]["rng_first"]]
        # the sampler's permutations use their own generator, not the global one
        official = [(call["op"], tuple(call["shape"])) for call in before_first_batch if not call["op"].endswith(".generator")]
        assert ours == official

    @pytest.mark.slow
    def test_a_seeded_run_draws_the_official_masks(self, reference_folder):
        """Seeded like upstream, our first step draws every mask, the noise and the slices of the official run."""
        record, recorded = load_reference(reference_folder)
        trainer = build_reference_trainer(reference_folder, record["config"])
        step = record["steps"][0]
        utterances = prepared_utterances(dict(np.load(reference_folder / "prepared.npz")), sorted(set(step["batch"]["items"])))
        batch = collate([utterances[name] for name in step["batch"]["items"]], trainer.mel.audio)
        with torch.random.fork_rng():
            torch.manual_seed(record["config"]["train"]["seed"])
            draw_like_official_start(trainer.generator, trainer.discriminator)
            with DrawRecorder() as recorder:
                trainer.generator.train()(batch)
        official = RecordedDraws(record["rng_calls"], recorded).draws[step["rng_first"]:step["rng_last"]]
        assert len(recorder.calls) == len(official)
        for (op, shape, values), draw in zip(recorder.calls, official):
            expected = draw.values(recorded)
            assert (op, shape) == (draw.op, draw.shape), draw.module
            np.testing.assert_array_equal(values.astype(expected.dtype), expected, err_msg=draw.module)
