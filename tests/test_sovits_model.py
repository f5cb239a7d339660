"""The SoVITS decoder without goldens: real-size layouts, tiny random round trips, bad files and bad inputs."""

import io
import json
import re
import warnings

import pytest
import torch

from gsv_core.checkpoints import CheckpointError
from gsv_core.models.sovits import SoVITS, SynthesizerConfig, SynthesizerConfigError, load_sovits
from gsv_core.models.sovits.loader import fold_weight_norm, official_to_ours
from gsv_core.versions import VERSIONS

TINY_MODEL = {
    "inter_channels": 8, "hidden_channels": 16, "filter_channels": 24, "n_heads": 2, "n_layers": 2, "kernel_size": 3,
    "resblock": "1", "resblock_kernel_sizes": [3, 5], "resblock_dilation_sizes": [[1, 3], [1, 3]],
    "upsample_rates": [10, 8, 8], "upsample_initial_channel": 16, "upsample_kernel_sizes": [20, 16, 16],
    "gin_channels": 512, "semantic_frame_rate": "25hz",
}

# ours -> official, the inverse of the loader's RENAMES (written out independently on purpose)
TO_OFFICIAL = (
    (r"text_encoder\.", "enc_p."),
    (r"generator\.", "dec."),
    (r"flow\.couplings\.(\d+)\.", lambda m: f"flow.flows.{2 * int(m[1])}."),
    (r"style_encoder\.spectral_in\.", "ref_enc.spectral.0.fc."),
    (r"style_encoder\.spectral_out\.", "ref_enc.spectral.3.fc."),
    (r"style_encoder\.temporal\.(\d+)\.conv\.", r"ref_enc.temporal.\1.conv1.conv."),
    (r"style_encoder\.attention\.query\.", "ref_enc.slf_attn.w_qs."),
    (r"style_encoder\.attention\.key\.", "ref_enc.slf_attn.w_ks."),
    (r"style_encoder\.attention\.value\.", "ref_enc.slf_attn.w_vs."),
    (r"style_encoder\.attention\.out\.", "ref_enc.slf_attn.fc."),
    (r"style_encoder\.out_proj\.", "ref_enc.fc.fc."),
    (r"codec\.ssl_proj\.", "ssl_proj."),
    (r"codec\.quantizer\.codebooks\.(\d+)", r"quantizer.vq.layers.\1._codebook.embed"),
    (r"speaker_projection\.sv_proj\.", "sv_emb."),
    (r"speaker_projection\.prelu\.", "prelu."),
    (r"speaker_projection\.to_mrte\.", "ge_to512."),
)
WEIGHT_NORMED = re.compile(r"dec\.(ups\.\d+|resblocks\.\d+\.convs[12]\.\d+)\.weight$|flow\.flows\.\d+\.enc\.(in_layers\.\d+|res_skip_layers\.\d+|cond_layer)\.weight$")


def _tiny_config(version: str, **model_overrides) -> dict:
    model = dict(TINY_MODEL, **model_overrides)
    if VERSIONS[version].uses_sv:
        model["gin_channels"] = 24
    return {"model": model, "data": {"hop_length": 640, "sampling_rate": 32000}}


def _tiny_model(version: str, seed: int = 0) -> SoVITS:
    torch.manual_seed(seed)
    info = VERSIONS[version]
    model = SoVITS(SynthesizerConfig.from_checkpoint_config(_tiny_config(version), info.uses_sv), info)
    with torch.no_grad():
        for parameter in model.parameters():  # zero-initialised parts (rel. embeddings, codebook) get values too
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model.eval()


def _to_official(model: SoVITS) -> dict[str, torch.Tensor]:
    """Our state dict in the official layout: renamed, weight norm split into weight_g/weight_v, codebook stats added."""
    official = {}
    for key, tensor in model.state_dict().items():
        for pattern, replacement in TO_OFFICIAL:
            key, count = re.subn("^" + pattern, replacement, key)
            if count:
                break
        if WEIGHT_NORMED.match(key):
            scale = torch.rand(tensor.shape[0], *[1] * (tensor.dim() - 1)) + 0.5  # any positive rescale of v
            direction = tensor * scale
            official[key + "_g"] = tensor.norm(dim=tuple(range(1, tensor.dim())), keepdim=True)
            official[key + "_v"] = direction
        else:
            official[key] = tensor.clone()
        if key.endswith("_codebook.embed"):
            stem = key[: -len("embed")]
            official |= {stem + "inited": torch.ones(1), stem + "cluster_size": torch.ones(1024), stem + "embed_avg": tensor.clone()}
    return official


