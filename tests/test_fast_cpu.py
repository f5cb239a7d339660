"""The fast CPU mode (--precision int8): where it is allowed, what it quantizes, and that it
decodes the public cases' tokens end to end through the command line."""

import copy
import json

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from torch import nn

from gsv_core.__main__ import main
from gsv_core.devices import resolve_placement, resolve_precision
from gsv_core.engine.fast_cpu import FastCpuMode, quantize_linears
from gsv_core.models.t2s import DecodeRow, T2SConfig, Text2Semantic, load_t2s, project
from gsv_core.models.sampling import SamplingOptions
from test_pipeline_parity import CASES, _argv

TINY = T2SConfig(vocab_size=65, phoneme_vocab_size=40, embedding_dim=32, hidden_dim=32, num_heads=2, num_layers=2, eos=64)


def test_int8_is_a_cpu_placement_in_float32():
    placement = resolve_placement("cpu", "int8")
    assert placement.int8 and placement.dtype == torch.float32 and placement.precision == "int8"
    assert not resolve_placement("cpu", "fp32").int8


def test_int8_on_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="int8.*CPU only"):
        resolve_precision("int8", torch.device("cuda"))


def test_the_app_refuses_int8_on_a_gpu(monkeypatch):
    from voice_studio.server import main as serve

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(SystemExit, match="int8.*CPU only"):
        serve(["--device", "cuda", "--precision", "int8"])


def test_quantize_linears_refuses_half_precision_weights():
    with pytest.raises(ValueError, match="float32"):
        quantize_linears(nn.Sequential(nn.Linear(4, 4)).half())


def test_quantized_layers_go_through_project_and_decode():
    torch.manual_seed(0)
    model = Text2Semantic(TINY).eval()
    quantize_linears(model.layers)
    assert not isinstance(model.layers[0].qkv, nn.Linear) and isinstance(model.semantic_head, nn.Linear)
    x = torch.randn(1, 1, 32)
    assert project(x, model.layers[0].ffn_in).shape == (1, 1, 128)
    row = DecodeRow(torch.randint(0, 40, (6,)), torch.randn(1024, 6), torch.randint(0, 64, (4,)), SamplingOptions(top_k=1))
    tokens = model.generate([row], max_steps=20)[0]
    assert 0 < len(tokens) <= 20 and int(tokens.max()) < 64


# Teacher-forced on the official tokens of the public cases, the tiny GPT (hidden 96, 3
# layers) in int8 picks the float32 model's top token at 94.4% (v2_zh), 98.1%, 96.5% and
# 98.8% of the positions, with per-step logit cosines of at least 0.99992 (measured). Its
# logits are flat (random-like weights), so near-ties flip; the real model's figures are in
# benchmarks/bench_cpu.py. Floors with some margin:
TOP1_FLOOR = 0.90
COSINE_FLOOR = 0.9995
CASE_NAMES = ["v2_zh", "v2ProPlus_zh", "v2_zh_en_mixed", "v2Pro_zh"]


def test_int8_gpt_agrees_with_float32_on_the_public_tokens(reference_dir):
    fp32 = load_t2s(reference_dir / "models" / "s1-tiny.ckpt")
    int8 = copy.deepcopy(fp32)
    quantize_linears(int8.layers)  # what quantize_for_cpu does to the GPT stage
    for case in CASE_NAMES:
        golden = np.load(reference_dir / "cases" / case / "intermediates.npz")
        phones = torch.as_tensor(golden["t2s_all_phoneme_ids"]).view(-1)
        tokens = torch.as_tensor(golden["t2s_y_full"]).view(-1)
        bert = torch.cat([torch.as_tensor(golden["prompt_bert"]), torch.as_tensor(golden["target_bert_0"])], dim=1)
        prompt = golden["prompt_semantic"].size
        expected, got = (model.teacher_forced_logits(phones, bert, tokens, prompt) for model in (fp32, int8))
        assert (expected.argmax(-1) == got.argmax(-1)).float().mean() >= TOP1_FLOOR, case
        assert F.cosine_similarity(expected, got, dim=-1).min() >= COSINE_FLOOR, case


# Free-running, a flipped near-tie changes every later token (the int8 CLI's first
# difference from the official tokens: generated token 23 of v2_zh, 37 of v2ProPlus_zh).
SAME_PREFIX = 10


