"""What the quality check costs: CER, retries, recognizer, similarity, planning a recording.

    python benchmarks/bench_quality.py [--reference ../shared/gsv-reference] [--repeats 3]
                                       [--whisper-small-shape]

Measured with the tiny official-format models of the goldens (v2 s1/s2, tiny HuBERT and
BERT, tiny ERes2NetV2) and a tiny random Whisper behind the real transformers pipeline
(``tests/tiny_whisper.py``; its words are noise, so it always fails the check). With
``--whisper-small-shape`` a random-weight Whisper of whisper-small's size is timed too
(no download), for the recognizer cost a real deployment pays per take.

* CER: ``character_error_rate`` on zh and en texts of 10 to 300 characters (10 % edited).
* one take: tiny pipeline synthesis of a two-sentence zh text.
* synthesize_checked with a fake recognizer (no cost) that passes at once, fails once, or
  always fails (3 tries): the overhead is the extra takes, nothing else.
* the recognizer per take: tiny Whisper (and whisper-small's shape) on the take's audio.
* voice_similarity with the tiny ERes2NetV2 on the take.
* plan_recording on a 3-minute recording of tone bursts and pauses.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402

from gsv_core.quality import character_error_rate, synthesize_checked  # noqa: E402
from timing import median_seconds  # noqa: E402

ZH = "今天天气不错，我们一起去公园散步吧。"
EN = "The quick brown fox jumps over the lazy dog. "
TEXT = "你好，欢迎使用语音合成系统。这是一个测试句子。"


def _edited(text: str, fraction: float, seed: int = 0) -> str:
    """``text`` with about ``fraction`` of its characters replaced."""
    rng = np.random.default_rng(seed)
    chars = list(text)
    for index in rng.choice(len(chars), size=max(1, int(len(chars) * fraction)), replace=False):
        chars[index] = "x"
    return "".join(chars)


def bench_cer() -> None:
    print("CER (median of 20):")
    for name, unit in (("zh", ZH), ("en", EN)):
        for length in (10, 50, 150, 300):
            text = (unit * (length // len(unit) + 1))[:length]
            hypothesis = _edited(text, 0.1)
            seconds = median_seconds(lambda: character_error_rate(text, hypothesis), 20)
            print(f"  {name} {length:4d} chars: {seconds * 1e3:8.3f} ms")


def _pipeline(reference: Path):
    from gsv_core.engine.pipeline import VoicePipeline

    models = reference / "models"
    return VoicePipeline.from_paths(models / "s1-tiny.ckpt", models / "s2G-tiny-v2.pth", models / "chinese-hubert-tiny",
                                    models / "chinese-roberta-tiny", official_data=reference / "data")


def bench_retries(pipeline, speaker, repeats: int) -> object:
    """Times one take, then synthesize_checked with fake recognizers; returns a take.

    Takes with other seeds differ in length (sampling with top-k 15), so the loop's own
    overhead is the checked time minus the time of the takes it made.
    """
    from gsv_core.engine.requests import SynthesisOptions

    take_times: list[float] = []

    def synthesize(seed: int):
        start = time.perf_counter()
        result = pipeline.synthesize(TEXT, "zh", speaker, SynthesisOptions(top_k=15, seed=seed))
        take_times.append(time.perf_counter() - start)
        return result

    take = synthesize(1)
    one_take = median_seconds(lambda: synthesize(1), repeats)
    print(f"one take (tiny v2, {len(take.audio) / take.sample_rate:.2f} s of audio): {one_take:.3f} s")
    scripts = {"passes at once": [TEXT], "fails once": ["错", TEXT], "always fails (3 tries)": ["错"] * 3}
    for name, transcripts in scripts.items():
        answers = iter(transcripts)
        take_times.clear()
        start = time.perf_counter()
        checked = synthesize_checked(synthesize, lambda result: next(answers), TEXT, first_seed=1, max_tries=3)
        total = time.perf_counter() - start
        print(f"  checked, fake recognizer, {name}: {total:.3f} s for {checked.tries} take(s) "
              f"({' + '.join(f'{t:.2f}' for t in take_times)} s); loop overhead {(total - sum(take_times)) * 1e3:.2f} ms")
    return take


def bench_recognizer(take, repeats: int, small_shape: bool) -> None:
    from tiny_whisper import SMALL, WhisperSize, tiny_whisper_pipeline
    from voice_studio.transcriber import Transcriber

    shapes = [("tiny random Whisper (d16, 1+1 layers)", WhisperSize(), 12)]
    if small_shape:
        shapes.append(("random Whisper, whisper-small's shape", SMALL, 40))  # ~35 tokens: a 5 s sentence
    for name, size, max_length in shapes:
        transcriber = Transcriber(load=lambda model, device, size=size, n=max_length: tiny_whisper_pipeline(
            device, size, max_length=n))
        transcriber.transcribe(take.audio, take.sample_rate, "zh")  # loads and warms up
        seconds = median_seconds(lambda: transcriber.transcribe(take.audio, take.sample_rate, "zh"), repeats)
        print(f"  recognizer per take, {name}, {max_length} tokens max: {seconds:.3f} s")


def bench_similarity(reference: Path, take, repeats: int) -> None:
    from gsv_core.audio import load_reference_audio, resample
    from gsv_core.features.sv import SpeakerEncoder
    from gsv_core.features.similarity import voice_similarity

    import torch

    encoder = SpeakerEncoder.from_checkpoint(reference / "models" / "sv-eres2netv2-tiny.ckpt")
    samples, rate = load_reference_audio(reference / "cases" / "v2_zh" / "ref.wav")
    wav16k = resample(torch.from_numpy(samples)[None], rate, 16000)[0]
    score = voice_similarity(encoder, wav16k, take.audio, take.sample_rate)
    seconds = median_seconds(lambda: voice_similarity(encoder, wav16k, take.audio, take.sample_rate), repeats)
    print(f"voice_similarity, tiny ERes2NetV2 (reference + output embeddings): {seconds:.3f} s (score {score:.4f})")


def bench_plan(repeats: int) -> None:
    from gsv_core.speakers.recordings import MAX_RECORDING_SECONDS, plan_recording

    rate = 16000
    rng = np.random.default_rng(0)
    pieces, seconds = [], 0.0
    while seconds < MAX_RECORDING_SECONDS - 12:
        length, pause = rng.uniform(2, 9), rng.uniform(0.5, 1.5)
        t = np.arange(int(length * rate)) / rate
        burst = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * t) * (1 + np.sin(2 * np.pi * 4 * t)) / 2
        pieces += [burst.astype(np.float32), np.zeros(int(pause * rate), np.float32)]
        seconds += length + pause
    recording = np.concatenate(pieces)
    plan = plan_recording(recording, rate)
    elapsed = median_seconds(lambda: plan_recording(recording, rate), repeats)
    print(f"plan_recording, {len(recording) / rate:.0f} s at 16 kHz: {elapsed:.3f} s "
          f"({len(plan.auxiliaries) + len(plan.spare) + 1} usable, {len(plan.dropped)} dropped)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, default=ROOT.parent / "shared" / "gsv-reference")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--whisper-small-shape", action="store_true")
    args = parser.parse_args()
    import torch

    print(f"torch threads: {torch.get_num_threads()}")
    bench_cer()
    pipeline = _pipeline(args.reference)
    speaker = pipeline.prepare_speaker(args.reference / "cases" / "v2_zh" / "ref.wav", ZH, "zh")
    take = bench_retries(pipeline, speaker, args.repeats)
    bench_recognizer(take, args.repeats, args.whisper_small_shape)
    bench_similarity(args.reference, take, args.repeats)
    bench_plan(args.repeats)


if __name__ == "__main__":
    main()
