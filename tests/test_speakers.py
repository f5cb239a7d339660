"""Speaker library: ids, validation, atomic writes, damaged entries, cache, weights keys, zips."""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

from gsv_core.conditioning import SpeakerConditioning
from gsv_core.speakers import SpeakerError, SpeakerLibrary, SpeakerNotFound, store, validate_speaker_id
from gsv_core.speakers.records import clean_name, id_from_name
from speaker_fakes import FakePrepare, clip_bytes, tree_snapshot

PROJECT_ROOT = Path(__file__).resolve().parent.parent
KEY = "v2Pro-0123456789abcdef"


def add(library: SpeakerLibrary, prepare: FakePrepare, name: str = "Alice", frequency: float = 220.0, **kwargs):
    return library.add(clip_bytes(frequency), "hello there", "en", name, prepare=prepare, weights_key=KEY, **kwargs)


# -- ids and fields -------------------------------------------------------------------------

@pytest.mark.parametrize("good", ["a", "alice", "voice-2", "x_y", "0", "a" * 64, "con-1", "nul_x"])
def test_valid_speaker_ids(good):
    assert validate_speaker_id(good) == good


@pytest.mark.parametrize(
    "bad",
    ["", "../x", "..", ".", "/etc/passwd", "a/b", "a\\b", "x\0y", "Alice", "-x", "_x", "a" * 65, "café",
     "ａｌｉｃｅ", "alice\n", "a.b", "a b", "con", "NUL", "nul", "com1", "lpt9", "C:", "\u202eevil", 5, None],
)
def test_invalid_speaker_ids_are_refused(bad):
    with pytest.raises(SpeakerError, match="speaker id"):
        validate_speaker_id(bad)


def test_id_from_name_is_a_valid_slug():
    assert id_from_name("Ana María") == "ana-maria"
    assert id_from_name("  Dr. Who?! ") == "dr-who"
    assert id_from_name("CON") == "speaker-con"
    assert len(id_from_name("x" * 200)) == 64
    for name in ("../../etc", "Ana María", "CON", "小明", "x" * 200, "😀", "ｌｐｔ１"):
        validate_speaker_id(id_from_name(name))


@pytest.mark.parametrize(
    "name, expected",
    [
        ("你好", "ni-hao"),  # Chinese by its pinyin
        ("小明 Chen", "xiao-ming-chen"),
        ("\u0430lice", "alice"),  # a Cyrillic а that looks Latin
        ("Дмитрий", "dmitriy"),
        ("Ελένη", "eleni"),
        ("さくら", "sakura"),
        ("Ｌｕｃｙ", "lucy"),  # full-width
        ("Zoë 🎤", "zoe"),  # the emoji separates, the letters stay
        ("😀😀", "speaker"),  # nothing but emoji
        ("!!!", "speaker"),
    ],
)
def test_ids_are_readable_from_any_script(name, expected):
    assert id_from_name(name) == expected


def test_names_are_stripped_limited_and_free_of_control_characters():
    assert clean_name("  <b>Bob</b> \n") == "<b>Bob</b>"  # stored as given: the UI escapes
    assert clean_name("👩\u200d🔬 Ada") == "👩\u200d🔬 Ada"
    for bad in ("", "   ", "a\x07b", "evil\u202e", "a\u2028b", "x" * 81, 3):
        with pytest.raises(SpeakerError):
            clean_name(bad)


# -- adding ---------------------------------------------------------------------------------

