"""Helpers shared by the speaker-library tests: small clips and a model-free ``prepare``."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile

from gsv_core.conditioning import SpeakerConditioning


def clip_bytes(frequency: float = 220.0, seconds: float = 1.0, sample_rate: int = 16000, subtype: str = "PCM_16",
               audio_format: str = "WAV") -> bytes:
    """A short tone as an encoded audio file."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    samples = (0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, sample_rate, subtype=subtype, format=audio_format)
    return buffer.getvalue()


class FakePrepare:
    """Stands in for VoicePipeline.prepare_speaker: random arrays of the released models' shapes
    (a short prompt), seeded by the audio content (same clip -> same conditioning), counting calls.
    Auxiliary clips (``aux_audio``) add their own seeded embeddings to the mean, as the pipeline does."""

    def __init__(self, with_sv: bool = True) -> None:
        self.with_sv = with_sv
        self.calls: list[tuple[Path, str | None, str]] = []
        self.aux_calls: list[list[Path]] = []  # the aux_audio of each call that had some

    def __call__(self, audio_path: Path, transcript: str | None, language: str,
                 aux_audio: Sequence[Path] | None = None) -> SpeakerConditioning:
        self.calls.append((Path(audio_path), transcript, language))
        rng = _seeded(audio_path)
        prompt = transcript is not None
        width = 1024 if self.with_sv else 512
        ref_spec = rng.standard_normal((1, 1025, 6)).astype(np.float32)
        per_reference = [rng.standard_normal((1, width, 1)).astype(np.float32)]
        if aux_audio is not None:
            self.aux_calls.append([Path(path) for path in aux_audio])
            per_reference += [_seeded(path).standard_normal((1, width, 1)).astype(np.float32) for path in aux_audio]
        stacked = np.stack(per_reference)
        return SpeakerConditioning(
            version="v2Pro" if self.with_sv else "v2",
            ref_spec=ref_spec,
            global_embedding=stacked.mean(axis=0),
            reference_embeddings=stacked if len(per_reference) > 1 else None,
            prompt_semantic=rng.integers(0, 1024, 9) if prompt else None,
            prompt_phones=rng.integers(0, 732, 5) if prompt else None,
            prompt_bert=rng.standard_normal((1024, 5)).astype(np.float32) if prompt else None,
            sv_embedding=rng.standard_normal((1, 20480)).astype(np.float32) if self.with_sv else None,
            prompt_text=transcript or "",
            prompt_language=language,
        )


def _seeded(audio_path: Path) -> np.random.Generator:
    """A generator seeded by the clip's samples: the same clip always gives the same arrays."""
    samples, _ = soundfile.read(audio_path, dtype="float32")
    return np.random.default_rng(int.from_bytes(hashlib.sha256(samples.tobytes()).digest()[:8], "little"))


def tree_snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (except the lock file) with its bytes, to prove nothing changed."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != ".lock"
    }

