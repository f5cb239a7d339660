"""Team ratings: the ranking per voice, and files from before the settings column keep their rows."""

import sqlite3

from voice_studio.ratings import Rating, RatingStore, VoiceScore

_OLD_SCHEMA = """CREATE TABLE ratings (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, clip_id TEXT NOT NULL,
speaker_id TEXT NOT NULL, text TEXT NOT NULL, rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
note TEXT NOT NULL DEFAULT '', session TEXT)"""


def test_summary_ranks_voices_by_mean_rating(tmp_path):
    store = RatingStore(tmp_path / "ratings.sqlite")
    for number, (voice, score) in enumerate([("alice", 5), ("bob", 2), ("alice", 4), ("bob", 3), ("carol", 5)]):
        store.add(Rating(f"clip-{number}", voice, "你好", score, settings='{"seed": 0}'))
    assert store.summary() == [VoiceScore("carol", 1, 5.0), VoiceScore("alice", 2, 4.5), VoiceScore("bob", 2, 2.5)]
    assert RatingStore(tmp_path / "empty.sqlite").summary() == []


def test_an_older_file_gains_the_settings_column_and_keeps_its_rows(tmp_path):
    path = tmp_path / "ratings.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(_OLD_SCHEMA)
        db.execute("INSERT INTO ratings (created_at, clip_id, speaker_id, text, rating) VALUES ('t', 'c', 'alice', 'hi', 4)")
    store = RatingStore(path)
    store.add(Rating("c2", "alice", "hi", 2, settings='{"language": "zh", "seed": 0}'))
    rows = store.rows()
    assert [(row[3], row[5], row[8]) for row in rows] == [("alice", 4, ""), ("alice", 2, '{"language": "zh", "seed": 0}')]
    assert store.summary() == [VoiceScore("alice", 2, 3.0)]
    assert "settings" in store.to_csv().splitlines()[0]