def test_add_stores_audio_metadata_and_embeddings(library, prepare, tmp_path):
    audio_file = tmp_path / "upload.flac"
    audio_file.write_bytes(clip_bytes(330, subtype="PCM_24", audio_format="FLAC"))
    bob = library.add(audio_file, " hi\nthere ", "en", " Bob ", prepare=prepare, weights_key=KEY, source="mine")
    alice = add(library, prepare)
    folder = library.root / bob.id
    assert (bob.id, bob.name, bob.transcript, bob.source) == ("bob", "Bob", "hi there", "mine")
    assert bob.created_at.endswith("Z") and bob.duration_s == pytest.approx(1.0)
    staged_audio, transcript, language = prepare.calls[0]
    assert (staged_audio.parent.parent, staged_audio.name, transcript, language) == (
        library.root / ".tmp", "reference.wav", "hi there", "en")
    assert soundfile.info(folder / "reference.wav").subtype == "FLOAT"  # 24-bit source: float copy
    assert soundfile.info(library.reference_path(alice.id)).subtype == "PCM_16"
    original, _ = soundfile.read(io.BytesIO(clip_bytes(220)), dtype="int16")
    np.testing.assert_array_equal(soundfile.read(library.reference_path("alice"), dtype="int16")[0], original)
    assert json.loads((folder / "speaker.json").read_text())["name"] == "Bob"
    assert (folder / "embeddings" / KEY / "conditioning.json").is_file()
    reloaded = SpeakerLibrary(library.root)
    assert reloaded.problems == [] and reloaded.list() == library.list() == [bob, alice]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"language": "English!"}, "language"),
        ({"name": "a\x00b"}, "control"),
        ({"speaker_id": "../escape"}, "speaker id"),
        ({"audio": b"not audio at all"}, "not a readable audio"),
        ({"audio": clip_bytes(seconds=0.1)}, "lasts"),
        ({"transcript": "x" * 1001}, "transcript"),
        ({"shared": False}, "owner_session"),
        ({"weights_key": "../k"}, "weights key"),
        ({"prepare": None}, "together"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(library, prepare, change, message):
    add(library, prepare)
    before = tree_snapshot(library.root)
    arguments = {"audio": clip_bytes(), "transcript": "t", "language": "en", "name": "New",
                 "prepare": prepare, "weights_key": KEY, **change}
    with pytest.raises(SpeakerError, match=message):
        library.add(arguments.pop("audio"), arguments.pop("transcript"), arguments.pop("language"),
                    arguments.pop("name"), **arguments)
    assert tree_snapshot(library.root) == before and len(prepare.calls) == 1


def test_failed_preparation_writes_nothing(library, prepare):
    add(library, prepare)
    before = tree_snapshot(library.root)

    def failing(audio_path, transcript, language):
        raise ValueError("the reference audio is silent")

    with pytest.raises(ValueError, match="silent"):
        library.add(clip_bytes(), "t", "en", "Silent", prepare=failing, weights_key=KEY)
    with pytest.raises(SpeakerError, match="expected SpeakerConditioning"):
        library.add(clip_bytes(), "t", "en", "Wrong", prepare=lambda *a: "nope", weights_key=KEY)
    assert tree_snapshot(library.root) == before
    assert [s.id for s in library.list()] == ["alice"]


def test_derived_ids_are_numbered_and_explicit_ids_never_overwrite(library, prepare):
    ids = [add(library, prepare, name=name).id for name in ("Alice", "Alice!", "alice?")]
    assert ids == ["alice", "alice-2", "alice-3"]
    assert add(library, prepare, name="小明").id == "xiao-ming"
    before = tree_snapshot(library.root)
    with pytest.raises(SpeakerError, match="already exists"):
        add(library, prepare, name="Other", speaker_id="alice-2")
    assert tree_snapshot(library.root) == before


def test_add_without_embeddings_computes_them_on_first_use(library, prepare):
    info = library.add(clip_bytes(), "", "en", "Quiet", prepare=None, weights_key=None)
    assert not (library.root / info.id / "embeddings").exists()
    conditioning = library.conditioning(info.id, prepare=prepare, weights_key=KEY)
    assert prepare.calls[0][1] is None  # empty transcript: no-prompt mode
    assert not conditioning.has_prompt and (library.root / info.id / "embeddings" / KEY).is_dir()


# -- atomicity ------------------------------------------------------------------------------

def test_crash_while_committing_a_new_entry_leaves_no_trace(library, prepare, monkeypatch):
    add(library, prepare)
    before = tree_snapshot(library.root)

    def crash(*args):
        raise OSError("power cut")

    monkeypatch.setattr(store.os, "rename", crash)
    with pytest.raises(OSError, match="power cut"):
        add(library, prepare, name="Bob")
    monkeypatch.undo()
    assert tree_snapshot(library.root) == before
    assert not any((library.root / ".tmp").iterdir())
    fresh = SpeakerLibrary(library.root)
    assert [s.id for s in fresh.list()] == ["alice"] and fresh.problems == []


def test_crash_while_saving_embeddings_leaves_no_trace(library, prepare, monkeypatch):
    before = tree_snapshot(library.root)
    original_save = SpeakerConditioning.save

    def half_save(self, directory):
        original_save(self, directory)
        raise OSError("disk full")

    monkeypatch.setattr(SpeakerConditioning, "save", half_save)
    with pytest.raises(OSError, match="disk full"):
        add(library, prepare)
    assert tree_snapshot(library.root) == before and library.list() == []


def test_crash_while_renaming_keeps_the_old_metadata(library, prepare, monkeypatch):
    info = add(library, prepare)
    before = tree_snapshot(library.root)

    def crash(*args):
        raise OSError("power cut")

    monkeypatch.setattr(store.os, "replace", crash)
    with pytest.raises(OSError):
        library.rename(info.id, "Alicia")
    monkeypatch.undo()
    assert tree_snapshot(library.root) == before
    assert SpeakerLibrary(library.root).get(info.id).name == "Alice"


def test_crash_while_saving_recomputed_embeddings_keeps_the_entry(library, prepare, monkeypatch):
    info = add(library, prepare)
    before = tree_snapshot(library.root)

    def crash(*args):
        raise OSError("power cut")

    monkeypatch.setattr(store, "commit_dir", crash)
    with pytest.raises(OSError):
        library.conditioning(info.id, prepare=prepare, weights_key="v2-other")
    assert tree_snapshot(library.root) == before


# -- damaged entries ------------------------------------------------------------------------

def test_damaged_entries_are_reported_skipped_and_kept(library, prepare, tmp_path):
    good = add(library, prepare, name="Good")
    for name in ("garbage", "missing-audio", "wrong-id", "truncated-audio", "bad-schema"):
        shutil.copytree(library.root / good.id, library.root / name)
        meta = json.loads((library.root / name / "speaker.json").read_text())
        meta["id"] = name
        (library.root / name / "speaker.json").write_text(json.dumps(meta))
    (library.root / "garbage" / "speaker.json").write_text("{not json")
    (library.root / "missing-audio" / "reference.wav").unlink()
    (library.root / "wrong-id" / "speaker.json").write_text(json.dumps({**meta, "id": "someone-else"}))
    wav = library.root / "truncated-audio" / "reference.wav"
    wav.write_bytes(wav.read_bytes()[:2000])
    (library.root / "bad-schema" / "speaker.json").write_text(json.dumps({**meta, "id": "bad-schema", "shared": "yes"}))
    (library.root / "Not A Valid Id").mkdir()
    (library.root / "linked").symlink_to(library.root / good.id)
    (library.root / "notes.txt").write_text("not a speaker")
    npy = library.root / good.id / "embeddings" / KEY / "ref_spec.npy"
    npy.write_bytes(npy.read_bytes()[:-10])
    before = tree_snapshot(library.root)

    fresh = SpeakerLibrary(library.root)
    reasons = {Path(p.path).name: p.reason for p in fresh.problems}
    assert set(reasons) == {"garbage", "missing-audio", "wrong-id", "truncated-audio", "bad-schema",
                            "Not A Valid Id", "linked", KEY}
    assert "not valid JSON" in reasons["garbage"] and "reference.wav is missing" in reasons["missing-audio"]
    assert "someone-else" in reasons["wrong-id"] and "does not match" in reasons["truncated-audio"]
    assert "'shared'" in reasons["bad-schema"] and "symbolic link" in reasons["linked"]
    assert "truncated" in reasons[KEY]
    assert [s.id for s in fresh.list()] == [good.id]
    assert tree_snapshot(library.root) == before  # nothing deleted or changed
    with pytest.raises(SpeakerNotFound, match="damaged"):
        fresh.get("garbage")

    calls = len(prepare.calls)
    fresh.conditioning(good.id, prepare=prepare, weights_key=KEY)  # damaged set: recomputed, old one kept aside
    assert len(prepare.calls) == calls + 1
    aside = [p for p in (library.root / good.id / "embeddings").iterdir() if p.name.startswith(f"{KEY}.damaged-")]
    assert len(aside) == 1
    assert (aside[0] / "ref_spec.npy").read_bytes() == before[f"{good.id}/embeddings/{KEY}/ref_spec.npy"]
    assert any("set aside" in p.reason for p in fresh.problems)
    again = SpeakerLibrary(library.root)
    assert again.conditioning(good.id, prepare=prepare, weights_key=KEY) is not None
    assert len(prepare.calls) == calls + 1


def test_only_stale_work_folders_are_cleaned_at_start(library, prepare, caplog):
    work = library.root / ".tmp"
    old, young, trash = work / "add-old", work / "add-young", library.root / ".trash" / "x"
    for folder in (old, young, trash):
        folder.mkdir(parents=True)
        (folder / "reference.wav").write_bytes(b"partial")
    os.utime(old, (0, 0))
    (library.root / "broken").mkdir()
    SpeakerLibrary(library.root)
    assert not old.exists() and not trash.exists() and young.exists() and (library.root / "broken").exists()
    assert "broken" in caplog.text and "speaker.json" in caplog.text


# -- cache and weights keys -----------------------------------------------------------------

def test_conditioning_cache_is_bounded_lru(tmp_path, prepare, monkeypatch):
    library = SpeakerLibrary(tmp_path / "lib", cache_size=2)
    ids = [add(library, prepare, name=f"S{i}", frequency=200 + 50 * i).id for i in range(3)]
    loads = []
    original = store.load_embeddings
    monkeypatch.setattr(store, "load_embeddings",
                        lambda directory, limits: loads.append(directory.parent.parent.name) or original(directory, limits))
    library.conditioning(ids[2], prepare=prepare, weights_key=KEY)  # most recent: cached
    library.conditioning(ids[1], prepare=prepare, weights_key=KEY)  # cached
    assert loads == []
    library.conditioning(ids[0], prepare=prepare, weights_key=KEY)  # evicted: disk
    library.conditioning(ids[2], prepare=prepare, weights_key=KEY)  # evicted by ids[0]: disk
    assert loads == [ids[0], ids[2]]
    library.conditioning(ids[0], prepare=prepare, weights_key=KEY)  # the two most recent stay
    library.conditioning(ids[2], prepare=prepare, weights_key=KEY)
    assert loads == [ids[0], ids[2]]
    assert len(prepare.calls) == 3  # only the adds


def test_a_new_weights_key_recomputes_and_the_same_key_reuses(library, prepare):
    info = add(library, prepare)
    first = library.conditioning(info.id, prepare=prepare, weights_key=KEY)
    assert len(prepare.calls) == 1
    fresh = SpeakerLibrary(library.root)
    again = fresh.conditioning(info.id, prepare=prepare, weights_key=KEY)
    np.testing.assert_array_equal(again.ref_spec, first.ref_spec)
    assert len(prepare.calls) == 1
    fresh.conditioning(info.id, prepare=prepare, weights_key="v2ProPlus-fedcba9876543210")
    assert len(prepare.calls) == 2
    assert sorted(p.name for p in (library.root / info.id / "embeddings").iterdir()) == sorted(
        [KEY, "v2ProPlus-fedcba9876543210"])
    SpeakerLibrary(library.root).conditioning(info.id, prepare=prepare, weights_key="v2ProPlus-fedcba9876543210")
    assert len(prepare.calls) == 2


# -- rename, delete, export, import ---------------------------------------------------------

def test_rename_delete_export_import_round_trip(library, prepare, tmp_path):
    info = add(library, prepare, shared=False, owner_session="session-1")
    renamed = library.rename(info.id, "  Alicia ")
    assert (renamed.id, renamed.name) == (info.id, "Alicia")
    assert SpeakerLibrary(library.root).get(info.id) == renamed
    with pytest.raises(SpeakerError):
        library.rename(info.id, "\x1b[31m")
    data = library.export_zip(info.id)
    archive_path = tmp_path / "alice.zip"
    archive_path.write_bytes(data)
    assert b"session-1" not in zipfile.ZipFile(io.BytesIO(data)).read("speaker.json")
    original_audio = library.reference_path(info.id).read_bytes()

    library.delete(info.id)
    assert not (library.root / info.id).exists()
    with pytest.raises(SpeakerNotFound):
        library.get(info.id)
    with pytest.raises(SpeakerNotFound):
        library.delete(info.id)
    imported = library.import_zip(data, shared=False, owner_session="session-2")
    assert imported.id == info.id and imported.name == "Alicia" and imported.owner_session == "session-2"
    assert library.reference_path(imported.id).read_bytes() == original_audio
    library.conditioning(imported.id, prepare=prepare, weights_key=KEY)
    assert len(prepare.calls) == 1  # embeddings came with the archive
    second = library.import_zip(archive_path)  # id and name taken: both numbered
    assert (second.id, second.name, second.shared) == (f"{info.id}-2", "Alicia (2)", True)
    assert library.import_zip(archive_path).name == "Alicia (3)"
    assert SpeakerLibrary(library.root).problems == []


def test_display_names_are_unique_case_insensitively_after_nfc(library, prepare):
    first = add(library, prepare, name="Zoe\u0308")  # decomposed: stored as NFC "Zoë"
    assert first.name == "Zo\u00eb"
    other = add(library, prepare, name="Bob")
    before = tree_snapshot(library.root)
    for clash in ("ZOË", " zoë ", "Zoe\u0308"):
        with pytest.raises(SpeakerError, match="already exists"):
            add(library, prepare, name=clash)
        with pytest.raises(SpeakerError, match="already exists"):
            library.rename(other.id, clash)
    assert tree_snapshot(library.root) == before and len(prepare.calls) == 2  # refused before preparing
    assert library.rename(first.id, "ZOË").name == "ZOË"  # its own name in another case is fine
    elsewhere = SpeakerLibrary(library.root)  # another process: checked against the disk
    add(elsewhere, prepare, name="Carol")
    with pytest.raises(SpeakerError, match="already exists"):
        add(library, prepare, name="carol")


def test_a_refused_name_never_reveals_another_visitors_private_voice(library, prepare):
    add(library, prepare, name="Shared")
    mine = add(library, prepare, name="Alice", shared=False, owner_session="visitor-1")
    theirs = add(library, prepare, name="Alice", shared=False, owner_session="visitor-2")  # not seen together
    assert mine.name == theirs.name == "Alice" and mine.id != theirs.id
    with pytest.raises(SpeakerError, match="already exists"):  # one's own and the shared voices do clash
        add(library, prepare, name="alice", shared=False, owner_session="visitor-1")
    with pytest.raises(SpeakerError, match="already exists"):
        add(library, prepare, name="Shared", shared=False, owner_session="visitor-2")
    with pytest.raises(SpeakerError, match="already exists"):  # a shared voice is seen by everybody
        add(library, prepare, name="ALICE")


def _zip(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in entries.items():
            archive.writestr(name, payload)
        if symlink:
            link = zipfile.ZipInfo(symlink)
            link.external_attr = (0o120777 << 16)
            archive.writestr(link, "/etc/passwd")
    return buffer.getvalue()


@pytest.fixture
def valid_entries(library, prepare) -> dict[str, bytes]:
    info = add(library, prepare, name="Zip")
    entries = dict(_read_zip(library.export_zip(info.id)))
    library.delete(info.id)
    return entries


def _read_zip(data: bytes):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(name, archive.read(name)) for name in archive.namelist()]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda e: {**e, "../evil.txt": b"x"}, "unexpected entry"),
        (lambda e: {**e, "/etc/cron.d/evil": b"x"}, "unexpected entry"),
        (lambda e: {**e, "embeddings/../ref_spec.npy": b"x"}, "weights key"),
        (lambda e: {**e, "embeddings/../../evil.npy": b"x"}, "unexpected entry"),
        (lambda e: {**e, "embeddings/k/../../../x": b"x"}, "unexpected entry"),
        (lambda e: {**e, "..\\..\\evil.wav": b"x"}, "unexpected entry"),
        (lambda e: {**e, "embeddings/k/evil.py": b"x"}, "unexpected entry"),
        (lambda e: {k: v for k, v in e.items() if k != "reference.wav"}, "no reference.wav"),
        (lambda e: {k: v for k, v in e.items() if k != "speaker.json"}, "no speaker.json"),
        (lambda e: {**e, "speaker.json": b"[]"}, "JSON object"),
        (lambda e: {**e, "speaker.json": e["speaker.json"].replace(b'"format"', b'"formats"')}, "missing keys"),
        (lambda e: {**e, "speaker.json": e["speaker.json"].replace(b'"id": "zip"', b'"id": "../zip"')}, "speaker id"),
        (lambda e: {**e, "reference.wav": clip_bytes(seconds=2)}, "does not match"),
        (lambda e: {**e, "reference.wav": b"RIFF nonsense"}, "not a readable audio"),
        (lambda e: {**e, "reference.wav": bytes(65 << 20)}, "larger than"),
        (lambda e: {**e, f"embeddings/{KEY}/ref_spec.npy": e[f"embeddings/{KEY}/ref_spec.npy"][:-4]}, "damaged"),
    ],
)
def test_bad_archives_are_refused_and_write_nothing(library, valid_entries, mutate, message):
    before = tree_snapshot(library.root)
    with pytest.raises(SpeakerError, match=message):
        library.import_zip(_zip(mutate(valid_entries)))
    assert tree_snapshot(library.root) == before and library.list() == []


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _with_array(entries: dict[str, bytes], name: str, change) -> dict[str, bytes]:
    """The archive entries with one embeddings array replaced by ``change(original)``."""
    member = f"embeddings/{KEY}/{name}.npy"
    original = np.load(io.BytesIO(entries[member]))
    return {**entries, member: _npy(change(original))}


