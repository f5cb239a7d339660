"""Speed of the real-size SoVITS decoders (random weights), seconds of compute per second of audio.

    python benchmarks/bench_sovits.py [--threads 2] [--tokens 125] [--repeats 5] [--versions v2 v2ProPlus]

The v2 and v2ProPlus decoders are built from the official configs recorded in
../shared/gsv-reference/shapes and decode ``--tokens`` semantic tokens (125 = 5 s at 32 kHz)
on the CPU in float32. The baseline, measured in the same run on the same weights, is the
decoder run the way upstream runs it: weight norm recomputed from (g, v) on every call and
the generator as plain (B, C, T) conv1d layers with out-of-place activations. The median
of ``--repeats`` runs is reported per stage (prior, flow, generator) and in total, with the
ratio baseline / ours. Upstream's own figure on the reference machine was 0.40 s per audio second.

The CPU seconds (all threads of this process) are printed too: on a machine shared with other
jobs the wall time swings with their load, while the CPU time counts only this process's work.
Run with ``OMP_WAIT_POLICY=PASSIVE`` for that figure, or OpenMP's spin-waiting is counted as well.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gsv_core.models.sovits import SoVITS, SynthesizerConfig  # noqa: E402
from gsv_core.models.sovits.generator import LRELU_SLOPE, Generator  # noqa: E402
from gsv_core.versions import VERSIONS  # noqa: E402

SHAPES = Path(__file__).resolve().parent.parent.parent / "shared" / "gsv-reference" / "shapes"
OFFICIAL_S_PER_AUDIO_S = 0.40
SAMPLE_RATE = 32000
# the layers upstream wraps in weight norm (our names)
WEIGHT_NORMED = re.compile(r"generator\.(ups\.\d+|resblocks\.\d+\.convs[12]\.\d+)$|flow\.couplings\.\d+\.enc\.(in_layers\.\d+|res_skip_layers\.\d+|cond_layer)$")


def build(version: str, shapes: Path = SHAPES, seed: int = 0, channels_last: bool = True) -> SoVITS:
    """A real-size decoder with random weights from the recorded official config, laid out as
    ``load_sovits`` leaves it (``channels_last``) or as the checkpoint stores it."""
    manifest = json.loads((shapes / f"s2_{version}.json").read_text())
    info = VERSIONS[version]
    torch.manual_seed(seed)
    model = SoVITS(SynthesizerConfig.from_checkpoint_config(manifest["config"], info.uses_sv), info).eval()
    if channels_last:
        model.generator.channels_last_weights()
    return model


def with_weight_norm(model: SoVITS) -> SoVITS:
    """The baseline: the same weights, re-parametrized so each forward recomputes them, as upstream."""
    for name, module in model.named_modules():
        if WEIGHT_NORMED.match(name):
            torch.nn.utils.parametrizations.weight_norm(module)
    return model


def baseline_generator(generator: Generator, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The generator evaluated layer by layer as upstream does: (B, C, T) conv1d, fresh tensors."""
    x = generator.conv_pre(x) + generator.cond(g)
    for stage, up in enumerate(generator.ups):
        x = up(F.leaky_relu(x, LRELU_SLOPE))
        total = None
        for block in generator.resblocks[stage * generator.num_kernels : (stage + 1) * generator.num_kernels]:
            y = x
            for conv1, conv2 in zip(block.convs1, block.convs2):
                y = conv2(F.leaky_relu(conv1(F.leaky_relu(y, LRELU_SLOPE)), LRELU_SLOPE)) + y
            total = y if total is None else total + y
        x = total / generator.num_kernels
    return torch.tanh(generator.conv_post(F.leaky_relu(x)))


def _clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def decode_stages(model: SoVITS, codes, phones, ge, noise, generator_forward) -> dict[str, float]:
    """One decode, timed per stage (wall seconds), plus the process's CPU seconds for the whole decode."""
    cpu_start = time.process_time()
    start = _clock(codes.device)
    m_p, logs_p = model.prior(codes, phones, ge)
    after_prior = _clock(codes.device)
    z = model.flow.reverse(m_p + noise * torch.exp(logs_p) * 0.5, ge)
    after_flow = _clock(codes.device)
    generator_forward(z, ge)
    end = _clock(codes.device)
    return {"prior": after_prior - start, "flow": after_flow - after_prior, "generator": end - after_flow, "total": end - start,
            "cpu": time.process_time() - cpu_start}


