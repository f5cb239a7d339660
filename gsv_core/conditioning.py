"""A speaker's precomputed conditioning: everything synthesis needs from a reference clip.

Computing it runs HuBERT, BERT, the reference encoder and (v2Pro) the speaker-verification
model; saving it lets a speaker library skip all of that later. Arrays are stored as
plain ``.npy`` files next to a small ``conditioning.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

# name -> (dtype, number of dimensions); None marks an optional array.
_ARRAYS: dict[str, tuple[str, int]] = {
    "prompt_semantic": ("int64", 1),  # (T_prompt,) semantic codes of the reference
    "prompt_phones": ("int64", 1),  # (P,) phone ids of the reference transcript
    "prompt_bert": ("float32", 2),  # (1024, P) phone-level BERT features
    "ref_spec": ("float32", 3),  # (1, 1025, frames) linear spectrogram of the reference
    "global_embedding": ("float32", 3),  # (1, gin, 1) decoder conditioning `ge`
    "sv_embedding": ("float32", 2),  # (1, 20480) speaker-verification features (v2Pro)
}
_OPTIONAL = {"sv_embedding", "prompt_semantic", "prompt_phones", "prompt_bert"}


@dataclass(frozen=True)
class SpeakerConditioning:
    """Serializable conditioning of one reference speaker.

    ``prompt_semantic``, ``prompt_phones`` and ``prompt_bert`` are None in no-transcript
    mode, where the GPT stage runs without a prompt (as the official v2 allows).
    """

    version: str
    ref_spec: np.ndarray
    global_embedding: np.ndarray
    prompt_semantic: np.ndarray | None = None
    prompt_phones: np.ndarray | None = None
    prompt_bert: np.ndarray | None = None
    sv_embedding: np.ndarray | None = None
    prompt_text: str = ""
    prompt_language: str = ""
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, (dtype, ndim) in _ARRAYS.items():
            value = getattr(self, name)
            if value is None:
                if name not in _OPTIONAL:
                    raise ValueError(f"conditioning array {name!r} is required")
                continue
            array = np.asarray(value)
            if array.ndim != ndim:
                raise ValueError(f"conditioning array {name!r} must have {ndim} dims, got {array.shape}")
            object.__setattr__(self, name, np.ascontiguousarray(array, dtype=dtype))
        has_prompt = [getattr(self, n) is not None for n in ("prompt_semantic", "prompt_phones", "prompt_bert")]
        if any(has_prompt) and not all(has_prompt):
            raise ValueError("prompt_semantic, prompt_phones and prompt_bert come together or not at all")

    @property
    def has_prompt(self) -> bool:
        return self.prompt_semantic is not None

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
    def load(cls, directory: str | os.PathLike) -> "SpeakerConditioning":
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
