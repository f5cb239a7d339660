"""The linear magnitude spectrogram of the reference clip, as the SoVITS reference encoder expects it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .versions import AudioSettings


def linear_spectrogram(audio: torch.Tensor, settings: AudioSettings = AudioSettings()) -> torch.Tensor:
    """(B, samples) waveform in [-1, 1] -> (B, filter_length // 2 + 1, frames) magnitudes.

    Reflect-padded by (n_fft - hop) / 2 on both sides and framed without centering, so a
    frame lands every ``hop_length`` samples; a tiny floor keeps the square root smooth.
    """
    pad = (settings.filter_length - settings.hop_length) // 2
    padded = F.pad(audio.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    window = torch.hann_window(settings.win_length, dtype=audio.dtype, device=audio.device)
    spec = torch.stft(
        padded, settings.filter_length, hop_length=settings.hop_length, win_length=settings.win_length,
        window=window, center=False, normalized=False, onesided=True, return_complex=True,
    )
    return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-8)
