"""The SoVITS decoder (s2) of v2, v2Pro and v2ProPlus, for inference.

decode: semantic codes (25 Hz) -> quantized content -> 50 Hz frames -> text encoder (with the
phones and ``ge``) -> prior (m_p, logs_p) -> sample z_p -> flow reverse -> generator -> waveform.
``ge``, the speaker conditioning, comes from the reference spectrogram (and, for the Pro
models, the speaker-verification features) through :meth:`SoVITS.global_embedding`, so a
speaker can be encoded once and reused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...versions import VersionInfo
from .config import CODEBOOK_SIZE, FRAMES_PER_TOKEN, SynthesizerConfig
from .flow import Flow
from .generator import Generator
from .padding import pad_right, padding_mask
from .posterior import PosteriorEncoder
from .quantizer import SemanticCodec
from .speaker_projection import SpeakerProjection
from .style_encoder import MelStyleEncoder
from .text_encoder import TextEncoder


@dataclass(frozen=True)
class StreamingChunk:
    """What :meth:`SoVITS.decode_streaming` returns for one chunk."""

    audio: torch.Tensor  # (B, 1, samples) float32 waveform of this chunk
    latent: torch.Tensor  # (B, hidden, frames) float32 text-encoder latent; its tail is the next overlap_frames


@dataclass(frozen=True)
class DecodeItem:
    """One item of :meth:`SoVITS.decode_batch`: the arguments of a :meth:`SoVITS.decode` call of batch 1."""

    codes: torch.Tensor  # (num_quantizers, tokens) semantic codes
    phones: torch.Tensor  # (phones,) phone ids
    ge: torch.Tensor  # (1, gin, 1) speaker conditioning, any float dtype
    speed: float = 1.0
    noise_scale: float = 0.5
    noise: torch.Tensor | None = None  # (1, inter, frames'), or None: drawn from ``generator``
    generator: torch.Generator | None = None


def fuse_global_embeddings(per_reference: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """(R, B, gin, 1) per-reference ``ge`` (or a sequence of R (B, gin, 1)) -> (B, gin, 1), their mean.

    Upstream averages the references' embeddings (``torch.stack(ges).mean(0)``) and conditions
    the flow, the generator and (through ``ge_to512`` for the Pro models) the text encoder on
    the mean, so averaging stored per-reference embeddings gives the same voice.
    """
    stacked = per_reference if isinstance(per_reference, torch.Tensor) else torch.stack(list(per_reference))
    if stacked.dim() != 4 or stacked.shape[0] == 0:
        raise ValueError(f"per-reference embeddings must be (references>0, batch, gin, 1), got {tuple(stacked.shape)}")
    return stacked.mean(0)


def overlap_window(length: int, device: torch.device | None = None) -> torch.Tensor:
    """(2 * length,) float32 sin(pi * i / (2 * length)): rising half, then falling half (upstream's chunk window)."""
    return torch.sin(torch.arange(2 * length, device=device) * torch.pi / (2 * length))


def blend_overlap(hidden: torch.Tensor, overlap_frames: torch.Tensor) -> torch.Tensor:
    """Cross-fade the previous chunk's tail ``overlap_frames`` (B, C, L) into the first L frames of ``hidden`` (B, C, T)."""
    length = overlap_frames.shape[-1]
    if overlap_frames.shape[:2] != hidden.shape[:2] or not 0 < length <= hidden.shape[-1]:
        raise ValueError(f"overlap_frames must be (batch, {hidden.shape[1]}, 1..{hidden.shape[-1]}), got {tuple(overlap_frames.shape)}")
    window = overlap_window(length, hidden.device)
    head = window[:length] * hidden[..., :length] + window[length:] * overlap_frames
    return torch.cat([head.to(hidden.dtype), hidden[..., length:]], dim=-1)


class SoVITS(nn.Module):
    """Semantic codes + phones + speaker conditioning -> waveform.

    Inference needs no posterior encoder; ``keep_posterior=True`` builds it (``self.posterior``)
    for training, which lives in ``gsv_core.training``.
    """

    def __init__(self, config: SynthesizerConfig, version: VersionInfo, keep_posterior: bool = False) -> None:
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
        self.speaker_projection = SpeakerProjection(config.gin_channels, config.mrte_channels) if config.uses_sv else None
        self.posterior = (
            PosteriorEncoder(version.audio.spec_channels, config.inter_channels, config.hidden_channels, config.gin_channels)
            if keep_posterior else None
        )

    @property
    def samples_per_token(self) -> int:
        """Output samples per 25 Hz semantic token (1280 at 32 kHz)."""
        return self.config.samples_per_token

    @property
    def dtype(self) -> torch.dtype:
        """The weights' dtype; every tensor entering the model is cast to it."""
        return self.text_encoder.proj.weight.dtype

    def _enter(self, tensor: torch.Tensor) -> torch.Tensor:
        """A float input moved to the model's device and dtype (the boundary cast for fp16 / bf16)."""
        return tensor.to(device=self.text_encoder.proj.weight.device, dtype=self.dtype)

    def extract_latent(self, ssl_content: torch.Tensor) -> torch.Tensor:
        """HuBERT last hidden state, channels first (B, 768, T50) -> prompt codes (B, 1, T50 // 2)."""
        return self.codec.encode(self._enter(ssl_content))

    def global_embedding(self, ref_spec: torch.Tensor, sv_embedding: torch.Tensor | None = None) -> torch.Tensor:
        """``ge`` (B, gin, 1) float32 of one reference: spectrogram (B, 1025, F) (+ SV features (B, 20480) for Pro).

        v2: the style encoder's output. v2Pro / v2ProPlus: prelu(style + sv_proj(sv_embedding)).
        For several references see :meth:`fused_global_embedding`.
        """
        style = self.style_encoder(self._enter(ref_spec))
        if self.speaker_projection is None:
            return style.float()
        if sv_embedding is None:
            raise ValueError(f"{self.version.name} needs the speaker-verification embedding (sv_embedding)")
        return self.speaker_projection.combine(style, self._enter(sv_embedding)).float()

    def reference_embeddings(
        self, ref_specs: Sequence[torch.Tensor], sv_embeddings: Sequence[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """(R, B, gin, 1) float32: :meth:`global_embedding` of each of R references, in order.

        ``ref_specs[r]`` is (B, 1025, F_r) (lengths may differ); for the Pro models
        ``sv_embeddings[r]`` (B, 20480) belongs to the same reference. These per-reference
        embeddings are what a speaker library stores; :func:`fuse_global_embeddings` joins them.
        """
        if not ref_specs:
            raise ValueError("at least one reference spectrogram is needed")
        if sv_embeddings is not None and len(sv_embeddings) != len(ref_specs):
            raise ValueError(f"{len(ref_specs)} reference spectrograms but {len(sv_embeddings)} SV embeddings")
        svs = list(sv_embeddings) if sv_embeddings is not None else [None] * len(ref_specs)
        return torch.stack([self.global_embedding(spec, sv) for spec, sv in zip(ref_specs, svs)])

    def fused_global_embedding(
        self, ref_specs: Sequence[torch.Tensor], sv_embeddings: Sequence[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """``ge`` (B, gin, 1) of several references: the mean of their per-reference embeddings, as upstream."""
        return fuse_global_embeddings(self.reference_embeddings(ref_specs, sv_embeddings))

    def content(self, codes: torch.Tensor) -> torch.Tensor:
        """(num_quantizers, B, T) codes -> (B, 768, 2T): quantized content repeated onto 50 Hz frames."""
        return F.interpolate(self.codec.decode(codes), scale_factor=FRAMES_PER_TOKEN, mode="nearest")

    def text_ge(self, ge: torch.Tensor) -> torch.Tensor:
        """ge (B, gin, 1) -> the (B, 512, 1) conditioning MRTE adds (``ge`` itself for v2)."""
        ge = self._enter(ge)
        return ge if self.speaker_projection is None else self.speaker_projection.for_text_encoder(ge)

    def prior(self, codes: torch.Tensor, phones: torch.Tensor, ge: torch.Tensor, speed: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """codes (1, B, T), phones (B, P), ge (B, gin, 1) -> m_p, logs_p (B, inter, frames) in the model's dtype.

        frames = 2T, or int(2T / speed) + 1 when ``speed`` != 1.
        """
        return self.text_encoder(self.content(codes), phones, self.text_ge(ge), speed)

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
        """Waveform (B, 1, frames * 640) float32 for codes (1, B, T), phones (B, P) and ``ge`` (B, gin, 1).

        Batching: codes are laid out (num_quantizers, batch, tokens) as upstream, and item b
        is conditioned on ``ge[b]`` (a speaker per item). There is no padding mask, so every
        item must have the same number of tokens and the same number of phones; each item
        then decodes exactly as it would alone (items of different lengths: :meth:`decode_batch`).
        The prior is sampled as z_p = m_p + noise * exp(logs_p) * noise_scale: ``noise``
        (B, inter, frames) is used as given, otherwise it is drawn from ``generator``; one of
        the two is required, so the global RNG is never touched. ``ge`` and ``noise`` may be float32 whatever the
        model's dtype: they are cast on entry.
        """
        self._check_inputs(codes, phones, ge, speed)
        m_p, logs_p = self.prior(codes, phones, ge, speed)
        return self._synthesize(m_p, logs_p, self._enter(ge), noise_scale, noise, generator)

    def decode_batch(self, items: Sequence[DecodeItem]) -> list[torch.Tensor]:
        """Decode items of different lengths, speakers, speeds and noise as one padded batch.

        Returns per item its (samples_b,) float32 waveform: what :meth:`decode` gives for it
        alone, up to float reassociation (a batch's matrix products may sum in another
        order). Padded keys get zero attention weight and padded frames are zeroed before
        every convolution (text encoder, flow, generator), so no real frame ever sees
        padding. The speed stretch and the prior sample run per item, so item b draws its
        noise from its generator exactly as alone, in item order (items may share one).
        """
        if not items:
            raise ValueError("decode_batch needs at least one item")
        for item in items:
            self._check_item(item)
        ge = self._enter(torch.cat([item.ge for item in items]))
        z_p = self._prior_samples(items, ge)
        frames = [sample.shape[-1] for sample in z_p]
        z_p = pad_right(z_p)
        z = self.flow.reverse(z_p, ge, padding_mask(frames, z_p.shape[-1], ge))
        audio = self.generator(z, ge, frames).float()
        return [audio[b, 0, : self.generator.frame_lengths(n)[-1]] for b, n in enumerate(frames)]

    def _prior_samples(self, items: Sequence[DecodeItem], ge: torch.Tensor) -> list[torch.Tensor]:
        """Each item's z_p (1, inter, frames_b): the text encoder over the padded batch, then per item
        the speed stretch, projection and noise (as :meth:`decode` does alone)."""
        codes = pad_right([item.codes.unsqueeze(1) for item in items], dim=1)  # (n_q, B, T)
        phones = pad_right([item.phones.view(1, -1) for item in items])  # (B, P)
        content = self.content(codes)
        frames = [FRAMES_PER_TOKEN * item.codes.shape[-1] for item in items]
        content_mask = padding_mask(frames, content.shape[-1], ge)
        text_mask = padding_mask([item.phones.shape[-1] for item in items], phones.shape[-1], ge)
        hidden = self.text_encoder.hidden(content, phones, self.text_ge(ge), content_mask, text_mask)
        samples = []
        for b, (item, length) in enumerate(zip(items, frames)):
            m_p, logs_p = self.text_encoder.project(hidden[b : b + 1, :, :length], item.speed)
            samples.append(self._sample_prior(m_p, logs_p, item.noise_scale, item.noise, item.generator))
        return samples

    def _check_item(self, item: DecodeItem) -> None:
        if item.codes.dim() != 2 or item.phones.dim() != 1 or item.ge.dim() != 3 or item.ge.shape[0] != 1:
            raise ValueError(
                "a DecodeItem holds codes (num_quantizers, tokens), phones (phones,) and ge (1, gin, 1); got "
                f"{tuple(item.codes.shape)}, {tuple(item.phones.shape)}, {tuple(item.ge.shape)}"
            )
        self._check_inputs(item.codes.unsqueeze(1), item.phones.view(1, -1), item.ge, item.speed)

    def decode_streaming(
        self,
        codes: torch.Tensor,
        phones: torch.Tensor,
        ge: torch.Tensor,
        *,
        result_tokens: int | None = None,
        overlap_frames: torch.Tensor | None = None,
        speed: float = 1.0,
        noise_scale: float = 0.5,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> StreamingChunk:
        """Decode the newest chunk of a stream (upstream ``decode_streaming``).

        ``codes`` (1, B, T) are all tokens streamed so far, so the text encoder sees the whole
        context. Only the last ``result_tokens`` tokens (2 * result_tokens latent frames) are
        decoded; None (the first chunk) decodes everything. ``overlap_frames`` (B, hidden, L),
        the last L frames of the previous chunk's latent, are blended into the first L frames
        with a sine window (this chunk fades in as sin over [0, pi/2), the previous one fades
        out as sin over [pi/2, pi)), so consecutive chunks join smoothly. The blended latent
        (before any speed stretch) is returned for the next call with the float32 audio
        (B, 1, frames' * 640), frames' = 2 * result_tokens (or 2T), stretched by ``speed``
        as in :meth:`decode`. ``noise`` is (B, inter, frames').
        """
        self._check_inputs(codes, phones, ge, speed)
        hidden = self.text_encoder.hidden(self.content(codes), phones, self.text_ge(ge))
        if result_tokens is not None:
            if not 0 < result_tokens <= codes.shape[-1]:
                raise ValueError(f"result_tokens must lie in [1, {codes.shape[-1]}], got {result_tokens}")
            hidden = hidden[..., -FRAMES_PER_TOKEN * result_tokens :]
        if overlap_frames is not None:
            hidden = blend_overlap(hidden, self._enter(overlap_frames))
        m_p, logs_p = self.text_encoder.project(hidden, speed)
        audio = self._synthesize(m_p, logs_p, self._enter(ge), noise_scale, noise, generator)
        return StreamingChunk(audio=audio, latent=hidden.float())

    def decode_with_reference(
        self, codes: torch.Tensor, phones: torch.Tensor, ref_spec: torch.Tensor, sv_embedding: torch.Tensor | None = None, **options
    ) -> torch.Tensor:
        """:meth:`decode` with ``ge`` computed from the reference first (the upstream ``decode`` signature)."""
        return self.decode(codes, phones, self.global_embedding(ref_spec, sv_embedding), **options)

    def _synthesize(
        self, m_p: torch.Tensor, logs_p: torch.Tensor, ge: torch.Tensor, noise_scale: float,
        noise: torch.Tensor | None, generator: torch.Generator | None,
    ) -> torch.Tensor:
        """Sample the prior, run the flow in reverse and the generator -> (B, 1, samples) float32."""
        z_p = self._sample_prior(m_p, logs_p, noise_scale, noise, generator)
        return self.generator(self.flow.reverse(z_p, ge), ge).float()

    def _sample_prior(
        self, m_p: torch.Tensor, logs_p: torch.Tensor, noise_scale: float, noise: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """z_p = m_p + noise * exp(logs_p) * noise_scale, (B, inter, frames); ``noise`` drawn when not given."""
        if noise is None and generator is None:
            raise ValueError("decode needs either a noise tensor or a torch.Generator to draw it from")
        if noise is None:
            noise = torch.randn(m_p.shape, generator=generator, device=m_p.device, dtype=torch.float32)
        elif noise.shape != m_p.shape:
            raise ValueError(f"noise must have the prior's shape {tuple(m_p.shape)}, got {tuple(noise.shape)}")
        return m_p + noise.to(m_p) * torch.exp(logs_p) * noise_scale

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
