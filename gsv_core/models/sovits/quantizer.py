"""Semantic codes <-> HuBERT content: the projection and residual vector quantizer.

HuBERT features arrive at 50 Hz; a stride-2 convolution (``ssl_proj``) brings them to the
25 Hz rate of the semantic tokens, and each frame is replaced by the index of its nearest
codebook row. Decoding looks the rows up again. The official models use one codebook; the
residual form (each codebook quantizes what the previous ones left) is kept general.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import CODEBOOK_SIZE, SSL_DIM


class ResidualQuantizer(nn.Module):
    """``num_quantizers`` codebooks of shape (CODEBOOK_SIZE, SSL_DIM)."""

    def __init__(self, num_quantizers: int = 1, codebook_size: int = CODEBOOK_SIZE, dim: int = SSL_DIM) -> None:
        super().__init__()
        self.codebooks = nn.ParameterList(nn.Parameter(torch.zeros(codebook_size, dim)) for _ in range(num_quantizers))

    @staticmethod
    def _nearest(frames: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        """(N, D) frames -> (N,) index of the closest codebook row.

        The squared distance is expanded as |x|^2 - 2 x.e + |e|^2, in the official order, so
        near-ties resolve to the same code.
        """
        rows = codebook.t()
        score = -(frames.pow(2).sum(1, keepdim=True) - 2 * frames @ rows + rows.pow(2).sum(0, keepdim=True))
        return score.argmax(dim=-1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D, T) features -> (num_quantizers, B, T) codes."""
        batch, dim, length = x.shape
        residual = x.transpose(1, 2).reshape(-1, dim)
        codes = []
        for codebook in self.codebooks:
            index = self._nearest(residual, codebook)
            codes.append(index.view(batch, length))
            residual = residual - F.embedding(index, codebook)
        return torch.stack(codes)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(num_quantizers, B, T) codes -> (B, D, T) summed codebook rows."""
        if codes.dim() != 3 or codes.shape[0] > len(self.codebooks):
            raise ValueError(
                f"codes must be (num_quantizers<={len(self.codebooks)}, batch, frames), got {tuple(codes.shape)}"
            )
        quantized = F.embedding(codes[0], self.codebooks[0])
        for level in range(1, codes.shape[0]):
            quantized = quantized + F.embedding(codes[level], self.codebooks[level])
        return quantized.transpose(1, 2)


class SemanticCodec(nn.Module):
    """HuBERT content (50 Hz) -> semantic codes (25 Hz), and codes -> quantized content."""

    def __init__(self, num_quantizers: int = 1) -> None:
        super().__init__()
        self.ssl_proj = nn.Conv1d(SSL_DIM, SSL_DIM, 2, stride=2)
        self.quantizer = ResidualQuantizer(num_quantizers)

    def encode(self, ssl_content: torch.Tensor) -> torch.Tensor:
        """(B, 768, T50) HuBERT last hidden state, channels first -> (B, num_quantizers, T50 // 2) codes."""
        if ssl_content.dim() != 3 or ssl_content.shape[1] != SSL_DIM:
            raise ValueError(f"HuBERT content must be (batch, {SSL_DIM}, frames), got {tuple(ssl_content.shape)}")
        return self.quantizer.encode(self.ssl_proj(ssl_content)).transpose(0, 1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(num_quantizers, B, T) codes -> (B, 768, T) quantized content at 25 Hz."""
        return self.quantizer.decode(codes)
