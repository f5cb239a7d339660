"""A GPT (s1) fine-tuning run from files: prepared dataset + pretrained ``.ckpt`` -> exported ``.ckpt``.

The output folder holds ``<exp_name>-e<N>.ckpt`` (official exports), ``s1-state.pt`` (the
resumable training state, rewritten atomically) and ``s1-metrics.jsonl`` (one line per
optimizer step, :class:`~.s1.StepRecord`: epoch, step, batches, loss, accuracy, lr, seconds,
loss scale, skipped). A run that finds a state in its folder continues from it, so a killed
run is simply started again; batches that ran after the last saved state run again, and a
step they end is logged again (a reader keeps the last line of each step). Under DDP only
rank 0 writes the folder; every process must see the same prepared dataset and pretrained
file.

Defaults the official webui chooses: the precision (``16-mixed`` on a GPU fit for half
precision, else ``32``: :func:`~.precision.default_precision`) and the batch size (from the
free memory: :mod:`.batch_size`); both are written into the exported config.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from ..checkpoints import read_t2s_checkpoint
from ..models.t2s import load_t2s
from .batch_size import default_batch_size
from .distributed import Distributed, from_rank_0, min_over_ranks
from .precision import TrainingPrecision, default_precision
from .prepared import load_prepared
from .s1 import BatchRecord, Position, S1Trainer, StepRecord, read_s1_state
from .s1_data import S1Dataset

STATE_FILE = "s1-state.pt"
METRICS_FILE = "s1-metrics.jsonl"


def s1_config(pretrained: str | os.PathLike, overrides: dict[str, object]) -> dict:
    """The training config: the pretrained file's own (official layout) with ``train`` overrides applied."""
    config = copy.deepcopy(read_t2s_checkpoint(pretrained).config)
    for section in ("train", "optimizer", "data", "model"):
        if not isinstance(config.get(section), dict):
            raise ValueError(f"{pretrained} has no '{section}' section in its config; it cannot seed a training run")
    config["train"].update({k: v for k, v in overrides.items() if v is not None})
    config["pretrained_s1"] = os.fspath(pretrained)
    return config


def _resolve_defaults(config: dict, overrides: dict[str, object], device: torch.device, group: Distributed) -> None:
    """Precision and batch size where the caller left them to the run (see the module docstring)."""
    train = config["train"]
    if overrides.get("precision") is None:
        train["precision"] = default_precision(device)
    precision = TrainingPrecision.official(train["precision"], device)
    train["precision"] = "32" if precision.dtype is None else precision.name  # the official spellings
    if overrides.get("batch_size") is None:
        size = default_batch_size(device, precision.dtype is not None, fallback=int(train["batch_size"]))
        train["batch_size"] = min_over_ranks(size, group, device)


def train_s1(prepared_dir: str | os.PathLike, pretrained: str | os.PathLike, out_dir: str | os.PathLike,
             overrides: dict[str, object] | None = None, device: str | torch.device = "cpu", state_every: int = 4,
             restart: bool = False, on_batch: Callable[[BatchRecord], None] | None = None,
             group: Distributed | None = None) -> Position:
    """Fine-tune (or continue fine-tuning) the GPT stage; returns where the run ended.

    ``overrides`` sets ``train`` fields of the config (epochs, batch_size, precision, seed,
    exp_name); None values take the defaults. ``on_batch`` is called on rank 0 only.
    """
    group = group or Distributed()
    device = torch.device(device)
    overrides = overrides or {}
    out_dir = Path(out_dir)
    if group.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    state_path = out_dir / STATE_FILE
    state = read_s1_state(state_path, group) if from_rank_0(state_path.exists() and not restart, group) else None
    config = s1_config(pretrained, overrides)
    if state is not None:  # the saved run's batch size and precision, unless set again
        config["train"].update({**state["config"]["train"], **{k: v for k, v in overrides.items() if v is not None}})
    _resolve_defaults(config, overrides if state is None else config["train"], device, group)
    dataset = S1Dataset.from_utterances(load_prepared(prepared_dir, names=("phone_ids", "bert", "semantic")),
                                        max_sec=config["data"]["max_sec"])
    trainer = S1Trainer(load_t2s(pretrained), config, dataset, device, group=group)
    if state is not None:
        trainer.load_state_dict(state, state_path)
    else:
        trainer.start()
    if not group.is_main:
        return trainer.run(out_dir, state_path, state_every=state_every)
    with open(out_dir / METRICS_FILE, "a", encoding="utf-8") as metrics:
        def record(step: StepRecord) -> None:
            metrics.write(json.dumps(asdict(step)) + "\n")
            metrics.flush()

        return trainer.run(out_dir, state_path, state_every=state_every, on_batch=on_batch, on_step=record)
