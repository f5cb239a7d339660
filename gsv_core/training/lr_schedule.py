"""The learning rate of the official GPT (s1) training: ``WarmupCosineLRSchedule`` as it behaves.

Its name and arguments describe a linear warm-up from ``init_lr`` to ``peak_lr`` over
``warmup_steps`` and a cosine decay to ``end_lr`` at ``total_steps``. What the official class
does instead (kept here, because trained models depend on it):

* construction leaves the optimizer's learning rate alone, so the first optimizer step runs
  at the optimizer's own ``lr`` (0.01 in the official s1 training);
* every ``step()`` computes the warm-up/cosine value and discards it: it sets every group's
  learning rate to a hard-coded 0.002, so every later optimizer step runs at 0.002;
* ``get_last_lr()`` reports the groups' rates from before the latest ``step()``.
"""

from __future__ import annotations

from typing import Any

import torch

PINNED_LR = 0.002  # what the official step() writes into every group, whatever the arguments


class WarmupCosineLRSchedule:
    """See the module docstring; arguments are kept (and saved) for the record only."""

    def __init__(self, optimizer: torch.optim.Optimizer, init_lr: float, peak_lr: float, end_lr: float,
                 warmup_steps: int = 10000, total_steps: int = 400000, current_step: int = 0) -> None:
        self.optimizer = optimizer
        self.init_lr, self.peak_lr, self.end_lr = init_lr, peak_lr, end_lr
        self.warmup_steps, self.total_steps = warmup_steps, total_steps
        self.current_step = current_step
        self._last_lr = [init_lr]

    def step(self) -> float:
        """After an optimizer step: pin every group to :data:`PINNED_LR`; returns it."""
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
        for group in self.optimizer.param_groups:
            group["lr"] = PINNED_LR
        self.current_step += 1
        return PINNED_LR

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        return {"current_step": self.current_step, "last_lr": list(self._last_lr),
                "arguments": [self.init_lr, self.peak_lr, self.end_lr, self.warmup_steps, self.total_steps]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.current_step = int(state["current_step"])
        self._last_lr = [float(lr) for lr in state["last_lr"]]