def _with_version(entries: dict[str, bytes], version: str) -> dict[str, bytes]:
    member = f"embeddings/{KEY}/conditioning.json"
    return {**entries, member: json.dumps({**json.loads(entries[member]), "version": version}).encode()}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda e: _with_array(e, "prompt_semantic", lambda a: np.full_like(a, 99999)), "prompt_semantic holds values"),
        (lambda e: _with_array(e, "prompt_semantic", lambda a: np.full_like(a, -1)), "prompt_semantic holds values"),
        (lambda e: _with_array(e, "prompt_semantic", lambda a: a.astype(np.float32)), "prompt_semantic must hold"),
        (lambda e: _with_array(e, "prompt_semantic", lambda a: np.zeros(40_000, np.int64)), "prompt_semantic has 40000"),
        (lambda e: _with_array(e, "prompt_phones", lambda a: np.full_like(a, 732)), "prompt_phones holds values"),
        (lambda e: _with_array(e, "prompt_bert", lambda a: a[:, :-1]), "prompt_bert must have shape"),
        (lambda e: _with_array(e, "prompt_bert", lambda a: np.full_like(a, np.nan)), "prompt_bert contains NaN"),
        (lambda e: _with_array(e, "ref_spec", lambda a: np.zeros((1, 1025, 5000), np.float32)), "ref_spec has 5000"),
        (lambda e: _with_array(e, "ref_spec", lambda a: a[:, :512]), "ref_spec must be"),
        (lambda e: _with_array(e, "ref_spec", lambda a: np.full_like(a, np.inf)), "ref_spec contains NaN"),
        (lambda e: _with_array(e, "global_embedding", lambda a: a[:, :512]), "global_embedding must be .1, 1024, 1"),
        (lambda e: _with_array(e, "global_embedding", lambda a: np.full_like(a, np.nan)), "global_embedding contains"),
        (lambda e: _with_array(e, "sv_embedding", lambda a: a[:, :100]), "sv_embedding must have shape"),
        (lambda e: _with_version(e, "v9"), "unknown model version"),
        (lambda e: _with_version(e, "v2"), "global_embedding must be .1, 512, 1"),
    ],
)
def test_archives_with_bad_conditioning_values_are_refused(library, valid_entries, mutate, message):
    before = tree_snapshot(library.root)
    with pytest.raises(SpeakerError, match=message):
        library.import_zip(_zip(mutate(valid_entries)))
    assert tree_snapshot(library.root) == before and library.list() == []


