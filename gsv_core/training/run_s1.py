"""A GPT (s1) fine-tuning run from files: prepared dataset + pretrained ``.ckpt`` -> exported ``.ckpt``.

The output folder holds ``<exp_name>-e<N>.ckpt`` (official exports), ``s1-state.pt`` (the
resumable training state, rewritten atomically) and ``s1-metrics.jsonl`` (one line per batch:
epoch, batch, loss, accuracy, whether the optimizer stepped, lr, seconds). A run that finds a
state in its folder continues from it, so a killed run is simply started again; batches
that ran after the last saved state run again and are logged again (a reader keeps the
last line of each epoch and batch).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from ..checkpoints import read_t2s_checkpoint
from ..models.t2s import load_t2s
from .prepared import load_prepared
from .s1 import BatchRecord, Position, S1Trainer
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


def train_s1(prepared_dir: str | os.PathLike, pretrained: str | os.PathLike, out_dir: str | os.PathLike,
             overrides: dict[str, object] | None = None, device: str = "cpu", state_every: int = 4,
             restart: bool = False, on_batch: Callable[[BatchRecord], None] | None = None) -> Position:
    """Fine-tune (or continue fine-tuning) the GPT stage; returns where the run ended."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = s1_config(pretrained, overrides or {})
    dataset = S1Dataset.from_utterances(load_prepared(prepared_dir, names=("phone_ids", "bert", "semantic")),
                                        max_sec=config["data"]["max_sec"])
    trainer = S1Trainer(load_t2s(pretrained), config, dataset, device)
    state_path = out_dir / STATE_FILE
    if state_path.exists() and not restart:
        trainer.load_state(state_path)
    else:
        trainer.start()
    with open(out_dir / METRICS_FILE, "a", encoding="utf-8") as metrics:
        def record(batch: BatchRecord) -> None:
            metrics.write(json.dumps(asdict(batch)) + "\n")
            metrics.flush()
            if on_batch is not None:
                on_batch(batch)

        return trainer.run(out_dir, state_path, state_every=state_every, on_batch=record)
