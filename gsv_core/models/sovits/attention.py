"""The attention encoders of the SoVITS text encoder (VITS style, channels-first).

Self-attention layers add learned relative-position terms for offsets within +-window.
A single sequence needs no mask; a batch of padded sequences (``SoVITS.decode_batch``) passes
one, so padded keys get zero attention weight and the convolutions see zeros past each
item's end, as the item alone would.

Training (``gsv_core.training``) runs these layers in train mode: the dropouts below then draw
their masks in the official order (attention weights, attention output, feed-forward hidden,
feed-forward output, layer by layer); in eval mode they are the identity, so inference is unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of (B, C, T) tensors (official names gamma/beta)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.transpose(1, -1), (x.shape[1],), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)


def _band_indices(length: int, window: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """For each (query i, key j): the relative-embedding slot j - i + window, and whether it is in the band."""
    offset = torch.arange(length, device=device).view(1, -1) - torch.arange(length, device=device).view(-1, 1)
    in_band = offset.abs() <= window
    return (offset + window).clamp(0, 2 * window), in_band


class MultiHeadAttention(nn.Module):
    """Multi-head attention with 1x1-conv projections on (B, C, T) tensors."""

    def __init__(self, channels: int, out_channels: int, num_heads: int, window: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.drop = nn.Dropout(dropout)  # on the softmax weights, before both value products
        self.head_dim = channels // num_heads
        self.window = window
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        if window is not None:
            self.emb_rel_k = nn.Parameter(torch.zeros(1, 2 * window + 1, self.head_dim))
            self.emb_rel_v = nn.Parameter(torch.zeros(1, 2 * window + 1, self.head_dim))

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, length = x.shape
        return x.view(batch, self.num_heads, self.head_dim, length).transpose(2, 3)

    def forward(self, x: torch.Tensor, context: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, C, Tq) queries; context: (B, C, Tk) keys and values -> (B, C_out, Tq).

        ``key_mask`` (B, 1, Tk), 0 on padded keys: their scores become -inf, so their softmax
        weights (and their relative-position value terms) are exactly 0. Every item needs a real key.
        """
        query = self._heads(self.conv_q(x)) / math.sqrt(self.head_dim)
        key, value = self._heads(self.conv_k(context)), self._heads(self.conv_v(context))
        scores = query @ key.transpose(-2, -1)
        if self.window is not None:
            slots, in_band = _band_indices(x.shape[2], self.window, x.device)
            relative = query @ self.emb_rel_k[0].transpose(0, 1)  # (B, H, T, 2w+1)
            scores = scores + torch.gather(relative, 3, slots.expand(*relative.shape[:2], -1, -1)) * in_band
        if key_mask is not None:
            scores = scores.masked_fill(key_mask.unsqueeze(1) == 0, float("-inf"))
        weights = self.drop(torch.softmax(scores, dim=-1))
        output = weights @ value
        if self.window is not None:
            length, width = x.shape[2], 2 * self.window + 1
            banded = torch.zeros(*weights.shape[:3], width, dtype=weights.dtype, device=weights.device)
            banded.scatter_add_(3, slots.expand(*weights.shape[:2], -1, -1), weights * in_band)
            output = output + banded @ self.emb_rel_v[0]
        batch, _, length, _ = output.shape
        return self.conv_o(output.transpose(2, 3).reshape(batch, -1, length))


class FeedForward(nn.Module):
    """Two 'same'-padded convolutions with a ReLU between."""

    def __init__(self, channels: int, filter_channels: int, kernel_size: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.padding = ((kernel_size - 1) // 2, kernel_size // 2)
        self.drop = nn.Dropout(dropout)
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, T) -> (B, C, T); ``mask`` (B, 1, T) zeroes padded frames before each convolution."""
        if mask is not None:
            x = x * mask
        x = self.drop(torch.relu(self.conv_1(F.pad(x, self.padding))))
        if mask is not None:
            x = x * mask
        return self.conv_2(F.pad(x, self.padding))


class AttentionEncoder(nn.Module):
    """Post-norm stack of relative self-attention and convolutional feed-forward layers."""

    def __init__(
        self, channels: int, filter_channels: int, num_heads: int, num_layers: int, kernel_size: int, window: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)  # on each sub-layer's output, before its residual sum
        self.attn_layers = nn.ModuleList(
            MultiHeadAttention(channels, channels, num_heads, window, dropout) for _ in range(num_layers)
        )
        self.norm_layers_1 = nn.ModuleList(ChannelLayerNorm(channels) for _ in range(num_layers))
        self.ffn_layers = nn.ModuleList(FeedForward(channels, filter_channels, kernel_size, dropout) for _ in range(num_layers))
        self.norm_layers_2 = nn.ModuleList(ChannelLayerNorm(channels) for _ in range(num_layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, T) -> (B, C, T); with ``mask`` (B, 1, T) the padded frames never reach real ones
        (their own outputs are left as they come: the caller ignores or masks them)."""
        for attn, norm1, ffn, norm2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2):
            x = norm1(x + self.drop(attn(x, x, mask)))
            x = norm2(x + self.drop(ffn(x, mask)))
        return x
