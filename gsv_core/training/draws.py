"""Replaying recorded random draws, so a training step can be checked against the official one.

The training reference records every random draw of the official run at the ATen level, in
call order (dropout masks, the posterior noise, the slice offsets). :class:`RecordedDraws`
sits at the same level: while it is active, each random ATen op our code calls is answered
with the next recorded draw instead of the RNG, after checking that the op and the number of
values agree. The training code itself stays unchanged (plain ``nn.Dropout``,
``torch.randn_like``, ``torch.rand``), so what is checked is what trains.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

# Every ATen op (all overloads) that draws from an RNG; any of them not in the recording is an error.
RANDOM_OPS = frozenset({
    aten.bernoulli_, aten.bernoulli, aten.normal_, aten.normal, aten.uniform_, aten.random_, aten.exponential_,
    aten.geometric_, aten.cauchy_, aten.log_normal_, aten.multinomial, aten.poisson, aten.rand, aten.rand_like,
    aten.randn, aten.randn_like, aten.randint, aten.randint_like, aten.randperm, aten.native_dropout,
})


class DrawMismatchError(RuntimeError):
    """Our code asked for a random draw the recording does not have at this point."""


@dataclass(frozen=True)
class RecordedDraw:
    """One recorded random ATen call: its op name, where it was made, and the values it produced."""

    op: str  # e.g. "aten.bernoulli_.float"
    module: str  # the official module that drew it (for error messages)
    values: torch.Tensor  # the recorded result, in the recorded shape
    args: tuple[float, ...] = ()  # the recorded scalar arguments (a mask's keep probability)


def unpack_mask(bits: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """A 0/1 float32 mask of ``shape`` from ``np.packbits(mask.ravel())`` (the reference's storage)."""
    count = math.prod(shape)
    return np.unpackbits(bits)[:count].reshape(shape).astype(np.float32)


def recorded_draws(calls: Sequence[Mapping[str, Any]], arrays: Mapping[str, np.ndarray], first: int, last: int) -> list[RecordedDraw]:
    """The draws ``calls[first:last]`` of a reference's ``rng_calls``, values read from its npz ``arrays``.

    Masks are stored packed under ``rng<i>_bits``, other draws as ``rng<i>``.
    """
    draws = []
    for call in calls[first:last]:
        key, shape = call["key"], call["shape"]
        if key.endswith("_bits"):
            values = unpack_mask(arrays[key], shape)
        else:
            values = np.asarray(arrays[key]).reshape(shape)
        draws.append(RecordedDraw(
            op=call["op"], module=call.get("module", ""), values=torch.from_numpy(np.array(values)),
            args=tuple(float(a) for a in call.get("args", ()) if isinstance(a, (int, float))),
        ))
    return draws


class RecordedDraws(TorchDispatchMode):
    """While active, every random ATen op returns the next recorded draw (checked) instead of drawing.

        with RecordedDraws(draws) as replay:
            run_the_step()
        replay.check_finished()   # every recorded draw was used
    """

    def __init__(self, draws: Sequence[RecordedDraw]) -> None:
        super().__init__()
        self.draws = list(draws)
        self.used = 0

    def check_finished(self) -> None:
        """Raise unless every recorded draw was consumed."""
        if self.used != len(self.draws):
            left = self.draws[self.used]
            raise DrawMismatchError(f"{len(self.draws) - self.used} recorded draws unused, next {left.op} of {left.module}")

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's protocol
        kwargs = kwargs or {}
        if func.overloadpacket not in RANDOM_OPS:
            return func(*args, **kwargs)
        draw = self._next(str(func))
        if func is aten.bernoulli_.float:  # in-place mask (dropout): fill the tensor it was asked for
            target, keep = args[0], args[1] if len(args) > 1 else kwargs.get("p", 0.5)
            self._check_count(draw, target.numel())
            if draw.args and abs(draw.args[0] - keep) > 1e-9:
                raise DrawMismatchError(f"draw {self.used - 1} of {draw.module}: keep probability {keep}, recorded {draw.args[0]}")
            return target.copy_(draw.values.reshape(target.shape))
        if func is aten.randn_like.default:
            like = args[0]
            self._check_count(draw, like.numel())
            return draw.values.reshape(like.shape).to(dtype=kwargs.get("dtype") or like.dtype, device=like.device)
        if func is aten.rand.default:
            shape = tuple(args[0])
            self._check_count(draw, math.prod(shape))
            return draw.values.reshape(shape).to(dtype=kwargs.get("dtype") or torch.get_default_dtype(), device=kwargs.get("device"))
        raise DrawMismatchError(f"replaying {func} is not supported")

    def _next(self, op: str) -> RecordedDraw:
        if self.used >= len(self.draws):
            raise DrawMismatchError(f"{op} drawn after all {len(self.draws)} recorded draws were used")
        draw = self.draws[self.used]
        if draw.op != op:
            raise DrawMismatchError(f"draw {self.used}: our code calls {op}, the recording has {draw.op} of {draw.module}")
        self.used += 1
        return draw

    def _check_count(self, draw: RecordedDraw, count: int) -> None:
        if draw.values.numel() != count:
            raise DrawMismatchError(
                f"draw {self.used - 1} ({draw.op} of {draw.module}): {count} values asked, {draw.values.numel()} recorded"
            )
