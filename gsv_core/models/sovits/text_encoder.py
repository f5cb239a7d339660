"""The prior encoder: upsampled semantic content, cross-attended to the phones, -> (m_p, logs_p).

MRTE (multi-reference timbre encoder) lets the content frames attend to the text and adds
the speaker's global embedding before the last encoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import AttentionEncoder, MultiHeadAttention

SSL_DIM = 768
MRTE_WIDTH = 512  # fixed in the official MRTE, also the width of its `ge` input


class MRTE(nn.Module):
    def __init__(self, channels: int, num_heads: int = 4) -> None:
        super().__init__()
        self.cross_attention = MultiHeadAttention(MRTE_WIDTH, MRTE_WIDTH, num_heads)
        self.c_pre = nn.Conv1d(channels, MRTE_WIDTH, 1)
        self.text_pre = nn.Conv1d(channels, MRTE_WIDTH, 1)
        self.c_post = nn.Conv1d(MRTE_WIDTH, channels, 1)

    def forward(self, content: torch.Tensor, text: torch.Tensor, ge: torch.Tensor) -> torch.Tensor:
        """content (B, C, T), text (B, C, P), ge (B, 512, 1) -> (B, C, T)."""
        content = self.c_pre(content)
        x = self.cross_attention(content, self.text_pre(text)) + content + ge
        return self.c_post(x)


class TextEncoder(nn.Module):
    def __init__(self, out_channels: int, hidden_channels: int, filter_channels: int, num_heads: int,
                 num_layers: int, kernel_size: int, num_symbols: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.ssl_proj = nn.Conv1d(SSL_DIM, hidden_channels, 1)
        self.encoder_ssl = AttentionEncoder(hidden_channels, filter_channels, num_heads, num_layers // 2, kernel_size)
        self.encoder_text = AttentionEncoder(hidden_channels, filter_channels, num_heads, num_layers, kernel_size)
        self.text_embedding = nn.Embedding(num_symbols, hidden_channels)
        self.mrte = MRTE(hidden_channels)
        self.encoder2 = AttentionEncoder(hidden_channels, filter_channels, num_heads, num_layers // 2, kernel_size)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(self, content: torch.Tensor, phones: torch.Tensor, ge: torch.Tensor, speed: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """content (B, 768, T) at 50 Hz, phones (B, P) ids, ge (B, 512, 1) -> m_p, logs_p (B, out, T')

        ``speed`` stretches time before the projection: T' = int(T / speed) + 1 when speed != 1.
        """
        x = self.encoder_ssl(self.ssl_proj(content))
        text = self.encoder_text(self.text_embedding(phones).transpose(1, 2))
        x = self.encoder2(self.mrte(x, text, ge))
        if speed != 1:
            x = F.interpolate(x, size=int(x.shape[-1] / speed) + 1, mode="linear")
        m_p, logs_p = torch.split(self.proj(x), self.out_channels, dim=1)
        return m_p, logs_p
