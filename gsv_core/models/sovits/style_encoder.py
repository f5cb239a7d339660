"""The reference style encoder: the lowest 704 bins of a linear spectrogram -> one style vector.

Training runs it on padded batches (``mask``) in train mode, where its dropouts (0.1, fixed by
the official architecture) draw in the official order: after each spectral layer, after each
gated convolution, on the attention weights, on the attention output. Eval mode never draws.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import STYLE_BINS

STYLE_DROPOUT = 0.1  # hard-coded upstream, whatever the model config's p_dropout


class GatedConv(nn.Module):
    """Residual 'same' convolution through a gated linear unit."""

    def __init__(self, channels: int, kernel_size: int, dropout: float = STYLE_DROPOUT) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, 2 * channels, kernel_size, padding=(kernel_size - 1) // 2)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, C, T)."""
        return x + self.drop(F.glu(self.conv(x), dim=1))


class StyleSelfAttention(nn.Module):
    """Residual multi-head self-attention on (B, T, C) rows."""

    def __init__(self, dim: int, num_heads: int, dropout: float = STYLE_DROPOUT) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.temperature = math.sqrt(dim)  # upstream scales by the model width, not the head width
        self.weights_drop = nn.Dropout(dropout)
        self.out_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, C) -> (B, T, C); ``key_padding`` (B, T) is True on padded frames, which no row attends to."""
        batch, length, dim = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.num_heads, -1).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        scores = q @ k.transpose(-2, -1) / self.temperature
        if key_padding is not None:
            scores = scores.masked_fill(key_padding[:, None, None, :], float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        if self.training:  # upstream lays the weights out head-major, (heads * B, T, T): its mask has that shape
            heads_first = self.weights_drop(weights.transpose(0, 1).reshape(-1, length, length))
            weights = heads_first.view(self.num_heads, batch, length, length).transpose(0, 1)
        return self.out_drop(self.out((weights @ v).transpose(1, 2).reshape(batch, length, dim))) + x


class MelStyleEncoder(nn.Module):
    """Spectral MLP, two gated convolutions, self-attention, then a time average."""

    def __init__(
        self, out_dim: int, in_dim: int = STYLE_BINS, hidden: int = 128, kernel_size: int = 5, num_heads: int = 2,
        dropout: float = STYLE_DROPOUT,
    ) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.spectral_in = nn.Linear(in_dim, hidden)
        self.spectral_out = nn.Linear(hidden, hidden)
        self.spectral_drop = nn.Dropout(dropout)
        self.temporal = nn.ModuleList(GatedConv(hidden, kernel_size, dropout) for _ in range(2))
        self.attention = StyleSelfAttention(hidden, num_heads, dropout)
        self.out_proj = nn.Linear(hidden, out_dim)

    def forward(self, spec: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, >=704, T) linear spectrogram -> (B, out_dim, 1) style vector.

        Only the lowest ``in_dim`` bins are read. Without ``mask`` every frame counts; a padded
        batch passes ``mask`` (B, 1, T), 1 on real frames: as upstream, padded frames are zeroed
        before the attention, never attended to and left out of the average (the convolutions
        still see them, as upstream's do).
        """
        if spec.dim() != 3 or spec.shape[1] < self.in_dim:
            raise ValueError(f"reference spectrogram must be (batch, >={self.in_dim}, frames), got {tuple(spec.shape)}")
        padding = None if mask is None else mask[:, 0] == 0  # (B, T), True on padded frames
        x = spec[:, : self.in_dim].transpose(1, 2)
        x = self.spectral_drop(F.mish(self.spectral_in(x)))
        x = self.spectral_drop(F.mish(self.spectral_out(x)))
        x = x.transpose(1, 2)
        for block in self.temporal:
            x = block(x)
        x = x.transpose(1, 2)
        if padding is not None:
            x = x.masked_fill(padding.unsqueeze(-1), 0)
        x = self.out_proj(self.attention(x, padding))
        if padding is None:  # upstream pools as sum(x / T), which rounds differently from mean(x)
            return (x / x.shape[1]).sum(dim=1).unsqueeze(-1)
        frames = (~padding).sum(dim=1).view(-1, 1, 1)
        return (x.masked_fill(padding.unsqueeze(-1), 0) / frames).sum(dim=1).unsqueeze(-1)