def _save_official(path, model: SoVITS, weights: dict | None = None, header: bytes | None = None) -> None:
    weights = _to_official(model) if weights is None else weights
    buffer = io.BytesIO()
    config = _tiny_config(model.version.name)
    torch.save({"weight": weights, "config": config, "info": "tiny"}, buffer)
    data = buffer.getvalue()
    path.write_bytes((header or model.version.header) + data[2:])


def _inputs(model: SoVITS, tokens: int = 12):
    generator = torch.Generator().manual_seed(1)
    codes = torch.randint(0, 1024, (1, 1, tokens), generator=generator)
    phones = torch.randint(0, 732, (1, 7), generator=generator)
    spec = torch.rand(1, 1025, 30, generator=generator)
    sv = torch.randn(1, 20480, generator=generator) if model.version.uses_sv else None
    return codes, phones, spec, sv


@pytest.mark.parametrize("version", ["v2", "v2Pro", "v2ProPlus"])
def test_real_size_layout_matches_the_manifest(reference_dir, version):
    manifest = json.loads((reference_dir / "shapes" / f"s2_{version}.json").read_text())
    saved = {k: torch.empty(v["shape"], device="meta") for k, v in manifest["state_dict_full"].items() if "enc_q" not in k}
    config = SynthesizerConfig.from_checkpoint_config(manifest["config"], VERSIONS[version].uses_sv)
    with torch.device("meta"):
        model = SoVITS(config, VERSIONS[version])
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == {k: tuple(v.shape) for k, v in official_to_ours(saved).items()}
    assert config.samples_per_token == 1280


def test_weight_norm_folding_matches_torch():
    torch.manual_seed(0)
    for layer in (torch.nn.Conv1d(4, 6, 3), torch.nn.ConvTranspose1d(6, 3, 8, 4)):
        with warnings.catch_warnings():  # the legacy form is the one upstream files were written with
            warnings.simplefilter("ignore", FutureWarning)
            legacy = torch.nn.utils.weight_norm(layer)
        with torch.no_grad():
            legacy.weight_g.mul_(1.7)
            legacy(torch.randn(1, layer.in_channels, 5))  # recomputes .weight from g and v
        folded = fold_weight_norm({"x.weight_g": legacy.weight_g, "x.weight_v": legacy.weight_v})
        torch.testing.assert_close(folded["x.weight"], legacy.weight, rtol=0, atol=1e-7)
    with pytest.raises(CheckpointError, match="partner"):
        fold_weight_norm({"x.weight_g": torch.ones(2, 1, 1)})


