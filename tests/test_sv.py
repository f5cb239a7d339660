"""ERes2NetV2 speaker verification: filterbank and network parity with the official goldens."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchaudio

from gsv_core.features.eres2net import ERes2NetV2, ERes2NetV2Config
from gsv_core.features.sv import SpeakerEncoder, load_eres2netv2, sv_fbank


@pytest.fixture(scope="module")
def golden(reference_models_dir):
    return dict(np.load(reference_models_dir / "sv-eres2netv2-tiny.golden.npz"))


@pytest.fixture(scope="module")
def tiny_encoder(reference_models_dir):
    return SpeakerEncoder.from_checkpoint(reference_models_dir / "sv-eres2netv2-tiny.ckpt")


def assert_fbank_close(got: np.ndarray, want: np.ndarray, wav16k: np.ndarray) -> None:
    """Log-mel energies as close to the official ones as float32 allows.

    Both sides compute the filterbank in float32, and float32 itself is off the exact
    (float64) filterbank by up to ~2.2e-4 in the log domain in bins above 1e-7 of their
    frame's peak energy, and by ~5e-6 of the peak in energy (measured on the golden itself;
    the FFT backend and its rounding differ between CPUs: AMD EPYC and Intel Xeon AVX-512
    gave different bins). Two float32 results each within ``e`` of the exact value differ by
    at most ``2e``, so the bound is twice the golden's own measured error, never looser than
    1e-4 / 1e-6. Below 1e-7 of the peak only the energy is compared.
    """
    assert got.shape == want.shape
    exact = np.stack([
        torchaudio.compliance.kaldi.fbank(
            torch.from_numpy(np.asarray(wav, dtype=np.float64))[None], num_mel_bins=80, sample_frequency=16000, dither=0.0
        ).numpy()
        for wav in np.atleast_2d(wav16k)
    ])
    peak = exact.max(axis=-1, keepdims=True)
    above_noise = exact > peak + np.log(1e-7)
    log_bound = max(1e-4, 2 * float(np.abs(want - exact)[above_noise].max()))
    np.testing.assert_allclose(got[above_noise], want[above_noise], rtol=0, atol=log_bound)
    energy = lambda values: np.exp(values.astype(np.float64)) / np.exp(peak)  # noqa: E731
    energy_bound = max(1e-6, 2 * float(np.abs(energy(want) - energy(exact)).max()))
    assert np.abs(energy(got) - energy(want)).max() <= energy_bound


def test_fbank_matches_official(golden):
    got = sv_fbank(torch.from_numpy(golden["wav16k"]))
    assert_fbank_close(got.numpy(), golden["fbank"], golden["wav16k"])


def test_case_fbank_matches_official(reference_dir):
    arrays = np.load(reference_dir / "cases" / "v2Pro_zh" / "intermediates.npz")
    got = sv_fbank(torch.from_numpy(arrays["sv_input_wav16k"]))
    assert_fbank_close(got.numpy(), arrays["sv_fbank"], arrays["sv_input_wav16k"])


def test_tiny_config_is_read_from_the_checkpoint(reference_models_dir, tiny_encoder):
    tiny = json.loads((reference_models_dir / "tiny_configs.json").read_text())["sv_tiny"]
    assert tiny_encoder.config == ERes2NetV2Config(
        num_blocks=tuple(tiny["num_blocks"]),
        m_channels=tiny["m_channels"],
        base_width=tiny["baseWidth"],
        scale=tiny["scale"],
        expansion=tiny["expansion"],
    )
    assert tiny_encoder.embedding_dim == 1280


def test_tiny_outputs_match_official(golden, tiny_encoder):
    wav = torch.from_numpy(golden["wav16k"])
    pooled = tiny_encoder.sv_embedding(wav)
    assert pooled.shape == golden["forward3"].shape
    np.testing.assert_allclose(pooled.numpy(), golden["forward3"], rtol=0, atol=1e-4)
    embedding = tiny_encoder.speaker_embedding(wav[0])
    assert embedding.shape == golden["forward_embedding"].shape
    np.testing.assert_allclose(embedding.numpy(), golden["forward_embedding"], rtol=0, atol=1e-4)


def test_real_size_layout(reference_dir):
    manifest = json.loads((reference_dir / "shapes" / "eres2netv2_sv.json").read_text())
    expected = {key: entry["shape"] for key, entry in manifest["state_dict"].items()}
    config = ERes2NetV2Config()
    with torch.device("meta"):
        model = ERes2NetV2(config)
    state = model.state_dict()
    assert list(state) == list(expected)
    assert {key: list(value.shape) for key, value in state.items()} == expected
    assert sum(value.numel() for value in state.values()) == manifest["n_params"]  # buffers included
    assert config.pooled_dim == 20480
    meta_state = {key: torch.empty(shape, device="meta") for key, shape in expected.items()}
    assert ERes2NetV2Config.from_state_dict(meta_state) == config


def _save_random(path, config: ERes2NetV2Config) -> ERes2NetV2:
    torch.manual_seed(0)
    model = ERes2NetV2(config).eval()
    torch.save(model.state_dict(), path)
    return model


def test_loader_round_trip_and_shapes(tmp_path):
    config = ERes2NetV2Config(num_blocks=(1, 2, 1, 1), m_channels=8, base_width=16, scale=3, expansion=2)
    source = _save_random(tmp_path / "sv.ckpt", config)
    loaded = load_eres2netv2(tmp_path / "sv.ckpt")
    assert loaded.config == config
    fbank = torch.randn(2, 50, 80)
    with torch.no_grad():
        torch.testing.assert_close(loaded.pooled_features(fbank), source.pooled_features(fbank))
        assert loaded(fbank).shape == (2, 192)
    assert loaded.pooled_features(fbank).shape == (2, config.pooled_dim)


def test_loader_refuses_bad_files(tmp_path):
    config = ERes2NetV2Config(num_blocks=(1, 1, 1, 1), m_channels=8, base_width=8, scale=2, expansion=2)
    state = ERes2NetV2(config).state_dict()
    del state["layer4.0.conv3.weight"]
    torch.save(state, tmp_path / "missing.ckpt")
    with pytest.raises(ValueError, match=r"missing \['layer4\.0\.conv3\.weight'\]"):
        load_eres2netv2(tmp_path / "missing.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        load_eres2netv2(tmp_path / "junk.ckpt")
    with pytest.raises(ValueError, match="not found"):
        load_eres2netv2(tmp_path / "absent.ckpt")
    torch.save({"conv1.weight": torch.zeros(8, 1, 3, 3)}, tmp_path / "partial.ckpt")
    with pytest.raises(ValueError, match="not an ERes2NetV2 state dict"):
        load_eres2netv2(tmp_path / "partial.ckpt")


def test_sv_embedding_is_batched_per_waveform(tiny_encoder):
    torch.manual_seed(1)
    wavs = torch.randn(2, 16000) * 0.1
    batch = tiny_encoder.sv_embedding(wavs)
    torch.testing.assert_close(batch[1:], tiny_encoder.sv_embedding(wavs[1]), atol=1e-5, rtol=1e-5)
