"""A tiny SoVITS training run in its own process (the kill -9 resume test starts, kills and restarts it).

    python s2_train_child.py WORKDIR STATE_FILE MAX_STEPS RESULT_FILE

Prints ``step <n>`` after every step (flushed), and at the end writes both models' final
state dicts to RESULT_FILE.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from s2_tiny import tiny_utterances  # noqa: E402

from gsv_core.training.discriminator import MultiPeriodDiscriminator  # noqa: E402
from gsv_core.training.s2_loop import RunPlan, train_s2  # noqa: E402
from gsv_core.training.s2_model import load_trainable_sovits  # noqa: E402
from gsv_core.training.sovits_train import S2Trainer  # noqa: E402


def main(workdir: Path, state_file: Path, max_steps: int, result_file: Path) -> None:
    torch.set_num_threads(1)
    config = json.loads((workdir / "config.json").read_text())
    generator = load_trainable_sovits(workdir / "s2G-full.pth", config)
    weights = torch.load(workdir / "s2D.pth", weights_only=True)["weight"]
    discriminator = MultiPeriodDiscriminator.from_state_dict(weights, generator.version.discriminator_periods)
    trainer = S2Trainer(generator, discriminator, config)
    plan = RunPlan(
        epochs=int(config["train"]["epochs"]), batch_size=int(config["train"]["batch_size"]), max_steps=max_steps,
        batches_per_epoch=int(config["train"]["batches_per_epoch"]),
    )
    utterances = tiny_utterances(generator.version.uses_sv)
    train_s2(trainer, utterances, plan, state_file, on_step=lambda step, _: print(f"step {step}", flush=True))
    torch.save({"generator": generator.state_dict(), "discriminator": discriminator.state_dict()}, result_file)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
