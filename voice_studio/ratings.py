"""Team review: 1-5 ratings and notes per synthesized clip, in SQLite, exportable as CSV.

What a public server must not give away: a rater's visitor key is all anyone needs to act
as that visitor, so the table never holds it. It holds a keyed hash (the ``rater``
column: HMAC-SHA256 under a server secret kept beside the database, truncated), which
still tells one rater's ratings from another's; files from before it are hashed in place
when opened. Each clip is rated once: a Compare mints one clip id per voice, signed for the
rater, the voice and the text (:meth:`RatingStore.mint_clip_id`), and a clip id already in
the table is refused. CSV cells that a spreadsheet would run as a formula are quoted.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import secrets
import sqlite3
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    clip_id TEXT NOT NULL,
    speaker_id TEXT NOT NULL,
    text TEXT NOT NULL,
    rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    note TEXT NOT NULL DEFAULT '',
    rater TEXT,
    settings TEXT NOT NULL DEFAULT ''
)
"""
# Columns added after the first release, with their definitions: older files gain them on open.
_ADDED_COLUMNS = {"settings": "TEXT NOT NULL DEFAULT ''"}
COLUMNS = ("id", "created_at", "clip_id", "speaker_id", "text", "rating", "note", "rater", "settings")
MAX_NOTE_CHARS = 2000
SECRET_FILE = "ratings-secret"
SECRET_BYTES = 32
RATER_HEX = 16  # 64 bits of the keyed hash: tells raters apart, gives nothing to guess a key from
CLIP_NONCE_BYTES = 12
CLIP_MAC_HEX = 24
# What a spreadsheet reads as the start of a formula (OWASP's list, and the full-width forms some read alike)
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


class ClipAlreadyRated(ValueError):
    """A clip of this batch has a rating already: one Compare, one rating per clip."""


@dataclass(frozen=True)
class Rating:
    clip_id: str
    speaker_id: str
    text: str
    rating: int
    note: str = ""
    session: str | None = None  # the rater's visitor key: stored only as its keyed hash
    settings: str = ""  # what made the clip besides the text (language, seed ...), as JSON


@dataclass(frozen=True)
class VoiceScore:
    """How the team rated one voice so far."""

    speaker_id: str
    count: int
    mean: float


