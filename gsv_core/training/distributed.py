"""Training on several processes (GPUs, machines) with ``torch.distributed``, as the official s1 does.

Start one process per GPU with ``torchrun``; each process finds its rank in the environment
``torchrun`` sets (read by the command line, the entry point, and by
``init_process_group("env://")``). NCCL connects CUDA processes, gloo CPU ones.

What the official GPT trainer does under DDP (Lightning ``DDPStrategy``, manual optimisation),
and what :class:`~.s1.S1Trainer` reproduces:

* The config's ``batch_size`` is per process. The sampler shuffles the buckets as for one
  process, cuts them into chunks of ``batch_size * world_size`` items and gives process
  ``rank`` every ``world_size``-th item, so the ``world_size`` batches of one batch index form
  one chunk (padded by repeating the first items so that every process gets as many).
* Each process collates its own batch (padded to its own longest item), takes the *summed*
  loss and backpropagates it; DDP then averages the gradients over the processes at every
  backward. So the gradient of one batch index is ``(1 / world_size) * sum over ranks of the
  gradient of that rank's summed loss``: a single process reproduces it by running the
  ``world_size`` sub-batches one after another, each as that rank collates it, backpropagating
  each loss divided by ``world_size``, each with that rank's dropout generator (the test
  ``tests/test_training_ddp.py`` does exactly that). That is what "the same global batch"
  means here; collating all the items into one batch would not be the same, since the
  official loss also sums over each batch's padding positions and the text mask depends on
  the batch's longest row.
* The optimizer steps, the accumulation pattern and the lr are those of one process; an
  epoch has ``world_size`` times fewer batches. ScaledAdam normalises the gradient's size,
  so the factor ``1 / world_size`` changes a step only through its ``eps`` (1e-8).
* Every process seeds its generators with the same seed, so each one's dropout masks come
  from a stream that starts alike (the masks' shapes follow each process's batches).
* Only rank 0 writes checkpoints (the official callback checks ``LOCAL_RANK``); here also the
  training state and the metrics. The state holds every rank's random generators (gathered
  to rank 0), so a resumed run continues each rank's stream. The official CPU path never
  runs DDP (its sampler counts one replica without CUDA); gloo on the CPU is ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Distributed:
    """Where this process stands in the group: one process (the default) or ``world_size`` of them."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def start_distributed(device: torch.device, local_rank: int, world_size: int) -> tuple[Distributed, torch.device]:
    """Join the process group ``torchrun`` set up; returns this process's place and its device.

    A CUDA process uses GPU ``local_rank`` (``cuda`` or ``cuda:N`` is replaced by it).
    """
    if world_size <= 1:
        return Distributed(), device
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group(backend_for(device))
    return Distributed(dist.get_rank(), dist.get_world_size(), local_rank), device


def stop_distributed(group: Distributed, finished: bool = True) -> None:
    """Leave the process group. After a run every process ``finished``, they first wait for each other:
    a gloo process whose peers tore the group down while it was still leaving it could abort at exit
    ("terminate called without an active exception", seen on a loaded 2-core machine)."""
    if group.enabled and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def mean_over_ranks(values: list[float], group: Distributed, device: torch.device) -> list[float]:
    """The mean of each value over the processes (the official metrics are logged with ``sync_dist``)."""
    if not group.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return (tensor / group.world_size).tolist()


def min_over_ranks(value: int, group: Distributed, device: torch.device) -> int:
    """The smallest ``value`` of all processes (e.g. one batch size that fits everywhere)."""
    if not group.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return int(tensor.item())


def gather_to_all(value: Any, group: Distributed) -> list[Any]:
    """``value`` of every rank, in rank order (a collective: every rank must call it)."""
    if not group.enabled:
        return [value]
    values: list[Any] = [None] * group.world_size
    dist.all_gather_object(values, value)
    return values


def from_rank_0(value: Any, group: Distributed) -> Any:
    """Rank 0's ``value`` on every rank (a collective: every rank must call it)."""
    if not group.enabled:
        return value
    box = [value if group.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wrap_for_training(module: torch.nn.Module, group: Distributed, device: torch.device) -> torch.nn.Module:
    """``module`` under DistributedDataParallel when there are several processes (gradients averaged)."""
    if not group.enabled:
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=device_ids)
