"""The GPU benchmark (issue 12): speed, latency, throughput and memory of real-size models per precision.

    python benchmarks/bench_gpu.py --device cuda            # real size; < 8 min on an H100/H200
    python benchmarks/bench_gpu.py --device cpu --small     # tiny sizes, ~1 min: checks the script

Random-weight models from :mod:`benchmarks.realsize` (v2ProPlus by default; ``--small`` uses
the tiny goldens' sizes and shorter runs), every GPT row capped at a fixed token count. For
each precision (fp32 and fp16 on CUDA; fp32 and bf16 elsewhere, CPU fp16 being slow) and, on
CUDA, eager and then wrapped in ``torch.compile(mode="reduce-overhead")`` (CUDA graphs; the
GPT layers and the SoVITS generator are wrapped, not copied), it measures:

* ``gpt_ms_per_token``: ``Text2Semantic.generate`` at batch 1 and 8 (80 phones, 150 prompt
  tokens per row); (time of N tokens - time of 0 tokens) / N, so prefill is excluded;
* ``sovits_s_per_audio_s``: ``SoVITS.decode`` of 125 tokens (5 s), seconds per audio second;
* ``rtf``: ``VoicePipeline.synthesize`` of a 10-second sentence (250 tokens), wall / audio;
* ``first_audio_s``: the same sentence streamed in chunks mode (min 16 tokens, overlap 2),
  time to the first piece (``synthesize_stream``);
* ``throughput``: 1, 4 and 16 concurrent 3-second requests served by
  ``VoicePipeline.synthesize_many`` (GPT rows of all requests batched, and on CUDA the SoVITS
  decoder calls of a wave too: ``batch_decoder``), audio s per wall s;
* ``decoder_batching``: the 16 requests again with the decoder calls batched and call by call
  (the same models, warm from ``throughput``; one run each), and the ratio;
* ``peak_memory``: ``torch.cuda.max_memory_allocated`` per configuration on CUDA, the
  process's peak RSS elsewhere (monotone over the run).

Baselines, all measured in the same run: batch 1 for batch 8, one request for 4 and 16, fp32
eager for every other configuration. Each timing is the median of a few repeats after one
warm-up (which includes compilation). A section that fails records its error and the rest go on.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_streaming import time_request  # noqa: E402
from benchmarks.realsize import (  # noqa: E402
    PROMPT_TOKENS, RESULTS, TOKENS_PER_SECOND, build_pipeline, clock, in_fresh_thread, peak_memory_gib, random_speaker,
    results_path,
)
from gsv_core.devices import resolve_device  # noqa: E402
from gsv_core.models.sampling import SamplingOptions  # noqa: E402
from gsv_core.models.t2s import DecodeRow  # noqa: E402
from gsv_core.engine.pipeline import VoicePipeline  # noqa: E402
from gsv_core.engine.requests import SynthesisOptions, SynthesisRequest  # noqa: E402

SENTENCE = "今天天气很好，我们一起去公园散步，看看湖边的花，再去山上走一走，晚上回家吃饭。"
REQUEST_TEXTS = ("今天天气很好，我们去公园散步。", "晚上回到家里，妈妈做了晚饭。", "第二天早上，我们一起去爬山。",
                 "欢迎使用语音合成，希望你喜欢。")

CUDA_GRAPHS_NOTE = (
    "The GPT's key length grows by one every step and audio lengths vary, so shapes are dynamic; graphs with "
    "dynamic shapes run compiled but without CUDA graphs (cudagraph_skip_dynamic_graphs; otherwise a graph is "
    "recorded for every new length). A graph-captured decoding step would need a static-shape step in gsv_core "
    "(attending over the whole preallocated cache)."
)


@dataclass(frozen=True)
class Sizes:
    """How long each measurement runs."""

    gpt_steps: int  # tokens decoded for ms/token
    sovits_tokens: int  # tokens decoded for s per audio s
    sentence_tokens: int  # the RTF and first-audio sentence
    request_tokens: int  # each concurrent request
    concurrency: tuple[int, ...]
    repeats: int


REAL = Sizes(gpt_steps=100, sovits_tokens=125, sentence_tokens=10 * TOKENS_PER_SECOND, request_tokens=75,
             concurrency=(1, 4, 16), repeats=3)
SMALL = Sizes(gpt_steps=8, sovits_tokens=16, sentence_tokens=40, request_tokens=16, concurrency=(1, 4, 16), repeats=1)


def median_seconds(run: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median wall seconds of ``run`` over ``repeats`` calls after one warm-up call, each in a fresh thread."""
    in_fresh_thread(run)
    times = []
    for _ in range(repeats):
        started = clock(device)
        in_fresh_thread(run)
        times.append(clock(device) - started)
    return statistics.median(times)


