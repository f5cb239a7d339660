"""Time to first audio: streamed synthesis (fragments, chunks) against the whole clip, in one run.

    python benchmarks/bench_streaming.py [--device cpu] [--precision fp32] [--threads 2]
        [--version v2ProPlus] [--tokens 88] [--repeats 3]

Real-size random-weight models (:mod:`benchmarks.realsize`: GPT, SoVITS ``--version``,
BERT-large) speak a three-sentence Chinese text, split with ``cut3`` into one segment per
sentence, each segment capped at ``--tokens`` semantic tokens (88 = 3.5 s of speech at 25
tokens per second; random weights never choose EOS). Each mode is timed through
``VoicePipeline.synthesize_stream`` (or ``synthesize`` for the whole clip) from the call to
the first piece handed to the caller, and to the end:

* ``whole_clip``: no streaming, the baseline: the first audio is the whole clip;
* ``fragments``: each segment as soon as it is decoded;
* ``chunks_min16`` / ``chunks_min8``: pieces of a segment while its tokens are generated
  (overlap 2 tokens, min_chunk_length 16 or 8, similarity split).

The whole clip is synthesized in a fresh thread, as ``synthesize_stream`` runs the streamed
modes (see :func:`benchmarks.realsize.in_fresh_thread`). Modes alternate within each repeat so that load from other processes hits them alike; the
median of ``--repeats`` is reported after one warm-up of each mode (on the first sentence).
Wall times and CPU seconds (all threads of this process) are both reported: on a shared
machine the wall times include waiting for the CPU. Goals: on the CPU, first
audio in chunks mode (min 16) under 1.5 s while the whole clip takes several (>= 3) times
longer; on a GPU, first audio under 150 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.realsize import (  # noqa: E402
    RESULTS, TOKENS_PER_SECOND, build_pipeline, clock, in_fresh_thread, random_speaker, write_results,
)
from gsv_core.devices import resolve_placement  # noqa: E402
from gsv_core.engine.pipeline import VoicePipeline  # noqa: E402
from gsv_core.engine.requests import SynthesisOptions, SynthesisRequest  # noqa: E402

TEXT = "今天天气很好，我们去公园散步。晚上回到家里，妈妈做了一顿丰盛的晚饭。第二天早上，我们起得很早，一起去爬山。"
MODES = {
    "whole_clip": {},
    "fragments": {"stream": "fragments"},
    "chunks_min16": {"stream": "chunks", "overlap_length": 2, "min_chunk_length": 16},
    "chunks_min8": {"stream": "chunks", "overlap_length": 2, "min_chunk_length": 8},
}
CPU_GOAL_S, GPU_GOAL_S, WHOLE_OVER_FIRST_GOAL = 1.5, 0.150, 3.0


def time_request(pipeline: VoicePipeline, request: SynthesisRequest) -> dict[str, float]:
    """Wall seconds to the first audio handed to the caller and to the end, the same in CPU seconds of
    this process (all threads: contention-free work, unlike the wall time on a shared machine), and
    the audio's length."""
    device = pipeline.device
    started, cpu_started = time.perf_counter(), time.process_time()
    if request.options.stream is None:
        result = in_fresh_thread(lambda: pipeline.synthesize(request.text, request.language, request.speaker, request.options))
        total, cpu = clock(device) - started, time.process_time() - cpu_started
        return {"first_audio_s": total, "total_s": total, "first_audio_cpu_s": cpu, "total_cpu_s": cpu,
                "audio_s": result.duration_s, "pieces": 1}
    first = first_cpu = None
    samples = pieces = 0
    for chunk in pipeline.synthesize_stream(request):
        if first is None:
            first, first_cpu = clock(device) - started, time.process_time() - cpu_started
        samples, pieces = samples + len(chunk.audio), pieces + 1
    return {"first_audio_s": first, "total_s": clock(device) - started, "first_audio_cpu_s": first_cpu,
            "total_cpu_s": time.process_time() - cpu_started, "audio_s": samples / pipeline.sample_rate, "pieces": pieces}


