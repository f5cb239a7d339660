"""GPT (s1) training as the official ``s1_train.py`` runs it, resumable at any batch.

What one epoch does (official ``Text2SemanticLightningModule.training_step`` with manual
optimisation): every batch is a forward with all dropouts and a backward of its summed loss,
the gradients adding up; the optimizer steps, the gradients are cleared and the schedule
steps only when ``batch_idx > 0 and batch_idx % 4 == 0``, so the first step of an epoch sums
5 batches, the later ones 4, and gradients of an epoch's last batches after its last step
carry over into the next epoch's first step (nothing clears them at the epoch's end). At the
end of every ``save_every_n_epoch``-th epoch the weights are exported as ``<exp_name>-e<N>.ckpt``.

The optimizer is ScaledAdam with the official hyper-parameters (``lr`` 0.01 whatever the
config says, betas (0.9, 0.95), clipping scale 2, clipping period 1000) and the schedule
:class:`~.lr_schedule.WarmupCosineLRSchedule` with the config's ``optimizer`` section.

Random stream: after ``torch.manual_seed(seed)`` the official run draws the initial weights
of its model (overwritten by the pretrained checkpoint) and the data loader's base seed, and
then only the dropout masks. :meth:`S1Trainer.start` makes the same draws, so a run from the
same pretrained weights draws the same masks as the official run (see the tests). The
training state saved after a batch (:mod:`.checkpoints`) holds the generator's state, so a
resumed run continues the same stream.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..models.t2s import BERT_DIM, Text2Semantic
from .checkpoints import load_training_state, restore_rng_states, rng_states, save_s1_checkpoint, save_training_state
from .lr_schedule import WarmupCosineLRSchedule
from .s1_data import S1Dataset, collate, epoch_batches, loader_batch_size
from .s1_model import S1Batch, S1Output, official_parameters, training_forward
from .scaled_adam import ScaledAdam

ACCUMULATE_BATCHES = 4  # an optimizer step when batch_idx > 0 and batch_idx % 4 == 0
OPTIMIZER_LR = 0.01  # hard-coded in the official configure_optimizers
OPTIMIZER_BETAS = (0.9, 0.95)
CLIPPING_SCALE = 2.0
CLIPPING_UPDATE_PERIOD = 1000
SAMPLER_SEED = 0


def official_optimizer(params: list[torch.nn.Parameter]) -> ScaledAdam:
    return ScaledAdam(params, lr=OPTIMIZER_LR, betas=OPTIMIZER_BETAS, clipping_scale=CLIPPING_SCALE,
                      clipping_update_period=CLIPPING_UPDATE_PERIOD)


def official_schedule(optimizer: torch.optim.Optimizer, config: dict) -> WarmupCosineLRSchedule:
    section = config["optimizer"]
    return WarmupCosineLRSchedule(optimizer, init_lr=section["lr_init"], peak_lr=section["lr"], end_lr=section["lr_end"],
                                  warmup_steps=section["warmup_steps"], total_steps=section["decay_steps"])


def steps_here(batch_idx: int) -> bool:
    """Whether the official loop steps the optimizer after batch ``batch_idx`` of an epoch."""
    return batch_idx > 0 and batch_idx % ACCUMULATE_BATCHES == 0


def draw_like_official_start(config: dict) -> None:
    """Consume the global generator as the official run does before its first batch.

    It builds ``Text2SemanticDecoder`` (initial values of the BERT projection, both embeddings,
    one transformer layer before it is cloned, the output layer), then its data loader draws
    a base seed (once: the workers persist over the epochs). Same ops and shapes, values unused.
    """
    model = config["model"]
    dim, vocab, phones = model["hidden_dim"], model["vocab_size"], model["phoneme_vocab_size"]
    shapes = [("uniform_", (dim, BERT_DIM)), ("uniform_", (dim,)), ("normal_", (phones, dim)), ("normal_", (vocab, dim)),
              ("uniform_", (dim, dim)), ("uniform_", (dim,)), ("uniform_", (3 * dim, dim)),
              ("uniform_", (4 * dim, dim)), ("uniform_", (4 * dim,)), ("uniform_", (dim, 4 * dim)), ("uniform_", (dim,)),
              ("uniform_", (vocab, dim))]
    for op, shape in shapes:
        getattr(torch.empty(shape), op)()
    torch.empty((), dtype=torch.int64).random_()


@dataclass(frozen=True)
class Position:
    """Where a run is: the next batch ``batch`` of ``epoch``, after ``steps`` optimizer steps."""

    epoch: int = 0
    batch: int = 0
    steps: int = 0


@dataclass(frozen=True)
class BatchRecord:
    """One trained batch, for progress and metrics."""

    epoch: int
    batch_idx: int
    loss: float
    accuracy: float
    stepped: bool
    lr: float  # the learning rate of this batch's optimizer step (the group's lr when it did not step)
    seconds: float


class S1Trainer:
    """The official s1 loop over a dataset (see the module docstring). ``config`` is the official dict."""

    def __init__(self, model: Text2Semantic, config: dict, dataset: S1Dataset, device: str | torch.device = "cpu") -> None:
        self.model = model.to(device).train().requires_grad_(True)
        self.config = config
        self.dataset = dataset
        self.device = torch.device(device)
        self.named = official_parameters(self.model)
        self.optimizer = official_optimizer([param for _, param in self.named])
        self.schedule = official_schedule(self.optimizer, config)
        train = config["train"]
        self.epochs = int(train["epochs"])
        self.batch_size = loader_batch_size(int(train["batch_size"]), len(dataset.items), bool(train.get("if_dpo", False)))
        self.position = Position()
        self._seconds = dataset.seconds()

    def start(self) -> None:
        """Seed every generator as ``seed_everything`` does and make the official run's first draws."""
        seed = int(self.config["train"]["seed"])
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        draw_like_official_start(self.config)

    def batches(self, epoch: int) -> list[list[int]]:
        return epoch_batches(self._seconds, self.batch_size, epoch, seed=SAMPLER_SEED)

    def train_batch(self, batch_idx: int, batch: S1Batch) -> tuple[S1Output, bool, float]:
        """Forward and backward of one batch, then the optimizer step where the official loop makes one."""
        output = training_forward(self.model, batch.to(self.device))
        output.loss.backward()
        lr = float(self.optimizer.param_groups[0]["lr"])
        stepped = steps_here(batch_idx)
        if stepped:
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.schedule.step()
        return output, stepped, lr

    def run(self, out_dir: str | Path, state_path: str | Path | None = None, state_every: int = ACCUMULATE_BATCHES,
            on_batch: Callable[[BatchRecord], None] | None = None, stop_after: int | None = None) -> Position:
        """Train to the last epoch, continuing from ``self.position``; returns the final position.

        The state is saved to ``state_path`` after every ``state_every``-th batch, after each
        optimizer step and at each epoch's end; ``stop_after`` ends the run after that many
        batches of this call (to split a run in tests and benchmarks).
        """
        out_dir = Path(out_dir)
        done = 0
        while self.position.epoch < self.epochs:
            epoch = self.position.epoch
            batches = self.batches(epoch)
            for batch_idx in range(self.position.batch, len(batches)):
                if stop_after is not None and done >= stop_after:
                    return self.position
                began = time.perf_counter()
                output, stepped, lr = self.train_batch(batch_idx, collate([self.dataset.items[i] for i in batches[batch_idx]]))
                self.position = Position(epoch, batch_idx + 1, self.position.steps + int(stepped))
                done += 1
                if on_batch is not None:
                    on_batch(BatchRecord(epoch, batch_idx, float(output.loss.detach()), output.accuracy, stepped, lr,
                                         time.perf_counter() - began))
                if state_path is not None and (stepped or (batch_idx + 1) % state_every == 0):
                    self.save_state(state_path)
            self._end_epoch(epoch, out_dir)
            self.position = Position(epoch + 1, 0, self.position.steps)
            if state_path is not None:
                self.save_state(state_path)
        return self.position

    def _end_epoch(self, epoch: int, out_dir: Path) -> None:
        train = self.config["train"]
        if train.get("if_save_every_weights", True) and (epoch + 1) % int(train.get("save_every_n_epoch", 1)) == 0:
            save_s1_checkpoint(out_dir / f"{train.get('exp_name', 'gpt')}-e{epoch + 1}.ckpt", self.model, self.config,
                               epoch + 1)

    def state(self) -> dict:
        """Everything :meth:`load_state` needs to continue exactly (see :mod:`.checkpoints`)."""
        return {
            "stage": "s1",
            "position": asdict(self.position),
            "params": {name: param.detach().cpu().clone() for name, param in self.named},
            "grads": {name: param.grad.detach().cpu().clone() for name, param in self.named if param.grad is not None},
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "rng": rng_states(self.device),
        }

    def save_state(self, path: str | Path) -> None:
        save_training_state(path, self.state())

    def load_state(self, path: str | Path) -> None:
        """Continue from a saved state: parameters, gradients, optimizer, schedule, position, generators."""
        state = load_training_state(path)
        if state.get("stage") != "s1":
            raise ValueError(f"{path} is not the state of a GPT (s1) training run")
        with torch.no_grad():
            for name, param in self.named:
                param.copy_(state["params"][name])
                saved = state["grads"].get(name)
                param.grad = None if saved is None else saved.to(param.device).clone()
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.position = Position(**state["position"])
        restore_rng_states(state["rng"], self.device)