class RatingStore:
    """A small SQLite table; one connection per call, so it is safe across threads and processes.

    ``secret_path``: the server secret for the keyed hashes (created on first use, 0600);
    by default ``ratings-secret`` beside the database.
    """

    def __init__(self, path: str | Path, secret_path: str | Path | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._secret = load_or_create_secret(Path(secret_path) if secret_path else self.path.with_name(SECRET_FILE))
        self._lock = threading.Lock()
        with self._lock, self._connect() as db:  # leaving it commits (or, on an error, rolls back)
            db.execute("BEGIN IMMEDIATE")  # one opener at a time: a file is migrated once
            self._migrate(db)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)  # transactions are explicit
        db.create_function("rater_hash", 1, self.rater_of, deterministic=True)
        return db

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Bring an older file up to date: missing columns added, raw visitor keys replaced by their hash."""
        db.execute(_SCHEMA)
        present = {row[1] for row in db.execute("PRAGMA table_info(ratings)")}
        for column, definition in _ADDED_COLUMNS.items():
            if column not in present:  # a file from before the column: existing rows get the default
                db.execute(f"ALTER TABLE ratings ADD COLUMN {column} {definition}")
        if "session" in present:  # a file from before the hashes: the keys do not stay, not even in free pages
            db.execute("PRAGMA secure_delete = ON")
            db.execute("ALTER TABLE ratings RENAME COLUMN session TO rater")
            db.execute("UPDATE ratings SET rater = rater_hash(rater)")

    def rater_of(self, visitor_key: str | None) -> str | None:
        """The keyed hash that stands for a visitor key in the table and the CSV (None without a key)."""
        if not visitor_key:
            return None
        return self._mac("rater", visitor_key)[:RATER_HEX]

    def mint_clip_id(self, speaker_id: str, text: str, visitor_key: str | None) -> str:
        """A new clip id for one voice's clip of a Compare, signed for that voice, text and rater."""
        nonce = secrets.token_hex(CLIP_NONCE_BYTES)
        return f"{nonce}.{self._clip_mac(nonce, speaker_id, text, visitor_key)}"

    def is_minted(self, clip_id: str, speaker_id: str, text: str, visitor_key: str | None) -> bool:
        """Whether ``clip_id`` is one :meth:`mint_clip_id` made for this voice, text and rater."""
        nonce, _, mac = str(clip_id).partition(".")
        expected = self._clip_mac(nonce, speaker_id, text, visitor_key)
        return bool(nonce) and hmac.compare_digest(mac.encode("utf-8", "surrogatepass"), expected.encode("ascii"))

    def _clip_mac(self, nonce: str, speaker_id: str, text: str, visitor_key: str | None) -> str:
        return self._mac("clip", nonce, speaker_id, text, visitor_key or "")[:CLIP_MAC_HEX]

    def _mac(self, purpose: str, *parts: str) -> str:
        message = json.dumps([purpose, *parts]).encode("ascii")  # unambiguous, whatever the parts hold
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def add(self, rating: Rating) -> int:
        """Store one rating; see :meth:`add_all`."""
        return self.add_all([rating])[0]

    def add_all(self, ratings: Sequence[Rating]) -> list[int]:
        """Store a batch of ratings together, or none of them; returns their row ids.

        Raises ValueError for a rating outside 1-5, an over-long note or a missing clip or
        speaker, and :class:`ClipAlreadyRated` when a clip is in the table already (or twice
        in the batch).
        """
        for rating in ratings:
            _check(rating)
        if not ratings:
            return []
        clip_ids = [rating.clip_id for rating in ratings]
        if len(set(clip_ids)) != len(clip_ids):
            raise ClipAlreadyRated("each clip takes one rating")
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._lock, self._connect() as db:  # leaving it commits (or, on an error, rolls back)
            db.execute("BEGIN IMMEDIATE")  # the check and the insert as one, across processes too
            marks = ", ".join("?" * len(clip_ids))
            if db.execute(f"SELECT 1 FROM ratings WHERE clip_id IN ({marks}) LIMIT 1", clip_ids).fetchone():
                raise ClipAlreadyRated("these clips are rated already")
            return [int(db.execute(
                "INSERT INTO ratings (created_at, clip_id, speaker_id, text, rating, note, rater, settings)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (now, r.clip_id, r.speaker_id, r.text, r.rating, r.note, self.rater_of(r.session), r.settings),
            ).lastrowid) for r in ratings]

    def rows(self) -> list[tuple]:
        with self._connect() as db:
            return db.execute(f"SELECT {', '.join(COLUMNS)} FROM ratings ORDER BY id").fetchall()

    def summary(self) -> list[VoiceScore]:
        """Count and mean rating per voice, best first (ties: more ratings first), so a team sees the ranking.

        Every rated voice, whoever may see it: what a viewer is shown is the caller's to filter
        (:meth:`voice_studio.service.VoiceService.voice_ranking`).
        """
        with self._connect() as db:
            rows = db.execute("SELECT speaker_id, COUNT(*), AVG(rating) FROM ratings GROUP BY speaker_id "
                              "ORDER BY AVG(rating) DESC, COUNT(*) DESC, speaker_id").fetchall()
        return [VoiceScore(speaker_id, int(count), float(mean)) for speaker_id, count, mean in rows]

    def to_csv(self) -> str:
        """All ratings as CSV text with a header row; formula-leading cells quoted with ``'`` (OWASP)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(COLUMNS)
        writer.writerows([spreadsheet_safe(cell) for cell in row] for row in self.rows())
        return buffer.getvalue()


def spreadsheet_safe(cell: object) -> object:
    """``cell`` as a spreadsheet shows it as text: a string that could start a formula gets a leading ``'``."""
    if isinstance(cell, str) and cell.startswith(FORMULA_LEADS):
        return "'" + cell
    return cell


def load_or_create_secret(path: Path) -> bytes:
    """The server secret at ``path``, made on first use: written whole to a private (0600) temporary
    file, then linked into place, so a concurrent opener reads either nothing or the whole secret
    and every process ends up with the one that won."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")  # 0600 by mkstemp
        try:
            with os.fdopen(handle, "w", encoding="ascii") as file:
                file.write(secrets.token_hex(SECRET_BYTES))
                file.flush()
                os.fsync(file.fileno())
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            os.unlink(temporary)
    try:
        secret = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (UnicodeDecodeError, ValueError):
        secret = b""
    if len(secret) < SECRET_BYTES:
        raise ValueError(f"the ratings secret {path.name} is damaged; delete it to make a new one "
                         "(earlier raters then get new hashes)")
    return secret


def _check(rating: Rating) -> None:
    if not isinstance(rating.rating, int) or not 1 <= rating.rating <= 5:
        raise ValueError(f"a rating is a whole number from 1 to 5, got {rating.rating!r}")
    if len(rating.note) > MAX_NOTE_CHARS:
        raise ValueError(f"the note has {len(rating.note)} characters; the limit is {MAX_NOTE_CHARS}")
    if not rating.clip_id or not rating.speaker_id:
        raise ValueError("a rating needs the clip and the speaker it is about")
