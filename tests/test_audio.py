"""Reference audio: reading, validation and parity of the preprocessing with the official goldens."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
import torch

from gsv_core.audio import (
    AudioError,
    hubert_input,
    load_reference_audio,
    prepare_reference_audio,
    resample,
    samples_at_16k,
    spec_audio,
    sv_input,
)

CASES = ["v2_zh", "v2_zh_en_mixed", "v2Pro_zh"]


def _tone(seconds: float, sample_rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _write(tmp_path, name: str, data: np.ndarray, sample_rate: int, **kwargs) -> str:
    path = tmp_path / name
    soundfile.write(path, data, sample_rate, **kwargs)
    return str(path)


# --- parity with the official preprocessing ---------------------------------------------------


@pytest.fixture(scope="module", params=CASES)
def case(request, reference_dir):
    case_dir = reference_dir / "cases" / request.param
    inputs = json.loads((case_dir / "inputs.json").read_text())
    return case_dir, dict(np.load(case_dir / "intermediates.npz")), inputs


def test_hubert_input_matches_official(case):
    case_dir, arrays, _ = case
    samples, sample_rate = load_reference_audio(case_dir / "ref.wav")
    got = hubert_input(samples, sample_rate, model_sample_rate=32000)
    expected = arrays["hubert_input_wav16k_padded"]
    assert got.shape == expected.shape and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-6)


def test_spec_audio_matches_official(case):
    case_dir, arrays, _ = case
    samples, sample_rate = load_reference_audio(case_dir / "ref.wav")
    for key in arrays:
        if key.startswith("resample_") and key.endswith("_to_32000_out"):
            orig = int(key.split("_")[1])
            assert orig == sample_rate
            got = resample(torch.from_numpy(samples)[None], orig, 32000)
            np.testing.assert_allclose(got.numpy(), arrays[key], rtol=0, atol=1e-6)
    got = spec_audio(samples, sample_rate, 32000)
    assert got.shape == arrays["ref_audio_for_spec"].shape
    np.testing.assert_allclose(got.numpy(), arrays["ref_audio_for_spec"], rtol=0, atol=1e-6)


def test_sv_input_matches_official(reference_dir):
    case_dir = reference_dir / "cases" / "v2Pro_zh"
    arrays = np.load(case_dir / "intermediates.npz")
    samples, sample_rate = load_reference_audio(case_dir / "ref.wav")
    prepared = prepare_reference_audio(samples, sample_rate, 32000, with_sv=True)
    for key in ("sv_input_wav16k", "resample_32000_to_16000_out"):
        assert prepared.sv_input.shape == arrays[key].shape
        np.testing.assert_allclose(prepared.sv_input.numpy(), arrays[key], rtol=0, atol=1e-6)
    np.testing.assert_allclose(prepared.hubert_input.numpy(), arrays["hubert_input_wav16k_padded"], atol=1e-6)
    np.testing.assert_allclose(prepared.spec_audio.numpy(), arrays["ref_audio_for_spec"], atol=1e-6)


def test_reference_from_bytes_equals_reference_from_path(reference_dir):
    path = reference_dir / "cases" / "v2_zh" / "ref.wav"
    from_path = load_reference_audio(path)
    from_bytes = load_reference_audio(path.read_bytes())
    assert from_path[1] == from_bytes[1]
    np.testing.assert_array_equal(from_path[0], from_bytes[0])


# --- formats, channels and rates -----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["FLAC", "OGG", "WAV", "MP3"])
def test_formats_written_by_soundfile(tmp_path, fmt):
    data = _tone(4.0, 24000)
    path = _write(tmp_path, f"ref.{fmt.lower()}", data, 24000, format=fmt)
    samples, sample_rate = load_reference_audio(path)
    assert sample_rate == 24000 and samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.shape[0] - data.shape[0]) < 2400  # lossy codecs may pad a little
    if fmt in ("FLAC", "WAV"):
        np.testing.assert_allclose(samples, data, atol=1e-4)


def test_stereo_is_averaged(tmp_path):
    left, right = _tone(4.0, 16000, 0.6), _tone(4.0, 16000, 0.2)
    path = _write(tmp_path, "stereo.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    samples, _ = load_reference_audio(path)
    np.testing.assert_allclose(samples, (left + right) / 2, atol=1e-7)


@pytest.mark.parametrize("sample_rate", [8000, 16000, 22050, 44100, 48000])
def test_any_sample_rate_gives_model_inputs(tmp_path, sample_rate):
    path = _write(tmp_path, "ref.wav", _tone(5.0, sample_rate), sample_rate)
    samples, rate = load_reference_audio(path)
    prepared = prepare_reference_audio(samples, rate, 32000, with_sv=True)
    assert prepared.hubert_input.shape == (1, samples_at_16k(len(samples), rate) + 9600)
    assert abs(prepared.spec_audio.shape[1] - 5.0 * 32000) <= 1
    assert abs(prepared.sv_input.shape[1] - 5.0 * 16000) <= 1
    assert float(prepared.spec_audio.abs().max()) <= 1.0


def test_loud_float_audio_is_peak_normalised():
    samples = _tone(4.0, 32000, amplitude=1.5)
    out = spec_audio(samples, 32000, 32000)
    assert float(out.abs().max()) == pytest.approx(1.0, abs=1e-6)
    very_loud = spec_audio(_tone(4.0, 32000, amplitude=5.0), 32000, 32000)
    assert float(very_loud.abs().max()) == pytest.approx(2.5, abs=1e-5)  # divided by at most 2


def test_sv_input_of_16k_is_identity():
    audio = torch.randn(1, 48000)
    assert sv_input(audio, 16000) is audio


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [1.0, 2.9])
def test_too_short(tmp_path, seconds):
    path = _write(tmp_path, "short.wav", _tone(seconds, 22050), 22050)
    with pytest.raises(AudioError, match=r"between 3 and 10 seconds"):
        load_reference_audio(path)


def test_too_long(tmp_path):
    path = _write(tmp_path, "long.wav", _tone(10.5, 44100), 44100)
    with pytest.raises(AudioError, match=r"10\.50 s long"):
        load_reference_audio(path)


def test_length_limits_follow_the_16k_length(tmp_path):
    load_reference_audio(_write(tmp_path, "a.wav", _tone(3.0, 16000), 16000))
    load_reference_audio(_write(tmp_path, "b.wav", _tone(10.0, 16000), 16000))
    with pytest.raises(AudioError):
        load_reference_audio(_write(tmp_path, "c.wav", np.zeros(48000 - 1, np.float32) + 0.1, 16000))
    with pytest.raises(AudioError):
        hubert_input(np.full(160001, 0.1, np.float32), 16000)


def test_silent(tmp_path):
    path = _write(tmp_path, "silent.wav", np.zeros(16000 * 5, np.float32), 16000)
    with pytest.raises(AudioError, match="silent"):
        load_reference_audio(path)


def test_nan_and_inf(tmp_path):
    for bad in (np.nan, np.inf):
        data = _tone(5.0, 16000)
        data[100] = bad
        path = _write(tmp_path, "bad.wav", data, 16000, subtype="FLOAT")
        with pytest.raises(AudioError, match="NaN or infinite"):
            load_reference_audio(path)


def test_not_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not a wave file\n" * 100)
    with pytest.raises(AudioError, match=r"notes\.wav is not a readable audio file"):
        load_reference_audio(path)
    with pytest.raises(AudioError, match="not a readable audio file"):
        load_reference_audio(b"\x00\x01garbage" * 50)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        load_reference_audio(empty)
    with pytest.raises(AudioError, match="empty"):
        load_reference_audio(b"")
    with pytest.raises(AudioError, match="not found"):
        load_reference_audio(tmp_path / "missing.wav")
    no_frames = _write(tmp_path, "noframes.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="no audio samples"):
        load_reference_audio(no_frames)


def test_audio_error_is_a_value_error():
    assert issubclass(AudioError, ValueError)
