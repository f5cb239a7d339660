"""Hyper-parameters of the SoVITS decoder, read from the checkpoint's own config."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Widths fixed by the official architecture rather than by the config file.
SSL_DIM = 768  # HuBERT-base features, also the VQ codebook width
CODEBOOK_SIZE = 1024  # semantic vocabulary (the GPT's EOS is 1024, one past it)
STYLE_BINS = 704  # the style encoder reads the lowest 704 of the 1025 spectrogram bins
MRTE_WIDTH = 512  # width of the MRTE cross-attention and of the ``ge`` it adds (official files; narrowed test files differ)
SV_DIM = 20480  # width of the v2Pro speaker-verification features
NUM_SYMBOLS_V2 = 732  # the v2 phone table (v1 files have 322 rows and are not supported)
FRAMES_PER_TOKEN = 2  # 25 Hz semantic codes are repeated onto the 50 Hz latent frames


class SynthesizerConfigError(ValueError):
    """The checkpoint's config does not describe a supported SoVITS decoder."""


@dataclass(frozen=True)
class SynthesizerConfig:
    """The sizes of one SoVITS decoder (official ``configs/s2*.json``, ``model`` section).

    The flow topology (4 couplings of 4 WaveNet layers, kernel 5) and the widths above are
    fixed by the architecture; everything that varies between v2, v2Pro and v2ProPlus is here.
    """

    # prior (text encoder) and flow
    inter_channels: int
    hidden_channels: int
    filter_channels: int
    n_heads: int
    n_layers: int
    kernel_size: int
    # waveform generator
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    upsample_rates: tuple[int, ...]
    upsample_initial_channel: int
    upsample_kernel_sizes: tuple[int, ...]
    # speaker conditioning
    gin_channels: int
    uses_sv: bool = False  # v2Pro / v2ProPlus: ge also depends on the SV embedding
    # inputs
    num_symbols: int = NUM_SYMBOLS_V2
    num_quantizers: int = 1
    # MRTE's attention width: official code hard-codes 512; a checkpoint's own shapes say what it holds
    mrte_channels: int = MRTE_WIDTH
    # training only: the attention encoders' dropout (the eval-mode model never draws it)
    p_dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.hidden_channels % self.n_heads:
            raise SynthesizerConfigError(f"hidden_channels {self.hidden_channels} is not divisible by n_heads {self.n_heads}")
        if self.inter_channels % 2:
            raise SynthesizerConfigError(f"inter_channels must be even for the flow, got {self.inter_channels}")
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise SynthesizerConfigError("upsample_rates and upsample_kernel_sizes differ in length")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise SynthesizerConfigError("resblock_kernel_sizes and resblock_dilation_sizes differ in length")
        if not self.uses_sv and self.gin_channels != self.mrte_channels:
            raise SynthesizerConfigError(
                f"without SV features ge is added inside MRTE, so gin_channels must be its width {self.mrte_channels}"
            )
        if not 0.0 <= self.p_dropout < 1.0:
            raise SynthesizerConfigError(f"p_dropout must lie in [0, 1), got {self.p_dropout}")
        if self.upsample_initial_channel >> len(self.upsample_rates) < 1:
            raise SynthesizerConfigError("upsample_initial_channel is too small for the number of upsampling stages")

    @property
    def samples_per_frame(self) -> int:
        """Output samples per 50 Hz latent frame (the spectrogram hop, 640 at 32 kHz)."""
        return math.prod(self.upsample_rates)

    @property
    def samples_per_token(self) -> int:
        """Output samples per 25 Hz semantic token."""
        return FRAMES_PER_TOKEN * self.samples_per_frame

    @classmethod
    def from_checkpoint_config(
        cls, config: Mapping[str, Any], uses_sv: bool, num_symbols: int = NUM_SYMBOLS_V2, mrte_channels: int = MRTE_WIDTH
    ) -> SynthesizerConfig:
        """Build from the checkpoint's config dict (the one with ``model`` and ``data`` sections).

        ``mrte_channels`` is not in the official config (the code fixes it at 512); loaders read
        it from the weights' shapes.

        Raises :class:`SynthesizerConfigError` for missing entries or a variant this
        implementation does not cover (50 Hz codes, resblock type 2, a hop other than the
        generator's upsampling product).
        """
        model = config.get("model")
        if not isinstance(model, Mapping):
            raise SynthesizerConfigError("the checkpoint config has no 'model' section")
        if model.get("semantic_frame_rate", "25hz") != "25hz":
            raise SynthesizerConfigError(f"only 25 Hz semantic codes are supported, got {model.get('semantic_frame_rate')!r}")
        if str(model.get("resblock", "1")) != "1":
            raise SynthesizerConfigError(f"only generator resblock type 1 is supported, got {model.get('resblock')!r}")
        try:
            built = cls(
                inter_channels=int(model["inter_channels"]),
                hidden_channels=int(model["hidden_channels"]),
                filter_channels=int(model["filter_channels"]),
                n_heads=int(model["n_heads"]),
                n_layers=int(model["n_layers"]),
                kernel_size=int(model["kernel_size"]),
                resblock_kernel_sizes=tuple(int(k) for k in model["resblock_kernel_sizes"]),
                resblock_dilation_sizes=tuple(tuple(int(d) for d in ds) for ds in model["resblock_dilation_sizes"]),
                upsample_rates=tuple(int(r) for r in model["upsample_rates"]),
                upsample_initial_channel=int(model["upsample_initial_channel"]),
                upsample_kernel_sizes=tuple(int(k) for k in model["upsample_kernel_sizes"]),
                gin_channels=int(model["gin_channels"]),
                uses_sv=uses_sv,
                num_symbols=num_symbols,
                mrte_channels=int(mrte_channels),
                p_dropout=float(model.get("p_dropout", 0.0)),
            )
        except SynthesizerConfigError:
            raise
        except KeyError as error:
            raise SynthesizerConfigError(f"the checkpoint's model config lacks {error.args[0]!r}") from None
        except (TypeError, ValueError) as error:
            raise SynthesizerConfigError(f"malformed SoVITS model config: {error}") from None
        hop = config.get("data", {}).get("hop_length") if isinstance(config.get("data"), Mapping) else None
        if hop is not None and int(hop) != built.samples_per_frame:
            raise SynthesizerConfigError(
                f"the generator upsamples by {built.samples_per_frame} but the spectrogram hop is {hop}"
            )
        return built
