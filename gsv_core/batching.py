"""Grouping text segments into decoding batches, and joining the decoded fragments.

Pure functions mirroring the official ``TTS.run`` bookkeeping: segments of similar length
are bucketed together (so padding stays small), decoded, and put back in reading order
with a short silence after each fragment.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def bucket_batches(
    lengths: Sequence[int], batch_size: int, threshold: float = 0.75, split_bucket: bool = True
) -> list[list[int]]:
    """Indices of the segments in each batch.

    With ``split_bucket`` the segments are sorted by length and a window of up to
    ``batch_size`` is shrunk until its median-ish length is at least ``threshold`` times
    its mean; otherwise segments are taken in order, ``batch_size`` at a time.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if not split_bucket:
        return [list(range(start, min(start + batch_size, len(lengths)))) for start in range(0, len(lengths), batch_size)]
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    pos = 0
    while pos < len(order):
        end = min(pos + batch_size, len(order))
        while end - pos > 1:
            window = np.asarray([lengths[i] for i in order[pos:end]], dtype=np.float32)
            if window[(end - pos) // 2] / (window.mean() + 1e-8) >= threshold:
                break
            end -= 1
        batches.append(order[pos:end])
        pos = end
    return batches


def join_fragments(fragments: Sequence[np.ndarray], sample_rate: int, interval_s: float) -> np.ndarray:
    """Concatenate fragments in order, each peak-limited to 1 and followed by ``interval_s`` of silence.

    Args:
        fragments: float32 arrays of shape (samples,).
    Returns:
        float32 array of shape (total_samples,).
    """
    silence = np.zeros(int(sample_rate * interval_s), dtype=np.float32) if interval_s > 0 else None
    pieces: list[np.ndarray] = []
    for fragment in fragments:
        fragment = np.asarray(fragment, dtype=np.float32)
        peak = float(np.abs(fragment).max()) if fragment.size else 0.0
        if peak > 1:
            fragment = fragment / peak
        pieces.append(fragment)
        if silence is not None:
            pieces.append(silence)
    if not pieces:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(pieces)


def to_int16(audio: np.ndarray) -> np.ndarray:
    """The official float -> int16 conversion (scale by 32768, truncate toward zero)."""
    return (np.asarray(audio, dtype=np.float32) * 32768).astype(np.int16)
