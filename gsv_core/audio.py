"""Reference audio: reading, validation and the exact preprocessing the models expect.

A reference clip feeds three stages, each with its own preparation (as upstream does it):

* HuBERT (semantic prompt): the clip at 16 kHz, resampled by soxr's HQ filter (what
  ``librosa.load(path, sr=16000)`` does), followed by 0.3 s of zeros counted at the model
  rate (``int(32000 * 0.3)`` = 9600 samples, i.e. 0.6 s at 16 kHz).
* the reference spectrogram: the clip at the model rate (32 kHz), resampled by torchaudio's
  windowed-sinc resampler and divided by its peak when the peak exceeds 1 (by at most 2).
* the speaker-verification model (v2Pro family): that 32 kHz signal resampled to 16 kHz.

Everything here is a pure function; nothing is cached between calls.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import soundfile
import torch
import torchaudio

HUBERT_SAMPLE_RATE = 16000
SV_SAMPLE_RATE = 16000
# Upstream accepts references whose 16 kHz version has 48000..160000 samples (3 to 10 s).
MIN_REFERENCE_SAMPLES_16K = 48000
MAX_REFERENCE_SAMPLES_16K = 160000
# Auxiliary references only shape the voice (upstream checks no length for them; its own
# examples last 2.6 to 5 s): at least 1 s, so the style encoder sees some speech.
MIN_AUXILIARY_SAMPLES_16K = 16000
# Zeros appended to the HuBERT input: 0.3 s, counted (as upstream does) at the model rate.
HUBERT_PAD_SECONDS = 0.3
# A reference whose peak stays under -60 dBFS carries no usable voice.
SILENCE_PEAK = 10 ** (-60 / 20)
# Peak normalisation of the spectrogram input divides by the peak, but never by more than this.
MAX_PEAK_DIVISOR = 2.0
# A file whose header announces more than this is refused before it is decoded: decoding
# 20 minutes of 96 kHz stereo (a few hundred KB of FLAC) would take ~900 MB of float32.
MAX_DECODE_SECONDS = 60.0

AudioSource = str | os.PathLike | bytes


class AudioError(ValueError):
    """The reference audio cannot be used: unreadable, empty, silent, non-finite, too short or long."""


@dataclass(frozen=True)
class ReferenceAudio:
    """A reference clip prepared for every model stage (float32 tensors on the CPU).

    ``hubert_input``: (1, n16 + pad) 16 kHz samples with the trailing zeros.
    ``spec_audio``: (1, n) at ``sample_rate``, peak-normalised: the spectrogram's input.
    ``sv_input``: (1, n16') 16 kHz resample of ``spec_audio``, or None when not requested.
    """

    hubert_input: torch.Tensor
    spec_audio: torch.Tensor
    sample_rate: int
    sv_input: torch.Tensor | None


def _describe(source: AudioSource) -> str:
    if isinstance(source, (bytes, bytearray)):
        return "the uploaded audio"
    return str(source)


def _read_channels(source: AudioSource, max_seconds: float = MAX_DECODE_SECONDS) -> tuple[np.ndarray, int]:
    """Decode any format soundfile (then librosa) reads: (channels, samples) float32 and its rate.

    A file whose header announces more than ``max_seconds`` is refused before decoding.
    """
    name = _describe(source)
    if not isinstance(source, (bytes, bytearray)):
        path = Path(source)
        if not path.is_file():
            raise AudioError(f"reference audio file not found: {name}")
        if path.stat().st_size == 0:
            raise AudioError(f"reference audio file is empty: {name}")
    elif len(source) == 0:
        raise AudioError("reference audio is empty (0 bytes)")

    def opened():
        return io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source

    check_header_duration(source, max_seconds, name)
    try:
        samples, sample_rate = soundfile.read(opened(), dtype="float32", always_2d=True)
        return np.ascontiguousarray(samples.T), int(sample_rate)
    except Exception as sf_error:  # libsndfile reports unreadable data in several ways
        try:  # formats libsndfile lacks, through librosa's audioread fallback (ffmpeg etc.)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                samples, sample_rate = librosa.load(opened(), sr=None, mono=False, dtype=np.float32)
        except Exception:
            reason = str(sf_error).rsplit(": ", 1)[-1]  # libsndfile's reason, without the repr of our buffer
            raise AudioError(f"{name} is not a readable audio file ({reason})") from sf_error
    samples = np.atleast_2d(np.asarray(samples, dtype=np.float32))
    return samples, int(sample_rate)


def header_duration(source: AudioSource) -> float | None:
    """Seconds of audio a file's header announces, without decoding it; None when unknown."""
    try:
        info = soundfile.info(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
    except Exception:  # not readable by libsndfile: the decoder reports it
        return None
    if info.samplerate <= 0 or info.frames <= 0:
        return None
    return info.frames / info.samplerate


def check_header_duration(source: AudioSource, max_seconds: float, name: str = "reference audio") -> None:
    """Raise AudioError when the header announces more than ``max_seconds`` of audio (nothing is decoded)."""
    seconds = header_duration(source)
    if seconds is not None and seconds > max_seconds:
        raise AudioError(
            f"{name} is {seconds:.2f} s long; the reference must be between "
            f"{MIN_REFERENCE_SAMPLES_16K // HUBERT_SAMPLE_RATE} and {MAX_REFERENCE_SAMPLES_16K // HUBERT_SAMPLE_RATE} seconds"
        )


def samples_at_16k(num_samples: int, sample_rate: int) -> int:
    """Length of a clip after librosa's resampling to 16 kHz (its ``ceil(n * ratio)`` rule)."""
    return int(math.ceil(num_samples * (float(HUBERT_SAMPLE_RATE) / sample_rate)))


def check_reference_samples(
    samples: np.ndarray, sample_rate: int, name: str = "reference audio", auxiliary: bool = False
) -> None:
    """Raise AudioError unless ``samples`` (mono) are finite, audible and 3 to 10 s long (1 to 10 s
    for an ``auxiliary`` reference)."""
    if samples.size == 0:
        raise AudioError(f"{name} contains no audio samples")
    if not np.isfinite(samples).all():
        raise AudioError(f"{name} contains NaN or infinite sample values")
    if float(np.abs(samples).max()) < SILENCE_PEAK:
        raise AudioError(f"{name} is silent (its peak is below -60 dBFS)")
    length_16k = samples_at_16k(samples.shape[-1], sample_rate)
    shortest = MIN_AUXILIARY_SAMPLES_16K if auxiliary else MIN_REFERENCE_SAMPLES_16K
    if not shortest <= length_16k <= MAX_REFERENCE_SAMPLES_16K:
        seconds = samples.shape[-1] / sample_rate
        raise AudioError(
            f"{name} is {seconds:.2f} s long; {'an auxiliary' if auxiliary else 'the'} reference must be between "
            f"{shortest // HUBERT_SAMPLE_RATE} and {MAX_REFERENCE_SAMPLES_16K // HUBERT_SAMPLE_RATE} seconds"
        )


def load_mono(source: AudioSource, max_seconds: float = MAX_DECODE_SECONDS) -> tuple[np.ndarray, int]:
    """Read any audio file (a path or the file's bytes) up to ``max_seconds``, checking nothing more.

    Returns ``(samples, sample_rate)``: mono float32 samples of shape (n,) at the file's own
    rate, channels averaged. Raises AudioError for a missing, empty or undecodable file, or
    one whose header announces more than ``max_seconds`` (refused before decoding).
    """
    channels, sample_rate = _read_channels(source, max_seconds)
    samples = channels.mean(axis=0, dtype=np.float32) if channels.shape[0] > 1 else channels[0]
    return samples, sample_rate


def load_reference_audio(source: AudioSource, auxiliary: bool = False) -> tuple[np.ndarray, int]:
    """Read a reference clip (WAV, FLAC, OGG, MP3, ...; a path or the file's bytes).

    Returns ``(samples, sample_rate)``: mono float32 samples of shape (n,) at the file's own
    rate, channels averaged. Raises AudioError for anything unusable as a reference (as an
    ``auxiliary`` one: see :func:`check_reference_samples`).
    """
    samples, sample_rate = load_mono(source)
    check_reference_samples(samples, sample_rate, name=_describe(source), auxiliary=auxiliary)
    return samples, sample_rate


def resample(audio: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """torchaudio's default windowed-sinc resampling, (..., n) -> (..., n'), as upstream runs it.

    The kernel is built exactly like ``torchaudio.transforms.Resample`` builds it (in float64,
    then cast), which ``functional.resample`` on float32 input does not (it differs by ~2e-5).
    """
    if orig_rate == new_rate:
        return audio
    resampler = torchaudio.transforms.Resample(orig_rate, new_rate).to(audio.device)
    return resampler(audio)


def hubert_input(samples: np.ndarray, sample_rate: int, model_sample_rate: int = 32000) -> torch.Tensor:
    """The HuBERT input: (1, n16 + pad) float32, the clip at 16 kHz followed by zeros.

    Resampling uses soxr's HQ filter, as ``librosa.load(path, sr=16000)`` does; the pad is
    ``int(model_sample_rate * 0.3)`` zeros (upstream counts it at the model rate).
    """
    wav16k = librosa.resample(
        np.asarray(samples, dtype=np.float32), orig_sr=sample_rate, target_sr=HUBERT_SAMPLE_RATE, res_type="soxr_hq"
    )
    if not MIN_REFERENCE_SAMPLES_16K <= wav16k.shape[-1] <= MAX_REFERENCE_SAMPLES_16K:
        raise AudioError(
            f"reference audio has {wav16k.shape[-1]} samples at 16 kHz; it must be between 3 and 10 seconds"
        )
    pad = np.zeros(int(model_sample_rate * HUBERT_PAD_SECONDS), dtype=np.float32)
    return torch.from_numpy(np.concatenate([wav16k.astype(np.float32, copy=False), pad]))[None]


def spec_audio(samples: np.ndarray, sample_rate: int, model_sample_rate: int = 32000) -> torch.Tensor:
    """The spectrogram's input: (1, n) float32 at ``model_sample_rate``, peak-normalised.

    A peak above 1 (resampling overshoot, float files) is divided away, by at most 2.
    """
    audio = resample(torch.tensor(samples, dtype=torch.float32)[None], sample_rate, model_sample_rate)
    peak = audio.abs().max()
    if peak > 1:
        audio = audio / min(MAX_PEAK_DIVISOR, peak)
    return audio


def sv_input(spec_input: torch.Tensor, model_sample_rate: int = 32000) -> torch.Tensor:
    """The speaker-verification input: ``spec_audio`` resampled to 16 kHz, (1, n16')."""
    return resample(spec_input, model_sample_rate, SV_SAMPLE_RATE)


def prepare_reference_audio(
    samples: np.ndarray, sample_rate: int, model_sample_rate: int = 32000, with_sv: bool = False
) -> ReferenceAudio:
    """All model inputs derived from one mono reference clip (see the module docstring)."""
    for_spec = spec_audio(samples, sample_rate, model_sample_rate)
    return ReferenceAudio(
        hubert_input=hubert_input(samples, sample_rate, model_sample_rate),
        spec_audio=for_spec,
        sample_rate=model_sample_rate,
        sv_input=sv_input(for_spec, model_sample_rate) if with_sv else None,
    )


# -- output audio ---------------------------------------------------------------------

def join_fragments(fragments: Sequence[np.ndarray], sample_rate: int, interval_s: float) -> np.ndarray:
    """Concatenate fragments in order, each peak-limited to 1 and followed by ``interval_s`` of silence.

    Args:
        fragments: float32 arrays of shape (samples,).
    Returns:
        float32 array of shape (total_samples,).
    """
    silence = np.zeros(int(sample_rate * interval_s), dtype=np.float32) if interval_s > 0 else None
    pieces: list[np.ndarray] = []
    for fragment in fragments:
        fragment = np.asarray(fragment, dtype=np.float32)
        peak = float(np.abs(fragment).max()) if fragment.size else 0.0
        if peak > 1:
            fragment = fragment / peak
        pieces.append(fragment)
        if silence is not None:
            pieces.append(silence)
    if not pieces:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(pieces)


def to_int16(audio: np.ndarray) -> np.ndarray:
    """The official float -> int16 conversion (scale by 32768, truncate toward zero)."""
    return (np.asarray(audio, dtype=np.float32) * 32768).astype(np.int16)


def streaming_wav_header(sample_rate: int) -> bytes:
    """The 44-byte header of a 16-bit mono PCM WAV whose length is not known yet.

    Both size fields hold 0xFFFFFFFF, the usual mark of an open-ended stream: players
    (browsers, ffplay, curl piped into one) play the samples as they arrive, up to the end.
    """
    byte_rate = sample_rate * 2
    return (b"RIFF" + (0xFFFFFFFF).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
            + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + sample_rate.to_bytes(4, "little")
            + byte_rate.to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
            + b"data" + (0xFFFFFFFF).to_bytes(4, "little"))


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM WAV file bytes of float samples (clipped to [-1, 1])."""
    buffer = io.BytesIO()
    soundfile.write(buffer, to_int16(np.clip(audio, -1, 1 - 1 / 32768)), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def trimmed_wav(data: bytes, top_db: float = 40.0) -> bytes:
    """An upload as 16-bit WAV without its leading and trailing silence (quieter than ``top_db`` below peak).

    Undecodable or over-long data (by its header) is returned unchanged, so the reference check reports it.
    """
    seconds = header_duration(data)
    if seconds is not None and seconds > MAX_DECODE_SECONDS:
        return data
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, ValueError):
        return data
    mono = samples.mean(axis=1)
    if not np.isfinite(mono).all() or not np.abs(mono).max() > 0:
        return data
    _, (start, end) = librosa.effects.trim(mono, top_db=top_db)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples[start:end], rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
