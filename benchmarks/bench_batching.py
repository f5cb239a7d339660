"""Throughput of concurrent synthesis requests: one at a time, two threads, or served together.

    python benchmarks/bench_batching.py [--requests 4] [--tokens 75] [--threads 2] [--device cpu]

Real-size v2 models with random weights (s1 and s2 from ../shared/gsv-reference/shapes;
the tiny BERT of ../shared/gsv-reference/models for the text features), each request a
different speaker and seed, each segment capped at ``--tokens`` semantic tokens (random
weights never choose EOS). Three ways to serve the same requests, measured in this run:

* one_at_a_time: ``VoicePipeline.synthesize`` per request, in turn (a single worker);
* two_threads: two threads calling ``synthesize`` at once (the app's former setting);
* together: ``VoicePipeline.synthesize_many`` over all requests (what the app does now,
  through ``RequestBatcher``).

Prints audio seconds per wall second and the mean latency of a request for each, and
the ratios to one_at_a_time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REFERENCE = ROOT.parent / "shared" / "gsv-reference"

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.bench_models import _sovits, _t2s  # noqa: E402
from gsv_core.conditioning import SpeakerConditioning  # noqa: E402
from gsv_core.features.bert import BertFeatures  # noqa: E402
from gsv_core.pipeline import VoicePipeline  # noqa: E402
from gsv_core.synthesis import SynthesisOptions, SynthesisRequest  # noqa: E402
from gsv_core.text.frontend import TextFrontend  # noqa: E402
from gsv_core.versions import VERSIONS  # noqa: E402

TEXTS = ("今天天气不错，我们一起去公园散步吧。", "Hello there, this is a quick test of the voice.",
         "欢迎使用语音合成，希望你喜欢这个声音。", "We read the same sentence in four different voices.")


def _pipeline(device: str, tokens: int) -> VoicePipeline:
    t2s = _t2s(device)
    generate = t2s.generate
    t2s.generate = lambda rows, max_steps=tokens, **kwargs: generate(  # cap: random weights never stop
        rows, min(max_steps, tokens), **kwargs)
    return VoicePipeline(
        version=VERSIONS["v2"], t2s=t2s, sovits=_sovits("v2", device), hubert=None,
        bert=BertFeatures(REFERENCE / "models" / "chinese-roberta-tiny", device=device), speaker_encoder=None,
        frontend=TextFrontend.load(), device=device,
    )


def _speaker(pipeline: VoicePipeline, seed: int) -> SpeakerConditioning:
    rng = np.random.default_rng(seed)
    ref_spec = rng.random((1, 1025, 200), dtype=np.float32)
    with torch.inference_mode():
        ge = pipeline.sovits.global_embedding(torch.from_numpy(ref_spec).to(pipeline.device), None)
    return SpeakerConditioning(
        version="v2", ref_spec=ref_spec, global_embedding=ge.cpu().numpy(),
        prompt_semantic=rng.integers(0, 1024, 150), prompt_phones=rng.integers(1, 300, 40),
        prompt_bert=rng.standard_normal((1024, 40), dtype=np.float32),
    )


def _measure(name: str, run) -> dict:
    started = time.perf_counter()
    latencies, audio_s = run(started)
    wall = time.perf_counter() - started
    return {"mode": name, "wall_s": round(wall, 2), "audio_s": round(audio_s, 2),
            "audio_s_per_wall_s": round(audio_s / wall, 3), "mean_latency_s": round(float(np.mean(latencies)), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=75, help="semantic tokens per segment (25 per second)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipeline = _pipeline(args.device, args.tokens)
    requests = [
        SynthesisRequest(TEXTS[i % len(TEXTS)], "zh" if i % 2 == 0 else "en", _speaker(pipeline, i),
                         SynthesisOptions(seed=i, split_method="cut0"))
        for i in range(args.requests)
    ]
    pipeline.synthesize_many(requests[:2])  # warm-up

    def alone(request: SynthesisRequest):
        return pipeline.synthesize(request.text, request.language, request.speaker, request.options)

    def one_at_a_time(started):
        latencies, audio = [], 0.0
        for request in requests:
            audio += alone(request).duration_s
            latencies.append(time.perf_counter() - started)
        return latencies, audio

    def two_threads(started):
        def timed(request):
            result = alone(request)
            return time.perf_counter() - started, result.duration_s

        with ThreadPoolExecutor(max_workers=2) as pool:
            outcomes = list(pool.map(timed, requests))
        return [o[0] for o in outcomes], sum(o[1] for o in outcomes)

    def together(started):
        results = pipeline.synthesize_many(requests)
        finished = time.perf_counter() - started
        return [finished] * len(results), sum(r.duration_s for r in results)

    rows = [_measure("one_at_a_time", one_at_a_time), _measure("two_threads", two_threads), _measure("together", together)]
    base = rows[0]
    for row in rows:
        row["throughput_vs_one_at_a_time"] = round(row["audio_s_per_wall_s"] / base["audio_s_per_wall_s"], 2)
        row["latency_vs_one_at_a_time"] = round(row["mean_latency_s"] / base["mean_latency_s"], 2)
    print(json.dumps({"device": args.device, "threads": args.threads, "requests": args.requests,
                      "tokens_per_segment": args.tokens, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
