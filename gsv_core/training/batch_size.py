"""The batch size a training run takes when none is given: the webui's rule, on free memory.

The official webui proposes ``min(GPU memory in GiB) // 2`` for both stages on a GPU
(``total_memory / 2**30 + 0.4``) and ``RAM in GiB / 4`` without one, and halves it when it
trains in float32 (no half-precision GPU). We apply the same arithmetic to the memory that is
*free* now (``torch.cuda.mem_get_info`` on a GPU, ``MemAvailable`` of ``/proc/meminfo`` on a
Linux CPU), so a GPU or machine that is partly used gets a smaller batch:

* CUDA: ``free GiB // 2``, halved in float32;
* CPU: ``int(available GiB / 4)``, halved in float32;
* at least 1; under DDP the smallest over the processes. The s1 data loader then caps it at
  a quarter of the items (:func:`~.s1_data.loader_batch_size`).

Where the free memory cannot be read (a CPU without ``/proc/meminfo``), the fallback is the
caller's (the pretrained file's config value).
"""

from __future__ import annotations

from pathlib import Path

import torch

GIB = 2**30
MEMINFO = Path("/proc/meminfo")


def free_memory_bytes(device: torch.device) -> int | None:
    """Bytes free for training on ``device`` now, or None where it cannot be read."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # the file counts kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def batch_size_for_memory(free_bytes: int, device_type: str, mixed_precision: bool) -> int:
    """The webui's batch size rule applied to ``free_bytes`` (see the module docstring)."""
    gib = free_bytes / GIB
    size = int(gib // 2) if device_type == "cuda" else int(gib / 4)
    if not mixed_precision:
        size //= 2
    return max(1, size)


def default_batch_size(device: torch.device, mixed_precision: bool, fallback: int) -> int:
    free = free_memory_bytes(device)
    return fallback if free is None else batch_size_for_memory(free, device.type, mixed_precision)
