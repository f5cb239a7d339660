"""SoVITS training files: the official exports, and our resumable training state.

* :func:`save_sovits_weights` writes what the official ``process_ckpt.savee`` writes after an
  epoch: ``{"weight": fp16 state dict without enc_q, "config": the run's hyper-parameters,
  "info": "<epoch>epoch_<steps>iteration"}``, with the version's two header bytes over the zip
  magic for v2Pro / v2ProPlus. Our inference loader (and the official one) reads it.
  One deliberate difference: ``config`` is a plain nested dict, not a pickled upstream
  ``utils.HParams`` (which only unpickles where a module named ``utils`` provides it); both
  official readers index it like a dict.
* :func:`save_discriminator_weights` writes ``{"weight": fp16 state dict}``, the format of the
  official pretrained discriminators (what ``pretrained_s2D`` loads).
* :func:`save_training_state` / :func:`load_training_state`: everything a run needs to go on
  exactly where it stopped (both models, both optimizers and schedules, progress counters, the
  RNG states), written atomically (:mod:`.atomic`) in the format the s1 trainer's state uses
  (:mod:`.checkpoints`), so a run killed at any moment resumes from the last complete file.
"""

from __future__ import annotations

import io
import os
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..checkpoints import ZIP_MAGIC
from ..models.sovits.loader import POSTERIOR
from .atomic import write_atomically
from .checkpoints import load_training_state as read_training_state
from .checkpoints import restore_rng_states, rng_states
from .checkpoints import save_training_state as write_training_state
from .discriminator import MultiPeriodDiscriminator
from .s2_model import TrainableSoVITS
from .sovits_train import S2Trainer

STATE_KIND = "sovits"  # training states of both stages share one format; this marks an s2 one


def _write(path: str | os.PathLike, data: bytes) -> Path:
    return write_atomically(path, lambda handle: handle.write(data))


def _torch_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _plain(config: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _plain(value) if isinstance(value, Mapping) else value for key, value in config.items()}


def sovits_export_weights(generator: TrainableSoVITS) -> OrderedDict[str, torch.Tensor]:
    """The generator's state under official names and order, fp16, without the posterior encoder."""
    return OrderedDict(
        (key, tensor.detach().to("cpu", torch.float16))
        for key, tensor in generator.official_state_dict().items() if not POSTERIOR.match(key)
    )


def save_sovits_weights(
    generator: TrainableSoVITS, path: str | os.PathLike, config: Mapping[str, Any], epoch: int, steps: int
) -> Path:
    """Write the official epoch-end SoVITS file (see the module docstring); returns its path."""
    checkpoint = OrderedDict(weight=sovits_export_weights(generator), config=_plain(config), info=f"{epoch}epoch_{steps}iteration")
    data = _torch_bytes(checkpoint)
    header = generator.version.header
    if header != ZIP_MAGIC:  # v2Pro / v2ProPlus: the version's bytes over the zip magic, as upstream
        data = header + data[len(ZIP_MAGIC):]
    return _write(path, data)


def save_discriminator_weights(discriminator: MultiPeriodDiscriminator, path: str | os.PathLike) -> Path:
    """Write ``{"weight": fp16 official state dict}``, the official pretrained discriminator format."""
    weights = OrderedDict((key, tensor.detach().to("cpu", torch.float16)) for key, tensor in discriminator.official_state_dict().items())
    return _write(path, _torch_bytes({"weight": weights}))


def _device(trainer: S2Trainer) -> torch.device:
    return next(trainer.generator.parameters()).device


def save_training_state(path: str | os.PathLike, trainer: S2Trainer, progress: Mapping[str, int]) -> Path:
    """Atomically write the full training state; ``progress`` holds the run's counters (ints)."""
    return write_training_state(path, {
        "stage": STATE_KIND,
        "generator": trainer.generator.state_dict(),
        "discriminator": trainer.discriminator.state_dict(),
        "optim_g": trainer.optim_g.state_dict(),
        "optim_d": trainer.optim_d.state_dict(),
        "sched_g": trainer.sched_g.state_dict(),
        "sched_d": trainer.sched_d.state_dict(),
        "progress": {key: int(value) for key, value in progress.items()},
        "rng": rng_states(_device(trainer)),
    })


def load_training_state(path: str | os.PathLike, trainer: S2Trainer) -> dict[str, int]:
    """Restore ``trainer`` (models, optimizers, schedules) and the RNG states; returns the saved progress."""
    state = read_training_state(path)
    if state.get("stage") != STATE_KIND:
        raise ValueError(f"{path} is not a SoVITS training state")
    trainer.generator.load_state_dict(state["generator"])
    trainer.discriminator.load_state_dict(state["discriminator"])
    trainer.optim_g.load_state_dict(state["optim_g"])
    trainer.optim_d.load_state_dict(state["optim_d"])
    trainer.sched_g.load_state_dict(state["sched_g"])
    trainer.sched_d.load_state_dict(state["sched_d"])
    restore_rng_states(state["rng"], _device(trainer))
    return dict(state["progress"])
