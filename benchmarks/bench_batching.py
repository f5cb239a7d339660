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

Then the SoVITS decoder alone (``--decoder-only`` runs just this): ``--decoder-items`` items
of different lengths around ``--tokens`` and different speakers, decoded one call at a time
(``SoVITS.decode``, what the pipeline does on a CPU) and as one padded batch
(``SoVITS.decode_batch``, what it does on a GPU), median of ``--repeats`` runs each, with the
largest difference between the two waveforms.
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
from benchmarks.timing import median_seconds  # noqa: E402
from gsv_core.conditioning import SpeakerConditioning  # noqa: E402
from gsv_core.features.bert import BertFeatures  # noqa: E402
from gsv_core.models.sovits import DecodeItem, SoVITS  # noqa: E402
from gsv_core.engine.pipeline import VoicePipeline  # noqa: E402
from gsv_core.engine.requests import SynthesisOptions, SynthesisRequest  # noqa: E402
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


def decoder_batching(sovits: SoVITS, count: int, tokens: int, repeats: int) -> dict:
    """Seconds to decode ``count`` items (lengths spread over 0.7-1.3 x ``tokens``) call by call and as one batch."""
    device, draw = sovits.text_encoder.proj.weight.device, torch.Generator().manual_seed(0)
    lengths = [round(tokens * (0.7 + 0.6 * i / max(count - 1, 1))) for i in range(count)]
    items = [DecodeItem(torch.randint(0, 1024, (1, n), generator=draw).to(device),
                        torch.randint(0, 732, (n // 2,), generator=draw).to(device),
                        torch.randn(1, sovits.config.gin_channels, 1, generator=draw).to(device),
                        noise=torch.randn(1, sovits.config.inter_channels, 2 * n, generator=draw).to(device))
             for n in lengths]

    def call_by_call() -> list[torch.Tensor]:
        return [sovits.decode(i.codes.unsqueeze(1), i.phones.view(1, -1), i.ge, noise=i.noise)[0, 0] for i in items]

    with torch.inference_mode():
        difference = max(float((a - b).abs().max()) for a, b in zip(call_by_call(), sovits.decode_batch(items)))
        solo_cpu, batched_cpu = _cpu_seconds(call_by_call), _cpu_seconds(lambda: sovits.decode_batch(items))
        solo_s = median_seconds(call_by_call, repeats)
        batched_s = median_seconds(lambda: sovits.decode_batch(items), repeats)
    audio_s = sum(lengths) * sovits.samples_per_token / sovits.version.audio.sampling_rate
    return {"items": count, "tokens": lengths, "audio_s": round(audio_s, 2), "call_by_call_s": round(solo_s, 2),
            "batched_s": round(batched_s, 2), "batched_vs_call_by_call_speed": round(solo_s / batched_s, 2),
            "call_by_call_cpu_s": round(solo_cpu, 2), "batched_cpu_s": round(batched_cpu, 2),
            "max_abs_difference": difference}


def _cpu_seconds(run) -> float:
    """CPU seconds of this process (all threads) for one call: steadier than wall time on a shared machine
    (run with OMP_WAIT_POLICY=PASSIVE, or OpenMP's spin-waiting counts too)."""
    started = time.process_time()
    run()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=75, help="semantic tokens per segment (25 per second)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--decoder-items", type=int, default=4, help="items of the decoder-only measurement")
    parser.add_argument("--repeats", type=int, default=3, help="runs per mode of the decoder-only measurement")
    parser.add_argument("--decoder-only", action="store_true", help="only the decoder measurement")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.decoder_only:
        decoder = decoder_batching(_sovits("v2", args.device), args.decoder_items, args.tokens, args.repeats)
        print(json.dumps({"device": args.device, "threads": args.threads, "decoder": decoder}, indent=2))
        return
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
    decoder = decoder_batching(pipeline.sovits, args.decoder_items, args.tokens, args.repeats)
    print(json.dumps({"device": args.device, "threads": args.threads, "requests": args.requests,
                      "tokens_per_segment": args.tokens, "results": rows, "decoder": decoder}, indent=2))


if __name__ == "__main__":
    main()
