"""Choosing where and in which precision the models run, once, from a user's words.

``auto`` picks CUDA when a GPU is present, with float16 there as the official system does,
and float32 on the CPU. ``int8`` is the fast CPU mode (:mod:`gsv_core.engine.fast_cpu`): float32
models whose GPT and BERT Linear weights are then stored as int8; it is off unless asked
for. Asking for a device that is not there, or int8 on a GPU, is an error at start, not a
silent fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
PRECISION_CHOICES = ("auto", "fp32", "fp16", "bf16", "int8")
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Placement:
    """Where the models live, the dtype of their weights, and whether to quantize them to int8 after loading."""

    device: torch.device
    dtype: torch.dtype
    int8: bool = False  # CPU only: GPT and BERT Linear weights as int8 (gsv_core.engine.fast_cpu.FastCpuMode)

    @property
    def precision(self) -> str:
        if self.int8:
            return "int8"
        return next(name for name, dtype in _DTYPES.items() if dtype == self.dtype)


def resolve_device(name: str) -> torch.device:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` -> a device that exists here (ValueError otherwise)."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError("device 'mps' was asked for, but this machine has no Apple GPU (MPS) available")
        return torch.device("mps")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} was asked for, but CUDA is not available here (no GPU, or a CPU build of torch)")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} was asked for, but only {torch.cuda.device_count()} GPU(s) are present")
        return device
    raise ValueError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")


def resolve_precision(name: str, device: torch.device) -> torch.dtype:
    """``auto`` (fp16 on CUDA, fp32 elsewhere), ``fp32``, ``fp16``, ``bf16`` or ``int8`` -> the dtype to load in.

    ``int8`` loads in float32 (the models are quantized afterwards) and is for the CPU only.
    """
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if name == "int8":
        if device.type != "cpu":
            raise ValueError(f"precision 'int8' (the fast CPU mode) runs on the CPU only, not on {device.type}; "
                             "use fp16 or bf16 on a GPU")
        return torch.float32
    if name not in _DTYPES:
        raise ValueError(f"unknown precision {name!r}; choose one of {', '.join(PRECISION_CHOICES)}")
    return _DTYPES[name]


def resolve_placement(device: str = "auto", precision: str = "auto") -> Placement:
    """Both choices at once, as the app and the command line take them."""
    resolved = resolve_device(device)
    dtype = resolve_precision(precision, resolved)
    return Placement(resolved, dtype, int8=(precision or "").strip().lower() == "int8")
