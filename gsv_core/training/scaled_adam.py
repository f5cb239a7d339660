"""ScaledAdam, the optimizer of the official GPT (s1) training, with its exact update rule.

ScaledAdam (from k2/icefall) is Adam whose step for a tensor is proportional to the tensor's
own root-mean-square size, plus a separate, slower learning of that size. Parameters of one
dtype and shape are updated together, stacked along a new first axis; the groups are visited
in the sorted order of ``(dtype name, *shape)``. What one step does to a stack ``p`` with
gradient ``g`` (all element-wise, per stacked tensor where it says "rms"):

* ``delta *= beta1`` (``delta`` is the momentum of the whole update).
* tensors with more than one element: every step records ``sum(p * g')`` in a ring of
  ``size_update_period`` slots (``g'`` = ``g`` times the clipping factor); on the last slot
  the tensor's rms is re-measured and, from the second such period on, the size is moved by
  Adam on those recorded sums (``lr * scalar_lr_scale``, beta2 to the period's power, no
  growth past ``param_max_rms`` and no shrinking below ``param_min_rms``).
  Then Adam without first-moment bias correction: ``delta += -lr (1 - beta1) rms * g / (sqrt(v) + eps)``,
  where the second moment ``v`` is bias-corrected only while the correction is below 0.99.
* single-element tensors: plain Adam at ``lr * scalar_lr_scale``; the value is clamped to
  ``+-scalar_max`` *before* the update is added.
* ``p += delta``.

Gradient clipping: from the second step the rms-weighted gradient norm of the whole group is
kept for ``clipping_update_period`` steps; every period the threshold becomes
``clipping_scale`` times their median, and later steps scale by ``threshold / norm`` when it is
below 1. As in the official code that factor only reaches the size statistics above, not the
Adam step (which reads the raw gradient). Quirks kept: stacks of several scalars also get
size statistics (their element count is taken over the whole stack), and no clipping happens
before ``clipping_update_period`` steps.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch
from torch import Tensor

log = logging.getLogger(__name__)


class ScaledAdam(torch.optim.Optimizer):
    """See the module docstring; the defaults are the official ones."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 3e-2,
        clipping_scale: float | None = None,
        betas: tuple[float, float] = (0.9, 0.98),
        scalar_lr_scale: float = 0.1,
        eps: float = 1.0e-8,
        param_min_rms: float = 1.0e-5,
        param_max_rms: float = 3.0,
        scalar_max: float = 10.0,
        size_update_period: int = 4,
        clipping_update_period: int = 100,
    ) -> None:
        defaults = dict(lr=lr, clipping_scale=clipping_scale, betas=betas, scalar_lr_scale=scalar_lr_scale, eps=eps,
                        param_min_rms=param_min_rms, param_max_rms=param_max_rms, scalar_max=scalar_max,
                        size_update_period=size_update_period, clipping_update_period=clipping_update_period)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every group; ``closure`` (re-evaluates the loss) is called first, with gradients on."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            stacks = _stacks(group["params"])
            states = [self.state[members[0]] for members in stacks]  # a stack's state lives on its first member
            values = [torch.stack(members) for members in stacks]
            grads = [torch.stack([torch.zeros_like(p) if p.grad is None else p.grad for p in members])
                     for members in stacks]
            factor = 1.0 if not states[0] else self._clipping_factor(group, values, grads, states)
            for value, grad, state in zip(values, grads, states):
                if not state:
                    _init_state(group, value, state)
                _update(group, value, grad, state, factor)
            for members, value in zip(stacks, values):
                for index, param in enumerate(members):
                    param.copy_(value[index])
        return loss

    def _clipping_factor(self, group: dict, values: list[Tensor], grads: list[Tensor], states: list[dict]) -> float:
        """The factor (<= 1) for this step's gradients; also keeps the norm history (see the module docstring)."""
        scale = group["clipping_scale"]
        first = states[0]
        step = first["step"]
        if scale is None or step == 0:
            return 1.0
        period = group["clipping_update_period"]
        total = torch.tensor(0.0, device=values[0].device)
        for value, grad, state in zip(values, grads, states):
            if value.numel() == value.shape[0]:  # a stack of scalars
                total += (grad**2).sum()
            else:
                total += ((grad * state["param_rms"]) ** 2).sum()
        norm = total.sqrt()
        if "model_norms" not in first:
            first["model_norms"] = torch.zeros(period, device=norm.device)
        first["model_norms"][step % period] = norm
        if step % period == 0:
            ordered = first["model_norms"].sort()[0].cpu()
            quartiles = [ordered[min(period - 1, (period // 4) * n)].item() for n in range(5)]
            first["model_norm_threshold"] = scale * quartiles[2]
            clipped = first.get("num_clipped", 0) * 100.0 / period
            first["num_clipped"] = 0
            log.info("clipping scale %s, gradient-norm quartiles %s, threshold %.3e, %.1f%% clipped",
                     scale, " ".join(f"{q:.3e}" for q in quartiles), first["model_norm_threshold"], clipped)
        if step < period:
            return 1.0
        if "model_norm_threshold" not in first:
            log.info("no gradient-norm threshold in the optimizer state (clipping added on resume?): not clipping")
            return 1.0
        factor = min(1.0, (first["model_norm_threshold"] / (norm + 1.0e-20)).item())
        if factor < 1.0:
            first["num_clipped"] += 1
        if factor < 0.1:
            log.warning("scaling gradients by %s, threshold %s", factor, first["model_norm_threshold"])
        return factor


def _stacks(params: list[Tensor]) -> list[list[Tensor]]:
    """The group's parameters by (dtype, shape), in sorted key order, each in group order."""
    by_key: dict[tuple, list[Tensor]] = {}
    for param in params:
        by_key.setdefault((str(param.dtype), *param.shape), []).append(param)
    return [by_key[key] for key in sorted(by_key)]


def _rms(value: Tensor) -> Tensor:
    """Root-mean-square of each stacked tensor, shaped (n, 1, ..., 1)."""
    return (value**2).mean(dim=list(range(1, value.ndim)), keepdim=True).sqrt()


def _init_state(group: dict, value: Tensor, state: dict) -> None:
    state["step"] = 0
    state["delta"] = torch.zeros_like(value, memory_format=torch.preserve_format)
    if value.numel() > 1:  # the whole stack's count, so stacks of scalars get these too (official)
        rms = _rms(value)
        state["param_rms"] = rms
        state["scale_exp_avg_sq"] = torch.zeros_like(rms)
        state["scale_grads"] = torch.zeros(group["size_update_period"], *rms.shape, device=value.device,
                                           dtype=value.dtype)
    state["exp_avg_sq"] = torch.zeros_like(value, memory_format=torch.preserve_format)


def _update(group: dict, value: Tensor, grad: Tensor, state: dict, clip_factor: float) -> None:
    """One step of one stack (in place on ``value`` and ``state``)."""
    period = group["size_update_period"]
    beta1 = group["betas"][0]
    step = state["step"]
    state["delta"].mul_(beta1)
    if value.numel() // value.shape[0] > 1:
        clipped = grad * clip_factor if clip_factor != 1.0 else grad
        dims = list(range(1, value.ndim))
        state["scale_grads"][step % period] = (value * clipped).sum(dim=dims, keepdim=True)
        if step % period == period - 1:
            state["param_rms"].copy_(_rms(value))
            if step > 0:
                _update_size(group, value, state)
        _update_tensor(group, value, grad, state)
    else:
        _update_scalar(group, value, grad, state)
    state["step"] = step + 1


def _update_size(group: dict, value: Tensor, state: dict) -> None:
    """Adam on the recorded ``sum(p * g)`` of the last period: grows or shrinks the whole tensor."""
    beta1, beta2 = group["betas"]
    size_lr = group["lr"] * group["scalar_lr_scale"]
    scale_grads = state["scale_grads"]
    period = scale_grads.shape[0]
    beta2_period = beta2**period
    second = state["scale_exp_avg_sq"]
    second.mul_(beta2_period).add_((scale_grads**2).mean(dim=0), alpha=1 - beta2_period)
    size_steps = (state["step"] + 1) // period
    correction = 1 - beta2_period**size_steps
    size_step = -size_lr * (correction**0.5) * scale_grads.sum(dim=0) / (second.sqrt() + group["eps"])
    rms = state["param_rms"]
    size_step.masked_fill_(rms < group["param_min_rms"], 0.0)
    size_step.masked_fill_(rms > group["param_max_rms"], -size_lr * period)
    state["delta"].add_(value * size_step, alpha=1 - beta1)


def _update_tensor(group: dict, value: Tensor, grad: Tensor, state: dict) -> None:
    """The rms-scaled Adam step of a stack of non-scalar tensors."""
    lr = group["lr"]
    beta1, beta2 = group["betas"]
    second = state["exp_avg_sq"]
    second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    correction = 1 - beta2 ** (state["step"] - state.get("zero_step", 0) + 1)
    if correction < 0.99:
        second = second * (1.0 / correction)
    denom = second.sqrt()
    denom += group["eps"]
    scale = -lr * (1 - beta1) * state["param_rms"].clamp(min=group["param_min_rms"])
    state["delta"].add_(grad / denom * scale)
    value.add_(state["delta"])


def _update_scalar(group: dict, value: Tensor, grad: Tensor, state: dict) -> None:
    """Plain Adam (second moment bias-corrected) for a stack of single-element tensors."""
    beta1, beta2 = group["betas"]
    lr = group["lr"] * group["scalar_lr_scale"]
    second = state["exp_avg_sq"]
    second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    correction = 1 - beta2 ** (state["step"] + 1)
    denom = (second / correction).sqrt() + group["eps"]
    state["delta"].add_(grad / denom, alpha=-lr * (1 - beta1))
    value.clamp_(min=-group["scalar_max"], max=group["scalar_max"])
    value.add_(state["delta"])
