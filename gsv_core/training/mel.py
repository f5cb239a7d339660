"""Log-mel spectrograms for the SoVITS mel loss, as the official training computes them.

The target side turns the loader's linear spectrogram into mels (:func:`spec_to_mel`); the
generated side computes them from the waveform (:func:`mel_spectrogram`), through the same
linear spectrogram inference uses (``gsv_core.spectrogram``). Both are natural logs of the
mel energies clamped at 1e-5. The filterbank is librosa's Slaney mel matrix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from ..spectrogram import linear_spectrogram
from ..versions import AudioSettings

LOG_FLOOR = 1e-5  # mel energies are clamped here before the log


@dataclass(frozen=True)
class MelSettings:
    """The spectrogram and mel-filter sizes of the training config's ``data`` section."""

    audio: AudioSettings
    n_mels: int
    fmin: float
    fmax: float | None

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> MelSettings:
        """From the official config's ``data`` section (``mel_fmax`` null means the Nyquist frequency)."""
        audio = AudioSettings(
            sampling_rate=int(data["sampling_rate"]), filter_length=int(data["filter_length"]),
            hop_length=int(data["hop_length"]), win_length=int(data["win_length"]),
        )
        fmax = data.get("mel_fmax")
        return cls(audio, int(data["n_mel_channels"]), float(data.get("mel_fmin", 0.0)), None if fmax is None else float(fmax))


@lru_cache(maxsize=8)
def _filterbank(sampling_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    import librosa  # only training needs it

    bank = librosa.filters.mel(sr=sampling_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    bank.setflags(write=False)
    return bank


def mel_filterbank(settings: MelSettings, like: torch.Tensor) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) filterbank in ``like``'s dtype and device."""
    a = settings.audio
    bank = _filterbank(a.sampling_rate, a.filter_length, settings.n_mels, settings.fmin, settings.fmax)
    return torch.from_numpy(np.array(bank)).to(dtype=like.dtype, device=like.device)


def spec_to_mel(spec: torch.Tensor, settings: MelSettings) -> torch.Tensor:
    """(B, n_fft // 2 + 1, T) linear magnitudes -> (B, n_mels, T) log mels."""
    return torch.log(torch.clamp(torch.matmul(mel_filterbank(settings, spec), spec), min=LOG_FLOOR))


def mel_spectrogram(audio: torch.Tensor, settings: MelSettings) -> torch.Tensor:
    """(B, samples) waveform -> (B, n_mels, samples // hop) log mels (differentiable)."""
    return spec_to_mel(linear_spectrogram(audio, settings.audio), settings)
