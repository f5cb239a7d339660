"""Data preparation for training: the list format, the official audio mixes, and the whole
preparation of the training reference's dataset against its ``prepared.npz``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gsv_core.speakers.recordings import RecordingPlan, Utterance
from gsv_core.training.prepare import (
    DatasetListError, ListEntry, entries_from_plan, mix_for_training, parse_list, read_training_audio, sv_inputs,
)
from gsv_core.training.prepared import (
    PreparedDataError, load_prepared, name2semantic_file, name2text_file, save_prepared,
)
from test_sv import assert_fbank_close

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# README tolerances: token ids and integer arrays exact, hidden states about 1e-4, waveforms about 1e-5
# (log filterbanks: see test_sv.assert_fbank_close)
TOLERANCES = {"bert": 1e-4, "ssl": 1e-4, "hubert_input_16k": 1e-5, "sv_wav16k": 1e-5}


@pytest.fixture(scope="module")
def prepared_arrays(training_dir: Path) -> dict[str, np.ndarray]:
    with np.load(training_dir / "prepared.npz") as npz:
        return {name: npz[name] for name in npz.files}


def assert_prepared_equal(ours: dict[str, np.ndarray], recorded: dict[str, np.ndarray], names: list[str]) -> None:
    """Every ``names`` array within the README tolerances (exact for integers)."""
    for name in names:
        kind = name.split("_", 1)[1]
        assert ours[name].shape == recorded[name].shape and ours[name].dtype == recorded[name].dtype, name
        if ours[name].dtype.kind in "iu":
            assert np.array_equal(ours[name], recorded[name]), name
        else:
            np.testing.assert_allclose(ours[name], recorded[name], rtol=0, atol=TOLERANCES[kind], err_msg=name)


# --- the list ---------------------------------------------------------------------------------

def test_list_lines_are_parsed_as_the_official_format(tmp_path):
    entries, skipped = parse_list("a/x.wav|spk|ZH|你好\nb/y.wav|spk|FR|bonjour\n\"z.wav\"|spk2|en|hi there\n", tmp_path)
    assert [(e.wav_name, e.speaker, e.lang, e.text) for e in entries] == [("x.wav", "spk", "ZH", "你好"),
                                                                         ("z.wav", "spk2", "en", "hi there")]
    assert entries[0].wav_path == tmp_path / "x.wav" and entries[0].key == "x"
    assert [(s.wav_name, "FR" in s.reason) for s in skipped] == [("y.wav", True)]
    without_dir, _ = parse_list("clips/x.wav|s|zh|t")
    assert without_dir[0].wav_path == Path("clips/x.wav")


@pytest.mark.parametrize("text, message", [
    ("x.wav|spk|ZH", "line 1 has 3 fields"),
    ("x.wav|s|ZH|a\nsub/x.wav|s|ZH|b", "line 2: a second file named 'x'"),
])
def test_bad_list_lines_are_refused_with_their_line_number(text, message):
    with pytest.raises(DatasetListError, match=message):
        parse_list(text)


def test_utterances_of_a_planned_recording_become_entries_with_their_samples():
    rate = 16000
    recording = np.arange(10 * rate, dtype=np.float32) / (10 * rate)
    plan = RecordingPlan(main=Utterance(4.0, 7.5, "第二句。", 0.9), auxiliaries=(Utterance(0.5, 3.8, "第一句。", 0.8),),
                         dropped=(Utterance(8.0, 9.0, "", 0.0),), spare=(Utterance(8.0, 9.9, " ", 0.5),))
    entries = entries_from_plan(plan, recording, rate, "alice", "ZH", "take1")
    assert [(e.wav_name, e.text) for e in entries] == [("take1_000.wav", "第一句。"), ("take1_001.wav", "第二句。")]
    samples = read_training_audio(entries[1])  # resampled to the training rate
    assert abs(len(samples) - 3.5 * 32000) <= 1
    assert np.array_equal(entries[1].audio[0], recording[4 * rate : int(7.5 * rate)])


# --- the audio mixes --------------------------------------------------------------------------

def test_hubert_input_and_training_wav_are_the_official_mixes(training_dir, prepared_arrays):
    samples = read_training_audio(ListEntry("utt0.wav", "s", "ZH", "", wav_path=training_dir / "data" / "wavs" / "utt0.wav"))
    hubert_input, wav32k = mix_for_training(samples)
    assert np.array_equal(wav32k, prepared_arrays["utt0_wav32k"])
    np.testing.assert_allclose(hubert_input, prepared_arrays["utt0_hubert_input_16k"], rtol=0, atol=1e-5)


def test_clips_louder_than_2_2_are_left_out():
    assert mix_for_training(np.array([0.1, -2.3, 0.5], dtype=np.float32)) is None
    assert mix_for_training(np.array([0.1, -2.2, 0.5], dtype=np.float32)) is not None


def test_speaker_verification_inputs_are_read_from_the_training_wav(reference_dir):
    folder = reference_dir / "training" / "v2ProPlus"
    if not (folder / "prepared.npz").is_file():
        pytest.skip(f"v2ProPlus training reference not found at {folder}")
    with np.load(folder / "prepared.npz") as npz:
        for key in ("utt0", "utt3"):
            wav16k, fbank = sv_inputs(npz[f"{key}_wav32k"])
            np.testing.assert_allclose(wav16k, npz[f"{key}_sv_wav16k"], rtol=0, atol=TOLERANCES["sv_wav16k"])
            assert_fbank_close(fbank[None], npz[f"{key}_sv_fbank"][None], npz[f"{key}_sv_wav16k"])


# --- the stored form --------------------------------------------------------------------------

def test_reference_prepared_folder_loads_and_its_official_files_are_rebuilt(training_dir):
    utterances = load_prepared(training_dir)
    recorded = json.loads((training_dir / "prepared.json").read_text(encoding="utf-8"))
    assert [u.key for u in utterances] == [u["key"] for u in recorded["utterances"]]
    assert name2text_file(utterances) == recorded["files"]["2-name2text.txt"]
    assert name2semantic_file(utterances) == recorded["files"]["6-name2semantic.tsv"]


def test_prepared_folder_round_trip(tmp_path, training_dir):
    utterances = load_prepared(training_dir)
    save_prepared(tmp_path, utterances)
    again = load_prepared(tmp_path)
    for before, after in zip(utterances, again):
        assert before.json_entry() == after.json_entry()
        for name, value in before.arrays().items():
            assert np.array_equal(after.arrays()[name], value), name
    with pytest.raises(PreparedDataError, match="not a prepared dataset"):
        load_prepared(tmp_path / "missing")


# --- the whole preparation --------------------------------------------------------------------

@pytest.mark.slow
def test_prepare_dataset_command_writes_the_official_arrays(reference_dir, training_dir, prepared_arrays, tmp_path):
    models = reference_dir / "models"
    command = [sys.executable, "-m", "gsv_core", "prepare-dataset", str(training_dir / "data" / "train.list"),
               "--wav-dir", str(training_dir / "data" / "wavs"), "--out", str(tmp_path), "--bert",
               str(models / "chinese-roberta-tiny"), "--hubert", str(models / "chinese-hubert-tiny"),
               "--sovits", str(models / "s2G-tiny-v2.pth"), "--official-data", str(reference_dir / "data")]
    completed = subprocess.run(command, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "HF_HUB_OFFLINE": "1"},
                               capture_output=True, text=True, timeout=1200)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "left out" not in completed.stdout
    with np.load(tmp_path / "prepared.npz") as npz:
        ours = {name: npz[name] for name in npz.files}
    assert sorted(ours) == sorted(prepared_arrays)
    assert_prepared_equal(ours, prepared_arrays, sorted(prepared_arrays))
    written = json.loads((tmp_path / "prepared.json").read_text(encoding="utf-8"))
    recorded = json.loads((training_dir / "prepared.json").read_text(encoding="utf-8"))
    assert written["utterances"] == recorded["utterances"]
    assert written["files"] == recorded["files"]  # 2-name2text.txt and 6-name2semantic.tsv, byte for byte
    assert written["keys"] == recorded["keys"]


def test_a_v2pro_model_without_its_speaker_verification_checkpoint_is_refused(reference_dir, training_dir, tmp_path):
    from gsv_core.training.prepare import prepare_list_file

    models = reference_dir / "models"
    with pytest.raises(ValueError, match="v2ProPlus model: its training needs the speaker-verification checkpoint"):
        prepare_list_file(training_dir / "data" / "train.list", tmp_path, models / "chinese-roberta-tiny",
                          models / "chinese-hubert-tiny", models / "s2G-tiny-v2ProPlus.pth")
