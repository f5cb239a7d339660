"""GPT (s1) training at real size: time of a batch, of an optimizer step, and peak memory.

    python benchmarks/bench_training.py                                 # CPU, fp32, real size
    python benchmarks/bench_training.py --device cuda --precision 16-mixed bf16-mixed 32
    python benchmarks/bench_training.py --small --repeats 1             # tiny sizes: checks the script

The model has random weights of the real shapes (``../shared/gsv-reference/shapes/s1_v2.json``:
512 wide, 24 layers, 16 heads) and is written as an official s1 ``.ckpt`` (float16,
``model.`` keys, config) and loaded by ``load_t2s``, as the inference benchmarks do. Every
timed batch goes through :class:`gsv_core.training.s1.S1Trainer` (the official forward with
its dropouts, the precision's autocast and loss scaling, ScaledAdam): ``--batch-size``
utterances of ``--seconds`` each (25 semantic tokens and 10 phones per second, random BERT
features). Default batch size: the training's own rule on this device's free memory, capped
as the official loader caps it for two minutes of speech (a quarter of the items).

Reported per precision, each the median of ``--repeats`` after one warm-up:
``batch_s`` (forward and backward of one batch), ``optimizer_step_s`` (ScaledAdam on the
summed gradients), ``step_s`` (an optimizer step of the official loop: 4 batches and the
step), ``items_per_s``, ``peak_memory`` (``torch.cuda.max_memory_allocated`` of that run on
CUDA; elsewhere the process's peak RSS, which only grows: a later precision's figure covers
the earlier runs too, so run one precision for its own), and ``two_minute_voice_estimate_s``: what GPT fine-tuning of
two minutes of speech with the official defaults (15 epochs) would take at these figures,
from the official item and batch counts (utterances of ``--seconds``, repeated to 100 items).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.realsize import RESULTS, SHAPES, clock, peak_memory_gib, results_path  # noqa: E402
from gsv_core.models.t2s import T2SConfig, Text2Semantic, load_t2s  # noqa: E402
from gsv_core.training.batch_size import default_batch_size  # noqa: E402
from gsv_core.training.checkpoints import save_s1_checkpoint  # noqa: E402
from gsv_core.training.precision import TrainingPrecision  # noqa: E402
from gsv_core.training.s1 import ACCUMULATE_BATCHES, S1Trainer, steps_here  # noqa: E402
from gsv_core.training.s1_data import S1Dataset, S1Item, collate, loader_batch_size, repeats_for  # noqa: E402

TINY_MODEL = {"embedding_dim": 96, "hidden_dim": 96, "head": 4, "linear_units": 384, "n_layer": 3}  # tiny_configs "s1"
TOKENS_PER_SECOND, PHONES_PER_SECOND = 25, 10
GPT_EPOCHS = 15  # the webui's default
VOICE_SECONDS = 120


def training_config(small: bool) -> dict:
    """The official s1 config of the real model (its recorded shapes), or with the tiny model section."""
    config = json.loads((SHAPES / "s1_v2.json").read_text())["config"]
    if small:
        config["model"].update(TINY_MODEL)
    config["train"].update({"epochs": 1, "if_save_every_weights": False})
    return config


def random_items(count: int, seconds: float, seed: int = 0) -> list[S1Item]:
    rng = np.random.default_rng(seed)
    codes, phones = int(seconds * TOKENS_PER_SECOND), int(seconds * PHONES_PER_SECOND)
    return [S1Item(f"u{i}", rng.integers(1, 700, phones), rng.integers(0, 1024, codes),
                   rng.standard_normal((1024, phones), dtype=np.float32)) for i in range(count)]


def two_minute_voice(seconds: float) -> tuple[int, int]:
    """(utterances, dataset items) of two minutes of speech cut into utterances of ``seconds``."""
    utterances = max(1, round(VOICE_SECONDS / seconds))
    return utterances, utterances * repeats_for(utterances)


def fine_tune_estimate(batch_s: float, optimizer_s: float, batch_size: int, seconds: float) -> dict:
    """Wall time of GPT fine-tuning on two minutes of speech at the measured per-batch and per-step times.

    Batches of the measured size; ``over_loader_cap`` says when the official loader would cut it
    (to a quarter of the items), which makes the estimate too high.
    """
    utterances, items = two_minute_voice(seconds)
    batches = math.ceil(items / batch_size)
    steps = sum(steps_here(b) for b in range(batches))
    return {"utterances": utterances, "items": items, "batch_size": batch_size, "batches_per_epoch": batches,
            "over_loader_cap": loader_batch_size(batch_size, items) != batch_size,
            "optimizer_steps": steps * GPT_EPOCHS, "seconds": GPT_EPOCHS * (batches * batch_s + steps * optimizer_s)}


def measure(model_path: Path, config: dict, precision: TrainingPrecision, device: torch.device, batch_size: int,
            seconds: float, repeats: int) -> dict:
    """The figures of one precision (see the module docstring)."""
    config = {**config, "train": {**config["train"], "precision": precision.name, "batch_size": batch_size}}
    items = random_items(batch_size, seconds)
    trainer = S1Trainer(load_t2s(model_path), config, S1Dataset(tuple(items), {}), device, precision)
    trainer.start()
    batch = collate(items)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    batch_times, step_times = [], []
    for repeat in range(repeats + 1):
        began = clock(device)
        trainer.train_batch(1, batch)  # no step after batch 1: forward and backward only
        middle = clock(device)
        trainer.precision.step(trainer.optimizer)
        trainer.optimizer.zero_grad(set_to_none=True)
        ended = clock(device)
        if repeat:  # the first is a warm-up
            batch_times.append(middle - began)
            step_times.append(ended - middle)
    batch_s, optimizer_s = statistics.median(batch_times), statistics.median(step_times)
    return {
        "precision": trainer.precision.name, "batch_size": batch_size, "seconds_per_utterance": seconds,
        "batch_s": batch_s, "batch_s_all": batch_times, "optimizer_step_s": optimizer_s, "optimizer_step_s_all": step_times,
        "step_s": ACCUMULATE_BATCHES * batch_s + optimizer_s,
        "items_per_s": batch_size / batch_s, "peak_memory": peak_memory_gib(device),
        "two_minute_voice_estimate_s": fine_tune_estimate(batch_s, optimizer_s, batch_size, seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", nargs="+", default=["32"], help="32, 16-mixed, bf16-mixed (one run each)")
    parser.add_argument("--small", action="store_true", help="the tiny model (a check of the script)")
    parser.add_argument("--batch-size", type=int, help="default: the training's rule on the free memory")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of every utterance of the batch")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON report")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # as the official s1_train.py
    config = training_config(args.small)
    torch.manual_seed(0)
    model = Text2Semantic(T2SConfig.from_checkpoint_config(config))
    report = {"device": str(device), "small": args.small, "threads": args.threads,
              "params": sum(p.numel() for p in model.parameters()), "runs": {}}
    with tempfile.TemporaryDirectory() as folder:
        model_path = save_s1_checkpoint(Path(folder) / "s1.ckpt", model, config, epoch=0)
        del model
        for name in args.precision:
            precision = TrainingPrecision.official(name, device)
            size = args.batch_size or loader_batch_size(default_batch_size(device, precision.dtype is not None, fallback=4),
                                                        two_minute_voice(args.seconds)[1])
            figures = measure(model_path, config, precision, device, size, args.seconds, args.repeats)
            report["runs"][name] = figures
            print(f"{figures['precision']:>10} batch {size} x {args.seconds:g} s: batch {figures['batch_s']:.3f} s, "
                  f"optimizer step {figures['optimizer_step_s']:.3f} s, official step {figures['step_s']:.2f} s, "
                  f"{figures['items_per_s']:.1f} items/s, peak {figures['peak_memory']['gib']:.2f} GiB; "
                  f"2-minute voice, {GPT_EPOCHS} epochs: "
                  f"{figures['two_minute_voice_estimate_s']['seconds']:.0f} s", flush=True)
    path = results_path("bench_training", args.results)
    path.write_text(json.dumps(report, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
