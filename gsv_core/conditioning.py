"""A speaker's precomputed conditioning: everything synthesis needs from its reference clips.

Computing it runs HuBERT, BERT, the reference encoder and (v2Pro) the speaker-verification
model; saving it lets a speaker library skip all of that later. Arrays are stored as
plain ``.npy`` files next to a small ``conditioning.json``.

A voice may have auxiliary reference clips besides the main one (upstream's
``aux_ref_audio_paths``): the prompt comes from the main clip only, while the decoder's
``global_embedding`` is the mean of every clip's own embedding. Those per-reference
embeddings are stored too (``reference_embeddings``), so the mean can be checked and redone.

Stored and imported conditionings are untrusted: one semantic code out of range breaks
every synthesis batch it joins, and a 40,000-token prompt stalls the server. So values are
checked at construction (ranges, finiteness, shapes that hold for any model size) and
:meth:`SpeakerConditioning.validate` adds the size limits of the released models.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from .versions import VERSIONS

# name -> (dtype, number of dimensions); None marks an optional array.
_ARRAYS: dict[str, tuple[str, int]] = {
    "prompt_semantic": ("int64", 1),  # (T_prompt,) semantic codes of the reference, in [0, 1024)
    "prompt_phones": ("int64", 1),  # (P,) phone ids of the reference transcript, in [0, 732)
    "prompt_bert": ("float32", 2),  # (1024, P) phone-level BERT features
    "ref_spec": ("float32", 3),  # (1, 1025, frames) linear spectrogram of the reference
    "global_embedding": ("float32", 3),  # (1, gin, 1) decoder conditioning `ge` (the references' mean)
    "reference_embeddings": ("float32", 4),  # (R, 1, gin, 1) `ge` of each reference, main first (R > 1 only)
    "sv_embedding": ("float32", 2),  # (1, 20480) speaker-verification features (v2Pro)
    # (D,) the SV model's verification embedding of the main reference (192 for ERes2NetV2): what
    # similarity scoring compares each output with, so it never reads the reference audio again
    "verification_embedding": ("float32", 1),
}
ARRAY_NAMES = tuple(_ARRAYS)  # each stored as <name>.npy
_OPTIONAL = frozenset({"sv_embedding", "prompt_semantic", "prompt_phones", "prompt_bert", "reference_embeddings",
                       "verification_embedding"})
_PROMPT = ("prompt_semantic", "prompt_phones", "prompt_bert")

# Widths of the released models, as in models/sovits/config.py (repeated here so that a
# speaker library does not import torch; tests/test_conditioning.py holds them equal).
CODEBOOK_SIZE = 1024  # semantic codes
NUM_SYMBOLS_V2 = 732  # phone ids
BERT_DIM = 1024  # chinese-roberta-wwm-ext-large hidden size
SV_DIM = 20480  # speaker-verification features
MAX_VERIFICATION_DIM = 4096  # a verification embedding (ERes2NetV2: 192); far above any SV model's
GIN_CHANNELS = 512  # ``ge`` width of v2 (the MRTE width)
GIN_CHANNELS_SV = 1024  # ``ge`` width of the versions with SV features (v2Pro, v2ProPlus)
SPEC_BINS = frozenset(v.audio.spec_channels for v in VERSIONS.values())
# References last at most 10 s. Semantic codes run at 25 Hz (250 tokens, plus the 0.3 s of
# padding HuBERT gets); spectrogram frames at sampling_rate / hop_length (50 Hz for every
# version today); speech has about 15 phones a second (150 for 10 s). The margins leave
# room for rounding and fast speakers, never for a different order of size.
MAX_PROMPT_TOKENS = 300
MAX_PROMPT_PHONES = 512
MAX_REF_FRAMES = math.ceil(15 * max(v.audio.sampling_rate / v.audio.hop_length for v in VERSIONS.values()))
# The main reference and up to seven auxiliary clips: each costs a style-encoder (and SV) run
# when the voice is prepared, and more clips barely move their mean.
MAX_REFERENCES = 8
# How far the stored mean may be from the mean of the stored per-reference embeddings
# (float32 sums in another order differ in the last bits).
FUSION_ATOL = 1e-5


class ConditioningError(ValueError):
    """A conditioning array has the wrong shape, type or values; the message names the array."""


@dataclass(frozen=True)
class ConditioningLimits:
    """Size limits for a conditioning from an untrusted source (defaults: a 10 s reference)."""

    max_prompt_tokens: int = MAX_PROMPT_TOKENS
    max_prompt_phones: int = MAX_PROMPT_PHONES
    max_ref_frames: int = MAX_REF_FRAMES
    max_references: int = MAX_REFERENCES


@dataclass(frozen=True)
class SpeakerConditioning:
    """Serializable conditioning of one reference speaker.

    ``prompt_semantic``, ``prompt_phones`` and ``prompt_bert`` are None in no-transcript
    mode, where the GPT stage runs without a prompt (as the official v2 allows).
    ``reference_embeddings`` is None for a single reference (then ``global_embedding`` is
    that reference's own); with auxiliary clips ``global_embedding`` is its mean over R.
    ``ref_spec``, ``sv_embedding`` and ``verification_embedding`` belong to the main reference;
    ``verification_embedding`` is None where no SV model was loaded (v2 without one).
    """

    version: str
    ref_spec: np.ndarray
    global_embedding: np.ndarray
    prompt_semantic: np.ndarray | None = None
    prompt_phones: np.ndarray | None = None
    prompt_bert: np.ndarray | None = None
    sv_embedding: np.ndarray | None = None
    reference_embeddings: np.ndarray | None = None
    verification_embedding: np.ndarray | None = None
    prompt_text: str = ""
    prompt_language: str = ""
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not all(isinstance(getattr(self, n), str) for n in ("version", "prompt_text", "prompt_language")):
            raise ConditioningError("version, prompt_text and prompt_language must be strings")
        if not isinstance(self.metadata, dict):
            raise ConditioningError("metadata must be a dict")
        if self.version not in VERSIONS:
            raise ConditioningError(f"unknown model version {self.version!r}; known: {', '.join(VERSIONS)}")
        for name, (dtype, ndim) in _ARRAYS.items():
            value = getattr(self, name)
            if value is None:
                if name not in _OPTIONAL:
                    raise ConditioningError(f"conditioning array {name!r} is required")
                continue
            array = np.asarray(value)
            if array.ndim != ndim:
                raise ConditioningError(f"conditioning array {name!r} must have {ndim} dims, got {array.shape}")
            _check_dtype(name, array, dtype)
            object.__setattr__(self, name, np.ascontiguousarray(array, dtype=dtype))
        if len({getattr(self, n) is None for n in _PROMPT}) > 1:
            raise ConditioningError("prompt_semantic, prompt_phones and prompt_bert come together or not at all")
        self._check_values()

    def _check_values(self) -> None:
        """What holds for every model size: code ranges, finite features, consistent shapes."""
        if self.has_prompt:
            _check_range("prompt_semantic", self.prompt_semantic, CODEBOOK_SIZE)
            _check_range("prompt_phones", self.prompt_phones, NUM_SYMBOLS_V2)
            _check_shape("prompt_bert", self.prompt_bert, (BERT_DIM, len(self.prompt_phones)))
        batch, bins, frames = self.ref_spec.shape
        if batch != 1 or bins not in SPEC_BINS or frames == 0:
            raise ConditioningError(f"ref_spec must be (1, {min(SPEC_BINS)}, frames), got {self.ref_spec.shape}")
        if self.global_embedding.shape[0] != 1 or self.global_embedding.shape[2] != 1:
            raise ConditioningError(f"global_embedding must be (1, channels, 1), got {self.global_embedding.shape}")
        if self.sv_embedding is not None:
            _check_shape("sv_embedding", self.sv_embedding, (1, SV_DIM))
        if self.verification_embedding is not None and not 0 < len(self.verification_embedding) <= MAX_VERIFICATION_DIM:
            raise ConditioningError(f"verification_embedding must have 1-{MAX_VERIFICATION_DIM} values, "
                                    f"got {len(self.verification_embedding)}")
        for name in ("prompt_bert", "ref_spec", "global_embedding", "sv_embedding", "reference_embeddings",
                     "verification_embedding"):
            value = getattr(self, name)
            if value is not None and not np.isfinite(value).all():
                raise ConditioningError(f"{name} contains NaN or infinite values")
        if self.reference_embeddings is not None:
            self._check_fusion()

    def _check_fusion(self) -> None:
        """Per-reference embeddings (R, *ge.shape), R >= 2, whose mean is ``global_embedding``."""
        per_reference = self.reference_embeddings
        if per_reference.shape[0] < 2 or per_reference.shape[1:] != self.global_embedding.shape:
            raise ConditioningError(f"reference_embeddings must be (references >= 2, "
                                    f"{', '.join(map(str, self.global_embedding.shape))}), got {per_reference.shape}")
        if not np.allclose(per_reference.mean(axis=0), self.global_embedding, rtol=0, atol=FUSION_ATOL):
            raise ConditioningError("global_embedding is not the mean of reference_embeddings")

    @property
    def has_prompt(self) -> bool:
        return self.prompt_semantic is not None

    @property
    def reference_count(self) -> int:
        """How many clips the voice was made from: the main one plus the auxiliary ones."""
        return 1 if self.reference_embeddings is None else len(self.reference_embeddings)

    @property
    def per_reference_embeddings(self) -> np.ndarray:
        """(R, 1, gin, 1) each reference's ``ge``, main first; (1, 1, gin, 1) for a single reference."""
        return self.global_embedding[None] if self.reference_embeddings is None else self.reference_embeddings

    def validate(self, limits: ConditioningLimits = ConditioningLimits()) -> SpeakerConditioning:
        """Check what only the released models fix (``ge`` width, SV features per version)
        and the size ``limits``; returns self. Tiny test models pass construction but not this."""
        uses_sv = VERSIONS[self.version].uses_sv
        channels = GIN_CHANNELS_SV if uses_sv else GIN_CHANNELS
        if self.global_embedding.shape != (1, channels, 1):
            raise ConditioningError(
                f"global_embedding must be (1, {channels}, 1) for {self.version}, got {self.global_embedding.shape}")
        if (self.sv_embedding is not None) != uses_sv:
            raise ConditioningError(f"sv_embedding must be {'present' if uses_sv else 'absent'} for {self.version}")
        if self.reference_count > limits.max_references:
            raise ConditioningError(f"the voice has {self.reference_count} references, at most {limits.max_references}")
        if self.ref_spec.shape[2] > limits.max_ref_frames:
            raise ConditioningError(f"ref_spec has {self.ref_spec.shape[2]} frames, at most {limits.max_ref_frames}")
        if self.has_prompt and len(self.prompt_semantic) > limits.max_prompt_tokens:
            raise ConditioningError(
                f"prompt_semantic has {len(self.prompt_semantic)} tokens, at most {limits.max_prompt_tokens}")
        if self.has_prompt and len(self.prompt_phones) > limits.max_prompt_phones:
            raise ConditioningError(
                f"prompt_phones has {len(self.prompt_phones)} phones, at most {limits.max_prompt_phones}")
        return self

    def save(self, directory: str | os.PathLike) -> None:
        """Write every array as ``<name>.npy`` and the rest as ``conditioning.json``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name in _ARRAYS:
            value = getattr(self, name)
            path = directory / f"{name}.npy"
            if value is None:
                path.unlink(missing_ok=True)
            else:
                np.save(path, value, allow_pickle=False)
        info = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _ARRAYS}
        (directory / "conditioning.json").write_text(json.dumps(info, ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, directory: str | os.PathLike) -> SpeakerConditioning:
        """Read what :meth:`save` wrote; raises ``ValueError`` naming a missing or bad file."""
        directory = Path(directory)
        info_path = directory / "conditioning.json"
        try:
            info = json.loads(info_path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot read speaker conditioning {info_path}: {error}") from error
        arrays = {}
        for name in _ARRAYS:
            path = directory / f"{name}.npy"
            if path.exists():
                try:
                    arrays[name] = np.load(path, allow_pickle=False)
                except (OSError, ValueError) as error:
                    raise ValueError(f"cannot read speaker conditioning {path}: {error}") from error
        return cls(**info, **arrays)


def _check_dtype(name: str, array: np.ndarray, dtype: str) -> None:
    """Integers must be integers (a float code would be truncated silently); features may be
    any real float or integer type, converted to float32."""
    kinds = "iu" if dtype == "int64" else "iuf"
    if array.dtype.kind not in kinds:
        raise ConditioningError(f"{name} must hold {'integers' if kinds == 'iu' else 'real numbers'}, got {array.dtype}")


def _check_range(name: str, array: np.ndarray, size: int) -> None:
    if array.size == 0:
        raise ConditioningError(f"{name} is empty")
    low, high = int(array.min()), int(array.max())
    if low < 0 or high >= size:
        raise ConditioningError(f"{name} holds values in [{low}, {high}], allowed [0, {size})")


def _check_shape(name: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    if array.shape != shape:
        raise ConditioningError(f"{name} must have shape {shape}, got {array.shape}")
