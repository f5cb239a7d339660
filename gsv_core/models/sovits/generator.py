"""The HiFi-GAN style waveform generator: latent frames (B, C, T) -> audio (B, 1, T * prod(upsample_rates)).

Almost all of the decoder's arithmetic is here (about 200 GFLOP for 5 s of audio with the
real v2 sizes), so the layout is chosen for speed:

* weight norm is folded into plain weights by the loader;
* after ``conv_pre`` the signal is held as a (B, C, 1, T) image in channels-last memory
  format and every layer runs as a 2D convolution with a 1-wide kernel: on CPU oneDNN's
  NHWC kernels run these layers up to 2.3 times faster than its (B, C, T) conv1d path
  (1.3 times over the whole v2 generator; ``benchmarks/bench_sovits.py``). The parameters
  keep their Conv1d shapes, so checkpoints load unchanged;
* activations are updated in place where nothing else reads them;
* :meth:`Generator.channels_last_weights` stores the weights in the (out, kernel, in) memory
  order the NHWC kernels read, so they are not copied into it on every call (2 to 3 % less
  generator CPU time for v2ProPlus in a one-thread A/B; within noise in the benchmark).

The generator is compute-bound: its convolutions run at 110-180 GFLOP/s per core and take
about 90 % of the time, and its CPU time does not grow from 1 to 2 threads. Fusing the leaky
ReLUs and residual adds into the convolutions as oneDNN post-ops was tried and measured no faster.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .config import SynthesizerConfig
from .padding import conv_output_length, padding_mask

LRELU_SLOPE = 0.1


def conv_nhwc(conv: nn.Conv1d | nn.ConvTranspose1d, x: torch.Tensor) -> torch.Tensor:
    """Apply a 1D (transposed) convolution to a (B, C, 1, T) channels-last signal."""
    weight = conv.weight.unsqueeze(2)
    stride, padding, dilation = (1, conv.stride[0]), (0, conv.padding[0]), (1, conv.dilation[0])
    if isinstance(conv, nn.ConvTranspose1d):
        return F.conv_transpose2d(x, weight, conv.bias, stride, padding, dilation=dilation)
    return F.conv2d(x, weight, conv.bias, stride, padding, dilation)


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

    def forward(self, x: torch.Tensor, activated: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, 1, T) channels-last -> the same; ``activated`` = leaky_relu(x) if already computed.

        ``mask`` (B, 1, 1, T) zeroes a padded batch's padded frames before every convolution
        (a given ``activated`` must already be zero there).
        """
        for conv1, conv2 in zip(self.convs1, self.convs2):
            if activated is None:
                activated = F.leaky_relu(x, LRELU_SLOPE)
                if mask is not None:
                    activated.mul_(mask)
            hidden = F.leaky_relu_(conv_nhwc(conv1, activated), LRELU_SLOPE)
            if mask is not None:
                hidden.mul_(mask)
            x = conv_nhwc(conv2, hidden).add_(x)
            activated = None
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
        # When set, (frames, margin): one request's latent frames run through the generator in windows
        # of ``frames`` with ``margin`` frames of context each side (dropped again), all windows of
        # two shapes only: oneDNN builds its kernels per input shape, which costs about 0.5 s per new
        # length in float32 and 3 s in bfloat16 (the fast CPU mode sets it), while audio lengths vary.
        self.window: tuple[int, int] | None = None

    def channels_last_weights(self) -> None:
        """Store every upsampling and ResBlock weight in (out, kernel, in) memory order (same shape
        and values), the order oneDNN's NHWC kernels read; ``Module.to`` keeps it."""
        layers = [*self.ups, *(conv for block in self.resblocks for conv in (*block.convs1, *block.convs2)), self.conv_post]
        for layer in layers:
            reordered = layer.weight.detach().permute(0, 2, 1).contiguous().permute(0, 2, 1)
            layer.weight = nn.Parameter(reordered, requires_grad=layer.weight.requires_grad)

    def forward(self, x: torch.Tensor, g: torch.Tensor, lengths: Sequence[int] | None = None) -> torch.Tensor:
        """latent (B, inter, T), g (B, gin, 1) -> waveform (B, 1, T * prod(upsample_rates)) in [-1, 1].

        ``lengths``: the real frames of each item of a padded batch. Their padded frames are
        then zeroed before every convolution, at every rate, so item b's first
        lengths[b] * prod(upsample_rates) samples are exactly what it gives alone.
        """
        if self.window is None or lengths is not None:
            return self._forward(x, g, lengths)
        return self._windowed(x, g, *self.window)

    def _windowed(self, x: torch.Tensor, g: torch.Tensor, size: int, margin: int) -> torch.Tensor:
        """The same waveform as one pass (up to float reassociation), made window by window.

        A sample depends on the latent frames within the receptive field (about 9 frames for the
        released sizes), so with ``margin`` at least that, each window's kept middle is what the
        whole pass gives there. The first window (no left context: the signal's own edge) is
        ``size + margin`` frames, every other ``size + 2 * margin``; a last, shorter one is padded
        and masked, which is exactly the signal's right edge.
        """
        frames, samples_per_frame = x.shape[-1], self.frame_lengths(1)[-1]
        pieces = []
        for start in range(0, frames, size):
            left = min(start, margin)  # the signal's own left edge has no context
            chunk = x[..., start - left : min(frames, start + size + margin)]
            width, real = size + margin + left, chunk.shape[-1]
            audio = self._forward(F.pad(chunk, (0, width - real)), g, None if real == width else [real] * len(x))
            kept = min(size, frames - start)
            pieces.append(audio[..., left * samples_per_frame : (left + kept) * samples_per_frame])
        return torch.cat(pieces, dim=-1)

    def _forward(self, x: torch.Tensor, g: torch.Tensor, lengths: Sequence[int] | None) -> torch.Tensor:
        dtype = self.conv_pre.weight.dtype  # bfloat16 in the fast CPU mode, whatever the decoder before it ran in
        x, g = x.to(dtype), g.to(dtype)
        masks = None if lengths is None else self._padding_masks(lengths, x)
        if masks is not None:
            x = x * masks[0].squeeze(2)
        x = self.conv_pre(x).add_(self.cond(g))
        x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        for stage, up in enumerate(self.ups):
            mask = None if masks is None else masks[stage + 1]
            x = F.leaky_relu_(x, LRELU_SLOPE)
            if masks is not None:
                x.mul_(masks[stage])
            x = conv_nhwc(up, x)
            if mask is not None:
                x.mul_(mask)
            activated = F.leaky_relu(x, LRELU_SLOPE)  # the first layer of every block starts with it
            blocks = self.resblocks[stage * self.num_kernels : (stage + 1) * self.num_kernels]
            total = blocks[0](x, activated, mask)
            for block in blocks[1:]:
                total.add_(block(x, activated, mask))
            x = total.div_(self.num_kernels)
        x = F.leaky_relu_(x)
        if masks is not None:
            x.mul_(masks[-1])
        audio = torch.tanh_(conv_nhwc(self.conv_post, x))
        return audio.squeeze(2).contiguous()

    def frame_lengths(self, frames: int) -> list[int]:
        """The signal's length at the latent rate and after each upsampling stage, for ``frames`` latent frames."""
        lengths = [frames]
        for up in self.ups:
            lengths.append(conv_output_length(lengths[-1], up))
        return lengths

    def _padding_masks(self, lengths: Sequence[int], x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 1, 1, T_s) masks of a padded batch (B, C, T) at the latent rate and after each upsampling."""
        per_item = [self.frame_lengths(n) for n in lengths]
        totals = self.frame_lengths(x.shape[-1])
        return [padding_mask([item[s] for item in per_item], total, x).unsqueeze(2) for s, total in enumerate(totals)]
