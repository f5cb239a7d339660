"""The library's bounds on a public demo: voices per visitor and in all, free disk, expiry.

Visitors' private voices live as long as their visitor key (a cookie the server sets with
the same lifetime) and are deleted by :func:`sweep_expired` once older than the TTL: at
start, and at most every few minutes when voices are listed or added.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import threading
import time
import unicodedata
from datetime import datetime, timezone
from pathlib import Path

from gsv_core.speakers import SpeakerError, SpeakerInfo, SpeakerLibrary

from .errors import ServiceError
from .limits import Limits

LOGGER = logging.getLogger("voice_studio.housekeeping")
SWEEP_EVERY_S = 300.0


def private_speaker_id(name: str) -> str:
    """An id for a visitor's private voice: readable, with a random tail.

    Numbering on collision (``alice-2``) would tell a visitor that someone else's private
    ``alice`` exists; a random tail tells nothing and never collides in practice.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40].rstrip("-") or "voice"
    return f"{slug}-{secrets.token_hex(5)}"


def check_room(library: SpeakerLibrary, limits: Limits, session: str | None, shared: bool) -> None:
    """Refuse an add past the total or the per-visitor number of voices, or with too little disk."""
    if len(all_speakers(library)) >= limits.max_voices:
        raise ServiceError(f"the library is full ({limits.max_voices} voices); ask the admin to delete some",
                           status=507)
    if not shared:
        own = sum(1 for info in library.list(session) if info.owned_by(session))
        if own >= limits.max_voices_per_visitor:
            raise ServiceError(f"you have {own} voices, the most a visitor may keep; delete one first", status=429)
    check_disk(library.root, limits)


def all_speakers(library: SpeakerLibrary) -> list[SpeakerInfo]:
    """Every voice, private ones included (for the admin and the sweep), oldest first."""
    found = []
    for folder in sorted(library.root.iterdir()):
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            found.append(library.get(folder.name))
        except SpeakerError:
            continue  # damaged or deleted meanwhile: the library reports it
    return sorted(found, key=lambda info: (info.created_at, info.id))


def check_disk(root: Path, limits: Limits) -> None:
    free = shutil.disk_usage(root).free
    if free < limits.min_free_disk_bytes:
        LOGGER.error("refusing to store: %d MB free under %s", free >> 20, root)
        raise ServiceError("the server is short of disk space; nothing was stored. Try again later.", status=507)


def _age_s(created_at: str, now: float) -> float:
    moment = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    return now - moment.astimezone(timezone.utc).timestamp()


class Sweeper:
    """Deletes private voices older than the TTL; :meth:`maybe_sweep` runs at most every SWEEP_EVERY_S."""

    def __init__(self, library: SpeakerLibrary, ttl_s: float) -> None:
        self.library = library
        self.ttl_s = ttl_s
        self._last = float("-inf")
        self._lock = threading.Lock()

    def maybe_sweep(self) -> None:
        with self._lock:
            if time.monotonic() - self._last < SWEEP_EVERY_S:
                return
            self._last = time.monotonic()
        self.sweep()

    def sweep(self, now: float | None = None) -> list[str]:
        """Delete every expired private voice; returns their ids."""
        with self._lock:
            self._last = time.monotonic()
        now = time.time() if now is None else now
        expired = [info.id for info in all_speakers(self.library)
                   if not info.shared and _age_s(info.created_at, now) > self.ttl_s]
        for speaker_id in expired:
            try:
                self.library.delete(speaker_id)
            except SpeakerError:
                continue  # deleted meanwhile
        if expired:
            LOGGER.info("deleted %d expired private voices", len(expired))
        return expired
