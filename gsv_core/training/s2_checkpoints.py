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
  RNG states), written atomically, so a run killed at any moment resumes from the last complete file.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..checkpoints import ZIP_MAGIC, CheckpointError
from ..models.sovits.loader import POSTERIOR
from .discriminator import MultiPeriodDiscriminator
from .s2_model import TrainableSoVITS
from .sovits_train import S2Trainer

STATE_FORMAT = "gsv-s2-training-state"
STATE_FORMAT_VERSION = 1


def atomic_write(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that a reader (or a crash) sees the old file or the new, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)
    return path


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
    return atomic_write(path, data)


def save_discriminator_weights(discriminator: MultiPeriodDiscriminator, path: str | os.PathLike) -> Path:
    """Write ``{"weight": fp16 official state dict}``, the official pretrained discriminator format."""
    weights = OrderedDict((key, tensor.detach().to("cpu", torch.float16)) for key, tensor in discriminator.official_state_dict().items())
    return atomic_write(path, _torch_bytes({"weight": weights}))


def _rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def save_training_state(path: str | os.PathLike, trainer: S2Trainer, progress: Mapping[str, int]) -> Path:
    """Atomically write the full training state; ``progress`` holds the run's counters (ints)."""
    state = {
        "format": STATE_FORMAT,
        "format_version": STATE_FORMAT_VERSION,
        "generator": trainer.generator.state_dict(),
        "discriminator": trainer.discriminator.state_dict(),
        "optim_g": trainer.optim_g.state_dict(),
        "optim_d": trainer.optim_d.state_dict(),
        "sched_g": trainer.sched_g.state_dict(),
        "sched_d": trainer.sched_d.state_dict(),
        "progress": {key: int(value) for key, value in progress.items()},
        "rng": _rng_states(),
    }
    return atomic_write(path, _torch_bytes(state))


def load_training_state(path: str | os.PathLike, trainer: S2Trainer) -> dict[str, int]:
    """Restore ``trainer`` (models, optimizers, schedules) and the RNG states; returns the saved progress."""
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"training state not found: {path}") from None
    except Exception as error:  # torch raises many types for damaged archives
        raise CheckpointError(f"cannot read training state {path}: {type(error).__name__}") from error
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path} is not a SoVITS training state")
    if state.get("format_version") != STATE_FORMAT_VERSION:
        raise CheckpointError(f"{path} has training-state format {state.get('format_version')}, expected {STATE_FORMAT_VERSION}")
    trainer.generator.load_state_dict(state["generator"])
    trainer.discriminator.load_state_dict(state["discriminator"])
    trainer.optim_g.load_state_dict(state["optim_g"])
    trainer.optim_d.load_state_dict(state["optim_d"])
    trainer.sched_g.load_state_dict(state["sched_g"])
    trainer.sched_d.load_state_dict(state["sched_d"])
    torch.set_rng_state(state["rng"]["torch"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return dict(state["progress"])
