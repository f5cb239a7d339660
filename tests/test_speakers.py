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

from gsv_core import speaker_store
from gsv_core.conditioning import SpeakerConditioning
from gsv_core.speaker_meta import clean_name, id_from_name
from gsv_core.speakers import SpeakerError, SpeakerLibrary, SpeakerNotFound, validate_speaker_id, weights_key
from speaker_fakes import FakePrepare, clip_bytes, tree_snapshot

PROJECT_ROOT = Path(__file__).resolve().parent.parent
KEY = "v2Pro-0123456789abcdef"


@pytest.fixture
def prepare() -> FakePrepare:
    return FakePrepare()


@pytest.fixture
def library(tmp_path: Path) -> SpeakerLibrary:
    return SpeakerLibrary(tmp_path / "speakers")


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
    assert id_from_name("小明") == "speaker"
    assert id_from_name("CON") == "speaker-con"
    assert len(id_from_name("x" * 200)) == 64
    for name in ("../../etc", "Ana María", "CON", "小明", "x" * 200):
        validate_speaker_id(id_from_name(name))


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
    vector = np.load(folder / "embeddings" / KEY / "speaker_vector.npy")
    assert vector.shape == (32,) and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-6)
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
    ids = [add(library, prepare).id for _ in range(3)]
    assert ids == ["alice", "alice-2", "alice-3"]
    assert add(library, prepare, name="小明").id == "speaker"
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

    monkeypatch.setattr(speaker_store.os, "rename", crash)
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

    monkeypatch.setattr(speaker_store.os, "replace", crash)
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

    monkeypatch.setattr("gsv_core.speakers.commit_dir", crash)
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
    assert library.cached_count == 2
    loads = []
    original = speaker_store.load_conditioning
    monkeypatch.setattr("gsv_core.speakers.load_conditioning",
                        lambda directory: loads.append(directory.parent.parent.name) or original(directory))
    library.conditioning(ids[2], prepare=prepare, weights_key=KEY)  # most recent: cached
    library.conditioning(ids[1], prepare=prepare, weights_key=KEY)  # cached
    assert loads == []
    library.conditioning(ids[0], prepare=prepare, weights_key=KEY)  # evicted: disk
    library.conditioning(ids[2], prepare=prepare, weights_key=KEY)  # evicted by ids[0]: disk
    assert loads == [ids[0], ids[2]] and library.cached_count == 2
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


def test_weights_key_follows_file_contents(tmp_path):
    gpt, model_dir = tmp_path / "s1.ckpt", tmp_path / "hubert"
    gpt.write_bytes(os.urandom(3 << 20))
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    key = weights_key("v2Pro", [gpt, model_dir])
    assert key.startswith("v2Pro-") and key == weights_key("v2Pro", [str(gpt), model_dir])
    assert key != weights_key("v2ProPlus", [gpt, model_dir])
    (model_dir / "config.json").write_text('{"a": 1}')
    changed = weights_key("v2Pro", [gpt, model_dir])
    assert changed != key
    data = bytearray(gpt.read_bytes())
    data[-1] ^= 0xFF  # last MiB
    gpt.write_bytes(bytes(data))
    assert weights_key("v2Pro", [gpt, model_dir]) != changed
    for version, files in (("v2/../x", [gpt]), ("v2", []), ("v2", [tmp_path / "missing.pth"])):
        with pytest.raises(SpeakerError):
            weights_key(version, files)


# -- rename, delete, export, import ---------------------------------------------------------

def test_rename_delete_export_import_round_trip(library, prepare, tmp_path):
    info = add(library, prepare, shared=False, owner_session="session-1")
    renamed = library.rename(info.id, "  Alicia ")
    assert (renamed.id, renamed.name) == (info.id, "Alicia")
    assert SpeakerLibrary(library.root).get(info.id) == renamed
    with pytest.raises(SpeakerError):
        library.rename(info.id, "\x1b[31m")
    archive_path = tmp_path / "alice.zip"
    data = library.export_zip(info.id, archive_path)
    assert archive_path.read_bytes() == data
    assert b"session-1" not in zipfile.ZipFile(io.BytesIO(data)).read("speaker.json")
    original_audio = library.reference_path(info.id).read_bytes()

    library.delete(info.id)
    assert not (library.root / info.id).exists() and info.id not in library
    with pytest.raises(SpeakerNotFound):
        library.delete(info.id)
    imported = library.import_zip(data, shared=False, owner_session="session-2")
    assert imported.id == info.id and imported.name == "Alicia" and imported.owner_session == "session-2"
    assert library.reference_path(imported.id).read_bytes() == original_audio
    library.conditioning(imported.id, prepare=prepare, weights_key=KEY)
    assert len(prepare.calls) == 1  # embeddings came with the archive
    second = library.import_zip(archive_path)
    assert second.id == f"{info.id}-2" and second.shared
    assert SpeakerLibrary(library.root).problems == []


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


# -- visibility and similarity --------------------------------------------------------------

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


def test_similarity_is_cosine_of_normalized_speaker_vectors(library, prepare):
    a = add(library, prepare, name="A", frequency=220)
    a_again = add(library, prepare, name="A", frequency=220)
    b = add(library, prepare, name="B", frequency=440)
    assert library.similarity(a.id, a_again.id, KEY) == pytest.approx(1.0, abs=1e-6)
    va = library.speaker_vector(a.id, weights_key=KEY)
    vb = np.load(library.root / b.id / "embeddings" / KEY / "speaker_vector.npy")
    assert library.similarity(a.id, b.id, KEY) == pytest.approx(float(va @ vb), abs=1e-6)
    sv = library.conditioning(b.id, prepare=prepare, weights_key=KEY).sv_embedding.ravel()
    np.testing.assert_allclose(vb, sv / np.linalg.norm(sv), atol=1e-6)
    with pytest.raises(SpeakerError, match="pass prepare"):
        library.similarity(a.id, b.id, "v2-0000000000000000")
    no_sv = FakePrepare(with_sv=False)
    value = library.similarity(a.id, b.id, "v2-0000000000000000", prepare=no_sv)
    assert len(no_sv.calls) == 2 and -1.0 <= value <= 1.0
    ge = library.conditioning(a.id, prepare=no_sv, weights_key="v2-0000000000000000").global_embedding.ravel()
    np.testing.assert_allclose(library.speaker_vector(a.id, weights_key="v2-0000000000000000"),
                               ge / np.linalg.norm(ge), atol=1e-6)


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
