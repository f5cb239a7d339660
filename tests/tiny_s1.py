"""Tiny GPT (s1) training inputs built in code: an official-layout config, a random pretrained
``.ckpt`` and a random prepared dataset (for the training tests that need no reference)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gsv_core.models.t2s import T2SConfig, Text2Semantic
from gsv_core.training.checkpoints import save_s1_checkpoint
from gsv_core.training.prepared import PreparedUtterance, save_prepared


def tiny_s1_config(**train) -> dict:
    """The official s1 config layout (s1longer-v2.yaml) with a tiny model section."""
    return {
        "train": {"seed": 1234, "epochs": 2, "batch_size": 4, "save_every_n_epoch": 1, "precision": "32",
                  "gradient_clip": 1.0, "if_save_every_weights": True, "if_save_latest": True, "if_dpo": False,
                  "exp_name": "tiny", **train},
        "optimizer": {"lr": 0.01, "lr_init": 1e-05, "lr_end": 0.0001, "warmup_steps": 2000, "decay_steps": 40000},
        "data": {"max_eval_sample": 8, "max_sec": 54, "num_workers": 4, "pad_val": 1024},
        "model": {"vocab_size": 1025, "phoneme_vocab_size": 732, "embedding_dim": 16, "hidden_dim": 16, "head": 2,
                  "linear_units": 64, "n_layer": 1, "dropout": 0, "EOS": 1024, "random_bert": 0},
        "inference": {"top_k": 15},
    }


def write_tiny_pretrained(path: Path, config: dict, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = Text2Semantic(T2SConfig.from_checkpoint_config(config))
    return save_s1_checkpoint(path, model, config, epoch=0)


def write_tiny_prepared(folder: Path, count: int = 6, seed: int = 0) -> Path:
    """``count`` random utterances: 8-14 phones, 20-36 codes (within the official phone-rate filter)."""
    rng = np.random.default_rng(seed)
    utterances = []
    for index in range(count):
        phones = int(rng.integers(8, 15))
        utterances.append(PreparedUtterance(
            key=f"u{index}", wav_name=f"u{index}.wav", speaker="spk", lang="ZH", text="", phones=("a",) * phones,
            word2ph=None, norm_text="", phone_ids=rng.integers(1, 700, phones).astype(np.int64),
            bert=rng.standard_normal((1024, phones)).astype(np.float32),
            semantic=rng.integers(0, 1024, int(rng.integers(20, 37))).astype(np.int64),
        ))
    return save_prepared(folder, utterances)
