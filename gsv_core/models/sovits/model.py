"""The SoVITS decoder (s2) of v2, v2Pro and v2ProPlus, for inference.

decode: semantic codes (25 Hz) -> quantized content -> 50 Hz frames -> text encoder (with the
phones and ``ge``) -> prior (m_p, logs_p) -> sample z_p -> flow reverse -> generator -> waveform.
``ge``, the speaker conditioning, comes from the reference spectrogram (and, for the Pro
models, the speaker-verification features) through :meth:`SoVITS.global_embedding`, so a
speaker can be encoded once and reused.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...versions import VersionInfo
from .config import CODEBOOK_SIZE, FRAMES_PER_TOKEN, SynthesizerConfig
from .flow import Flow
from .generator import Generator
from .quantizer import SemanticCodec
from .speaker_projection import SpeakerProjection
from .style_encoder import MelStyleEncoder
from .text_encoder import TextEncoder


class SoVITS(nn.Module):
    """Semantic codes + phones + speaker conditioning -> waveform (inference only; no posterior encoder)."""

    def __init__(self, config: SynthesizerConfig, version: VersionInfo) -> None:
        super().__init__()
        if config.uses_sv != version.uses_sv:
            raise ValueError(f"config.uses_sv={config.uses_sv} contradicts version {version.name}")
        self.config = config
        self.version = version
        self.codec = SemanticCodec(config.num_quantizers)
        self.text_encoder = TextEncoder(config)
        self.flow = Flow(config.inter_channels, config.hidden_channels, config.gin_channels)
        self.generator = Generator(config)
        self.style_encoder = MelStyleEncoder(config.gin_channels)
        self.speaker_projection = SpeakerProjection(config.gin_channels) if config.uses_sv else None

    @property
    def samples_per_token(self) -> int:
        """Output samples per 25 Hz semantic token (1280 at 32 kHz)."""
        return self.config.samples_per_token

    def extract_latent(self, ssl_content: torch.Tensor) -> torch.Tensor:
        """HuBERT last hidden state, channels first (B, 768, T50) -> prompt codes (B, 1, T50 // 2)."""
        return self.codec.encode(ssl_content)

    def global_embedding(self, ref_spec: torch.Tensor, sv_embedding: torch.Tensor | None = None) -> torch.Tensor:
        """``ge`` (B, gin, 1) from a (B, 1025, F) reference spectrogram (+ (B, 20480) SV features for Pro).

        Several references are combined upstream-style by averaging their ``ge``.
        """
        style = self.style_encoder(ref_spec)
        if self.speaker_projection is None:
            return style
        if sv_embedding is None:
            raise ValueError(f"{self.version.name} needs the speaker-verification embedding (sv_embedding)")
        return self.speaker_projection.combine(style, sv_embedding)

    def content(self, codes: torch.Tensor) -> torch.Tensor:
        """(num_quantizers, B, T) codes -> (B, 768, 2T): quantized content repeated onto 50 Hz frames."""
        return F.interpolate(self.codec.decode(codes), scale_factor=FRAMES_PER_TOKEN, mode="nearest")

    def prior(self, codes: torch.Tensor, phones: torch.Tensor, ge: torch.Tensor, speed: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """codes (1, B, T), phones (B, P), ge (B, gin, 1) -> m_p, logs_p (B, inter, frames).

        frames = 2T, or int(2T / speed) + 1 when ``speed`` != 1.
        """
        text_ge = ge if self.speaker_projection is None else self.speaker_projection.for_text_encoder(ge)
        return self.text_encoder(self.content(codes), phones, text_ge, speed)

    def decode(
        self,
        codes: torch.Tensor,
        phones: torch.Tensor,
        ge: torch.Tensor,
        *,
        speed: float = 1.0,
        noise_scale: float = 0.5,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Waveform (B, 1, frames * 640) for codes (1, B, T), phones (B, P) and ``ge`` (B, gin, 1).

        Codes are laid out (num_quantizers, batch, tokens) as upstream; every item of a
        batch has the same length (there is no padding mask). The prior is sampled as
        z_p = m_p + noise * exp(logs_p) * noise_scale: ``noise`` (B, inter, frames) is used
        as given, otherwise it is drawn from ``generator``; one of the two is required, so
        the global RNG is never touched.
        """
        self._check_inputs(codes, phones, ge, speed)
        if noise is None and generator is None:
            raise ValueError("decode needs either a noise tensor or a torch.Generator to draw it from")
        m_p, logs_p = self.prior(codes, phones, ge, speed)
        if noise is None:
            noise = torch.randn(m_p.shape, generator=generator, device=m_p.device, dtype=m_p.dtype)
        elif noise.shape != m_p.shape:
            raise ValueError(f"noise must have the prior's shape {tuple(m_p.shape)}, got {tuple(noise.shape)}")
        z_p = m_p + noise.to(m_p) * torch.exp(logs_p) * noise_scale
        return self.generator(self.flow.reverse(z_p, ge), ge)

    def decode_with_reference(
        self, codes: torch.Tensor, phones: torch.Tensor, ref_spec: torch.Tensor, sv_embedding: torch.Tensor | None = None, **options
    ) -> torch.Tensor:
        """:meth:`decode` with ``ge`` computed from the reference first (the upstream ``decode`` signature)."""
        return self.decode(codes, phones, self.global_embedding(ref_spec, sv_embedding), **options)

    def _check_inputs(self, codes: torch.Tensor, phones: torch.Tensor, ge: torch.Tensor, speed: float) -> None:
        if codes.dim() != 3 or codes.shape[-1] == 0:
            raise ValueError(f"codes must be (num_quantizers, batch, tokens) with tokens > 0, got {tuple(codes.shape)}")
        if codes.min() < 0 or codes.max() >= CODEBOOK_SIZE:
            raise ValueError(f"semantic codes must lie in [0, {CODEBOOK_SIZE}); got {codes.min()}..{codes.max()} (EOS left in?)")
        if phones.dim() != 2 or phones.shape[0] != codes.shape[1] or phones.shape[1] == 0:
            raise ValueError(f"phones must be (batch={codes.shape[1]}, phones > 0), got {tuple(phones.shape)}")
        if phones.min() < 0 or phones.max() >= self.config.num_symbols:
            raise ValueError(f"phone ids must lie in [0, {self.config.num_symbols}); got {phones.min()}..{phones.max()}")
        if ge.dim() != 3 or ge.shape[1:] != (self.config.gin_channels, 1):
            raise ValueError(f"ge must be (batch, {self.config.gin_channels}, 1), got {tuple(ge.shape)}")
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