def test_bad_stored_values_are_reported_set_aside_and_recomputed(library, prepare):
    info = add(library, prepare)
    stored = library.root / info.id / "embeddings" / KEY / "prompt_semantic.npy"
    np.save(stored, np.full(9, 99999, np.int64))  # a complete, well-formed file with bad codes
    bad = stored.read_bytes()
    fresh = SpeakerLibrary(library.root)
    conditioning = fresh.conditioning(info.id, prepare=prepare, weights_key=KEY)
    assert conditioning.prompt_semantic.max() < 1024 and len(prepare.calls) == 2
    assert any("prompt_semantic holds values" in p.reason and "set aside" in p.reason for p in fresh.problems)
    aside = [p for p in stored.parent.parent.iterdir() if p.name.startswith(f"{KEY}.damaged-")]
    assert len(aside) == 1 and (aside[0] / "prompt_semantic.npy").read_bytes() == bad  # kept, never deleted
    assert any("set aside" in p.reason for p in SpeakerLibrary(library.root).problems)


def test_prepared_voices_over_the_limits_are_refused(tmp_path, prepare):
    from gsv_core.conditioning import ConditioningLimits

    library = SpeakerLibrary(tmp_path, limits=ConditioningLimits(max_prompt_tokens=8))
    with pytest.raises(SpeakerError, match="prompt_semantic has 9 tokens, at most 8"):
        add(library, prepare)
    assert library.list() == [] and tree_snapshot(tmp_path) == {}


