"""The posterior encoder (``enc_q``): linear spectrogram -> latent z, used only in training.

Released files drop it; training needs it, because the decoder learns from z sampled from
this posterior, and the KL loss pulls the prior (text side, through the flow) towards it.
"""

from __future__ import annotations

import torch
from torch import nn

from .flow import WaveNet

POSTERIOR_KERNEL = 5  # the official layout: 16 non-dilated WaveNet layers of kernel 5
POSTERIOR_LAYERS = 16


class PosteriorEncoder(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, gin_channels: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.pre = nn.Conv1d(in_channels, hidden_channels, 1)
        self.enc = WaveNet(hidden_channels, POSTERIOR_KERNEL, POSTERIOR_LAYERS, gin_channels)
        self.proj = nn.Conv1d(hidden_channels, 2 * out_channels, 1)

    def forward(self, spec: torch.Tensor, mask: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """spec (B, 1025, T), mask (B, 1, T), g (B, gin, 1) -> z, m_q, logs_q (B, out, T), 0 on padded frames.

        z = m_q + noise * exp(logs_q), the noise drawn by ``torch.randn_like`` (the training RNG).
        The condition is detached: the posterior does not train the style encoder.
        """
        hidden = self.enc(self.pre(spec) * mask, g.detach(), mask)
        m_q, logs_q = torch.split(self.proj(hidden) * mask, self.out_channels, dim=1)
        z = (m_q + torch.randn_like(m_q) * torch.exp(logs_q)) * mask
        return z, m_q, logs_q
