"""The multi-period discriminator of SoVITS training (HiFi-GAN style), training-only.

One scale discriminator on the raw waveform plus one period discriminator per period, each
returning its scores and the feature maps the feature-matching loss compares. Kernels,
strides, paddings and groups are the official architecture; the channel widths are read from
the weights (:meth:`MultiPeriodDiscriminator.from_state_dict`), because test files narrow them.
Every convolution is weight-normed, with torch's parametrization (state-dict names
``parametrizations.weight.original0/1``; the official files' ``weight_g``/``weight_v`` are
converted on load and save).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from ..models.sovits.loader import legacy_weight_norm_name, parametrized_name

LRELU_SLOPE = 0.1
# (kernel, stride, groups, padding) of the scale discriminator's convolutions, then its output layer
SCALE_LAYERS = ((15, 1, 1, 7), (41, 4, 4, 20), (41, 4, 16, 20), (41, 4, 64, 20), (41, 4, 256, 20), (5, 1, 1, 2))
SCALE_POST = (3, 1, 1, 1)
SCALE_WIDTHS = (16, 64, 256, 1024, 1024, 1024)  # the official widths
# period discriminators: kernel 5 along time, stride 3 but 1 in the last layer; output kernel 3
PERIOD_STRIDES = (3, 3, 3, 3, 1)
PERIOD_KERNEL = 5
PERIOD_WIDTHS = (32, 128, 512, 1024, 1024)


def _score(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run the layers: (B, n) flattened scores, and every layer's activations (leaky-ReLU'd, the output raw)."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        features.append(x)
    x = post(x)
    features.append(x)
    return torch.flatten(x, 1, -1), features


class DiscriminatorS(nn.Module):
    """Strided grouped 1D convolutions over the waveform (B, 1, T)."""

    def __init__(self, widths: Sequence[int] = SCALE_WIDTHS) -> None:
        super().__init__()
        if len(widths) != len(SCALE_LAYERS):
            raise ValueError(f"the scale discriminator has {len(SCALE_LAYERS)} layers, got {len(widths)} widths")
        channels = (1, *widths)
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv1d(cin, cout, kernel, stride, groups=groups, padding=padding))
            for cin, cout, (kernel, stride, groups, padding) in zip(channels, widths, SCALE_LAYERS)
        )
        kernel, stride, groups, padding = SCALE_POST
        self.conv_post = weight_norm(nn.Conv1d(widths[-1], 1, kernel, stride, groups=groups, padding=padding))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, 1, T) -> scores (B, n), and every layer's activations (leaky-ReLU'd, the output raw)."""
        return _score(self.convs, self.conv_post, audio)


class DiscriminatorP(nn.Module):
    """The waveform folded to (B, 1, T / period, period), then (k, 1) 2D convolutions along time."""

    def __init__(self, period: int, widths: Sequence[int] = PERIOD_WIDTHS) -> None:
        super().__init__()
        if len(widths) != len(PERIOD_STRIDES):
            raise ValueError(f"a period discriminator has {len(PERIOD_STRIDES)} layers, got {len(widths)} widths")
        self.period = period
        channels = (1, *widths)
        padding = ((PERIOD_KERNEL - 1) // 2, 0)
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(cin, cout, (PERIOD_KERNEL, 1), (stride, 1), padding=padding))
            for cin, cout, stride in zip(channels, widths, PERIOD_STRIDES)
        )
        self.conv_post = weight_norm(nn.Conv2d(widths[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, 1, T) -> scores (B, n), and every layer's activations."""
        batch, channels, length = audio.shape
        if length % self.period:  # reflect-pad up to a whole number of periods
            audio = F.pad(audio, (0, self.period - length % self.period), "reflect")
        return _score(self.convs, self.conv_post, audio.view(batch, channels, -1, self.period))


class MultiPeriodDiscriminator(nn.Module):
    """``discriminators[0]`` is the scale discriminator, ``[1:]`` one per period (the official order)."""

    def __init__(
        self, periods: Sequence[int], scale_widths: Sequence[int] = SCALE_WIDTHS, period_widths: Sequence[int] = PERIOD_WIDTHS
    ) -> None:
        super().__init__()
        self.periods = tuple(periods)
        self.discriminators = nn.ModuleList(
            [DiscriminatorS(scale_widths), *(DiscriminatorP(period, period_widths) for period in self.periods)]
        )

    @classmethod
    def from_state_dict(cls, weights: Mapping[str, torch.Tensor], periods: Sequence[int]) -> MultiPeriodDiscriminator:
        """A discriminator holding ``weights`` (official names, any float dtype, loaded into float32).

        The widths come from the weights' shapes; their number of period discriminators must
        match ``periods`` (the version's). Loading is strict.
        """
        count = 1 + len(periods)
        present = {int(key.split(".")[1]) for key in weights if key.startswith("discriminators.")}
        if present != set(range(count)):
            raise ValueError(f"the discriminator weights hold {len(present)} discriminators, the version needs {count}")

        def widths(index: int, layers: int) -> list[int]:
            return [int(weights[f"discriminators.{index}.convs.{i}.weight_v"].shape[0]) for i in range(layers)]

        model = cls(periods, widths(0, len(SCALE_LAYERS)), widths(1, len(PERIOD_STRIDES)))
        state = {parametrized_name(key): tensor.float() for key, tensor in weights.items()}
        model.load_state_dict(state, strict=True)
        return model

    def official_state_dict(self) -> dict[str, torch.Tensor]:
        """The state dict under the official names (``weight_g`` / ``weight_v``)."""
        return {legacy_weight_norm_name(key): tensor for key, tensor in self.state_dict().items()}

    def forward(
        self, real: torch.Tensor, generated: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[list[torch.Tensor]], list[list[torch.Tensor]]]:
        """real, generated (B, 1, T) -> (real scores, generated scores, real features, generated features), per discriminator."""
        real_scores, fake_scores, real_features, fake_features = [], [], [], []
        for discriminator in self.discriminators:
            score, features = discriminator(real)
            real_scores.append(score)
            real_features.append(features)
            score, features = discriminator(generated)
            fake_scores.append(score)
            fake_features.append(features)
        return real_scores, fake_scores, real_features, fake_features
