"""Grouping the text segments of one request into GPT decoding batches.

A pure function mirroring the official ``TTS.run`` bookkeeping: segments of similar length
are bucketed together, so padding stays small. (Serving several requests together is the
app's synthesis queue; this is about the segments inside one request.)
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
