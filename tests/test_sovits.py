"""The SoVITS decoder: every recorded intermediate of the public cases, real-size layouts, bad files."""

import json

import numpy as np
import pytest
import torch

from gsv_core.checkpoints import CheckpointError
from gsv_core.models.sovits import SoVITS, SynthesizerConfig, load_sovits
from gsv_core.models.sovits.model import _official_to_ours
from gsv_core.spectrogram import linear_spectrogram
from gsv_core.versions import VERSIONS

CASES = {"v2_zh": "s2G-tiny-v2.pth", "v2_zh_en_mixed": "s2G-tiny-v2.pth", "v2Pro_zh": "s2G-tiny-v2Pro.pth"}
ATOL = 1e-4


def _close(actual, expected, atol=ATOL):
    np.testing.assert_allclose(actual.detach().numpy(), expected, rtol=0, atol=atol)


@pytest.fixture(scope="module", params=list(CASES))
def case(request, reference_dir):
    data = np.load(reference_dir / "cases" / request.param / "intermediates.npz")
    model = load_sovits(reference_dir / "models" / CASES[request.param])
    return request.param, data, model


def test_reference_spectrogram_and_style(case):
    _, data, model = case
    spec = linear_spectrogram(torch.from_numpy(data["ref_audio_for_spec"]))
    _close(spec, data["refer_spec"])
    with torch.inference_mode():
        _close(model.ref_enc(torch.from_numpy(data["refer_spec"])), data["ge_ref_enc"])


def test_decoder_intermediates_and_waveform(case):
    name, data, model = case
    sv = torch.from_numpy(data["sv_embedding"]) if "sv_embedding" in data else None
    with torch.inference_mode():
        ge = model.global_embedding(torch.from_numpy(data["refer_spec"]), sv)
        _close(ge, data["flow_g"])
        if sv is not None:
            _close(model.sv_emb(sv), data["sv_emb_proj"])
            _close(ge, data["ge_after_prelu"])
            _close(model.ge_to512(ge.transpose(1, 2)), data["ge512"])
        codes, phones = torch.from_numpy(data["decode_codes"]), torch.from_numpy(data["decode_text"])
        content = torch.nn.functional.interpolate(model.quantizer.decode(codes[0]), scale_factor=2, mode="nearest")
        _close(content, data["enc_p_quantized_in"])
        m_p, logs_p = model.prior(codes, phones, ge)
        _close(m_p, data["enc_p_m_p"])
        _close(logs_p, data["enc_p_logs_p"])
        assert m_p.shape[-1] == data["enc_p_y_mask"].shape[-1] and data["enc_p_y_mask"].all()
        noise = torch.from_numpy(data["decode_noise"])
        z_p = m_p + noise * torch.exp(logs_p) * 0.5
        _close(z_p, data["flow_z_p"])
        _close(model.flow.reverse(z_p, ge), data["flow_z"])
        audio = model.decode(codes, phones, ge, noise=noise)
    _close(audio, data["decode_out"], atol=1e-5)


def test_prompt_codes_from_hubert_features(case):
    _, data, model = case
    content = torch.from_numpy(data["hubert_last_hidden_state"]).transpose(1, 2)
    with torch.inference_mode():
        codes = model.extract_latent(content)
    np.testing.assert_array_equal(codes[0, 0].numpy(), data["prompt_semantic"])


def test_seeded_decoding_is_reproducible(case):
    _, data, model = case
    codes, phones = torch.from_numpy(data["decode_codes"]), torch.from_numpy(data["decode_text"])
    ge = torch.from_numpy(data["flow_g"])
    with torch.inference_mode():
        first = model.decode(codes, phones, ge, generator=torch.Generator().manual_seed(3))
        again = model.decode(codes, phones, ge, generator=torch.Generator().manual_seed(3))
        slower = model.decode(codes, phones, ge, speed=0.8, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    assert first.shape[-1] == codes.shape[-1] * model.samples_per_token
    assert slower.shape[-1] > first.shape[-1]


@pytest.mark.parametrize("version", ["v2", "v2Pro", "v2ProPlus"])
def test_real_size_keys_and_shapes_match_the_manifest(reference_dir, version):
    manifest = json.loads((reference_dir / "shapes" / f"s2_{version}.json").read_text())
    saved = {k: torch.empty(v["shape"], device="meta") for k, v in manifest["state_dict_full"].items() if "enc_q" not in k}
    info = VERSIONS[version]
    config = SynthesizerConfig.from_checkpoint_config(manifest["config"], info.uses_sv, 732)
    with torch.device("meta"):
        model = SoVITS(config, info)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == {k: tuple(v.shape) for k, v in _official_to_ours(saved).items()}


def test_bad_files_give_clear_errors(tmp_path, reference_models_dir):
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes((reference_models_dir / "s2G-tiny-v2Pro.pth").read_bytes()[:100_000])
    with pytest.raises(CheckpointError, match="cut.pth"):
        load_sovits(truncated)
    odd_header = tmp_path / "odd.pth"
    odd_header.write_bytes(b"09" + (reference_models_dir / "s2G-tiny-v2.pth").read_bytes()[2:])
    with pytest.raises(CheckpointError, match="unknown header"):
        load_sovits(odd_header)
    with pytest.raises(CheckpointError, match="not a SoVITS file"):
        load_sovits(reference_models_dir / "s1-tiny.ckpt")