def time_interleaved(contenders: dict, codes, phones, ge, repeats: int) -> dict[str, dict[str, float]]:
    """Median seconds per stage for each (model, generator forward), runs alternating so that
    load from other processes hits all contenders alike; one warm-up run each first."""
    config = next(iter(contenders.values()))[0].config
    noise = torch.randn(1, config.inter_channels, 2 * codes.shape[-1], generator=torch.Generator().manual_seed(0))
    noise = noise.to(codes.device)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    with torch.inference_mode():
        for repeat in range(repeats + 1):
            for name, (model, forward) in contenders.items():
                timing = decode_stages(model, codes, phones, ge, noise, forward)
                if repeat:  # the first pass builds oneDNN primitives for these shapes
                    runs[name].append(timing)
    return {name: {key: statistics.median(run[key] for run in timings) for key in timings[0]} for name, timings in runs.items()}


def bench(version: str, tokens: int, repeats: int, shapes: Path = SHAPES, device: str = "cpu") -> dict:
    seeded = [torch.Generator().manual_seed(seed) for seed in range(5)]
    codes = torch.randint(0, 1024, (1, 1, tokens), generator=seeded[1]).to(device)
    phones = torch.randint(0, 732, (1, tokens // 2), generator=seeded[2]).to(device)
    ours, baseline = build(version, shapes).to(device), with_weight_norm(build(version, shapes, channels_last=False)).to(device)
    audio_s = tokens * ours.samples_per_token / SAMPLE_RATE
    ge = torch.randn(1, ours.config.gin_channels, 1, generator=seeded[3]).to(device)
    with torch.inference_mode():  # same weights, same waveform (checked on 10 tokens to keep it quick)
        short = codes[..., :10]
        noise = torch.randn(1, ours.config.inter_channels, 20, generator=seeded[0]).to(device)
        z = baseline.flow.reverse(noise, ge)
        expected = baseline_generator(baseline.generator, z, ge)
        difference = max((ours.generator(z, ge) - expected).abs().max(),
                         (ours.decode(short, phones, ge, noise=noise) - baseline.decode(short, phones, ge, noise=noise)).abs().max())
    results: dict = {"max_abs_difference": float(difference)}
    contenders = {"ours": (ours, ours.generator), "baseline": (baseline, partial(baseline_generator, baseline.generator))}
    for name, stages in time_interleaved(contenders, codes, phones, ge, repeats).items():
        results[name] = {"s_per_audio_s": stages["total"] / audio_s, "cpu_s_per_audio_s": stages.pop("cpu") / audio_s,
                         "stages_s": stages}
    results["ratio_baseline_over_ours"] = results["baseline"]["s_per_audio_s"] / results["ours"]["s_per_audio_s"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=125)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--versions", nargs="+", default=["v2", "v2ProPlus"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shapes", type=Path, default=SHAPES, help="folder of the s2_<version>.json manifests")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__} on {args.device}, {args.threads} threads, "
          f"{args.tokens} tokens = {args.tokens * 1280 / SAMPLE_RATE:.1f} s of audio")
    for version in args.versions:
        result = bench(version, args.tokens, args.repeats, args.shapes, args.device)
        for name in ("baseline", "ours"):
            stages = " ".join(f"{k} {v:.3f}s" for k, v in result[name]["stages_s"].items())
            print(f"{version:10s} {name:9s} {result[name]['s_per_audio_s']:.3f} s per audio second, "
                  f"{result[name]['cpu_s_per_audio_s']:.3f} CPU s  ({stages})")
        ours = result["ours"]["s_per_audio_s"]
        print(f"{version:10s} max |ours - baseline| {result['max_abs_difference']:.2e}")
        print(f"{version:10s} speed-up vs baseline x{result['ratio_baseline_over_ours']:.2f}; "
              f"vs upstream's recorded {OFFICIAL_S_PER_AUDIO_S} s/s: x{OFFICIAL_S_PER_AUDIO_S / ours:.2f} (different machine)")


if __name__ == "__main__":
    main()
