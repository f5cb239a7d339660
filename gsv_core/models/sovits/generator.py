"""The HiFi-GAN style waveform generator: latent frames (B, C, T) -> audio (B, 1, T * prod(upsample_rates)).

Weight norm is folded into plain weights by the loader, so every layer here is an ordinary
convolution. Intermediate activations are updated in place where nothing else reads them:
at 32 kHz the last stages hold millions of values, and fresh buffers cost time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .config import SynthesizerConfig

LRELU_SLOPE = 0.1


class ResBlock(nn.Module):
    """Residual pairs of (dilated conv, conv), each conv preceded by a leaky ReLU."""

    def __init__(self, channels: int, kernel_size: int, dilations: Sequence[int]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=(kernel_size * d - d) // 2) for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2) for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, C, T)."""
        for conv1, conv2 in zip(self.convs1, self.convs2):
            hidden = F.leaky_relu_(conv1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE)
            x = conv2(hidden).add_(x)
        return x


class Generator(nn.Module):
    """Transposed-convolution upsampling stages, each followed by the mean of its ResBlocks."""

    def __init__(self, config: SynthesizerConfig) -> None:
        super().__init__()
        c = config
        self.num_kernels = len(c.resblock_kernel_sizes)
        self.conv_pre = nn.Conv1d(c.inter_channels, c.upsample_initial_channel, 7, padding=3)
        self.cond = nn.Conv1d(c.gin_channels, c.upsample_initial_channel, 1)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        channels = c.upsample_initial_channel
        for rate, kernel in zip(c.upsample_rates, c.upsample_kernel_sizes):
            self.ups.append(nn.ConvTranspose1d(channels, channels // 2, kernel, rate, padding=(kernel - rate) // 2))
            channels //= 2
            for size, dilations in zip(c.resblock_kernel_sizes, c.resblock_dilation_sizes):
                self.resblocks.append(ResBlock(channels, size, dilations))
        self.conv_post = nn.Conv1d(channels, 1, 7, padding=3, bias=False)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """latent (B, inter, T), g (B, gin, 1) -> waveform (B, 1, T * prod(upsample_rates)) in [-1, 1]."""
        x = self.conv_pre(x).add_(self.cond(g))
        for stage, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[stage * self.num_kernels : (stage + 1) * self.num_kernels]
            total = blocks[0](x)
            for block in blocks[1:]:
                total.add_(block(x))
            x = total.div_(self.num_kernels)
        return torch.tanh_(self.conv_post(F.leaky_relu_(x)))
