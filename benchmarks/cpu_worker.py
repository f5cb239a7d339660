"""One configuration of ``bench_cpu.py``, measured in a process of its own (for its peak memory).

    python benchmarks/cpu_worker.py CONFIG --code ROOT --assets DIR [--threads 2]

CONFIG is ``previous``, ``fp32`` or ``int8`` (timings of the ``gsv_core`` found under ROOT),
or ``quality`` (int8 against float32 on the same inputs, current code). Prints one JSON
object. Models are real-size with random weights, the whole v2ProPlus set (GPT, SoVITS,
HuBERT, BERT, ERes2NetV2) loaded by ``VoicePipeline.from_paths`` from the official-format
files ``bench_cpu.py`` wrote under DIR, so loading counts in the peak memory. Random GPT
weights never choose EOS (its head row is -1 in the file), so decoding runs a fixed number
of steps.
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from timing import median_seconds

SENTENCE = "今天的天气非常好，我们一起去公园散步，看看湖边的花草树木，再找一家安静的小店喝杯茶，聊聊最近的生活和工作。"
REFERENCE_TEXT = "这是一段用来测试的参考音频。"
E2E_TOKENS = 250  # 10 s of audio at 25 tokens per second
GPT_TOKENS = 60
SOVITS_TOKENS = 125  # 5 s of audio
REPEATS = 3


def build_pipeline(assets: Path, frontend, fast_cpu: bool = False):
    """The whole v2ProPlus model set loaded from its files, as the app loads it (``VoicePipeline.from_paths``),
    in the fast CPU mode when ``fast_cpu``."""
    from gsv_core.engine.fast_cpu import FastCpuMode
    from gsv_core.engine.pipeline import VoicePipeline

    return VoicePipeline.from_paths(assets / "s1.ckpt", assets / "s2.pth", assets / "hubert", assets / "bert",
                                    assets / "sv.ckpt", frontend=frontend, fast_cpu=FastCpuMode() if fast_cpu else None)


def gpt_ms_per_token(t2s) -> float:
    """Decoding time per token at batch 1 (80 phones, 150 prompt tokens, greedy), prefill excluded."""
    from gsv_core.models.sampling import SamplingOptions

    generator = torch.Generator().manual_seed(1)
    phones, bert = torch.randint(0, 732, (80,), generator=generator), torch.randn(1024, 80, generator=generator)
    prompt = torch.randint(0, 1024, (150,), generator=generator)
    greedy = SamplingOptions(top_k=1)
    try:
        from gsv_core.models.t2s import DecodeRow
    except ImportError:  # our previous code: one request's rows as lists
        def generate(steps):
            return t2s.generate([phones], [bert], prompt, greedy, max_steps=steps)
    else:
        def generate(steps):
            return t2s.generate([DecodeRow(phones, bert, prompt, greedy)], max_steps=steps)
    generate(GPT_TOKENS + 1)  # warm-up
    prefill = median_seconds(lambda: generate(1), REPEATS)
    total = median_seconds(lambda: generate(GPT_TOKENS + 1), REPEATS)
    return 1000 * (total - prefill) / GPT_TOKENS


def seeded_decode(sovits, seed: int) -> Callable[[], torch.Tensor]:
    """One decoder call over random inputs drawn from ``seed`` (SOVITS_TOKENS codes, 60 phones, a
    ge), its noise from a fixed generator: every call gives the same output for the same weights."""
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 1024, (1, 1, SOVITS_TOKENS), generator=generator)
    phones = torch.randint(0, 732, (1, 60), generator=generator)
    ge = torch.randn(1, sovits.config.gin_channels, 1, generator=generator)
    return lambda: sovits.decode(codes, phones, ge, generator=torch.Generator().manual_seed(0))


def sovits_s_per_audio_s(sovits) -> float:
    with torch.inference_mode():
        decode = seeded_decode(sovits, 2)
        decode()  # warm-up
        seconds = median_seconds(decode, REPEATS)
    return seconds / (SOVITS_TOKENS * sovits.samples_per_token / 32000)


def timings(config: str, assets: Path) -> dict:
    """Per-stage and end-to-end timings of one configuration, and its peak memory."""
    from gsv_core.engine.requests import SynthesisOptions
    from gsv_core.text.frontend import TextFrontend

    start = time.perf_counter()
    frontend = TextFrontend.load()
    sequence = frontend.phonemize(SENTENCE, "zh", "v2")
    report = {"frontend_cold_s": time.perf_counter() - start,
              "frontend_warm_ms": 1000 * median_seconds(lambda: frontend.phonemize(SENTENCE, "zh", "v2"), 5)}
    pipeline = build_pipeline(assets, frontend, fast_cpu=config == "int8")
    pipeline.bert.sequence_features(sequence.parts)  # warm-up
    report["bert_s"] = median_seconds(lambda: pipeline.bert.sequence_features(sequence.parts), REPEATS)
    report["gpt_ms_per_token"] = gpt_ms_per_token(pipeline.t2s)
    report["sovits_s_per_audio_s"] = sovits_s_per_audio_s(pipeline.sovits)
    speaker = pipeline.prepare_speaker(str(assets / "reference.wav"), REFERENCE_TEXT, "zh")
    pipeline.t2s.generate = functools.partial(pipeline.t2s.generate, max_steps=E2E_TOKENS)  # random weights: no EOS
    # the first synthesis of this length, then another of the same length (oneDNN builds its
    # convolution kernels per input shape: a server meets most lengths again)
    seconds = []
    for seed in (1, 2):
        start = time.perf_counter()
        result = pipeline.synthesize(SENTENCE, "zh", speaker, SynthesisOptions(seed=seed, split_method="cut0"))
        seconds.append(time.perf_counter() - start)
    report.update(e2e_first_s=seconds[0], e2e_s=seconds[1], e2e_audio_s=result.duration_s,
                  e2e_rtf=seconds[1] / result.duration_s,
                  peak_rss_GiB=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    return report


def decoder_quality(sovits) -> dict:
    """The fast mode's SoVITS output against float32's for the same tokens, phones, ge and noise
    (the generator in bfloat16 and windowed where the CPU computes it natively, as the fast mode does)."""
    from gsv_core.engine.fast_cpu import GENERATOR_WINDOW, native_bfloat16

    if not native_bfloat16():
        return {"decoder_generator_dtype": "float32", "decoder_snr_db": None}
    with torch.inference_mode():
        decode = seeded_decode(sovits, 6)
        expected = decode()
        sovits.generator.to(torch.bfloat16)
        sovits.generator.window = GENERATOR_WINDOW
        got = decode()
        sovits.generator.to(torch.float32)
        sovits.generator.window = None
    return {"decoder_generator_dtype": "bfloat16",
            "decoder_snr_db": float(10 * torch.log10(expected.pow(2).sum() / (expected - got).pow(2).sum()))}


def quality(assets: Path) -> dict:
    """int8 against float32 on identical inputs: GPT logits teacher-forced, BERT features, the decoder's output."""
    import copy

    import torch.nn.functional as F

    from gsv_core.engine.fast_cpu import quantize_linears
    from gsv_core.models.sampling import SamplingOptions
    from gsv_core.models.t2s import DecodeRow
    from gsv_core.text.frontend import TextFrontend

    pipeline = build_pipeline(assets, TextFrontend.load())
    fp32 = pipeline.t2s
    int8 = copy.deepcopy(fp32)
    quantize_linears(int8.layers)
    generator = torch.Generator().manual_seed(4)
    phones, bert = torch.randint(0, 732, (80,), generator=generator), torch.randn(1024, 80, generator=generator)
    prompt = torch.randint(0, 1024, (150,), generator=generator)
    row = DecodeRow(phones, bert, prompt, SamplingOptions(), torch.Generator().manual_seed(5))
    tokens = torch.cat([prompt, fp32.generate([row], max_steps=200)[0]])  # what float32 decoding sampled
    expected, got = (model.teacher_forced_logits(phones, bert, tokens, len(prompt))[:-1] for model in (fp32, int8))
    parts = pipeline.frontend.phonemize(SENTENCE, "zh", "v2").parts
    bert_fp32 = pipeline.bert.sequence_features(parts)
    quantize_linears(pipeline.bert.model.encoder)
    bert_int8 = pipeline.bert.sequence_features(parts)
    decoder = decoder_quality(pipeline.sovits)
    return {
        **decoder,
        "gpt_steps": len(expected),
        "gpt_top1_agreement": float((expected.argmax(-1) == got.argmax(-1)).float().mean()),
        "gpt_logit_cosine_mean": float(F.cosine_similarity(expected, got, dim=-1).mean()),
        "gpt_logit_cosine_min": float(F.cosine_similarity(expected, got, dim=-1).min()),
        "bert_feature_cosine_min": float(F.cosine_similarity(bert_fp32, bert_int8, dim=0).min()),
        "bert_snr_db": float(10 * torch.log10(bert_fp32.pow(2).sum() / (bert_fp32 - bert_int8).pow(2).sum())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", choices=("previous", "fp32", "int8", "quality"))
    parser.add_argument("--code", type=Path, required=True, help="project root whose gsv_core is measured")
    parser.add_argument("--assets", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(args.code))
    torch.set_num_threads(args.threads)
    report = quality(args.assets) if args.config == "quality" else timings(args.config, args.assets)
    print(json.dumps({"config": args.config, **report}))


if __name__ == "__main__":
    main()
