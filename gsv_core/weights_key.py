"""A short name for a set of weight files, so that cached speaker embeddings are never reused
with other weights.

A speaker's conditioning holds outputs of HuBERT, BERT, the SoVITS reference encoder and
(v2Pro) the speaker-verification model, and the prompt's phones; the key covers every file
whose outputs are cached, including the g2pW model and polyphone dictionaries that read a
Chinese prompt when g2pW is on (``TextFrontend.reading_files``), so switching g2pW on or off
or changing its model names other embeddings.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

_VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]{0,31}")
_FINGERPRINT_EDGE_BYTES = 1 << 20
# What a stored conditioning holds; a new field (2: the verification embedding) makes every key
# new, so speakers stored before it are prepared again rather than served without it.
CONDITIONING_FORMAT = 2


def weights_key(version: str, files: Sequence[str | os.PathLike]) -> str:
    """Name the weights an embedding was computed with: ``"<version>-<16 hex digits>"``.

    The key also covers :data:`CONDITIONING_FORMAT`. Each file contributes its size plus the sha256 of its first and last MiB: enough to tell
    checkpoints apart without reading gigabytes at every start. A directory (a Hugging Face
    model folder) contributes all its files, by relative path. Fingerprints are cached per
    (path, mtime, size), so repeated calls cost a ``stat`` per file.
    """
    if not isinstance(version, str) or not _VERSION_PATTERN.fullmatch(version):
        raise ValueError(f"invalid weights version {str(version)[:40]!r}: use letters, digits and '_'")
    if not files:
        raise ValueError("weights_key needs at least one weights file")
    digest = hashlib.sha256(version.encode() + b"\0conditioning-%d" % CONDITIONING_FORMAT)
    for entry in files:
        path = Path(entry)
        if path.is_dir():
            for member in sorted(p for p in path.rglob("*") if p.is_file()):
                digest.update(member.relative_to(path).as_posix().encode() + b"\0")
                digest.update(_fingerprint_of(member))
        elif path.is_file():
            digest.update(_fingerprint_of(path))
        else:
            raise ValueError(f"weights file not found: {path}")
    return f"{version}-{digest.hexdigest()[:16]}"


def _fingerprint_of(path: Path) -> bytes:
    stat = path.stat()
    return _fingerprint(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=512)
def _fingerprint(path: str, mtime_ns: int, size: int) -> bytes:
    """sha256 of (size, first MiB, last MiB); the stat values are part of the cache key."""
    digest = hashlib.sha256(size.to_bytes(8, "little"))
    with open(path, "rb") as handle:
        digest.update(handle.read(_FINGERPRINT_EDGE_BYTES))
        if size > _FINGERPRINT_EDGE_BYTES:
            handle.seek(max(size - _FINGERPRINT_EDGE_BYTES, _FINGERPRINT_EDGE_BYTES))
            digest.update(handle.read())
    return digest.digest()
