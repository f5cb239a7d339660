"""What speaker similarity and the quality check cost per synthesis, as the app runs them.

    python benchmarks/bench_check_cost.py [--sizes tiny,real] [--repeats 3] [--device cpu]
                                          [--results benchmarks/results]

For each size, a v2ProPlus pipeline of random weights (``realsize.build_pipeline``: tiny, the
golden models' sizes; real, the recorded shapes of the released models), the recognizer the
app's :class:`~voice_studio.transcriber.Transcriber` runs (a random Whisper behind the real
transformers pipeline: ``tests/tiny_whisper.py``'s tiny one, or whisper-small's shape) and the
SV model (the tiny golden ERes2NetV2, or the released ERes2NetV2's shape with random weights):

* one take: a plain synthesis of a two-sentence Chinese text (the baseline of every ratio);
* the recognizer per take, and similarity per take (the output's embedding; the reference's
  is computed once per voice, shown apart);
* :class:`~voice_studio.quality_check.QualityCheck` passing at once (1 take) and failing once
  (2 takes): every take is really synthesized and really transcribed; only the transcript the
  check compares is scripted, since random weights say nothing a text could match.

Random Whisper weights never stop, so each transcription decodes ``WHISPER_TOKENS`` tokens,
about what a real transcript of the text takes. Every part is timed once per round, rounds
alternating, and the best round is reported (the least disturbed on a shared machine; every
round is in the JSON report, which goes to ``--results``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

import torch  # noqa: E402


TEXT = "你好，欢迎使用语音合成系统。这是一个测试句子。"
TOKENS_PER_SEGMENT = 60  # 2.4 s of speech per sentence
WHISPER_TOKENS = 40  # decoder tokens per transcription, prompt included


def _parts(size: str, device: torch.device):
    """(pipeline, speaker, transcriber, SV encoder) of random weights at ``size`` ("tiny" or "real")."""
    from realsize import MODELS, build_pipeline, random_speaker
    from tiny_whisper import SMALL, WhisperSize, tiny_whisper_pipeline

    from gsv_core.features.eres2net import ERes2NetV2, ERes2NetV2Config
    from gsv_core.features.sv import SpeakerEncoder
    from voice_studio.transcriber import Transcriber

    small = size == "tiny"
    pipeline = build_pipeline("v2ProPlus", TOKENS_PER_SEGMENT, device, torch.float32, small=small)
    whisper = WhisperSize() if small else SMALL
    transcriber = Transcriber(device=str(device), load=lambda model, where: tiny_whisper_pipeline(
        where, whisper, max_length=WHISPER_TOKENS))
    if small:
        encoder = SpeakerEncoder.from_checkpoint(MODELS / "sv-eres2netv2-tiny.ckpt", device)
    else:
        torch.manual_seed(0)
        encoder = SpeakerEncoder(ERes2NetV2(ERes2NetV2Config()), device)
    return pipeline, random_speaker(pipeline, 0), transcriber, encoder


def measure(size: str, device: torch.device, repeats: int) -> dict:
    """Seconds of each part, and of a checked synthesis, for one model size."""
    from realsize import MODELS, clock

    from gsv_core.audio import load_reference_audio
    from gsv_core.features.similarity import output_similarity, reference_embedding
    from gsv_core.engine.requests import SynthesisOptions

    pipeline, speaker, transcriber, encoder = _parts(size, device)

    def take(seed: int):
        result = pipeline.synthesize(TEXT, "zh", speaker, SynthesisOptions(seed=seed))
        clock(device)
        return result

    result = take(0)  # warm-up
    transcriber.transcribe(result.audio, result.sample_rate, "zh")  # loads the recognizer, warms it up
    samples, rate = load_reference_audio(MODELS.parent / "cases" / "v2ProPlus_zh" / "ref.wav")
    reference = reference_embedding(encoder, samples, rate, pipeline.sample_rate)
    parts = {
        "one_take": lambda: take(0),
        "recognizer_per_take": lambda: transcriber.transcribe(result.audio, result.sample_rate, "zh"),
        "similarity_per_take": lambda: output_similarity(encoder, reference, result.audio, result.sample_rate),
        "reference_embedding_once": lambda: reference_embedding(encoder, samples, rate, pipeline.sample_rate),
        "checked_pass_at_once": lambda: _checked(transcriber, take, [TEXT]),
        "checked_fail_once": lambda: _checked(transcriber, take, ["错", TEXT]),
    }
    rounds = {name: [] for name in parts}
    for _ in range(repeats):  # round by round, so that a burst of load from other jobs hits every part alike
        for name, run in parts.items():
            started = time.perf_counter()
            run()
            rounds[name].append(time.perf_counter() - started)
    figures = {"audio_s": round(result.duration_s, 2), "rounds_s": rounds,
               **{f"{name}_s": min(times) for name, times in rounds.items()}}
    base = figures["one_take_s"]
    figures["ratios_to_one_take"] = {name: round(figures[f"{name}_s"] / base, 3) for name in parts}
    return figures


def _checked(transcriber, take, script: list[str]):
    """A QualityCheck run whose recognizer really transcribes each take and then answers ``script`` in turn."""
    from voice_studio.limits import Limits
    from voice_studio.quality_check import QualityCheck

    answers = iter(script)

    class Scripted:
        def transcribe(self, samples, rate, language=None):
            transcriber.transcribe(samples, rate, language)
            return next(answers)

    checked = QualityCheck(Scripted(), Limits()).run(take, TEXT, "zh", seed=0)
    assert checked.quality.tries == len(script), checked.quality
    return checked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="tiny,real")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    from realsize import write_results

    device = torch.device(args.device)
    report = {"device": str(device), "torch_threads": torch.get_num_threads(), "repeats": args.repeats,
              "text": TEXT, "tokens_per_segment": TOKENS_PER_SEGMENT, "whisper_tokens": WHISPER_TOKENS, "sizes": {}}
    for size in args.sizes.split(","):
        started = time.perf_counter()
        report["sizes"][size] = figures = measure(size, device, args.repeats)
        print(f"{size} ({device}, {figures['audio_s']} s of audio, built and measured in "
              f"{time.perf_counter() - started:.0f} s):")
        for name, ratio in figures["ratios_to_one_take"].items():
            print(f"  {name:28s} {figures[f'{name}_s']:8.3f} s   {ratio:6.2f} x one take   "
                  f"(rounds: {', '.join(f'{t:.3f}' for t in figures['rounds_s'][name])})")
    print(f"report: {write_results('check_cost', report, args.results)}")


if __name__ == "__main__":
    main()