@pytest.mark.parametrize("case", ["v2_zh", "v2ProPlus_zh"])
def test_int8_cli_runs_end_to_end(case, reference_dir, tmp_path):
    case_dir, models = reference_dir / "cases" / case, reference_dir / "models"
    golden = np.load(case_dir / "intermediates.npz")
    inputs = json.loads((case_dir / "inputs.json").read_text())["inputs"]
    np.savez(tmp_path / "noise.npz", decode_noise_0=golden["decode_noise"])
    argv = _argv(case_dir, models, CASES[case], inputs, tmp_path, reference_dir)
    noise = argv.index("--noise")  # the official draws fit the official token count only
    argv = argv[:noise] + argv[noise + 2 :] + ["--precision", "int8", "--device", "cpu"]
    if "sv_embedding" in golden:
        np.save(tmp_path / "sv.npy", golden["sv_embedding"])
        argv += ["--sv-embedding", str(tmp_path / "sv.npy")]
    assert main(argv) == 0
    dump = np.load(tmp_path / "dump.npz")
    np.testing.assert_array_equal(dump["prompt_semantic"], golden["prompt_semantic"])  # HuBERT stays float32
    # (the tiny BERT keeps no encoder layer once cut at hidden_states[-3], so its features are exact here)
    prompt = golden["prompt_semantic"].size
    ours, official = dump["t2s_y_full"].ravel()[prompt:], golden["t2s_y_full"].ravel()[prompt:]
    np.testing.assert_array_equal(ours[:SAME_PREFIX], official[:SAME_PREFIX])
    audio, rate = sf.read(tmp_path / "out.wav", dtype="int16")
    assert rate == 32000 and len(audio) >= len(ours) * 1280 and np.abs(audio).max() > 0  # 1280 samples per token


def _tiny_v2_pipeline(models, fast_cpu: FastCpuMode | None = None):
    """The goldens' tiny v2 model set, loaded as the app loads it (float32, CPU; the fast mode when given)."""
    from gsv_core.engine.pipeline import VoicePipeline

    return VoicePipeline.from_paths(models / "s1-tiny.ckpt", models / "s2G-tiny-v2.pth",
                                    models / "chinese-hubert-tiny", models / "chinese-roberta-tiny", fast_cpu=fast_cpu)


def _snr_db(reference: torch.Tensor, other: torch.Tensor) -> float:
    return float(10 * torch.log10(reference.pow(2).sum() / (reference - other).pow(2).sum()))


@pytest.mark.parametrize("case", ["v2_zh", "v2ProPlus_zh"])
def test_a_bfloat16_generator_decodes_the_public_tokens_close_to_float32(case, reference_dir):
    """The fast mode's bfloat16 generator against float32 on the official tokens, phones, ge and
    noise of a public case: same length, SNR >= 30 dB (bfloat16 keeps 8 bits of mantissa, ~48 dB
    per rounding; the convolution stack loses some of it: 40-42 dB measured at real size)."""
    from gsv_core.models.sovits import load_sovits

    golden = np.load(reference_dir / "cases" / case / "intermediates.npz")
    model = load_sovits(reference_dir / "models" / CASES[case])
    codes, phones = torch.as_tensor(golden["decode_codes"]), torch.as_tensor(golden["decode_text"])
    ge, noise = torch.as_tensor(golden["flow_g"]), torch.as_tensor(golden["decode_noise"])
    expected = model.decode(codes, phones, ge, noise=noise)
    np.testing.assert_allclose(expected.numpy(), golden["decode_out"], atol=1e-5)  # the float32 baseline is official
    model.generator.to(torch.bfloat16)
    got = model.decode(codes, phones, ge, noise=noise)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    assert _snr_db(expected, got) >= 30.0


def test_the_fast_mode_puts_the_generator_in_bfloat16_where_the_cpu_computes_it(monkeypatch, reference_models_dir):
    """generator_bfloat16=None follows the CPU (oneDNN's probe); True/False force it; the GPT
    and BERT quantization is the same either way."""
    import gsv_core.engine.fast_cpu as fast_cpu
    from gsv_core.engine.fast_cpu import GENERATOR_WINDOW

    models = reference_models_dir
    for native, forced, expected in ((True, None, torch.bfloat16), (False, None, torch.float32),
                                     (False, True, torch.bfloat16), (True, False, torch.float32)):
        monkeypatch.setattr(fast_cpu, "native_bfloat16", lambda native=native: native)
        pipeline = _tiny_v2_pipeline(models, fast_cpu.FastCpuMode(generator_bfloat16=forced))
        assert pipeline.sovits.generator.conv_pre.weight.dtype == expected
        assert pipeline.sovits.generator.window == (None if expected == torch.float32 else GENERATOR_WINDOW)
        assert not isinstance(pipeline.t2s.layers[0].qkv, nn.Linear)
        assert pipeline.sovits.text_encoder.proj.weight.dtype == torch.float32  # the rest of SoVITS stays


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("frames", [5, 12, 24, 25, 47, 60])
def test_a_windowed_generator_gives_the_same_audio(dtype, frames, reference_dir):
    """Windows with a margin past the receptive field give one pass's samples and length, for
    lengths inside the first window, on window edges and past several; two shapes only."""
    from gsv_core.models.sovits import load_sovits

    generator = load_sovits(reference_dir / "models" / CASES["v2_zh"]).to(dtype).generator
    latent = torch.randn(1, generator.conv_pre.in_channels, frames, generator=torch.Generator().manual_seed(frames))
    g = torch.randn(1, generator.cond.in_channels, 1, generator=torch.Generator().manual_seed(1))
    whole = generator(latent, g)
    generator.window = (12, 12)  # a margin over the tiny model's receptive field (measured below)
    shapes = []
    inner = generator._forward
    generator._forward = lambda x, g, lengths: shapes.append(x.shape[-1]) or inner(x, g, lengths)
    windowed = generator(latent, g)
    assert windowed.shape == whole.shape and set(shapes) <= {12 + 12, 12 + 24}
    tolerance = 1e-5 if dtype == torch.float32 else 3e-2
    torch.testing.assert_close(windowed, whole, atol=tolerance, rtol=0)


