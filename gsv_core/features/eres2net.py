"""ERes2NetV2, the speaker-verification network whose pooled features condition v2Pro.

The architecture is 3D-Speaker's ERes2NetV2 (Apache-2.0): a 2-D ResNet over the filterbank
in which each block splits its channels into ``scale`` groups processed in a chain (Res2Net),
the deeper stages join the groups with attentional feature fusion (AFF), and the output of
stage 3, downsampled, is fused into stage 4's. Module names follow the official checkpoint,
so its state dict loads as is.

GPT-SoVITS v2Pro uses ``pooled_features`` (the official ``forward3``): the fused map averaged
over time, (B, channels * freq) = (B, 20480) at the real size; ``forward`` gives the 192-d
speaker embedding of the verification head.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

STAGES = 4


@dataclass(frozen=True)
class ERes2NetV2Config:
    """Hyper-parameters; the defaults are GPT-SoVITS's (``ERes2NetV2(baseWidth=24, scale=4, expansion=4)``)."""

    num_blocks: tuple[int, ...] = (3, 4, 6, 3)
    m_channels: int = 64  # stem width; stage k has m_channels * 2**k planes
    feat_dim: int = 80  # filterbank bins
    embedding_size: int = 192
    base_width: int = 24  # group width = floor(planes * base_width / 64)
    scale: int = 4  # groups per block
    expansion: int = 4  # block output = planes * expansion

    def planes(self, stage: int) -> int:
        return self.m_channels * 2**stage

    def group_width(self, stage: int) -> int:
        return int(math.floor(self.planes(stage) * (self.base_width / 64.0)))

    @property
    def fused_channels(self) -> int:
        return self.planes(STAGES - 1) * self.expansion

    @property
    def pooled_dim(self) -> int:
        """Width of ``pooled_features``: fused channels times the 8x-downsampled frequency axis."""
        return self.fused_channels * (self.feat_dim // 8)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> ERes2NetV2Config:
        """Read the hyper-parameters off an official checkpoint's tensor shapes."""
        try:
            m_channels = state["conv1.weight"].shape[0]
            num_blocks = tuple(
                len({int(m.group(1)) for k in state if (m := re.match(rf"layer{s + 1}\.(\d+)\.", k))})
                for s in range(STAGES)
            )
            scale = len({k for k in state if re.match(r"layer1\.0\.convs\.\d+\.weight$", k)})
            expansion = state["layer1.0.conv3.weight"].shape[0] // m_channels
            embedding_size, stats_width = state["seg_1.weight"].shape
        except KeyError as error:
            raise ValueError(f"not an ERes2NetV2 state dict: no {error.args[0]!r}") from None
        # the statistics (mean and std) are fused_channels * feat_dim // 8 wide each
        feat_dim = stats_width // (2 * m_channels * 8 * expansion) * 8
        widths = [state[f"layer{s + 1}.0.convs.0.weight"].shape[0] for s in range(STAGES)]
        for base_width in range(1, 257):
            config = cls(num_blocks, m_channels, feat_dim, embedding_size, base_width, scale, expansion)
            if [config.group_width(s) for s in range(STAGES)] == widths:
                return config
        raise ValueError(f"no base width gives the group widths {widths} of this ERes2NetV2 state dict")


class ClippedReLU(nn.Hardtanh):
    """ReLU capped at 20, as in the reference blocks."""

    def __init__(self) -> None:
        super().__init__(0.0, 20.0)


class AFF(nn.Module):
    """Attentional feature fusion: a learned per-position mix of two maps of equal shape."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        inner = channels // reduction
        self.local_att = nn.Sequential(
            nn.Conv2d(channels * 2, inner, kernel_size=1),
            nn.BatchNorm2d(inner),
            nn.SiLU(),
            nn.Conv2d(inner, channels, kernel_size=1),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        weight = 1.0 + torch.tanh(self.local_att(torch.cat((x, y), dim=1)))  # in (0, 2)
        return x * weight + y * (2.0 - weight)


class Res2Block(nn.Module):
    """1x1 conv -> ``scale`` chained 3x3 group convs -> 1x1 conv, plus a shortcut.

    Group i sees its own slice joined with group i-1's output: added (stages 1-2) or AFF-fused
    (stages 3-4, ``fuse=True``).
    """

    def __init__(self, in_planes: int, planes: int, stride: int, width: int, scale: int, expansion: int, fuse: bool):
        super().__init__()
        self.width = width
        self.conv1 = nn.Conv2d(in_planes, width * scale, kernel_size=1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(width * scale)
        self.convs = nn.ModuleList(nn.Conv2d(width, width, kernel_size=3, padding=1, bias=False) for _ in range(scale))
        self.bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(scale))
        self.fuse_models = nn.ModuleList(AFF(width) for _ in range(scale - 1)) if fuse else None
        self.conv3 = nn.Conv2d(width * scale, planes * expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * expansion)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes * expansion:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes * expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * expansion),
            )
        self.relu = ClippedReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = torch.split(self.relu(self.bn1(self.conv1(x))), self.width, dim=1)
        outputs = []
        for i, group in enumerate(groups):
            if i > 0:
                previous = outputs[-1]
                group = previous + group if self.fuse_models is None else self.fuse_models[i - 1](previous, group)
            outputs.append(self.relu(self.bns[i](self.convs[i](group))))
        out = self.bn3(self.conv3(torch.cat(outputs, dim=1)))
        return self.relu(out + self.shortcut(x))


class ERes2NetV2(nn.Module):
    """Filterbank (B, T, feat_dim) -> pooled features (B, pooled_dim) or embedding (B, embedding_size)."""

    def __init__(self, config: ERes2NetV2Config) -> None:
        super().__init__()
        self.config = config
        c = config
        self.conv1 = nn.Conv2d(1, c.m_channels, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c.m_channels)
        in_planes = c.m_channels
        for stage in range(STAGES):
            blocks = []
            for index in range(c.num_blocks[stage]):
                stride = 2 if stage > 0 and index == 0 else 1
                width = c.group_width(stage)
                blocks.append(Res2Block(in_planes, c.planes(stage), stride, width, c.scale, c.expansion, stage >= 2))
                in_planes = c.planes(stage) * c.expansion
            self.add_module(f"layer{stage + 1}", nn.Sequential(*blocks))
        stage3_channels = c.planes(2) * c.expansion
        self.layer3_ds = nn.Conv2d(stage3_channels, c.fused_channels, kernel_size=3, stride=2, padding=1, bias=False)
        self.fuse34 = AFF(c.fused_channels)
        self.seg_1 = nn.Linear(2 * c.pooled_dim, c.embedding_size)

    def fused_map(self, fbank: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> (B, fused_channels, F/8, T/8): stage 4 fused with downsampled stage 3."""
        x = fbank.transpose(1, 2).unsqueeze(1)  # one input plane, frequency by time
        out = F.relu(self.bn1(self.conv1(x)))
        stage3 = self.layer3(self.layer2(self.layer1(out)))
        return self.fuse34(self.layer4(stage3), self.layer3_ds(stage3))

    def pooled_features(self, fbank: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> (B, pooled_dim): the fused map averaged over time (official ``forward3``)."""
        return self.fused_map(fbank).flatten(1, 2).mean(dim=-1)

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> (B, embedding_size): speaker embedding from temporal mean and std pooling."""
        fused = self.fused_map(fbank)
        mean = fused.mean(dim=-1).flatten(1)
        std = torch.sqrt(torch.var(fused, dim=-1) + 1e-8).flatten(1)
        return self.seg_1(torch.cat((mean, std), dim=1))
