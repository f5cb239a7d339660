"""The reference style encoder: the first 704 bins of a linear spectrogram -> one style vector."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class _Linear(nn.Module):
    """A Linear under the official attribute name `fc`."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class _GatedConv(nn.Module):
    """Residual 'same' convolution with a gated linear unit."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv1 = nn.Module()
        self.conv1.conv = nn.Conv1d(channels, 2 * channels, kernel_size, padding=(kernel_size - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.conv1.conv(x).chunk(2, dim=1)
        return x + a * torch.sigmoid(b)


class _SelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.w_qs, self.w_ks, self.w_vs, self.fc = (nn.Linear(dim, dim) for _ in range(4))
        self.temperature = math.sqrt(dim)  # the official scales by the model width, not the head width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        heads = lambda t: t.view(batch, length, self.num_heads, -1).transpose(1, 2)
        q, k, v = heads(self.w_qs(x)), heads(self.w_ks(x)), heads(self.w_vs(x))
        weights = torch.softmax(q @ k.transpose(-2, -1) / self.temperature, dim=-1)
        return self.fc((weights @ v).transpose(1, 2).reshape(batch, length, dim)) + x


class MelStyleEncoder(nn.Module):
    def __init__(self, in_dim: int = 704, out_dim: int = 512, hidden: int = 128, kernel_size: int = 5, num_heads: int = 2) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.spectral = nn.ModuleDict({"0": _Linear(in_dim, hidden), "3": _Linear(hidden, hidden)})
        self.temporal = nn.ModuleList(_GatedConv(hidden, kernel_size) for _ in range(2))
        self.slf_attn = _SelfAttention(hidden, num_heads)
        self.fc = _Linear(hidden, out_dim)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """spec (B, >=704, T) -> style (B, out_dim, 1)."""
        x = spec[:, : self.in_dim].transpose(1, 2)
        x = F.mish(self.spectral["3"](F.mish(self.spectral["0"](x))))
        x = x.transpose(1, 2)
        for block in self.temporal:
            x = block(x)
        x = self.fc(self.slf_attn(x.transpose(1, 2)))
        # the official pools as sum(x / T), which rounds differently from mean(x)
        return (x / x.shape[1]).sum(dim=1).unsqueeze(-1)