def test_archive_links_garbage_and_bombs_are_refused(library, valid_entries):
    for data, message in (
        (_zip(valid_entries, symlink="embeddings/link"), "symbolic link"),
        (b"PK\x03\x04 garbage", "not a valid zip"),
        (_zip({**valid_entries, **{f"embeddings/k{i}/x.npy": b"" for i in range(70)}}), "entries"),
    ):
        with pytest.raises(SpeakerError, match=message):
            library.import_zip(data)
    assert library.list() == []


def test_changes_by_another_library_instance_are_seen(library, prepare):
    other = SpeakerLibrary(library.root)
    info = add(other, prepare, name="Elsewhere")
    assert library.get(info.id) == info and library.list() == [info]  # get() found it on disk
    late = add(other, prepare, name="Late")
    assert late not in library.list()
    library.reload()
    assert library.list() == [info, late]
    other.delete(late.id)
    with pytest.raises(SpeakerNotFound, match="deleted meanwhile"):
        library.delete(late.id)
    assert library.list() == [info]


# -- visibility ------------------------------------------------------------------------------

def test_private_speakers_are_listed_only_for_their_session(library, prepare):
    public = add(library, prepare, name="Public")
    mine = add(library, prepare, name="Mine", shared=False, owner_session="abc")
    theirs = add(library, prepare, name="Theirs", shared=False, owner_session="xyz")
    assert library.list() == [public]
    assert library.list(session="abc") == [public, mine]
    assert library.list(session="xyz") == [public, theirs]
    assert mine.to_json("abc")["own"] and not mine.to_json("xyz")["own"]
    assert "owner_session" not in json.dumps(mine.to_json("abc")) and "abc" not in json.dumps(mine.to_json("abc"))
    assert set(public.to_json()) >= {"id", "name", "language", "transcript", "created_at", "shared", "synthetic"}
    with pytest.raises(SpeakerError, match="owner session"):
        add(library, prepare, name="Bad", shared=False, owner_session="has space")


# -- shipped examples -----------------------------------------------------------------------

def test_example_speakers_load_cleanly(tmp_path):
    shipped = [p for p in (PROJECT_ROOT / "speakers").iterdir() if (p / "speaker.json").is_file()]
    assert len(shipped) >= 2
    for folder in shipped:
        shutil.copytree(folder, tmp_path / folder.name, ignore=shutil.ignore_patterns("embeddings"))
    library = SpeakerLibrary(tmp_path)
    assert library.problems == []
    speakers = library.list()
    assert {s.language for s in speakers} >= {"en", "all_zh"}
    for speaker in speakers:
        assert speaker.synthetic and "espeak-ng" in speaker.source and speaker.transcript
        assert 4.0 <= speaker.duration_s <= 8.0 and speaker.channels == 1
