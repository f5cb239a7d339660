"""How much a synthesized voice sounds like its reference: speaker-verification cosine similarity.

ERes2NetV2 (``gsv_core.features.sv``, shipped with the v2Pro family) maps 16 kHz speech to a
192-d verification embedding trained so that one speaker's clips lie close together; the
cosine of two embeddings is the usual speaker-similarity score (1: same direction). Both
clips go to 16 kHz through ``gsv_core.audio.resample``, the resampler the pipeline uses for
the SV input, so the reference is seen exactly as the model sees it when preparing a speaker.
v2 ships no SV model: callers pass ``encoder=None`` and get None ("not available").
A service keeps :func:`reference_embedding` per speaker and scores each output with
:func:`output_similarity`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..audio import SV_SAMPLE_RATE, resample, spec_audio, sv_input
from .sv import SpeakerEncoder

# Below this the filterbank has too few frames for a meaningful embedding.
MIN_SECONDS = 0.5


def to_sv_input(audio: np.ndarray | torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Mono audio (n,) at ``sample_rate`` -> float32 (n16,) at 16 kHz on the CPU."""
    tensor = torch.as_tensor(np.asarray(audio, dtype=np.float32) if not torch.is_tensor(audio) else audio)
    tensor = tensor.detach().float().cpu().reshape(-1)
    if tensor.numel() < MIN_SECONDS * sample_rate:
        raise ValueError(f"audio of {tensor.numel() / sample_rate:.2f} s is too short to compare voices "
                         f"(at least {MIN_SECONDS} s)")
    return resample(tensor[None], sample_rate, SV_SAMPLE_RATE)[0]


def speaker_embedding(encoder: SpeakerEncoder, audio: np.ndarray | torch.Tensor, sample_rate: int) -> np.ndarray:
    """The verification embedding (embedding_size,) float32 of mono ``audio`` (n,) at ``sample_rate``.

    A speaker's reference embedding can be computed once and kept beside the speaker.
    """
    wav16k = to_sv_input(audio, sample_rate)
    return encoder.speaker_embedding(wav16k)[0].float().cpu().numpy()


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two embeddings (D,), in float64, clipped to [-1, 1]; 0.0 when one is all zeros."""
    a64, b64 = np.asarray(a, dtype=np.float64).reshape(-1), np.asarray(b, dtype=np.float64).reshape(-1)
    if a64.shape != b64.shape:
        raise ValueError(f"embeddings of different widths: {a64.shape} vs {b64.shape}")
    norms = np.linalg.norm(a64) * np.linalg.norm(b64)
    if norms == 0:
        return 0.0
    return float(np.clip(a64 @ b64 / norms, -1.0, 1.0))


def voice_similarity(
    encoder: SpeakerEncoder | None,
    reference_wav16k: np.ndarray | torch.Tensor,
    output_audio: np.ndarray | torch.Tensor,
    output_rate: int,
) -> float | None:
    """Cosine similarity in [-1, 1] of the reference (n16,) at 16 kHz and the output (n,) at
    ``output_rate``; None without an encoder (v2: no SV model). Raises ValueError for clips
    shorter than ``MIN_SECONDS``."""
    if encoder is None:
        return None
    reference = speaker_embedding(encoder, reference_wav16k, SV_SAMPLE_RATE)
    output = speaker_embedding(encoder, output_audio, output_rate)
    return cosine_similarity(reference, output)


def reference_embedding(encoder: SpeakerEncoder, samples: np.ndarray, sample_rate: int,
                        model_sample_rate: int) -> np.ndarray:
    """The verification embedding (embedding_size,) of a reference clip (n,) at ``sample_rate``,
    seen as the pipeline sees it when preparing a speaker: peak-normalised at the model's rate
    (``spec_audio``), then resampled to 16 kHz (``sv_input``).

    Not the stored conditioning's ``sv_embedding``: that is the 20480-wide time-averaged map the
    decoder takes (``SpeakerEncoder.sv_embedding``), while similarity compares the 192-wide
    verification embedding (mean and std pooling, then ``seg_1``), so it is computed here once.
    """
    wav16k = sv_input(spec_audio(samples, sample_rate, model_sample_rate), model_sample_rate)[0]
    return speaker_embedding(encoder, wav16k, SV_SAMPLE_RATE)


def output_similarity(encoder: SpeakerEncoder, reference: np.ndarray, audio: np.ndarray,
                      sample_rate: int) -> float | None:
    """Cosine similarity of a reference embedding (D,) and the output audio (n,) at ``sample_rate``;
    None for output shorter than ``MIN_SECONDS`` (a score of too few frames means nothing)."""
    if len(audio) < MIN_SECONDS * sample_rate:
        return None
    return cosine_similarity(reference, speaker_embedding(encoder, audio, sample_rate))
