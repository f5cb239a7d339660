"""A resumable SoVITS training run over prepared utterances: epochs of official batches.

A fresh run seeds the global generator and consumes it as the official start does
(:mod:`.s2_start`), so its dropout masks, noise and slices are the official run's for the same
batches. Each epoch's batches come from the official bucket sampler (seeded by the epoch), so they are
known again after a restart; the full training state is written atomically every
``save_every`` steps and at each epoch end, and a run started on an existing state file
resumes exactly there (same parameters, same optimizer and schedule state, same RNG).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .s2_checkpoints import load_training_state, save_training_state
from .s2_data import S2Utterance, bucket_batches, collate, epoch_items
from .s2_start import draw_like_official_start
from .sovits_train import S2Trainer, StepResult


@dataclass(frozen=True)
class RunPlan:
    """How long to train and how often to save."""

    epochs: int
    batch_size: int
    seed: int = 1234  # torch.manual_seed at a fresh start, as upstream (train.seed)
    save_every: int = 1  # steps between training-state saves
    max_steps: int | None = None  # stop early (tests, benchmarks)
    batches_per_epoch: int | None = None  # cut every epoch short (the training reference ran 2 batches)


def train_s2(
    trainer: S2Trainer, utterances: Sequence[S2Utterance], plan: RunPlan, state_path: str | os.PathLike,
    on_step: Callable[[int, StepResult], None] | None = None,
) -> Mapping[str, int]:
    """Train (or resume, when ``state_path`` exists) and return the final progress counters.

    Progress: ``epoch`` (the next epoch to run, 1-based), ``batch`` (the next batch in it) and
    ``step`` (optimizer steps done). ``on_step(step, result)`` runs after every step.
    """
    state_path = Path(state_path)
    if state_path.exists():
        progress = load_training_state(state_path, trainer)
    else:  # seeded as upstream, whose construction and loader draws come next: its masks follow
        torch.manual_seed(plan.seed)
        draw_like_official_start(trainer.generator, trainer.discriminator)
        progress = {"epoch": 1, "batch": 0, "step": 0}
    by_name = {u.name: u for u in utterances}
    if len(by_name) != len(utterances):
        raise ValueError("utterance names must be unique (they identify the items of every batch)")
    audio = trainer.mel.audio
    names, lengths = epoch_items([u.name for u in utterances], [u.wav.numel() for u in utterances], audio)
    while progress["epoch"] <= plan.epochs:
        batches = bucket_batches(lengths, plan.batch_size, progress["epoch"])[: plan.batches_per_epoch]
        for indices in batches[progress["batch"]:]:
            if plan.max_steps is not None and progress["step"] >= plan.max_steps:
                return progress
            result = trainer.step(collate([by_name[names[i]] for i in indices], audio))
            progress = {**progress, "batch": progress["batch"] + 1, "step": progress["step"] + 1}
            if on_step is not None:
                on_step(progress["step"], result)
            if progress["step"] % plan.save_every == 0:
                save_training_state(state_path, trainer, progress)
        trainer.end_epoch()
        progress = {**progress, "epoch": progress["epoch"] + 1, "batch": 0}
        save_training_state(state_path, trainer, progress)
    return progress
