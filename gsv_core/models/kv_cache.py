"""The key/value cache of the GPT stage: one preallocated buffer for every layer."""

from __future__ import annotations

import torch


class KVCache:
    """Keys and values of all layers in one buffer (layers, 2, B, H, capacity, Dh).

    Decoding writes one position per step into the buffer and attends over views of
    it, so a step allocates nothing. The capacity starts at what the caller expects to
    need and doubles when a write would pass it (a copy O(log n) times, never per step),
    up to ``limit`` positions.
    """

    def __init__(self, num_layers: int, batch: int, num_heads: int, head_dim: int, capacity: int, limit: int,
                 dtype: torch.dtype, device: torch.device) -> None:
        self.limit = max(limit, capacity)
        self.buffer = torch.empty(num_layers, 2, batch, num_heads, min(capacity, self.limit), head_dim, dtype=dtype,
                                  device=device)
        self.length = 0

    @property
    def capacity(self) -> int:
        return self.buffer.shape[4]

    def reserve(self, count: int) -> None:
        """Make room for ``count`` more positions (doubling the capacity if needed)."""
        needed = self.length + count
        if needed <= self.capacity:
            return
        capacity = min(max(needed, 2 * self.capacity), max(needed, self.limit))
        grown = self.buffer.new_empty(*self.buffer.shape[:4], capacity, self.buffer.shape[5])
        grown[:, :, :, :, : self.length] = self.buffer[:, :, :, :, : self.length]
        self.buffer = grown

    def append(self, layer: int, kv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write kv (2, B, H, L, Dh), the new keys and values, after the cached positions.

        Returns all keys and values of ``layer`` so far, each (B, H, S, Dh). Call
        :meth:`reserve` first and :meth:`advance` once every layer has appended.
        """
        end = self.length + kv.shape[3]
        cached = self.buffer[layer]
        cached[:, :, :, self.length : end] = kv
        return cached[0, :, :, :end], cached[1, :, :, :end]

    def advance(self, count: int) -> None:
        """Count ``count`` positions as cached (after every layer wrote them)."""
        self.length += count

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the batch rows ``rows`` (int64 indices), e.g. when others finished."""
        self.buffer = self.buffer.index_select(2, rows)
