"""The normalizing flow, conditioned on ge: inference runs it in reverse (prior sample z_p ->
latent z); training runs it forward (posterior latent z -> z_p, where the KL loss meets the prior).

A padded batch passes a mask (B, 1, T): the WaveNet's convolutions then see zeros past each
item's end, as the item alone would, and only the padded frames' own outputs differ.
"""

from __future__ import annotations

import torch
from torch import nn


class WaveNet(nn.Module):
    """Non-causal WaveNet: gated convolutions (dilation 1 here) with a global condition."""

    def __init__(self, channels: int, kernel_size: int, num_layers: int, gin_channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.cond_layer = nn.Conv1d(gin_channels, 2 * channels * num_layers, 1)
        self.in_layers = nn.ModuleList(
            nn.Conv1d(channels, 2 * channels, kernel_size, padding=(kernel_size - 1) // 2) for _ in range(num_layers)
        )
        self.res_skip_layers = nn.ModuleList(
            nn.Conv1d(channels, 2 * channels if i < num_layers - 1 else channels, 1) for i in range(num_layers)
        )

    def forward(self, x: torch.Tensor, g: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, C, T), g (B, gin, 1) -> (B, C, T), the sum of the skip outputs; ``mask`` (B, 1, T) or None."""
        if mask is not None:
            x = x * mask
        output = torch.zeros_like(x)
        conditions = self.cond_layer(g).split(2 * self.channels, dim=1)
        last = len(self.in_layers) - 1
        for i, (in_layer, res_skip) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            gate = in_layer(x) + conditions[i]
            acts = res_skip(torch.tanh(gate[:, : self.channels]) * torch.sigmoid(gate[:, self.channels :]))
            if i < last:
                x = x + acts[:, : self.channels]
                if mask is not None:
                    x = x * mask
                output = output + acts[:, self.channels :]
            else:
                output = output + acts
        return output


class CouplingLayer(nn.Module):
    """Mean-only affine coupling: the second half is shifted by a function of the first."""

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int, num_layers: int, gin_channels: int) -> None:
        super().__init__()
        self.half = channels // 2
        self.pre = nn.Conv1d(self.half, hidden_channels, 1)
        self.enc = WaveNet(hidden_channels, kernel_size, num_layers, gin_channels)
        self.post = nn.Conv1d(hidden_channels, self.half, 1)

    def forward(self, x: torch.Tensor, g: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, C, T): shift the second half; padded frames (``mask`` (B, 1, T) = 0) of it become 0.

        Mean-only coupling has a zero log-scale, so the log-determinant is 0 and not returned.
        """
        x0, x1 = x.split(self.half, dim=1)
        shift = self.post(self.enc(self.pre(x0), g, mask)) * mask
        return torch.cat([x0, shift + x1 * mask], dim=1)

    def reverse(self, x: torch.Tensor, g: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, T) -> (B, C, T): undo the shift of the second half."""
        x0, x1 = x.split(self.half, dim=1)
        shift = self.post(self.enc(self.pre(x0), g, mask))
        return torch.cat([x0, x1 - shift], dim=1)


class Flow(nn.Module):
    """Four couplings, each followed by a flip of the channel order (upstream ``flows.{0,2,4,6}``)."""

    def __init__(self, channels: int, hidden_channels: int, gin_channels: int, kernel_size: int = 5,
                 num_layers: int = 4, num_couplings: int = 4) -> None:
        super().__init__()
        self.couplings = nn.ModuleList(
            CouplingLayer(channels, hidden_channels, kernel_size, num_layers, gin_channels) for _ in range(num_couplings)
        )

    def forward(self, z: torch.Tensor, g: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, C, T) posterior latent, g (B, gin, 1), ``mask`` (B, 1, T) -> (B, C, T) z_p (training direction)."""
        x = z
        for coupling in self.couplings:
            x = torch.flip(coupling(x, g, mask), [1])
        return x

    def reverse(self, z_p: torch.Tensor, g: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, T) prior sample, g (B, gin, 1) -> (B, C, T) latent; ``mask`` (B, 1, T) for a padded batch."""
        x = z_p
        for coupling in reversed(self.couplings):
            x = coupling.reverse(torch.flip(x, [1]), g, mask)
        return x
