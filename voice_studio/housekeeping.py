"""The library's bounds on a public demo: voices per visitor, per client and in all, free disk, expiry.

Private voices are capped per visitor key, per client (the address hash a key carries, see
:mod:`voice_studio.visitor_keys`: many keys from one client share one cap) and in all (a
reserve of the library stays for the admin's shared voices, which only the total and the
disk limit refuse). They live as long as their visitor key (a cookie the server sets with
the same lifetime) and are deleted by the :class:`Sweeper` once older than the TTL, or
earlier, oldest first, when space is short: the library near its private cap, or the disk
below what private adds need. The sweep runs at start and at most every few minutes when
voices are listed or added.
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
from .visitor_keys import client_of

LOGGER = logging.getLogger("voice_studio.housekeeping")
SWEEP_EVERY_S = 300.0
# When private voices pass TRIM_ABOVE of their cap, the sweep deletes the oldest down to TRIM_TO,
# so that new visitors find room again without waiting for the TTL.
TRIM_ABOVE = 0.9
TRIM_TO = 0.8


def private_speaker_id(name: str) -> str:
    """An id for a visitor's private voice: readable, with a random tail.

    Numbering on collision (``alice-2``) would tell a visitor that someone else's private
    ``alice`` exists; a random tail tells nothing and never collides in practice.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40].rstrip("-") or "voice"
    return f"{slug}-{secrets.token_hex(5)}"


def check_room(library: SpeakerLibrary, limits: Limits, session: str | None, shared: bool) -> None:
    """Refuse an add past the total number of voices or with too little disk; a private add also
    past the caller's key, its client, or the private voices' share of the library."""
    voices = all_speakers(library)
    if len(voices) >= limits.max_voices:
        raise ServiceError(f"the library is full ({limits.max_voices} voices); ask the admin to delete some",
                           status=507)
    if shared:
        check_disk(library.root, limits)
        return
    private = [info for info in voices if not info.shared]
    own = sum(1 for info in private if info.owned_by(session))
    if own >= limits.max_voices_per_visitor:
        raise ServiceError(f"you have {own} voices, the most a visitor may keep; delete one first", status=429)
    client = client_of(session)
    if client is not None and sum(1 for info in private if client_of(info.owner_session) == client) \
            >= limits.max_voices_per_client:
        raise ServiceError(f"visitors at your address keep {limits.max_voices_per_client} private voices, the most "
                           "one address may keep; delete one first", status=429)
    if len(private) >= limits.max_private_voices:
        raise ServiceError("the library has no room for more private voices right now; try again later", status=507)
    check_disk(library.root, limits, private=True)


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


def free_disk_bytes(root: Path) -> int:
    return shutil.disk_usage(root).free


def check_disk(root: Path, limits: Limits, private: bool = False) -> None:
    """Refuse to store below the free-disk limit (twice that limit for a private voice)."""
    free = free_disk_bytes(root)
    if free < (limits.min_free_disk_for_private_bytes if private else limits.min_free_disk_bytes):
        LOGGER.error("refusing to store: %d MB free under %s", free >> 20, root)
        raise ServiceError("the server is short of disk space; nothing was stored. Try again later.", status=507)


def _age_s(created_at: str, now: float) -> float:
    moment = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    return now - moment.astimezone(timezone.utc).timestamp()


class Sweeper:
    """Deletes private voices past the TTL, and the oldest ones when space is short;
    :meth:`maybe_sweep` runs at most every SWEEP_EVERY_S."""

    def __init__(self, library: SpeakerLibrary, limits: Limits) -> None:
        self.library = library
        self.limits = limits
        self._last = float("-inf")
        self._lock = threading.Lock()

    def maybe_sweep(self) -> None:
        with self._lock:
            if time.monotonic() - self._last < SWEEP_EVERY_S:
                return
            self._last = time.monotonic()
        self.sweep()

    def sweep(self, now: float | None = None) -> list[str]:
        """Delete every expired private voice, then trim the oldest while space is short; returns their ids."""
        with self._lock:
            self._last = time.monotonic()
        now = time.time() if now is None else now
        private = [info for info in all_speakers(self.library) if not info.shared]  # oldest first
        ttl_s = self.limits.private_voice_ttl_s
        expired = self._delete([info.id for info in private if _age_s(info.created_at, now) > ttl_s])
        if expired:
            LOGGER.info("deleted %d expired private voices", len(expired))
        left = [info.id for info in private if _age_s(info.created_at, now) <= ttl_s]
        cap = self.limits.max_private_voices
        over = len(left) - int(cap * TRIM_TO) if len(left) > cap * TRIM_ABOVE else 0
        trimmed = self._delete(left[:over])
        left = left[over:]
        while left and free_disk_bytes(self.library.root) < self.limits.min_free_disk_for_private_bytes:
            trimmed += self._delete(left[:1])
            left = left[1:]
        if trimmed:
            LOGGER.warning("space is short: deleted the %d oldest private voices before their time", len(trimmed))
        return expired + trimmed

    def _delete(self, speaker_ids: list[str]) -> list[str]:
        for speaker_id in speaker_ids:
            try:
                self.library.delete(speaker_id)
            except SpeakerError:
                continue  # deleted meanwhile
        return speaker_ids
