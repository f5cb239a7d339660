"""The GPT (s1) training data as the official loader builds it: items, bucketed batches, collate.

* Items (``Text2SemanticDataset``): the utterances in list order, without those whose codes
  last more than ``max_sec``, whose phones exceed ``max_sec * 25 / 2.5`` or whose phones per
  second of codes fall outside [3, 25]; a set of fewer than 100 is repeated
  ``max(2, 100 // n)`` times over (so one batch can hold an utterance several times).
* Batches (``DistributedBucketSampler`` + ``DataLoader``): items sorted by duration (stable),
  cut into 2-second buckets (the bucket bound only moves 2 s past an item that does not fit,
  so the first bucket is empty when the shortest item lasts 2 s or more), each bucket
  shuffled, chunks of ``batch_size * replicas`` shuffled, then every replica takes every
  ``replicas``-th index and the loader cuts consecutive batches, the last one short. The
  shuffles use Python's ``random`` seeded with ``seed + epoch`` (its own instance here).
  The batch size is ``max(1, min(batch_size, items // 4))``.
* Collate: phones padded with 0, codes with ``pad_val``, BERT features (1024, n) zero-padded
  (zeros for utterances without features).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .prepared import PreparedUtterance
from .s1_model import S1Batch

SEMANTIC_HZ = 25  # the official "25hz" semantic rate
MIN_ITEMS = 100  # smaller sets are repeated up to about this many items
MIN_PHONES_PER_SECOND, MAX_PHONES_PER_SECOND = 3, 25
PHONES_PER_CODE_LIMIT = 2.5  # at most max_sec * hz / 2.5 phones
BUCKET_SECONDS = 2.0
BERT_DIM = 1024


@dataclass(frozen=True)
class S1Item:
    name: str
    phone_ids: np.ndarray  # (n,) int64
    semantic: np.ndarray  # (t,) int64
    bert: np.ndarray | None  # (1024, n) float32, None = zeros


@dataclass(frozen=True)
class S1Dataset:
    """The (possibly repeated) items and how many utterances each filter removed."""

    items: tuple[S1Item, ...]
    removed: dict[str, int]

    @classmethod
    def from_utterances(cls, utterances: Sequence[PreparedUtterance], max_sec: float = 54,
                        hz: int = SEMANTIC_HZ) -> S1Dataset:
        kept: list[S1Item] = []
        removed = {"too long": 0, "too many phones": 0, "phone rate": 0}
        for u in utterances:
            if u.phone_ids is None or u.semantic is None:
                raise ValueError(f"{u.wav_name} has no phone ids or semantic codes: prepare the dataset first")
            codes, phones = len(u.semantic), len(u.phone_ids)
            if codes > max_sec * hz:
                removed["too long"] += 1
            elif phones > max_sec * hz / PHONES_PER_CODE_LIMIT:
                removed["too many phones"] += 1
            elif codes == 0 or not MIN_PHONES_PER_SECOND <= phones / (codes / hz) <= MAX_PHONES_PER_SECOND:
                removed["phone rate"] += 1
            else:
                kept.append(S1Item(u.wav_name, u.phone_ids, u.semantic, u.bert))
        if not kept:
            raise ValueError(f"no utterance is usable for GPT training (removed: {removed})")
        if len(kept) < MIN_ITEMS:
            kept = kept * max(2, MIN_ITEMS // len(kept))
        return cls(tuple(kept), removed)

    def seconds(self, hz: int = SEMANTIC_HZ) -> list[float]:
        return [len(item.semantic) / hz for item in self.items]


def loader_batch_size(batch_size: int, items: int, dpo: bool = False) -> int:
    """The batch size the official data module really uses (halved for DPO, at most a quarter of the items)."""
    if dpo:
        batch_size //= 2
    return max(min(batch_size, items // 4), 1)


def _buckets(seconds: Sequence[float]) -> list[list[int]]:
    order = sorted(range(len(seconds)), key=lambda i: seconds[i])
    buckets, current, bound = [], [], BUCKET_SECONDS
    for index in order:
        if seconds[index] < bound:
            current.append(index)
        else:
            buckets.append(current)
            current, bound = [index], bound + BUCKET_SECONDS
    if current:
        buckets.append(current)
    return buckets


def epoch_batches(seconds: Sequence[float], batch_size: int, epoch: int, seed: int = 0, replicas: int = 1,
                  rank: int = 0) -> list[list[int]]:
    """The item indices of every batch of ``epoch`` for replica ``rank`` (see the module docstring)."""
    shuffler = random.Random(seed + epoch)
    shuffled = []
    for bucket in _buckets(seconds):
        bucket = list(bucket)
        shuffler.shuffle(bucket)
        shuffled.extend(bucket)
    group = batch_size * replicas
    chunks = [shuffled[start : start + group] for start in range(0, len(shuffled), group)]
    shuffler.shuffle(chunks)
    indices = [index for chunk in chunks for index in chunk]
    per_replica = math.ceil(len(seconds) / replicas)
    total = per_replica * replicas
    while len(indices) < total:  # pad by repeating from the start, as the official sampler does
        indices += indices[: total - len(indices)]
    mine = indices[rank:total:replicas]
    return [mine[start : start + batch_size] for start in range(0, len(mine), batch_size)]


def collate(items: Sequence[S1Item], pad_value: int = 1024) -> S1Batch:
    """One batch of items (see the module docstring)."""
    phone_lens = [len(item.phone_ids) for item in items]
    code_lens = [len(item.semantic) for item in items]
    phones = np.zeros((len(items), max(phone_lens)), dtype=np.int64)
    codes = np.full((len(items), max(code_lens)), pad_value, dtype=np.int64)
    bert = torch.zeros(len(items), BERT_DIM, max(phone_lens))
    for row, item in enumerate(items):
        phones[row, : phone_lens[row]] = item.phone_ids
        codes[row, : code_lens[row]] = item.semantic
        if item.bert is not None:
            bert[row, :, : item.bert.shape[-1]] = torch.from_numpy(np.asarray(item.bert, dtype=np.float32))
    return S1Batch(torch.from_numpy(phones), torch.tensor(phone_lens), torch.from_numpy(codes), torch.tensor(code_lens),
                   bert)
