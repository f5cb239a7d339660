"""Speaker library: voices with auxiliary clips are stored, reloaded, exported and recomputed whole."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from gsv_core.speakers import SpeakerError, SpeakerLibrary
from gsv_core.speakers.records import MAX_AUX_CLIPS
from speaker_fakes import FakePrepare, clip_bytes, tree_snapshot

KEY = "v2Pro-0123456789abcdef"
OTHER_KEY = "v2Pro-fedcba9876543210"


def add_with_aux(library: SpeakerLibrary, prepare: FakePrepare, name: str = "Alice"):
    aux = [clip_bytes(330.0, seconds=1.5), clip_bytes(440.0, seconds=2.0, sample_rate=22050)]
    return library.add(clip_bytes(220.0), "hello there", "en", name, prepare=prepare, weights_key=KEY, aux_audio=aux)


def test_add_stores_the_aux_clips_and_prepares_with_them(library, prepare):
    info = add_with_aux(library, prepare)
    folder = library.root / info.id
    assert [p.name for p in library.aux_paths(info.id)] == ["aux-1.wav", "aux-2.wav"]
    assert all(p.parent == folder and p.is_file() for p in library.aux_paths(info.id))
    assert [(c.sample_rate, c.frames) for c in info.aux_clips] == [(16000, 24000), (22050, 44100)]
    assert len(json.loads((folder / "speaker.json").read_text())["aux_clips"]) == 2
    assert [p.name for p in prepare.aux_calls[0]] == ["aux-1.wav", "aux-2.wav"]
    assert [c["duration_s"] for c in info.to_json()["aux_clips"]] == [1.5, 2.0]
    conditioning = library.conditioning(info.id, prepare=prepare, weights_key=KEY)
    assert conditioning.reference_count == 3
    np.testing.assert_allclose(conditioning.global_embedding, conditioning.reference_embeddings.mean(0), atol=1e-6)


def test_a_single_clip_speaker_is_stored_as_before(library, prepare):
    info = library.add(clip_bytes(), "hello", "en", "Solo", prepare=prepare, weights_key=KEY)
    assert info.aux_clips == () and library.aux_paths(info.id) == []
    assert "aux_clips" not in json.loads((library.root / info.id / "speaker.json").read_text())
    assert not (library.root / info.id / "embeddings" / KEY / "reference_embeddings.npy").exists()
    assert prepare.aux_calls == []  # a three-argument prepare keeps working


def test_reload_keeps_the_aux_clips_and_their_embeddings(library, prepare):
    info = add_with_aux(library, prepare)
    first = library.conditioning(info.id, prepare=prepare, weights_key=KEY)
    fresh = SpeakerLibrary(library.root)
    assert fresh.get(info.id) == info and fresh.problems == []
    again = fresh.conditioning(info.id, prepare=prepare, weights_key=KEY)
    assert len(prepare.calls) == 1  # loaded from disk, not recomputed
    np.testing.assert_array_equal(again.reference_embeddings, first.reference_embeddings)
    np.testing.assert_array_equal(again.global_embedding, first.global_embedding)


def test_a_weights_change_recomputes_with_the_aux_clips(library, prepare):
    info = add_with_aux(library, prepare)
    recomputed = SpeakerLibrary(library.root).conditioning(info.id, prepare=prepare, weights_key=OTHER_KEY)
    assert len(prepare.calls) == 2 and prepare.aux_calls[-1] == library.aux_paths(info.id)
    assert recomputed.reference_count == 3
    stored = library.conditioning(info.id, prepare=prepare, weights_key=KEY)
    np.testing.assert_array_equal(recomputed.reference_embeddings, stored.reference_embeddings)  # same clips


def test_export_import_round_trip(library, prepare, tmp_path):
    info = add_with_aux(library, prepare)
    archive = library.export_zip(info.id)
    assert {"aux-1.wav", "aux-2.wav"} <= set(zipfile.ZipFile(io.BytesIO(archive)).namelist())
    other = SpeakerLibrary(tmp_path / "other")
    imported = other.import_zip(archive)
    assert imported.aux_clips == info.aux_clips
    for ours, theirs in zip(library.aux_paths(info.id), other.aux_paths(imported.id)):
        assert ours.read_bytes() == theirs.read_bytes()
    conditioning = other.conditioning(imported.id, prepare=prepare, weights_key=KEY)
    assert len(prepare.calls) == 1 and conditioning.reference_count == 3


def _rezipped(archive: bytes, change) -> bytes:
    with zipfile.ZipFile(io.BytesIO(archive)) as source:
        entries = {name: source.read(name) for name in source.namelist()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for name, payload in change(entries).items():
            target.writestr(name, payload)
    return buffer.getvalue()


def _without(entries: dict, name: str) -> dict:
    return {key: value for key, value in entries.items() if key != name}


def _single_clip_embeddings(entries: dict) -> dict:
    """The embeddings of a one-clip voice under a speaker that has three clips."""
    entries = _without(entries, f"embeddings/{KEY}/reference_embeddings.npy")
    per_reference = np.load(io.BytesIO(entries[f"embeddings/{KEY}/global_embedding.npy"]))
    buffer = io.BytesIO()
    np.save(buffer, per_reference)
    return {**entries, f"embeddings/{KEY}/global_embedding.npy": buffer.getvalue()}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda e: _without(e, "aux-2.wav"), "auxiliary clips do not match"),
        (lambda e: {**e, "aux-3.wav": e["aux-1.wav"]}, "auxiliary clips do not match"),
        (lambda e: {**e, "aux-9.wav": e["aux-1.wav"]}, "unexpected entry"),
        (lambda e: {**e, "aux-2.wav": e["aux-1.wav"]}, "aux-2.wav in the archive does not match"),
        (lambda e: {**e, "aux-1.wav": b"not audio"}, "aux-1.wav in the archive is not a readable audio file"),
        (_single_clip_embeddings, "made from 1 clips, the speaker has 3"),
    ],
)
def test_import_refuses_inconsistent_aux_clips(library, prepare, tmp_path, change, message):
    archive = library.export_zip(add_with_aux(library, prepare).id)
    other = SpeakerLibrary(tmp_path / "other")
    before = tree_snapshot(other.root)
    with pytest.raises(SpeakerError, match=message):
        other.import_zip(_rezipped(archive, change))
    assert tree_snapshot(other.root) == before


@pytest.mark.parametrize(
    "aux, message",
    [
        ([clip_bytes(330.0), b"not audio"], "auxiliary clip 2 is not a readable audio file"),
        ([clip_bytes(330.0, seconds=0.1)], "auxiliary clip 1 lasts 0.10 s"),
        ([clip_bytes(330.0)] * (MAX_AUX_CLIPS + 1), f"at most {MAX_AUX_CLIPS} auxiliary clips"),
        (clip_bytes(330.0), "must be a list"),
        (["/nonexistent/clip.wav"], "auxiliary clip 1 must be an existing file"),
    ],
)
def test_a_bad_aux_clip_refuses_the_whole_add(library, prepare, aux, message):
    before = tree_snapshot(library.root)
    with pytest.raises(SpeakerError, match=message):
        library.add(clip_bytes(), "hello", "en", "Alice", prepare=prepare, weights_key=KEY, aux_audio=aux)
    assert tree_snapshot(library.root) == before and library.list() == [] and prepare.calls == []


def test_a_prepare_that_ignores_the_aux_clips_is_refused(library):
    def single(audio_path, transcript, language, aux_audio=None):
        return FakePrepare()(audio_path, transcript, language)

    before = tree_snapshot(library.root)
    with pytest.raises(SpeakerError, match="made from 1 clips, the speaker has 2"):
        library.add(clip_bytes(), "hello", "en", "Alice", prepare=single, weights_key=KEY, aux_audio=[clip_bytes(330.0)])
    assert tree_snapshot(library.root) == before
