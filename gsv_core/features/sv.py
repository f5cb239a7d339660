"""Speaker verification for the v2Pro family: 16 kHz audio -> ERes2NetV2 speaker features.

The input is the reference resampled to 16 kHz (``gsv_core.audio.sv_input``); its Kaldi
filterbank (80 bins, no dither, no mean normalisation) goes through ERes2NetV2, and the
time-averaged fused map (``sv_embedding``, 20480 wide) conditions the v2Pro s2 model.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping

import torch
import torchaudio

from gsv_core.features.eres2net import ERes2NetV2, ERes2NetV2Config
from gsv_core.features.on_demand import OnDemand

SV_SAMPLE_RATE = 16000
FBANK_BINS = 80


def sv_fbank(wav16k: torch.Tensor) -> torch.Tensor:
    """(n,) or (B, n) 16 kHz samples -> (B, frames, 80) Kaldi log-mel filterbanks.

    25 ms windows every 10 ms (Kaldi defaults), dither 0, as upstream computes them.
    """
    if wav16k.dim() == 1:
        wav16k = wav16k[None]
    if wav16k.dim() != 2:
        raise ValueError(f"expected waveforms of shape (B, n), got {tuple(wav16k.shape)}")
    frames = [
        torchaudio.compliance.kaldi.fbank(
            wav[None].float(), num_mel_bins=FBANK_BINS, sample_frequency=SV_SAMPLE_RATE, dither=0.0
        )
        for wav in wav16k
    ]
    return torch.stack(frames)


def load_sv_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The official SV checkpoint: a bare state dict, read without running pickled code."""
    try:
        state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"speaker-verification checkpoint not found: {path}") from None
    except Exception as error:  # torch raises many types for damaged or foreign files
        raise ValueError(f"cannot read speaker-verification checkpoint {path}: {error}") from error
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} is not an ERes2NetV2 state dict")
    return dict(state)


def load_strict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy ``state`` into ``model``; every key must exist on both sides with the same shape."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{key}: file {tuple(state[key].shape)} vs model {tuple(value.shape)}"
        for key, value in expected.items()
        if key in state and state[key].shape != value.shape
    ]
    if missing or unexpected or mismatched:
        raise ValueError(
            f"{source} does not fit the model: missing {missing[:5]} ({len(missing)}), "
            f"unexpected {unexpected[:5]} ({len(unexpected)}), shape mismatches {mismatched[:5]}"
        )
    model.load_state_dict(state, strict=True)


def load_eres2netv2(
    path: str | os.PathLike, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> ERes2NetV2:
    """ERes2NetV2 sized from the checkpoint's own shapes, weights loaded strictly, in eval mode."""
    state = load_sv_state_dict(path)
    model = ERes2NetV2(ERes2NetV2Config.from_state_dict(state))
    load_strict(model, state, str(path))
    return model.to(device=device, dtype=dtype).eval()


def _load_placed(load: Callable[[], ERes2NetV2], device: torch.device, dtype: torch.dtype) -> ERes2NetV2:
    return load().to(device=device, dtype=dtype).eval()


class SpeakerEncoder:
    """16 kHz reference audio -> v2Pro speaker features (no state besides the frozen network).

    Half precision: the filterbank is always computed in float32 (its FFT and log need the
    range) and cast to the network's dtype; the results come back as float32 whatever the
    network's dtype, so they can be stored and fed to a SoVITS model of any dtype.
    """

    def __init__(self, model: ERes2NetV2, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 reload: Callable[[], ERes2NetV2] | None = None):
        """``reload``: load the network for each call (and free it after) instead of keeping ``model``."""
        self.device = torch.device(device)
        self.dtype = dtype
        self.config = model.config
        self.models = OnDemand(functools.partial(_load_placed, reload, self.device, dtype), keep_loaded=reload is None,
                               loaded=model.to(device=self.device, dtype=dtype).eval())

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
        keep_loaded: bool = True,
    ) -> SpeakerEncoder:
        """The encoder of an official checkpoint; ``keep_loaded=False`` reads the file again for each call."""
        return cls(load_eres2netv2(path), device, dtype, reload=None if keep_loaded else lambda: load_eres2netv2(path))

    @property
    def embedding_dim(self) -> int:
        """Width of ``sv_embedding`` (20480 for the official model)."""
        return self.config.pooled_dim

    @torch.inference_mode()
    def sv_embedding(self, wav16k: torch.Tensor) -> torch.Tensor:
        """(n,) or (B, n) 16 kHz audio -> (B, pooled_dim) float32: what v2Pro's s2 model takes as ``sv_emb``."""
        fbank = sv_fbank(wav16k.to(self.device)).to(self.dtype)
        return self.models.run(lambda model: model.pooled_features(fbank).float())

    @torch.inference_mode()
    def speaker_embedding(self, wav16k: torch.Tensor) -> torch.Tensor:
        """(n,) or (B, n) 16 kHz audio -> (B, embedding_size) float32: the verification embedding."""
        fbank = sv_fbank(wav16k.to(self.device)).to(self.dtype)
        return self.models.run(lambda model: model(fbank).float())


def check_sv_fits(encoder: "SpeakerEncoder | None", sovits: torch.nn.Module, source: str | os.PathLike | None) -> None:
    """Refuse an SV checkpoint whose embeddings the SoVITS model cannot take (the two files do not belong together)."""
    projection = getattr(sovits, "speaker_projection", None)
    if encoder is None or projection is None:
        return
    expected = projection.sv_proj.in_features
    if encoder.embedding_dim != expected:
        raise ValueError(
            f"the speaker-verification checkpoint {os.path.basename(os.fspath(source or ''))} gives "
            f"{encoder.embedding_dim}-wide embeddings, but the SoVITS model takes {expected}: "
            "the two files do not belong together"
        )