def test_the_tiny_generators_receptive_field_fits_the_tests_margin(reference_dir):
    """A change to one latent frame moves output samples within 12 frames of it (the margin above)."""
    from gsv_core.models.sovits import load_sovits

    generator = load_sovits(reference_dir / "models" / CASES["v2_zh"]).generator
    latent = torch.randn(1, generator.conv_pre.in_channels, 60)
    g = torch.randn(1, generator.cond.in_channels, 1)
    moved = latent.clone()
    moved[..., 30] += 1.0
    changed = torch.nonzero((generator(latent, g) - generator(moved, g)).abs()[0, 0] > 0).flatten()
    per_frame = generator.frame_lengths(1)[-1]
    assert 30 - 12 <= int(changed.min()) // per_frame and int(changed.max()) // per_frame <= 30 + 12


def test_the_fast_mode_builds_both_window_shapes_at_once(reference_models_dir, monkeypatch):
    """The fast mode runs the windowed generator over two windows, so both shapes' kernels exist
    before the first request (oneDNN builds them per shape, seconds each in bfloat16)."""
    from gsv_core.engine.fast_cpu import GENERATOR_WINDOW
    from gsv_core.models.sovits.generator import Generator

    models = reference_models_dir
    shapes = []
    inner = Generator._forward
    monkeypatch.setattr(Generator, "_forward", lambda self, x, g, lengths: shapes.append(x.shape[-1]) or inner(self, x, g, lengths))
    _tiny_v2_pipeline(models, FastCpuMode(generator_bfloat16=True))
    size, margin = GENERATOR_WINDOW
    assert shapes == [size + margin, size + 2 * margin]


def test_the_fast_mode_caches_speakers_apart_from_float32(reference_models_dir, tmp_path, reference_dir):
    """int8 BERT makes slightly different prompt BERT features, so the speaker library keys the fast
    mode's embeddings apart: a voice stored by a float32 server is prepared again, not reused."""
    from gsv_core.speakers import SpeakerLibrary
    from gsv_core.speakers.records import validate_weights_key

    models = reference_models_dir
    pipeline = _tiny_v2_pipeline(models)
    library = SpeakerLibrary(tmp_path / "speakers")
    reference = (reference_dir / "cases" / "v2_zh" / "ref.wav").read_bytes()
    info = library.add(reference, "这是一段用来测试的参考音频。", "zh", "Ref", prepare=pipeline.prepare_speaker,
                       weights_key=pipeline.weights_key)
    float32_key = pipeline.weights_key
    pipeline = _tiny_v2_pipeline(models, FastCpuMode(generator_bfloat16=False))
    assert pipeline.weights_key == f"{float32_key}-int8" and validate_weights_key(pipeline.weights_key)
    prepared = []

    def prepare(*args, **kwargs):
        prepared.append(args)
        return pipeline.prepare_speaker(*args, **kwargs)

    library.conditioning(info.id, prepare=prepare, weights_key=pipeline.weights_key)
    assert len(prepared) == 1  # not the float32 embeddings stored with the voice


def test_int8_linear_gives_what_pytorch_dynamic_quantization_gives_without_its_deprecation_warning():
    """The fast mode's own int8 layer calls ATen's FBGEMM kernels directly: the outputs of
    ``torch.ao.quantization.quantize_dynamic`` bit for bit, and no DeprecationWarning."""
    import warnings

    torch.manual_seed(0)
    for shape in ((64, 32), (512, 1536)):
        reference = nn.Sequential(nn.Linear(*shape), nn.ReLU(), nn.Linear(shape[1], 8))
        theirs = copy.deepcopy(reference)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.ao.quantization.quantize_dynamic(theirs, {nn.Linear}, dtype=torch.qint8, inplace=True)
        ours = copy.deepcopy(reference)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            quantize_linears(ours)
            x = torch.randn(3, 5, shape[0])
            got = ours(x)
        assert torch.equal(got, theirs(x))
        assert not any(isinstance(module, nn.Linear) for module in ours.modules())
