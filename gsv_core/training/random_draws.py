"""Random draws fed back from a recording, in call order, at the ATen level.

The training references record every random draw of the official run (dropout masks,
noise, slices) as ``rng_calls``: the ATen op, its module, the shape and the npz key of the
values. :class:`DrawInjector` is a dispatch mode under autograd: while it is active, each
random op (``bernoulli_``, ``randn_like``, ``rand``, ...) does not draw but receives the next
recorded values, after its op name and shape have been checked against the recording. Code
that runs under it is therefore unchanged training code: ``F.dropout`` and the attention's
own dropout see the official masks, and everything else computes as usual.

:class:`DrawRecorder` is the pass-through counterpart: it lets every op draw and keeps
what the random ones produced, in the same form (for tests of a run's own random stream).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

# ops that write random values into their first argument
_IN_PLACE = frozenset({
    "aten.bernoulli_.float", "aten.bernoulli_.Tensor", "aten.normal_.default", "aten.uniform_.default",
    "aten.random_.default", "aten.random_.from", "aten.random_.to", "aten.exponential_.default",
})
# ops that return a new tensor of random values
_FACTORIES = frozenset({
    "aten.randn.default", "aten.randn.generator", "aten.randn_like.default", "aten.rand.default",
    "aten.rand.generator", "aten.rand_like.default", "aten.randint.default", "aten.randint.low",
    "aten.randint_like.default", "aten.randperm.default", "aten.randperm.generator", "aten.bernoulli.default",
    "aten.bernoulli.p", "aten.normal.Tensor_float", "aten.normal.float_Tensor", "aten.normal.Tensor_Tensor",
})
RANDOM_OPS = _IN_PLACE | _FACTORIES
_MASK_OPS = frozenset({"aten.bernoulli_.float", "aten.bernoulli_.Tensor", "aten.bernoulli.default", "aten.bernoulli.p"})


class DrawMismatch(RuntimeError):
    """The code asked for a draw the recording does not have at this point (other op, shape or count)."""


@dataclass(frozen=True)
class RecordedDraw:
    """One entry of ``rng_calls``: ``key`` names its values in the npz (``<key>`` or packed ``<key>_bits``)."""

    index: int
    op: str
    module: str
    shape: tuple[int, ...]
    key: str

    @classmethod
    def from_json(cls, index: int, call: Mapping) -> RecordedDraw:
        """An entry as the references write it (s1 names the key ``stored``, s2 ``key``)."""
        stored = call.get("key") or call.get("stored") or f"rng{index}"
        return cls(index, call["op"], call.get("module", ""), tuple(call["shape"]), stored.split()[0])

    def values(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """The recorded values, shaped like the draw (0/1 masks unpacked from their bits)."""
        if self.key.endswith("_bits"):
            count = int(np.prod(self.shape, dtype=np.int64))
            return np.unpackbits(arrays[self.key])[:count].reshape(self.shape)
        return np.asarray(arrays[self.key]).reshape(self.shape)


class RecordedDraws:
    """The ``rng_calls`` of a reference with the arrays that hold their values."""

    def __init__(self, calls: Sequence[Mapping], arrays: Mapping[str, np.ndarray]) -> None:
        self.draws = [RecordedDraw.from_json(i, call) for i, call in enumerate(calls)]
        self.arrays = arrays

    def injector(self, first: int, last: int) -> DrawInjector:
        """A dispatch mode that serves draws ``[first, last)`` and checks all of them were used."""
        return DrawInjector(self.draws[first:last], self.arrays)


class DrawInjector(TorchDispatchMode):
    """Serves recorded draws to the random ops run under it; see the module docstring."""

    def __init__(self, draws: Sequence[RecordedDraw], arrays: Mapping[str, np.ndarray]) -> None:
        super().__init__()
        self.draws = list(draws)
        self.arrays = arrays
        self.used = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func)
        if name not in RANDOM_OPS:
            return func(*args, **kwargs)
        if name in _IN_PLACE:
            target = args[0]
            if target.is_meta:  # shapes only (a model built on the meta device): nothing is drawn
                return func(*args, **kwargs)
            draw = self._next(name)
            self._check_shape(draw, tuple(target.shape))
            with torch.no_grad():
                target.copy_(torch.from_numpy(np.ascontiguousarray(draw.values(self.arrays))))
            return target
        result = func(*args, **kwargs)  # the op's own output fixes dtype, device and layout
        if result.is_meta:
            return result
        draw = self._next(name)
        self._check_shape(draw, tuple(result.shape))
        with torch.no_grad():
            result.copy_(torch.from_numpy(np.ascontiguousarray(draw.values(self.arrays))))
        return result

    def _next(self, name: str) -> RecordedDraw:
        if self.used >= len(self.draws):
            raise DrawMismatch(f"{name} asked for draw {self.used + 1} of a recording with {len(self.draws)}")
        draw = self.draws[self.used]
        if draw.op != name:
            raise DrawMismatch(f"draw {draw.index} ({draw.module}) was {draw.op}, the code called {name}")
        self.used += 1
        return draw

    @staticmethod
    def _check_shape(draw: RecordedDraw, shape: tuple[int, ...]) -> None:
        if shape != draw.shape:
            raise DrawMismatch(f"draw {draw.index} ({draw.op}, {draw.module}) had shape {draw.shape}, the code drew {shape}")

    def __exit__(self, exc_type, exc, traceback):
        super().__exit__(exc_type, exc, traceback)
        if exc_type is None and self.used != len(self.draws):
            raise DrawMismatch(f"the code used {self.used} of the {len(self.draws)} recorded draws")
        return False


class DrawRecorder(TorchDispatchMode):
    """Lets every op run and keeps ``(op, shape, values)`` of each random one, masks as 0/1 uint8."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple[int, ...], np.ndarray]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        name = str(func)
        drawn = (args[0] if name in _IN_PLACE else result) if name in RANDOM_OPS else None
        if drawn is not None and not drawn.is_meta:
            values = drawn.detach().cpu().numpy().copy()
            if name in _MASK_OPS:
                values = values.astype(np.uint8)
            self.calls.append((name, tuple(values.shape), values))
        return result
