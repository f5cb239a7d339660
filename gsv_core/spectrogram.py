"""The linear magnitude spectrogram of the reference clip, as the SoVITS style encoder expects it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .versions import AudioSettings

MAGNITUDE_FLOOR = 1e-8  # added to the power before the square root, as upstream


def linear_spectrogram(audio: torch.Tensor, settings: AudioSettings = AudioSettings()) -> torch.Tensor:
    """(B, samples) waveform in [-1, 1] at ``settings.sampling_rate`` -> (B, n_fft // 2 + 1, frames).

    Reflect-padded by (n_fft - hop) / 2 on both sides and framed without centering, so a
    frame lands every ``hop_length`` samples: frames = samples // hop for the 32 kHz
    settings (n_fft 2048, hop 640, periodic Hann window of 2048). Magnitudes are
    sqrt(re^2 + im^2 + 1e-8), so silence gives 1e-4 rather than 0.
    """
    pad = (settings.filter_length - settings.hop_length) // 2
    if audio.dim() != 2 or not audio.is_floating_point():
        raise ValueError(f"audio must be a float (batch, samples) tensor, got {audio.dtype} {tuple(audio.shape)}")
    if audio.shape[1] <= pad or audio.shape[1] + 2 * pad < settings.filter_length:  # reflect padding needs > pad
        raise ValueError(f"audio is too short for a spectrogram: {audio.shape[1]} samples, need more than {pad}")
    padded = F.pad(audio.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    window = torch.hann_window(settings.win_length, dtype=audio.dtype, device=audio.device)
    spec = torch.stft(
        padded, settings.filter_length, hop_length=settings.hop_length, win_length=settings.win_length,
        window=window, center=False, normalized=False, onesided=True, return_complex=True,
    )
    return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + MAGNITUDE_FLOOR)
