"""The reference style encoder: the lowest 704 bins of a linear spectrogram -> one style vector."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import STYLE_BINS


class GatedConv(nn.Module):
    """Residual 'same' convolution through a gated linear unit."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, 2 * channels, kernel_size, padding=(kernel_size - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, C, T)."""
        return x + F.glu(self.conv(x), dim=1)


class StyleSelfAttention(nn.Module):
    """Residual multi-head self-attention on (B, T, C) rows."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.temperature = math.sqrt(dim)  # upstream scales by the model width, not the head width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, T, C)."""
        batch, length, dim = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.num_heads, -1).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        weights = torch.softmax(q @ k.transpose(-2, -1) / self.temperature, dim=-1)
        return self.out((weights @ v).transpose(1, 2).reshape(batch, length, dim)) + x


class MelStyleEncoder(nn.Module):
    """Spectral MLP, two gated convolutions, self-attention, then a time average."""

    def __init__(self, out_dim: int, in_dim: int = STYLE_BINS, hidden: int = 128, kernel_size: int = 5, num_heads: int = 2) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.spectral_in = nn.Linear(in_dim, hidden)
        self.spectral_out = nn.Linear(hidden, hidden)
        self.temporal = nn.ModuleList(GatedConv(hidden, kernel_size) for _ in range(2))
        self.attention = StyleSelfAttention(hidden, num_heads)
        self.out_proj = nn.Linear(hidden, out_dim)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """(B, >=704, T) linear spectrogram -> (B, out_dim, 1) style vector.

        Only the lowest ``in_dim`` bins are read; every frame counts (no padding mask).
        """
        if spec.dim() != 3 or spec.shape[1] < self.in_dim:
            raise ValueError(f"reference spectrogram must be (batch, >={self.in_dim}, frames), got {tuple(spec.shape)}")
        x = spec[:, : self.in_dim].transpose(1, 2)
        x = F.mish(self.spectral_out(F.mish(self.spectral_in(x))))
        x = x.transpose(1, 2)
        for block in self.temporal:
            x = block(x)
        x = self.out_proj(self.attention(x.transpose(1, 2)))
        # upstream pools as sum(x / T), which rounds differently from mean(x)
        return (x / x.shape[1]).sum(dim=1).unsqueeze(-1)
