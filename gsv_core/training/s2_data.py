"""SoVITS training data: utterances, the official collate and the official bucket sampler.

An utterance is what data preparation leaves per wav: phone ids, the HuBERT features, the
32 kHz waveform and, for v2Pro/v2ProPlus, the SV embedding. The loader's per-item work (the
linear spectrogram, one replicated HuBERT frame where it is a frame short) and the collate
(rows sorted by spectrogram length, zero padding, spectrogram and HuBERT frames padded to
``2 * (max // 2 + 1)``) follow the official ``TextAudioSpeakerLoader`` / ``TextAudioSpeakerCollate``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from ..spectrogram import linear_spectrogram
from ..versions import AudioSettings


@dataclass(frozen=True)
class S2Utterance:
    """One prepared utterance."""

    name: str
    phone_ids: torch.Tensor  # (P,) int64
    ssl: torch.Tensor  # (1, 768, T50) float32 HuBERT last hidden state, channels first
    wav: torch.Tensor  # (samples,) float32 in [-1, 1] at 32 kHz (the prepared int16 / 32768)
    sv_emb: torch.Tensor | None = None  # (20480,) float32, v2Pro / v2ProPlus only


@dataclass(frozen=True)
class S2Batch:
    """A collated batch, rows sorted by spectrogram length (longest first)."""

    ssl: torch.Tensor  # (B, 768, T') zero-padded, T' = 2 * (max // 2 + 1)
    ssl_lengths: torch.Tensor  # (B,) int64
    spec: torch.Tensor  # (B, 1025, T') linear magnitudes, zero-padded
    spec_lengths: torch.Tensor  # (B,) int64
    y: torch.Tensor  # (B, 1, samples) waveform, zero-padded
    y_lengths: torch.Tensor  # (B,) int64
    text: torch.Tensor  # (B, P) int64 phone ids, zero-padded
    text_lengths: torch.Tensor  # (B,) int64
    sv_emb: torch.Tensor | None = None  # (B, 20480)
    names: tuple[str, ...] = ()  # the utterance of each row

    def to(self, device: torch.device | str) -> S2Batch:
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in moved.items():
            if isinstance(value, torch.Tensor):
                moved[name] = value.to(device)
        return S2Batch(**moved)


def utterance_spectrogram(utterance: S2Utterance, audio: AudioSettings) -> torch.Tensor:
    """(1025, frames) linear spectrogram of the utterance's waveform, as the official loader computes it."""
    return linear_spectrogram(utterance.wav.view(1, -1).float(), audio)[0]


