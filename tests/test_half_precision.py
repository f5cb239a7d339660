"""float16 and bfloat16 models on the CPU: float32 inputs are cast on entry, results leave as float32.

Measure: the signal-to-noise ratio against the official float32 arrays (same codes, phones,
reference and injected noise), SNR = 10 log10(sum(ref^2) / sum((out - ref)^2)) in dB, at
three points: the speaker embedding ``ge`` (where the spectrogram and SV casts act), the
prior mean ``m_p`` (text encoder) and the waveform. A format with p explicit mantissa bits
rounds each value with a relative error of up to 2^-(p+1), an SNR ceiling of about 66 dB for
float16 (p = 10) and 48 dB for bfloat16 (p = 7); stacked layers add up such errors.

Measured on a 2-core x86 CPU (torch 2.11), v2 / v2ProPlus:
  float16   ge 72.6 / 69.1 dB, m_p 62.1 / 62.5 dB, waveform 50.3 / 54.1 dB
  bfloat16  ge 48.6 / 47.5 dB, m_p 42.6 / 42.8 dB, waveform 31.2 / 36.1 dB
  ERes2NetV2 SV features: float16 68 dB, bfloat16 49 dB.
Each threshold sits 7 dB or more below the lowest measured value. The waveform alone is a weak
witness with these tiny random decoders: their output barely depends on ``ge`` or the noise
(decoding with ge = 0 still scores 59 / 48 dB against the original), hence the ge and m_p checks.
"""

import numpy as np
import pytest
import torch

from gsv_core.features.sv import SpeakerEncoder
from gsv_core.models.sovits import load_sovits

CASES = {"v2": ("v2_zh", "s2G-tiny-v2.pth"), "v2ProPlus": ("v2ProPlus_zh", "s2G-tiny-v2ProPlus.pth")}
MIN_SNR_DB = {  # (ge, m_p, waveform)
    torch.float16: (60.0, 52.0, 43.0),
    torch.bfloat16: (38.0, 33.0, 24.0),
}
MIN_SV_SNR_DB = {torch.float16: 58.0, torch.bfloat16: 40.0}
HALF_DTYPES = [pytest.param(torch.float16, id="fp16"), pytest.param(torch.bfloat16, id="bf16")]


def snr_db(reference: torch.Tensor, actual: torch.Tensor) -> float:
    return float(10 * torch.log10(reference.pow(2).sum() / (actual - reference).pow(2).sum()))


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("version", list(CASES))
def test_half_model_decodes_float32_inputs(reference_dir, version, dtype):
    case, weights = CASES[version]
    data = np.load(reference_dir / "cases" / case / "intermediates.npz")
    arrays = {key: torch.from_numpy(data[key]) for key in ("decode_codes", "decode_text", "decode_noise", "refer_spec")}
    sv = torch.from_numpy(data["sv_embedding"]) if "sv_embedding" in data.files else None
    model = load_sovits(reference_dir / "models" / weights, dtype=dtype)
    assert model.dtype == dtype
    with torch.inference_mode():
        ge = model.global_embedding(arrays["refer_spec"], sv)  # float32 spectrogram and SV features in
        m_p, _ = model.prior(arrays["decode_codes"], arrays["decode_text"], ge)
        audio = model.decode(arrays["decode_codes"], arrays["decode_text"], ge, noise=arrays["decode_noise"])
        streamed = model.decode_streaming(
            arrays["decode_codes"], arrays["decode_text"], ge, result_tokens=8,
            overlap_frames=torch.zeros(1, model.config.hidden_channels, 4), noise=arrays["decode_noise"][..., -16:],
        )
    assert ge.dtype == audio.dtype == streamed.audio.dtype == streamed.latent.dtype == torch.float32
    assert torch.isfinite(audio).all()
    measured = [snr_db(torch.from_numpy(data[key]), ours.float()) for key, ours in
                (("flow_g", ge), ("enc_p_m_p", m_p), ("decode_out", audio))]
    assert all(snr >= floor for snr, floor in zip(measured, MIN_SNR_DB[dtype])), f"{version} {dtype}: {measured} dB"


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_half_speaker_verification(reference_models_dir, dtype):
    golden = np.load(reference_models_dir / "sv-eres2netv2-tiny.golden.npz")
    encoder = SpeakerEncoder.from_checkpoint(reference_models_dir / "sv-eres2netv2-tiny.ckpt", dtype=dtype)
    pooled = encoder.sv_embedding(torch.from_numpy(golden["wav16k"]))  # filterbank in float32, then cast
    assert pooled.dtype == torch.float32
    snr = snr_db(torch.from_numpy(golden["forward3"]), pooled)
    assert snr >= MIN_SV_SNR_DB[dtype], f"{dtype}: {snr:.1f} dB"
