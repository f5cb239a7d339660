"""The SoVITS decoder (s2) of v2, v2Pro and v2ProPlus, for inference, and its strict loader."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...checkpoints import CheckpointError, read_sovits_checkpoint
from ...versions import VersionInfo
from .flow import Flow
from .generator import Generator
from .style_encoder import MelStyleEncoder
from .text_encoder import MRTE_WIDTH, SSL_DIM, TextEncoder

SV_DIM = 20480  # width of the v2Pro speaker-verification features
CODEBOOK_SIZE = 1024
STYLE_BINS = 704


@dataclass(frozen=True)
class SynthesizerConfig:
    inter_channels: int
    hidden_channels: int
    filter_channels: int
    n_heads: int
    n_layers: int
    kernel_size: int
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    upsample_rates: tuple[int, ...]
    upsample_initial_channel: int
    upsample_kernel_sizes: tuple[int, ...]
    gin_channels: int
    num_symbols: int = 732
    uses_sv: bool = False

    @classmethod
    def from_checkpoint_config(cls, config: dict, uses_sv: bool, num_symbols: int) -> "SynthesizerConfig":
        model = config["model"]
        if model.get("semantic_frame_rate", "25hz") != "25hz" or str(model.get("resblock", "1")) != "1":
            raise CheckpointError("only 25 Hz semantic codes and resblock type 1 are supported (v2 family)")
        return cls(
            inter_channels=model["inter_channels"],
            hidden_channels=model["hidden_channels"],
            filter_channels=model["filter_channels"],
            n_heads=model["n_heads"],
            n_layers=model["n_layers"],
            kernel_size=model["kernel_size"],
            resblock_kernel_sizes=tuple(model["resblock_kernel_sizes"]),
            resblock_dilation_sizes=tuple(tuple(d) for d in model["resblock_dilation_sizes"]),
            upsample_rates=tuple(model["upsample_rates"]),
            upsample_initial_channel=model["upsample_initial_channel"],
            upsample_kernel_sizes=tuple(model["upsample_kernel_sizes"]),
            gin_channels=model["gin_channels"],
            num_symbols=num_symbols,
            uses_sv=uses_sv,
        )


class Quantizer(nn.Module):
    """The single-codebook vector quantizer between HuBERT features and semantic codes."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Parameter(torch.zeros(CODEBOOK_SIZE, SSL_DIM))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 768, T) -> (B, T) nearest codes."""
        flat = x.transpose(1, 2).reshape(-1, x.shape[1])
        embed = self.embed.t()
        score = -(flat.pow(2).sum(1, keepdim=True) - 2 * flat @ embed + embed.pow(2).sum(0, keepdim=True))
        return score.argmax(dim=-1).view(x.shape[0], x.shape[2])

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, T) codes -> (B, 768, T)."""
        return F.embedding(codes, self.embed).transpose(1, 2)


class SoVITS(nn.Module):
    """Semantic codes + phones + reference -> waveform."""

    def __init__(self, config: SynthesizerConfig, version: VersionInfo) -> None:
        super().__init__()
        self.config = config
        self.version = version
        c = config
        self.enc_p = TextEncoder(c.inter_channels, c.hidden_channels, c.filter_channels, c.n_heads, c.n_layers, c.kernel_size, c.num_symbols)
        self.dec = Generator(c.inter_channels, c.resblock_kernel_sizes, c.resblock_dilation_sizes, c.upsample_rates,
                             c.upsample_initial_channel, c.upsample_kernel_sizes, c.gin_channels)
        self.flow = Flow(c.inter_channels, c.hidden_channels, c.gin_channels)
        self.ref_enc = MelStyleEncoder(STYLE_BINS, c.gin_channels)
        self.ssl_proj = nn.Conv1d(SSL_DIM, SSL_DIM, 2, stride=2)  # 50 Hz HuBERT frames -> 25 Hz codes
        self.quantizer = Quantizer()
        if c.uses_sv:
            self.sv_emb = nn.Linear(SV_DIM, c.gin_channels)
            self.ge_to512 = nn.Linear(c.gin_channels, MRTE_WIDTH)
            self.prelu = nn.PReLU(c.gin_channels)

    @property
    def samples_per_token(self) -> int:
        """Output samples per 25 Hz semantic token (two 50 Hz frames)."""
        rate = 1
        for r in self.config.upsample_rates:
            rate *= r
        return 2 * rate

    def extract_latent(self, ssl_content: torch.Tensor) -> torch.Tensor:
        """HuBERT content (B, 768, T50) -> semantic codes (B, 1, T25)."""
        return self.quantizer.encode(self.ssl_proj(ssl_content)).unsqueeze(1)

    def global_embedding(self, ref_spec: torch.Tensor, sv_embedding: torch.Tensor | None = None) -> torch.Tensor:
        """The speaker conditioning ``ge`` (B, gin, 1) from a (B, 1025, F) spectrogram (+ (B, 20480) SV features)."""
        ge = self.ref_enc(ref_spec)
        if self.config.uses_sv:
            if sv_embedding is None:
                raise ValueError(f"{self.version.name} needs the speaker-verification embedding")
            ge = self.prelu(ge + self.sv_emb(sv_embedding).unsqueeze(-1))
        return ge

    def prior(self, codes: torch.Tensor, phones: torch.Tensor, ge: torch.Tensor, speed: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """codes (1, 1, T) and phones (1, P) -> m_p, logs_p (1, inter, 2T/speed)."""
        content = F.interpolate(self.quantizer.decode(codes[0]), scale_factor=2, mode="nearest")
        text_ge = self.ge_to512(ge.transpose(1, 2)).transpose(1, 2) if self.config.uses_sv else ge
        return self.enc_p(content, phones, text_ge, speed)

    def decode(self, codes: torch.Tensor, phones: torch.Tensor, ge: torch.Tensor, *, speed: float = 1.0,
               noise_scale: float = 0.5, noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Waveform (1, 1, samples) for semantic codes (1, 1, T), phones (1, P) and ``ge`` (1, gin, 1).

        ``noise`` (1, inter, frames) replaces the standard-normal draw; otherwise it comes
        from ``generator``.
        """
        m_p, logs_p = self.prior(codes, phones, ge, speed)
        if noise is None:
            noise = torch.randn(m_p.shape, generator=generator, device=m_p.device, dtype=m_p.dtype)
        z_p = m_p + noise * torch.exp(logs_p) * noise_scale
        return self.dec(self.flow.reverse(z_p, ge), ge)


