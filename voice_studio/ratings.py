"""Team review: 1-5 ratings and notes per synthesized clip, in SQLite, exportable as CSV."""

from __future__ import annotations

import csv
import io
import sqlite3
import threading
import time
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
    session TEXT,
    settings TEXT NOT NULL DEFAULT ''
)
"""
# Columns added after the first release, with their definitions: older files gain them on open.
_ADDED_COLUMNS = {"settings": "TEXT NOT NULL DEFAULT ''"}
COLUMNS = ("id", "created_at", "clip_id", "speaker_id", "text", "rating", "note", "session", "settings")
MAX_NOTE_CHARS = 2000


@dataclass(frozen=True)
class Rating:
    clip_id: str
    speaker_id: str
    text: str
    rating: int
    note: str = ""
    session: str | None = None
    settings: str = ""  # what made the clip besides the text (language, seed ...), as JSON


@dataclass(frozen=True)
class VoiceScore:
    """How the team rated one voice so far."""

    speaker_id: str
    count: int
    mean: float


class RatingStore:
    """A small SQLite table; one connection per call, so it is safe across threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute(_SCHEMA)
            present = {row[1] for row in db.execute("PRAGMA table_info(ratings)")}
            for column, definition in _ADDED_COLUMNS.items():
                if column not in present:  # a file from before the column: existing rows get the default
                    db.execute(f"ALTER TABLE ratings ADD COLUMN {column} {definition}")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def add(self, rating: Rating) -> int:
        """Store one rating; raises ValueError for a rating outside 1-5 or an over-long note."""
        if not isinstance(rating.rating, int) or not 1 <= rating.rating <= 5:
            raise ValueError(f"a rating is a whole number from 1 to 5, got {rating.rating!r}")
        if len(rating.note) > MAX_NOTE_CHARS:
            raise ValueError(f"the note has {len(rating.note)} characters; the limit is {MAX_NOTE_CHARS}")
        if not rating.clip_id or not rating.speaker_id:
            raise ValueError("a rating needs the clip and the speaker it is about")
        with self._lock, self._connect() as db:
            cursor = db.execute(
                "INSERT INTO ratings (created_at, clip_id, speaker_id, text, rating, note, session, settings)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), rating.clip_id, rating.speaker_id, rating.text,
                 rating.rating, rating.note, rating.session, rating.settings),
            )
            return int(cursor.lastrowid)

    def rows(self) -> list[tuple]:
        with self._connect() as db:
            return db.execute(f"SELECT {', '.join(COLUMNS)} FROM ratings ORDER BY id").fetchall()

    def summary(self) -> list[VoiceScore]:
        """Count and mean rating per voice, best first (ties: more ratings first), so a team sees the ranking."""
        with self._connect() as db:
            rows = db.execute("SELECT speaker_id, COUNT(*), AVG(rating) FROM ratings GROUP BY speaker_id "
                              "ORDER BY AVG(rating) DESC, COUNT(*) DESC, speaker_id").fetchall()
        return [VoiceScore(speaker_id, int(count), float(mean)) for speaker_id, count, mean in rows]

    def to_csv(self) -> str:
        """All ratings as CSV text with a header row."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(COLUMNS)
        writer.writerows(self.rows())
        return buffer.getvalue()
