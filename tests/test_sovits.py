"""The SoVITS decoder against the official goldens: every recorded intermediate of the public cases."""

import numpy as np
import pytest
import torch

from gsv_core.models.sovits import load_sovits
from gsv_core.spectrogram import linear_spectrogram

CASES = {"v2_zh": "s2G-tiny-v2.pth", "v2_zh_en_mixed": "s2G-tiny-v2.pth", "v2Pro_zh": "s2G-tiny-v2Pro.pth"}
ATOL = 1e-4  # hidden states and flow tensors
WAVE_ATOL = 1e-5  # the waveform


def _close(actual: torch.Tensor, expected: np.ndarray, atol: float = ATOL) -> None:
    assert tuple(actual.shape) == expected.shape
    np.testing.assert_allclose(actual.detach().numpy(), expected, rtol=0, atol=atol)


@pytest.fixture(scope="module")
def models(reference_models_dir):
    return {name: load_sovits(reference_models_dir / name) for name in set(CASES.values())}


@pytest.fixture(scope="module", params=list(CASES))
def case(request, reference_dir, models):
    data = np.load(reference_dir / "cases" / request.param / "intermediates.npz")
    arrays = {key: torch.from_numpy(data[key]) for key in data.files}
    return arrays, data, models[CASES[request.param]]


def test_reference_spectrogram(case):
    arrays, data, _ = case
    _close(linear_spectrogram(arrays["ref_audio_for_spec"]), data["refer_spec"])


def test_speaker_conditioning(case):
    arrays, data, model = case
    with torch.inference_mode():
        _close(model.style_encoder(arrays["refer_spec"]), data["ge_ref_enc"])
        sv = arrays.get("sv_embedding")
        ge = model.global_embedding(arrays["refer_spec"], sv)
        if sv is not None:
            projection = model.speaker_projection
            _close(projection.sv_proj(sv), data["sv_emb_proj"])
            _close(ge, data["ge_after_prelu"])
            _close(projection.for_text_encoder(ge).transpose(1, 2), data["ge512"])
        else:
            assert model.speaker_projection is None
    _close(ge, data["flow_g"])


def test_decoder_intermediates_and_waveform(case):
    arrays, data, model = case
    codes, phones, ge, noise = arrays["decode_codes"], arrays["decode_text"], arrays["flow_g"], arrays["decode_noise"]
    with torch.inference_mode():
        _close(model.content(codes), data["enc_p_quantized_in"])
        m_p, logs_p = model.prior(codes, phones, ge)
        _close(m_p, data["enc_p_m_p"])
        _close(logs_p, data["enc_p_logs_p"])
        # one unpadded sequence: the official mask is all ones over exactly our frames
        assert data["enc_p_y_mask"].shape == (1, 1, m_p.shape[-1]) and data["enc_p_y_mask"].all()
        z_p = m_p + noise * torch.exp(logs_p) * 0.5
        _close(z_p, data["flow_z_p"])
        _close(model.flow.reverse(z_p, ge), data["flow_z"])
        audio = model.decode(codes, phones, ge, noise=noise)
    _close(audio, data["decode_out"], atol=WAVE_ATOL)


def test_decode_from_reference_matches_the_recorded_waveform(case):
    arrays, data, model = case
    with torch.inference_mode():
        audio = model.decode_with_reference(
            arrays["decode_codes"], arrays["decode_text"], arrays["refer_spec"], arrays.get("sv_embedding"),
            noise=arrays["decode_noise"], noise_scale=0.5,
        )
    _close(audio, data["decode_out"], atol=WAVE_ATOL)


def test_prompt_codes_from_hubert_features(case):
    arrays, data, model = case
    content = arrays["hubert_last_hidden_state"].transpose(1, 2)
    with torch.inference_mode():
        codes = model.extract_latent(content)
    assert codes.dtype == torch.int64
    np.testing.assert_array_equal(codes[0, 0].numpy(), data["prompt_semantic"])


def test_spectrogram_frames_and_bad_audio():
    audio = torch.randn(1, 32000) * 0.1
    assert linear_spectrogram(audio).shape == (1, 1025, 32000 // 640)
    assert torch.allclose(linear_spectrogram(torch.zeros(1, 6400)), torch.tensor(1e-4))
    for bad in (torch.zeros(6400), torch.zeros(1, 6400, dtype=torch.int16), torch.zeros(1, 704)):
        with pytest.raises(ValueError, match="audio"):
            linear_spectrogram(bad)
