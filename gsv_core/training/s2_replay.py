"""Replaying the SoVITS steps of a training reference, to check our trainer against the official one.

A reference folder (``../shared/gsv-reference/training`` or its ``v2ProPlus/``) holds the
prepared utterances (``prepared.npz``), the run's config, batches and recorded random draws
(``s2_step.json`` / ``s2_step.npz``) and the initial models (``models/``). :func:`replay_s2`
builds our trainer from those models and config, collates each recorded batch from the
prepared arrays, runs each step with the step's recorded draws injected, and returns what it
computed under the reference's own key names, plus the gradient norms and learning rates the
reference keeps in its json (see :func:`replay_s2`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..models.sovits.loader import legacy_weight_norm_name, ours_to_official
from .discriminator import MultiPeriodDiscriminator
from .mel import MelSettings
from .random_draws import RecordedDraws
from .replay import find_model
from .s2_data import S2Utterance, collate
from .s2_model import load_trainable_sovits
from .sovits_train import S2Trainer, StepResult

INT16_SCALE = 32768.0


def prepared_utterances(prepared: dict[str, np.ndarray], names: list[str]) -> dict[str, S2Utterance]:
    """The reference's prepared arrays as utterances (wav = int16 / 32768, as the official loader reads it)."""
    utterances = {}
    for name in names:
        sv = prepared.get(f"{name}_sv_emb")
        utterances[name] = S2Utterance(
            name=name,
            phone_ids=torch.from_numpy(prepared[f"{name}_phone_ids"].astype(np.int64)),
            ssl=torch.from_numpy(prepared[f"{name}_ssl"].astype(np.float32)),
            wav=torch.from_numpy(prepared[f"{name}_wav32k"].astype(np.float32) / INT16_SCALE),
            sv_emb=None if sv is None else torch.from_numpy(sv.astype(np.float32)).reshape(-1),
        )
    return utterances


def reference_model_file(reference_dir: Path, config: dict[str, Any], which: str) -> Path:
    """``models/<file>`` of the run's ``pretrained_s2G`` / ``pretrained_s2D`` (the config's paths are the producer's)."""
    return find_model(Path(reference_dir), Path(str(config["train"][which]).replace("\\", "/")).name)


def build_reference_trainer(reference_dir: Path, config: dict[str, Any]) -> S2Trainer:
    """Our trainer holding the reference's initial generator and discriminator, set up by its config."""
    generator = load_trainable_sovits(reference_model_file(reference_dir, config, "pretrained_s2G"), config)
    d_file = reference_model_file(reference_dir, config, "pretrained_s2D")
    weights = torch.load(d_file, map_location="cpu", weights_only=True)["weight"]
    discriminator = MultiPeriodDiscriminator.from_state_dict(weights, generator.version.discriminator_periods)
    return S2Trainer(generator, discriminator, config)


