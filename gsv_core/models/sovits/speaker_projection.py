"""How v2Pro and v2ProPlus fold the speaker-verification embedding into ``ge``.

v2 conditions everything on the style vector alone. The Pro models add a projection of
the 20480-wide ERes2NetV2 features to it and pass the sum through a PReLU; the result
conditions the flow and the generator, and a further Linear maps it to the 512 channels
that the text encoder's MRTE adds.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import MRTE_WIDTH, SV_DIM


class SpeakerProjection(nn.Module):
    def __init__(self, gin_channels: int, mrte_channels: int = MRTE_WIDTH) -> None:
        super().__init__()
        self.sv_proj = nn.Linear(SV_DIM, gin_channels)
        self.prelu = nn.PReLU(gin_channels)
        self.to_mrte = nn.Linear(gin_channels, mrte_channels)

    def combine(self, style: torch.Tensor, sv_embedding: torch.Tensor) -> torch.Tensor:
        """style (B, gin, 1) and SV features (B, 20480) -> ge (B, gin, 1)."""
        if sv_embedding.dim() != 2 or sv_embedding.shape[-1] != SV_DIM:
            raise ValueError(f"sv_embedding must be (batch, {SV_DIM}), got {tuple(sv_embedding.shape)}")
        return self.prelu(style + self.sv_proj(sv_embedding).unsqueeze(-1))

    def for_text_encoder(self, ge: torch.Tensor) -> torch.Tensor:
        """ge (B, gin, 1) -> (B, mrte_channels, 1) (512 in the official files), the width MRTE adds to the content."""
        return self.to_mrte(ge.transpose(1, 2)).transpose(1, 2)
