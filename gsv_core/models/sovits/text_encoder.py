"""The prior encoder: quantized content, cross-attended to the phones, -> (m_p, logs_p).

MRTE (multi-reference timbre encoder) lets the content frames attend to the encoded phones
and adds the speaker's global embedding before the last attention stack.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import AttentionEncoder, MultiHeadAttention
from .config import MRTE_WIDTH, SSL_DIM, SynthesizerConfig


class MRTE(nn.Module):
    """Content attends to text at ``width`` (512 in the official files); ``ge`` is added as a per-channel bias."""

    def __init__(self, channels: int, num_heads: int = 4, width: int = MRTE_WIDTH) -> None:
        super().__init__()
        self.cross_attention = MultiHeadAttention(width, width, num_heads)
        self.c_pre = nn.Conv1d(channels, width, 1)
        self.text_pre = nn.Conv1d(channels, width, 1)
        self.c_post = nn.Conv1d(width, channels, 1)

    def forward(self, content: torch.Tensor, text: torch.Tensor, ge: torch.Tensor, text_mask: torch.Tensor | None = None) -> torch.Tensor:
        """content (B, C, T), text (B, C, P), ge (B, width, 1) -> (B, C, T); ``text_mask`` (B, 1, P) hides padded phones."""
        content = self.c_pre(content)
        return self.c_post(self.cross_attention(content, self.text_pre(text), text_mask) + content + ge)


class TextEncoder(nn.Module):
    def __init__(self, config: SynthesizerConfig) -> None:
        super().__init__()
        c = config
        self.out_channels = c.inter_channels
        half_depth = c.n_layers // 2
        self.ssl_proj = nn.Conv1d(SSL_DIM, c.hidden_channels, 1)

        def encoder(depth: int) -> AttentionEncoder:
            return AttentionEncoder(c.hidden_channels, c.filter_channels, c.n_heads, depth, c.kernel_size, dropout=c.p_dropout)

        self.encoder_ssl = encoder(half_depth)
        self.text_embedding = nn.Embedding(c.num_symbols, c.hidden_channels)
        self.encoder_text = encoder(c.n_layers)
        self.mrte = MRTE(c.hidden_channels, width=c.mrte_channels)
        self.encoder2 = encoder(half_depth)
        self.proj = nn.Conv1d(c.hidden_channels, 2 * c.inter_channels, 1)

    def hidden(
        self, content: torch.Tensor, phones: torch.Tensor, ge: torch.Tensor,
        content_mask: torch.Tensor | None = None, text_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """content (B, 768, T) at 50 Hz, phones (B, P) ids, ge (B, mrte_channels, 1) -> (B, hidden, T).

        The encoder output before the projection: the latent that streaming decode carries
        from one chunk to the next. Padded batches pass ``content_mask`` (B, 1, T) and
        ``text_mask`` (B, 1, P); the padded frames' outputs are then meaningless.
        """
        x = self.encoder_ssl(self.ssl_proj(content), content_mask)
        text = self.encoder_text(self.text_embedding(phones).transpose(1, 2), text_mask)
        return self.encoder2(self.mrte(x, text, ge, text_mask), content_mask)

    def project(self, hidden: torch.Tensor, speed: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, hidden, T) -> m_p, logs_p (B, inter, T').

        ``speed`` stretches time before the projection: T' = int(T / speed) + 1 when speed != 1
        (linear interpolation, as upstream; speed > 1 is faster speech).
        """
        if speed != 1:
            hidden = F.interpolate(hidden, size=int(hidden.shape[-1] / speed) + 1, mode="linear")
        m_p, logs_p = torch.split(self.proj(hidden), self.out_channels, dim=1)
        return m_p, logs_p

    def forward(
        self, content: torch.Tensor, phones: torch.Tensor, ge: torch.Tensor, speed: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """content (B, 768, T), phones (B, P), ge (B, 512, 1) -> m_p, logs_p (B, inter, T'); see :meth:`project`."""
        return self.project(self.hidden(content, phones, ge), speed)
