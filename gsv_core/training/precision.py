"""Training precision as the official trainers run it: fp32, or autocast with loss scaling.

The official s1 trainer passes the config's ``train.precision`` to Lightning: ``"32"`` when
the webui finds no half-precision GPU, else the yaml's ``"16-mixed"``. What Lightning makes
of it (and :class:`TrainingPrecision` does the same):

* ``"32"`` / ``"32-true"``: plain float32.
* ``"16-mixed"`` (alias ``"16"``): the forward under ``torch.autocast(float16)``; every
  backward runs on the loss times a :class:`torch.amp.GradScaler` scale (initial 2**16,
  halved on overflow, doubled after 2000 clean steps); at an optimizer step the gradients are
  unscaled first, and a step whose gradients hold inf/NaN is skipped. The official loop still
  clears the gradients and steps the schedule after a skipped step (so the lr is pinned
  anyway). On the CPU Lightning replaces ``"16-mixed"`` by ``"bf16-mixed"`` (with a warning):
  so do we.
* ``"bf16-mixed"`` (alias ``"bf16"``): autocast to bfloat16, no scaling.

Autocast leaves the parameters, gradients and optimizer state in float32; only the matrix
products and convolutions inside the forward run in half precision.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

log = logging.getLogger(__name__)

ALIASES = {"32": "32-true", "32-true": "32-true", "16": "16-mixed", "16-mixed": "16-mixed",
           "bf16": "bf16-mixed", "bf16-mixed": "bf16-mixed"}
AUTOCAST_DTYPES = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}


def official_precision_name(precision: str | int, device: torch.device) -> str:
    """``"32-true"``, ``"16-mixed"`` or ``"bf16-mixed"`` for a config value, as Lightning reads it."""
    name = ALIASES.get(str(precision))
    if name is None:
        raise ValueError(f"unknown training precision {precision!r}: use 32, 16-mixed or bf16-mixed")
    if name == "16-mixed" and device.type != "cuda":
        log.warning("float16 autocast is for CUDA; training with bf16-mixed on %s (as Lightning does)", device.type)
        return "bf16-mixed"
    return name


def default_precision(device: torch.device) -> str:
    """The webui's choice: ``"16-mixed"`` on a GPU it deems fit for half precision, else ``"32"``.

    Fit: compute capability above 6.1 and at least 4 GiB, except the GTX 16 series (7.5),
    whose float16 the official code does not trust.
    """
    if device.type != "cuda":
        return "32"
    major, minor = torch.cuda.get_device_capability(device)
    capability = major + minor / 10
    total_gib = torch.cuda.get_device_properties(device).total_memory / 2**30 + 0.4
    gtx_16 = bool(re.search(r"16\d{2}", torch.cuda.get_device_name(device))) and capability == 7.5
    return "16-mixed" if capability > 6.1 and total_gib >= 4 and not gtx_16 else "32"


@dataclass
class TrainingPrecision:
    """Autocast and loss scaling of one run (see the module docstring).

    ``dtype`` None trains in float32; ``scaler`` is the float16 loss scaler (None otherwise).
    """

    name: str
    device_type: str
    dtype: torch.dtype | None = None
    scaler: torch.amp.GradScaler | None = None

    @classmethod
    def official(cls, precision: str | int, device: torch.device | str) -> TrainingPrecision:
        device = torch.device(device)
        name = official_precision_name(precision, device)
        dtype = AUTOCAST_DTYPES.get(name)
        scaler = torch.amp.GradScaler(device.type) if name == "16-mixed" else None
        return cls(name, device.type, dtype, scaler)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """The context of a training forward."""
        if self.dtype is None:
            yield
        else:
            with torch.autocast(self.device_type, dtype=self.dtype):
                yield

    def backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> bool:
        """The optimizer step on the unscaled gradients; False when the scaler skipped it (inf/NaN)."""
        if self.scaler is None:
            optimizer.step()
            return True
        self.scaler.unscale_(optimizer)
        before = self.scaler.get_scale()
        self.scaler.step(optimizer)
        self.scaler.update()
        return self.scaler.get_scale() >= before  # the scale only shrinks after a skipped step

    def loss_scale(self) -> float | None:
        return None if self.scaler is None else float(self.scaler.get_scale())

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "scaler": None if self.scaler is None else self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name", self.name) != self.name:
            raise ValueError(f"the saved run trained in {state['name']}, this one is set to {self.name}: "
                             f"resume it with the same precision")
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
