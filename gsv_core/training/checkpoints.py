"""Files a training run writes: the official s1 export and our resumable training state.

* The s1 ``.ckpt`` is what the official epoch-end callback writes: a ``torch.save`` of an
  ordered dict ``{"weight", "config", "info"}``, ``weight`` holding every parameter in the
  official order under its ``model.``-prefixed official name, in float16; ``config`` the
  training configuration dict; ``info`` ``GPT-e<epoch>``. Inference reads it with
  :func:`gsv_core.models.t2s.load_t2s`.
* The training state is everything needed to continue a run as if it had never stopped:
  parameters (float32), the gradients accumulated since the last optimizer step, optimizer and
  schedule state, the position (epoch, next batch, optimizer steps) and the random generators.

Every file is written to a temporary name beside its target, flushed to disk (``fsync``)
and renamed over the target (``os.replace``), so a run killed at any moment leaves either the
previous file or the new one, never a torn one.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from ..models.t2s import Text2Semantic
from .atomic import write_atomically
from .s1_model import official_parameters

STATE_FORMAT = "gsv_core.training-state/1"


def s1_export(model: Text2Semantic, config: dict, epoch: int) -> OrderedDict:
    """The official s1 checkpoint dict of ``model`` after ``epoch`` epochs (see the module docstring)."""
    weight = OrderedDict((f"model.{name}", param.detach().half().cpu()) for name, param in official_parameters(model))
    return OrderedDict([("weight", weight), ("config", config), ("info", f"GPT-e{epoch}")])


def save_s1_checkpoint(path: str | os.PathLike, model: Text2Semantic, config: dict, epoch: int) -> Path:
    """Write the official s1 ``.ckpt`` of ``model`` to ``path`` (atomically)."""
    export = s1_export(model, config, epoch)
    return write_atomically(path, lambda handle: torch.save(export, handle))


def rng_states(device: torch.device) -> dict[str, torch.Tensor]:
    """The random generators a training step draws from: the CPU one, and the device's own."""
    states = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def restore_rng_states(states: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(states["cpu"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def save_training_state(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write a training state dict (tensors, numbers, strings, lists, dicts) atomically."""
    return write_atomically(path, lambda handle: torch.save({"format": STATE_FORMAT, **state}, handle))


def load_training_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a state written by :func:`save_training_state` (no pickled code runs)."""
    try:
        state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"no training state at {path}") from None
    except Exception as error:  # torch raises many types for damaged archives
        raise ValueError(f"cannot read the training state {path}: {type(error).__name__}: {error}") from error
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"{path} is not a training state of this program")
    return state