def _padded_frames(longest: int) -> int:
    return 2 * (longest // 2 + 1)


def collate(utterances: Sequence[S2Utterance], audio: AudioSettings) -> S2Batch:
    """The official collate of the official loader's items (spectrograms computed here)."""
    specs = [utterance_spectrogram(u, audio) for u in utterances]
    ssls = []
    for u, spec in zip(utterances, specs):
        ssl = u.ssl.float()
        if ssl.shape[-1] != spec.shape[-1]:  # upstream pads one replicated frame whenever they differ
            ssl = F.pad(ssl, (0, 1), mode="replicate")
        ssls.append(ssl)
    _, order = torch.sort(torch.tensor([spec.shape[-1] for spec in specs], dtype=torch.long), dim=0, descending=True)
    order = order.tolist()
    batch = len(utterances)
    ssl_frames = _padded_frames(max(s.shape[-1] for s in ssls))
    spec_frames = _padded_frames(max(s.shape[-1] for s in specs))
    ssl_padded = torch.zeros(batch, ssls[0].shape[1], ssl_frames)
    spec_padded = torch.zeros(batch, specs[0].shape[0], spec_frames)
    y = torch.zeros(batch, 1, max(u.wav.numel() for u in utterances))
    text = torch.zeros(batch, max(u.phone_ids.numel() for u in utterances), dtype=torch.long)
    lengths = {name: torch.zeros(batch, dtype=torch.long) for name in ("ssl", "spec", "y", "text")}
    for row, index in enumerate(order):
        u, ssl, spec = utterances[index], ssls[index], specs[index]
        ssl_padded[row, :, : ssl.shape[-1]] = ssl[0]
        spec_padded[row, :, : spec.shape[-1]] = spec
        y[row, 0, : u.wav.numel()] = u.wav
        text[row, : u.phone_ids.numel()] = u.phone_ids
        for name, size in (("ssl", ssl.shape[-1]), ("spec", spec.shape[-1]), ("y", u.wav.numel()), ("text", u.phone_ids.numel())):
            lengths[name][row] = size
    sv = None
    if utterances[0].sv_emb is not None:
        sv = torch.stack([utterances[index].sv_emb.reshape(-1).float() for index in order])
    return S2Batch(
        ssl=ssl_padded, ssl_lengths=lengths["ssl"], spec=spec_padded, spec_lengths=lengths["spec"], y=y,
        y_lengths=lengths["y"], text=text, text_lengths=lengths["text"], sv_emb=sv,
        names=tuple(utterances[index].name for index in order),
    )


# the official trainer's length buckets (in spectrogram frames)
BUCKET_BOUNDARIES = (32, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 1400, 1500, 1600, 1700, 1800, 1900)
MIN_ITEMS = 100  # the official loader repeats a small dataset up to about this many items
MIN_SECONDS, MAX_SECONDS = 0.6, 54.0  # utterances outside (MIN_SECONDS, MAX_SECONDS) are skipped
ORDER_SEED = 1234
# upstream measures an utterance by the size of its 16-bit wav file, header included
WAV_HEADER_BYTES = 44


def epoch_items(names: Sequence[str], samples: Sequence[int], audio: AudioSettings) -> tuple[list[str], list[int]]:
    """The official loader's item list: repeated up to ~100 items, shuffled (seed 1234), too short or long ones dropped.

    Lengths and durations are measured as upstream does, from the size of the 16-bit wav file
    (44-byte header included): ``bytes // (2 * hop)`` frames, ``bytes / rate / 2`` seconds.
    Returns the item names and their lengths in frames. One deviation: the
    official order starts from ``list(set(names))``, which depends on the process's hash seed;
    here it starts from the names sorted, so it is the same in every process.
    """
    order = sorted(range(len(names)), key=lambda i: names[i])
    repeats = max(2, MIN_ITEMS // len(order)) if len(order) < MIN_ITEMS else 1
    items = order * repeats
    random.Random(ORDER_SEED).shuffle(items)
    size = [2 * count + WAV_HEADER_BYTES for count in samples]
    kept = [i for i in items if MIN_SECONDS < size[i] / audio.sampling_rate / 2 < MAX_SECONDS]
    return [names[i] for i in kept], [size[i] // (2 * audio.hop_length) for i in kept]


def bucket_batches(
    lengths: Sequence[int], batch_size: int, epoch: int, boundaries: Sequence[int] = BUCKET_BOUNDARIES,
    num_replicas: int = 1, rank: int = 0,
) -> list[list[int]]:
    """The official ``DistributedBucketSampler`` batches of one epoch (item indices), for ``rank``.

    Items are grouped by length bucket (lengths outside the boundaries are dropped), each bucket
    is padded by repetition to a multiple of ``num_replicas * batch_size``, shuffled with a
    generator seeded by the epoch, split into batches, and the batches shuffled again.
    """
    buckets: list[list[int]] = [[] for _ in range(len(boundaries) - 1)]
    for index, length in enumerate(lengths):
        for b in range(len(boundaries) - 1):
            if boundaries[b] < length <= boundaries[b + 1]:
                buckets[b].append(index)
                break
    buckets = [bucket for bucket in buckets if bucket]
    total = num_replicas * batch_size
    generator = torch.Generator()
    generator.manual_seed(epoch)
    shuffled = [torch.randperm(len(bucket), generator=generator).tolist() for bucket in buckets]
    batches = []
    for bucket, ids in zip(buckets, shuffled):
        missing = (total - len(bucket) % total) % total
        ids = ids + ids * (missing // len(bucket)) + ids[: missing % len(bucket)]
        ids = ids[rank::num_replicas]
        batches += [[bucket[i] for i in ids[j * batch_size : (j + 1) * batch_size]] for j in range(len(ids) // batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