def gpt_ms_per_token(pipeline: VoicePipeline, batch: int, sizes: Sizes) -> float:
    """Milliseconds per decoding step of ``batch`` rows, prefill excluded."""
    device, t2s = pipeline.device, pipeline.t2s
    phones = torch.randint(0, 732, (80,), device=device)
    bert = torch.randn(1024, 80, device=device)
    prompt = torch.randint(0, 1024, (PROMPT_TOKENS,), device=device)
    rows = [DecodeRow(phones, bert, prompt, SamplingOptions(), torch.Generator(device).manual_seed(row))
            for row in range(batch)]

    def decode(tokens: int) -> Callable[[], object]:
        def run() -> object:
            t2s.tokens = tokens
            return t2s.generate(rows)
        return run

    prefill = median_seconds(decode(0), device, sizes.repeats)
    total = median_seconds(decode(sizes.gpt_steps), device, sizes.repeats)
    return 1000 * (total - prefill) / sizes.gpt_steps


def sovits_s_per_audio_s(pipeline: VoicePipeline, sizes: Sizes) -> float:
    """Seconds of ``SoVITS.decode`` per second of audio for ``sizes.sovits_tokens`` tokens."""
    device, sovits = pipeline.device, pipeline.sovits
    codes = torch.randint(0, 1024, (1, 1, sizes.sovits_tokens), device=device)
    phones = torch.randint(0, 732, (1, sizes.sovits_tokens // 2), device=device)
    ge = torch.from_numpy(random_speaker(pipeline, 0).global_embedding).to(device)
    generator = torch.Generator(device).manual_seed(0)
    with torch.inference_mode():
        seconds = median_seconds(lambda: sovits.decode(codes, phones, ge, generator=generator), device, sizes.repeats)
    return seconds / (sizes.sovits_tokens * sovits.samples_per_token / pipeline.sample_rate)


def sentence_timings(pipeline: VoicePipeline, sizes: Sizes) -> dict[str, float]:
    """RTF of the whole sentence and time to its first audio in chunks mode (medians)."""
    pipeline.t2s.tokens = sizes.sentence_tokens
    speaker = random_speaker(pipeline, 1)
    whole = SynthesisRequest(SENTENCE, "zh", speaker, SynthesisOptions(seed=3, split_method="cut0"))
    chunks = SynthesisRequest(SENTENCE, "zh", speaker, SynthesisOptions(seed=3, split_method="cut0", stream="chunks"))
    runs = {"whole": [], "chunks": []}
    for repeat in range(sizes.repeats + 1):  # the first round warms up
        for name, request in (("whole", whole), ("chunks", chunks)):
            timing = time_request(pipeline, request)
            if repeat:
                runs[name].append(timing)
    audio_s = statistics.median(run["audio_s"] for run in runs["whole"])
    total_s = statistics.median(run["total_s"] for run in runs["whole"])
    return {"audio_s": audio_s, "total_s": total_s, "rtf": total_s / audio_s,
            "first_audio_s": statistics.median(run["first_audio_s"] for run in runs["chunks"])}


def concurrent_requests(pipeline: VoicePipeline, count: int) -> list[SynthesisRequest]:
    """``count`` 3-second requests of four speakers, each segment ``request_tokens`` long."""
    speakers = [random_speaker(pipeline, seed) for seed in range(4)]
    return [SynthesisRequest(REQUEST_TEXTS[i % 4], "zh", speakers[i % 4], SynthesisOptions(seed=i, split_method="cut0"))
            for i in range(count)]


def served_together(pipeline: VoicePipeline, requests: list[SynthesisRequest]) -> dict[str, float]:
    """Wall and audio seconds of one ``synthesize_many`` over ``requests``; any failed request raises."""
    started = clock(pipeline.device)
    outcomes = in_fresh_thread(lambda: pipeline.synthesize_many(requests))
    wall = clock(pipeline.device) - started
    failed = [repr(o) for o in outcomes if isinstance(o, Exception)]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(requests)} requests failed: {failed[0]}")
    audio = sum(o.duration_s for o in outcomes)
    return {"wall_s": wall, "audio_s": audio, "audio_s_per_wall_s": audio / wall}


def throughput(pipeline: VoicePipeline, sizes: Sizes) -> dict[str, dict[str, float]]:
    """Audio seconds per wall second for each number of concurrent requests (one warm-up each)."""
    pipeline.t2s.tokens = sizes.request_tokens
    results = {}
    for count in sizes.concurrency:
        requests = concurrent_requests(pipeline, count)
        in_fresh_thread(lambda: pipeline.synthesize_many(requests))
        results[str(count)] = served_together(pipeline, requests)
    return results


def decoder_batching(pipeline: VoicePipeline, sizes: Sizes) -> dict[str, dict[str, float] | float]:
    """The most concurrent requests served with the wave's decoder calls one by one and as one batch."""
    pipeline.t2s.tokens = sizes.request_tokens
    requests = concurrent_requests(pipeline, max(sizes.concurrency))
    results: dict = {"requests": len(requests)}
    for name, batched in (("call_by_call", False), ("batched", True)):
        results[name] = served_together(pipeline.with_batch_decoder(batched), requests)
    results["batched_vs_call_by_call"] = (results["batched"]["audio_s_per_wall_s"]
                                          / results["call_by_call"]["audio_s_per_wall_s"])
    return results


def wrap_with_cuda_graphs(pipeline: VoicePipeline) -> None:
    """Wrap (not copy) each GPT layer and the SoVITS generator in ``torch.compile(mode="reduce-overhead")``
    (see :data:`CUDA_GRAPHS_NOTE`)."""
    from torch._inductor import config as inductor_config

    inductor_config.triton.cudagraph_skip_dynamic_graphs = True
    t2s = pipeline.t2s
    t2s.layers = nn.ModuleList(torch.compile(layer, mode="reduce-overhead", dynamic=True) for layer in t2s.layers)
    pipeline.sovits.generator = torch.compile(pipeline.sovits.generator, mode="reduce-overhead", dynamic=True)


def measure(pipeline: VoicePipeline, sizes: Sizes) -> dict:
    """Every section for one configuration; a failing section records its error."""
    sections: dict[str, Callable[[], object]] = {
        "gpt_ms_per_token": lambda: {f"batch_{b}": gpt_ms_per_token(pipeline, b, sizes) for b in (1, 8)},
        "sovits_s_per_audio_s": lambda: sovits_s_per_audio_s(pipeline, sizes),
        "sentence": lambda: sentence_timings(pipeline, sizes),
        "throughput": lambda: throughput(pipeline, sizes),
        "decoder_batching": lambda: decoder_batching(pipeline, sizes),
    }
    if pipeline.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(pipeline.device)
    report: dict = {"batch_decoder": pipeline.batch_decoder}  # what throughput used (the device's default)
    for name, section in sections.items():
        started = time.perf_counter()
        try:
            report[name] = section()
        except Exception as error:  # noqa: BLE001 - recorded, the other sections still run
            report[name] = {"error": f"{type(error).__name__}: {error}"[:500]}
        print(f"  {name}: {time.perf_counter() - started:.1f} s", flush=True)
    report["peak_memory"] = peak_memory_gib(pipeline.device)
    return report


def run_configurations(device: torch.device, version: str, sizes: Sizes, small: bool, compile_graphs: bool,
                       save: Callable[[dict], None]) -> dict:
    """Measure each precision eager, then (CUDA) each with CUDA graphs, on freshly built models.

    ``save(configurations)`` runs after each one, so a run stopped by a timeout keeps what it measured.
    """
    precisions = {"fp32": torch.float32, "fp16": torch.float16} if device.type == "cuda" else \
        {"fp32": torch.float32, "bf16": torch.bfloat16}
    plans = [(precision, False) for precision in precisions]
    if device.type == "cuda" and compile_graphs:
        plans += [(precision, True) for precision in precisions]
    configurations: dict = {}
    for precision, graphs in plans:
        name = f"{precision}_{'cuda_graphs' if graphs else 'eager'}"
        print(name, flush=True)
        pipeline = build_pipeline(version, sizes.request_tokens, device, precisions[precision], small=small)
        if graphs:
            wrap_with_cuda_graphs(pipeline)
        configurations[name] = measure(pipeline, sizes)
        save(configurations)
        del pipeline
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if device.type != "cuda":
        configurations["cuda_graphs"] = {"skipped": "torch.compile(mode='reduce-overhead') / CUDA graphs need CUDA"}
    elif not compile_graphs:
        configurations["cuda_graphs"] = {"skipped": "--no-compile"}
    return configurations


COLUMNS = {  # header -> path in a configuration's report
    "GPT ms/tok b1": ("gpt_ms_per_token", "batch_1"), "GPT ms/tok b8": ("gpt_ms_per_token", "batch_8"),
    "SoVITS s/s": ("sovits_s_per_audio_s",), "RTF": ("sentence", "rtf"), "1st audio s": ("sentence", "first_audio_s"),
    "thr x1": ("throughput", "1", "audio_s_per_wall_s"), "thr x4": ("throughput", "4", "audio_s_per_wall_s"),
    "thr x16": ("throughput", "16", "audio_s_per_wall_s"), "dec b/c x16": ("decoder_batching", "batched_vs_call_by_call"),
    "peak GiB": ("peak_memory", "gib"),
}


def _cell(report: dict, path: tuple[str, ...]) -> str:
    value: object = report
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return "err" if isinstance(value, dict) and "error" in value else "-"
        value = value[key]
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def print_table(configurations: dict) -> None:
    print(f"{'configuration':22s}" + "".join(f"{name:>14s}" for name in COLUMNS))
    for name, report in configurations.items():
        print(f"{name:22s}" + "".join(f"{_cell(report, path):>14s}" for path in COLUMNS.values()))
    print("thr = audio seconds per wall second with N concurrent requests; dec b/c x16 = the 16 requests' throughput "
          "with the decoder batched over call by call; err: see the JSON")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--small", action="store_true", help="tiny models and short runs (a check of the script)")
    parser.add_argument("--version", default="v2ProPlus", choices=("v2", "v2Pro", "v2ProPlus"))
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile / CUDA graph configurations")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON report")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    sizes = SMALL if args.small else REAL
    path = results_path("bench_gpu", args.results)
    started = time.perf_counter()
    report = {
        "benchmark": "bench_gpu", "device": str(device), "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda" else "cpu", "torch": torch.__version__, "threads": args.threads, "version": args.version,
        "weights": "random, " + ("tiny sizes" if args.small else "real size"), "sizes": asdict(sizes),
        "baselines": {"gpt batch_8": "batch_1", "throughput 4, 16": "throughput 1",
                      "decoder_batching batched": "call_by_call",
                      "every configuration": "fp32_eager", "cuda_graphs": "eager of the same precision"},
        "cuda_graphs_note": CUDA_GRAPHS_NOTE,
    }

    def save(configurations: dict) -> None:
        report.update(configurations=configurations, wall_s=time.perf_counter() - started)
        path.write_text(json.dumps(report, indent=1, default=str))

    save(run_configurations(device, args.version, sizes, args.small, not args.no_compile, save))
    print_table(report["configurations"])
    print(f"wrote {path} after {report['wall_s']:.0f} s")

if __name__ == "__main__":
    main()