# Official keys that inference does not use: the codebook's training statistics.
_UNUSED_SUFFIXES = ("._codebook.inited", "._codebook.cluster_size", "._codebook.embed_avg")


def _official_to_ours(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename official keys, fold weight norm (``weight_g``, ``weight_v``) into plain weights."""
    ours: dict[str, torch.Tensor] = {}
    for key, tensor in weights.items():
        if key.endswith(_UNUSED_SUFFIXES):
            continue
        if key.endswith(".weight_v"):
            continue
        if key.endswith(".weight_g"):
            stem = key[: -len(".weight_g")]
            direction = weights[stem + ".weight_v"]
            norm = direction.norm(dim=tuple(range(1, direction.dim())), keepdim=True)
            tensor, key = direction * (tensor / norm), stem + ".weight"
        key = key.replace("quantizer.vq.layers.0._codebook.embed", "quantizer.embed")
        ours[key] = tensor
    return ours


def load_sovits(path: str | os.PathLike, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> SoVITS:
    """Build the decoder from an official s2 ``.pth`` and load it strictly."""
    raw = read_sovits_checkpoint(path)
    text_rows = raw.weights.get("enc_p.text_embedding.weight")
    if text_rows is None:
        raise CheckpointError(f"{path}: not a SoVITS file (no enc_p.text_embedding.weight)")
    if text_rows.shape[0] != 732:
        raise CheckpointError(f"{path}: a v1 SoVITS file (322 symbols); only v2, v2Pro and v2ProPlus are supported")
    try:
        config = SynthesizerConfig.from_checkpoint_config(raw.config, raw.version.uses_sv, text_rows.shape[0])
    except (KeyError, TypeError) as error:
        raise CheckpointError(f"{path}: incomplete SoVITS model config ({error})") from error
    model = SoVITS(config, raw.version)
    weights = _official_to_ours(raw.weights)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match a {raw.version.name} model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for key, tensor in weights.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(f"{path}: {key} has shape {tuple(tensor.shape)}, the model expects {tuple(expected[key].shape)}")
    model.load_state_dict(weights, strict=True)
    return model.to(device=device, dtype=dtype).eval()