def run_modes(pipeline: VoicePipeline, text: str, repeats: int) -> dict[str, dict]:
    """Median timings per mode over ``repeats`` rounds alternating the modes, after a warm-up of each
    mode on the first sentence (the first calls build the CPU kernels' primitives and load the dictionaries)."""
    speaker = random_speaker(pipeline, seed=1)

    def request(text: str, options: dict) -> SynthesisRequest:
        return SynthesisRequest(text, "zh", speaker, SynthesisOptions(seed=7, split_method="cut3", **options))

    for options in MODES.values():
        time_request(pipeline, request(text.split("。")[0] + "。", options))
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in MODES}
    for _ in range(repeats):
        for name, options in MODES.items():
            runs[name].append(time_request(pipeline, request(text, options)))
    return {name: {key: statistics.median(run[key] for run in timings) for key in timings[0]} | {"runs": timings}
            for name, timings in runs.items()}


def goals(results: dict[str, dict], device: torch.device, threads: int) -> dict:
    """Whether the first audio of chunks mode (min 16) met the goal for this kind of device.

    On the CPU the goal is also judged on CPU seconds: on an idle machine with ``threads``
    threads the wall time lies between cpu_s / threads and cpu_s, whatever others run now.
    """
    first, whole = results["chunks_min16"], results["whole_clip"]
    if device.type == "cuda":
        return {"goal": f"chunks first audio < {GPU_GOAL_S * 1000:.0f} ms", "met": first["first_audio_s"] < GPU_GOAL_S}
    ratio = whole["total_s"] / first["first_audio_s"]
    cpu_ratio = whole["total_cpu_s"] / first["first_audio_cpu_s"]
    return {"goal": f"chunks first audio < {CPU_GOAL_S} s and whole clip >= {WHOLE_OVER_FIRST_GOAL}x longer",
            "whole_over_first": ratio, "met": first["first_audio_s"] < CPU_GOAL_S and ratio >= WHOLE_OVER_FIRST_GOAL,
            "whole_over_first_cpu_s": cpu_ratio,
            "met_on_cpu_seconds": {"surely (cpu_s < goal)": first["first_audio_cpu_s"] < CPU_GOAL_S,
                                   "at best (cpu_s / threads < goal)": first["first_audio_cpu_s"] / threads < CPU_GOAL_S}}


def print_table(results: dict[str, dict]) -> None:
    print(f"{'mode':14s} {'first audio s':>14s} {'total s':>8s} {'first cpu s':>12s} {'total cpu s':>12s} "
          f"{'audio s':>8s} {'pieces':>7s}  (medians; cpu = CPU seconds of all threads)")
    for name, row in results.items():
        print(f"{name:14s} {row['first_audio_s']:14.3f} {row['total_s']:8.2f} {row['first_audio_cpu_s']:12.2f} "
              f"{row['total_cpu_s']:12.2f} {row['audio_s']:8.2f} {row['pieces']:7.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", help="fp32, fp16 or bf16")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--version", default="v2ProPlus", choices=("v2", "v2Pro", "v2ProPlus"))
    parser.add_argument("--tokens", type=int, default=88, help="semantic tokens per sentence (25 per second)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--text", default=TEXT)
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON report")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    placement = resolve_placement(args.device, args.precision)
    pipeline = build_pipeline(args.version, args.tokens, placement.device, placement.dtype)
    results = run_modes(pipeline, args.text, args.repeats)
    report = {
        "benchmark": "bench_streaming", "device": str(placement.device), "precision": placement.precision,
        "threads": args.threads, "torch": torch.__version__, "version": args.version, "weights": "random, real size",
        "text": args.text, "split_method": "cut3", "tokens_per_segment": args.tokens,
        "seconds_per_segment": args.tokens / TOKENS_PER_SECOND, "repeats": args.repeats,
        "baseline": "whole_clip: VoicePipeline.synthesize without streaming, same text, speaker and seed",
        "results": results, "goal": goals(results, placement.device, args.threads),
    }
    print_table(results)
    print(f"goal: {report['goal']}")
    print(f"wrote {write_results('bench_streaming', report, args.results)}")


if __name__ == "__main__":
    main()
