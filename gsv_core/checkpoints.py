"""Reading the official GPT-SoVITS checkpoint files, unchanged.

The quirks of the official formats are handled here, once:

* s1 ``.ckpt``: a plain ``torch.save`` zip with ``weight`` (keys prefixed ``model.``,
  float16), ``config`` (a plain dict) and ``info``.
* s2 ``.pth``: ``weight`` (float16, no ``enc_q.*``), ``config`` (a pickled instance of the
  upstream class ``utils.HParams``) and ``info``. v2Pro and v2ProPlus files have their first
  two bytes, the zip magic ``PK``, overwritten with ``05`` / ``06``.

Both load with ``weights_only=True``: the upstream ``utils.HParams`` is allow-listed under
that name and rebuilt as :class:`HParams`, a plain attribute bag, so no foreign code runs.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .versions import VERSIONS, VersionInfo, version_from_header

ZIP_MAGIC = b"PK"


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupt or of the wrong kind."""


class HParams:
    """Stand-in for the upstream ``utils.HParams`` pickled inside s2 files."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def to_dict(self) -> dict[str, Any]:
        """A plain nested dict of the stored hyper-parameters."""
        return {k: v.to_dict() if isinstance(v, HParams) else v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class RawCheckpoint:
    """The parts of an official checkpoint, with every tensor converted to float32."""

    path: Path
    weights: dict[str, torch.Tensor]
    config: dict[str, Any]
    info: Any
    version: VersionInfo | None = None


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except IsADirectoryError:
        raise CheckpointError(f"expected a checkpoint file but {path} is a directory") from None


def _torch_load(path: Path, data: bytes) -> dict:
    if data[:2] != ZIP_MAGIC or not zipfile.is_zipfile(io.BytesIO(data)):
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint (not a zip archive); it may be truncated or corrupt"
        )
    try:
        with torch.serialization.safe_globals([(HParams, "utils.HParams")]):
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for damaged archives
        raise CheckpointError(f"cannot read checkpoint {path}: {type(error).__name__}: {error}") from error
    if not isinstance(obj, dict) or "weight" not in obj:
        raise CheckpointError(f"{path} is not a GPT-SoVITS checkpoint (no 'weight' entry)")
    return obj


def _float32(weights: dict) -> dict[str, torch.Tensor]:
    return {k: v.float() if v.is_floating_point() else v for k, v in weights.items()}


def read_t2s_checkpoint(path: str | os.PathLike) -> RawCheckpoint:
    """Read an official s1 (GPT, text-to-semantic) ``.ckpt``; weights keep their ``model.`` prefix."""
    path = Path(path)
    obj = _torch_load(path, _read_bytes(path))
    config = obj.get("config")
    if not isinstance(config, dict) or "model" not in config:
        raise CheckpointError(f"{path} is not an s1 (GPT) checkpoint: it has no model config")
    if not any(k.startswith("model.") for k in obj["weight"]):
        raise CheckpointError(f"{path} is not an s1 (GPT) checkpoint: no 'model.*' weights")
    return RawCheckpoint(path=path, weights=_float32(obj["weight"]), config=config, info=obj.get("info"))


def read_sovits_checkpoint(path: str | os.PathLike) -> RawCheckpoint:
    """Read an official s2 (SoVITS) ``.pth``; the version comes from the header bytes.

    A plain zip is taken as v2 (v1 files would be told apart by their text embedding size,
    which the model loader checks).
    """
    path = Path(path)
    data = _read_bytes(path)
    header = data[:2]
    version = version_from_header(header)
    if version is None and header != ZIP_MAGIC:
        raise CheckpointError(
            f"{path} has an unknown header {header!r}: not a v2, v2Pro or v2ProPlus SoVITS file"
        )
    if version is not None:
        data = ZIP_MAGIC + data[2:]
    obj = _torch_load(path, data)
    config = obj.get("config")
    if isinstance(config, HParams):
        config = config.to_dict()
    if not isinstance(config, dict) or "model" not in config:
        raise CheckpointError(f"{path} is not an s2 (SoVITS) checkpoint: it has no model config")
    return RawCheckpoint(
        path=path,
        weights=_float32(obj["weight"]),
        config=config,
        info=obj.get("info"),
        version=version or VERSIONS["v2"],
    )