@pytest.mark.parametrize("version", ["v2", "v2Pro"])
def test_tiny_round_trip_through_the_official_format(tmp_path, version):
    model = _tiny_model(version)
    path = tmp_path / "tiny.pth"
    _save_official(path, model)  # float32 (official files hold float16; the reader widens them)
    loaded = load_sovits(path)
    assert loaded.config == model.config and loaded.version.name == version
    codes, phones, spec, sv = _inputs(model)
    with torch.inference_mode():
        ge = model.global_embedding(spec, sv)
        torch.testing.assert_close(loaded.global_embedding(spec, sv), ge, rtol=1e-5, atol=1e-5)
        expected = model.decode(codes, phones, ge, generator=torch.Generator().manual_seed(3))
        actual = loaded.decode(codes, phones, ge, generator=torch.Generator().manual_seed(3))
        content = torch.randn(1, 768, 2 * codes.shape[-1])
        assert torch.equal(loaded.extract_latent(content), model.extract_latent(content))
    assert actual.shape == (1, 1, codes.shape[-1] * 1280)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_decoding_is_reproducible_and_speed_changes_length():
    model = _tiny_model("v2")
    codes, phones, spec, _ = _inputs(model)
    with torch.inference_mode():
        ge = model.global_embedding(spec)
        first = model.decode(codes, phones, ge, generator=torch.Generator().manual_seed(3))
        again = model.decode(codes, phones, ge, generator=torch.Generator().manual_seed(3))
        other = model.decode(codes, phones, ge, generator=torch.Generator().manual_seed(4))
        slower = model.decode(codes, phones, ge, speed=0.8, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert slower.shape[-1] == (int(2 * codes.shape[-1] / 0.8) + 1) * 640


def test_bad_decode_inputs_give_clear_errors():
    model = _tiny_model("v2Pro")
    codes, phones, spec, sv = _inputs(model)
    seeded = {"generator": torch.Generator().manual_seed(0)}
    with torch.inference_mode():
        with pytest.raises(ValueError, match="speaker-verification"):
            model.global_embedding(spec)
        ge = model.global_embedding(spec, sv)
        with pytest.raises(ValueError, match="noise tensor or a torch.Generator"):
            model.decode(codes, phones, ge)
        with pytest.raises(ValueError, match="semantic codes must lie"):
            model.decode(torch.full_like(codes, 1024), phones, ge, **seeded)
        with pytest.raises(ValueError, match="phone ids"):
            model.decode(codes, phones + 732, ge, **seeded)
        with pytest.raises(ValueError, match="ge must be"):
            model.decode(codes, phones, ge[:, :5], **seeded)
        with pytest.raises(ValueError, match="noise must have"):
            model.decode(codes, phones, ge, noise=torch.zeros(1, 8, 5))
        with pytest.raises(ValueError, match="HuBERT content"):
            model.extract_latent(torch.zeros(1, 100, 10))


def test_config_errors_are_specific():
    with pytest.raises(SynthesizerConfigError, match="25 Hz"):
        SynthesizerConfig.from_checkpoint_config(_tiny_config("v2", semantic_frame_rate="50hz"), False)
    with pytest.raises(SynthesizerConfigError, match="resblock type 1"):
        SynthesizerConfig.from_checkpoint_config(_tiny_config("v2", resblock="2"), False)
    with pytest.raises(SynthesizerConfigError, match="lacks 'gin_channels'"):
        SynthesizerConfig.from_checkpoint_config({"model": {k: v for k, v in TINY_MODEL.items() if k != "gin_channels"}}, False)
    with pytest.raises(SynthesizerConfigError, match="hop is 320"):
        SynthesizerConfig.from_checkpoint_config({"model": TINY_MODEL, "data": {"hop_length": 320}}, False)


def test_bad_files_give_clear_errors(tmp_path, reference_models_dir):
    model = _tiny_model("v2Pro")
    good = tmp_path / "good.pth"
    _save_official(good, model)
    data = good.read_bytes()
    cases = {
        "truncated.pth": (data[: len(data) // 2], "truncated.pth"),
        "garbage.pth": (b"05" + bytes(range(256)) * 64, "garbage.pth"),
        "odd_header.pth": (b"09" + data[2:], "unknown header"),
        "empty.pth": (b"", "empty.pth"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=message):
            load_sovits(tmp_path / name)
    with pytest.raises(CheckpointError, match="GPT"):
        load_sovits(reference_models_dir / "s1-tiny.ckpt")
    with pytest.raises(CheckpointError, match="not found"):
        load_sovits(tmp_path / "missing.pth")


def test_mismatched_weights_name_the_key(tmp_path):
    model = _tiny_model("v2Pro")
    official = _to_official(model)
    broken = {
        "missing": ({k: v for k, v in official.items() if k != "enc_p.proj.bias"}, "enc_p.proj.bias|text_encoder.proj.bias"),
        "shape": (official | {"dec.conv_post.weight": torch.zeros(1, 2, 3)}, "generator.conv_post.weight has shape"),
        "unknown": (official | {"mystery.weight": torch.zeros(1)}, "mystery.weight"),
        "v1": (official | {"enc_p.text_embedding.weight": torch.zeros(322, 16)}, "v1 SoVITS"),
    }
    for name, (weights, message) in broken.items():
        _save_official(tmp_path / f"{name}.pth", model, weights)
        with pytest.raises(CheckpointError, match=message):
            load_sovits(tmp_path / f"{name}.pth")
    _save_official(tmp_path / "header.pth", model, official, header=b"PK")
    with pytest.raises(CheckpointError, match="has speaker-verification weights, but its header marks it v2"):
        load_sovits(tmp_path / "header.pth")


@pytest.mark.parametrize("version", ["v2", "v2Pro"])
def test_a_batch_decodes_each_item_with_its_own_speaker(version):
    """B items of equal length, one ge each: every row equals decoding that item alone."""
    model = _tiny_model(version)
    codes, phones, spec, sv = _inputs(model)
    other_codes, other_phones = torch.randint(0, 1024, codes.shape), torch.randint(0, 732, phones.shape)
    with torch.inference_mode():
        ges = [model.global_embedding(spec, sv), model.global_embedding(spec * 0.5 + 0.1, None if sv is None else -sv)]
        noise = torch.randn(2, model.config.inter_channels, 2 * codes.shape[-1])
        batch = model.decode(torch.cat([codes, other_codes], 1), torch.cat([phones, other_phones]), torch.cat(ges), noise=noise)
        alone = [model.decode(c, p, g, noise=n[None]) for c, p, g, n in zip((codes, other_codes), (phones, other_phones), ges, noise)]
    assert batch.shape == (2, 1, codes.shape[-1] * 1280)
    torch.testing.assert_close(batch, torch.cat(alone), rtol=0, atol=1e-6)