def _step_arrays(prefix: str, result: StepResult, batch_arrays: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    out = result.output
    arrays = {f"{prefix}/batch/{name}": value for name, value in batch_arrays.items()}
    fwd = {
        "ids_slice": out.ids_slice, "z": out.z, "z_p": out.z_p, "m_p": out.m_p, "logs_p": out.logs_p, "m_q": out.m_q,
        "logs_q": out.logs_q, "y_mask": out.y_mask, "kl_ssl": out.kl_ssl, "codes": out.codes, "y_hat": out.y_hat,
        "y_slice": result.y_slice, "y_mel": result.y_mel, "y_hat_mel": result.y_hat_mel,
    }
    for name, scores in (("d_step_scores_r", result.d_step_real), ("d_step_scores_g", result.d_step_fake), ("g_step_scores_g", result.g_step_fake)):
        fwd.update({f"{name}{j}": score for j, score in enumerate(scores)})
    arrays.update({f"{prefix}/fwd/{name}": value for name, value in fwd.items()})
    arrays.update({f"{prefix}/loss/{name}": value for name, value in result.losses.items()})
    return {key: value.detach().cpu().numpy() for key, value in arrays.items()}


def _gradient_arrays(prefix: str, trainer: S2Trainer, result: StepResult) -> dict[str, np.ndarray]:
    """Per-tensor gradient norms (official names), totals and learning rates of a finished step."""
    arrays = {}
    for name, parameter in trainer.generator.model.named_parameters():
        if parameter.grad is not None:
            arrays[f"{prefix}/grad_G/{ours_to_official(name)}"] = parameter.grad.norm(2)
    for name, parameter in trainer.discriminator.named_parameters():
        if parameter.grad is not None:
            arrays[f"{prefix}/grad_D/{legacy_weight_norm_name(name)}"] = parameter.grad.norm(2)
    arrays = {key: value.detach().numpy() for key, value in arrays.items()}
    arrays[f"{prefix}/grad_G_total"] = np.float64(result.grad_norm_g)
    arrays[f"{prefix}/grad_D_total"] = np.float64(result.grad_norm_d)
    arrays[f"{prefix}/lr_D"] = np.float64(result.lr_d)
    arrays[f"{prefix}/lr_G_groups"] = np.array(result.lr_g_groups, dtype=np.float64)
    return arrays


def recorded_spec(recorded: dict[str, np.ndarray], step: dict[str, Any], index: int) -> torch.Tensor | None:
    """The loader's spectrogram the reference stored for step ``index`` (0-based), directly or as step-1 rows."""
    spec = recorded.get(f"step{index + 1}/batch/spec")
    if spec is None and "rows_from_step1" in step["batch"] and "step1/batch/spec" in recorded:
        spec = recorded["step1/batch/spec"][step["batch"]["rows_from_step1"]]
    return None if spec is None else torch.from_numpy(np.ascontiguousarray(spec))


def replay_s2(reference_dir: Path) -> dict[str, np.ndarray]:
    """Run every recorded s2 step of the reference at ``reference_dir``; returns arrays by key.

    The spectrogram is the loader's, computed at run time upstream: where the reference stores
    it, the step takes the stored one (its low bits differ between machines, and log mels of
    near-silent bins magnify that); ``step<s>/batch/spec`` is always ours, for comparison.

    Keys as the reference's ``s2_step.npz``: ``step<s>/batch/*`` (what our collate built),
    ``step<s>/fwd/*``, ``step<s>/loss/*``, and after every step ``step<s>/param_G/<official
    name>`` (every trainable generator tensor) and ``step<s>/param_D/<name>``. Added, for the values the
    reference keeps in ``s2_step.json``: ``step<s>/grad_G/<name>`` and ``grad_D/<name>`` (L2
    norm of each gradient), ``grad_G_total``, ``grad_D_total``, ``lr_D``, ``lr_G_groups``.
    Raises :class:`~gsv_core.training.random_draws.DrawMismatch` if our step draws differently.
    """
    reference_dir = Path(reference_dir)
    record = json.loads((reference_dir / "s2_step.json").read_text())
    config = record["config"]
    with np.load(reference_dir / "prepared.npz") as file:
        prepared = dict(file)
    with np.load(reference_dir / "s2_step.npz") as file:
        recorded = dict(file)
    trainer = build_reference_trainer(reference_dir, config)
    draws = RecordedDraws(record["rng_calls"], recorded)
    audio = MelSettings.from_config(config["data"]).audio
    names = sorted({name for step in record["steps"] for name in step["batch"]["items"]})
    utterances = prepared_utterances(prepared, names)
    arrays: dict[str, np.ndarray] = {}
    for index, step in enumerate(record["steps"]):
        prefix = f"step{index + 1}"
        batch = collate([utterances[name] for name in step["batch"]["items"]], audio)
        ours_spec = batch.spec
        stored = recorded_spec(recorded, step, index)
        if stored is not None:
            batch = dataclasses.replace(batch, spec=stored)
        # every draw of the step is checked against the recording, and all must be used
        result = trainer.step(batch, draws=draws.injector(step["rng_first"], step["rng_last"]))
        batch_arrays = {
            "text": batch.text, "text_lengths": batch.text_lengths, "spec": ours_spec, "spec_lengths": batch.spec_lengths,
            "ssl_lengths": batch.ssl_lengths, "y_lengths": batch.y_lengths,
        }
        arrays.update(_step_arrays(prefix, result, batch_arrays))
        arrays.update(_gradient_arrays(prefix, trainer, result))
        arrays.update(_parameter_arrays(prefix, trainer))
    return arrays


def _parameter_arrays(prefix: str, trainer: S2Trainer) -> dict[str, np.ndarray]:
    arrays = {}
    for name, parameter in trainer.generator.model.named_parameters():
        if parameter.requires_grad:
            arrays[f"{prefix}/param_G/{ours_to_official(name)}"] = parameter.detach().numpy().copy()
    for name, tensor in trainer.discriminator.official_state_dict().items():
        arrays[f"{prefix}/param_D/{name}"] = tensor.detach().numpy().copy()
    return arrays
