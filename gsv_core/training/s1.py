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

Precision (:mod:`.precision`): the config's ``train.precision`` as Lightning runs it (fp32, or
autocast with a float16 loss scaler). Several processes (:mod:`.distributed`): the model
under DDP, each process on its share of every batch index, only rank 0 writing files.
Metrics: :class:`BatchRecord` after every batch (for progress) and :class:`StepRecord` after
every optimizer step (for the metrics file), both averaged over the processes.
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
from .distributed import Distributed, from_rank_0, gather_to_all, mean_over_ranks, wrap_for_training
from .lr_schedule import WarmupCosineLRSchedule
from .precision import TrainingPrecision
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
    """One trained batch, for progress (loss and accuracy averaged over the processes)."""

    epoch: int
    batch_idx: int
    loss: float  # the batch's summed cross-entropy
    accuracy: float
    stepped: bool
    lr: float  # the learning rate of this batch's optimizer step (the group's lr when it did not step)
    seconds: float
    batches_in_epoch: int
    epochs: int


@dataclass(frozen=True)
class StepRecord:
    """One optimizer step and the batches whose gradients it applied (one line of the metrics file)."""

    epoch: int  # of the batch that stepped (the first batches may belong to the previous epoch)
    step: int  # optimizer steps so far, this one included
    batches: int
    loss: float  # mean over its batches of the batch's summed cross-entropy (the official "total_loss")
    accuracy: float  # mean top-3 accuracy of its batches
    lr: float
    seconds: float  # wall time of its batches' forwards and backwards and of the step
    loss_scale: float | None  # the float16 loss scale after the step (16-mixed only)
    skipped: bool  # the loss scaler found inf/NaN gradients and left the parameters alone


@dataclass
class PendingStep:
    """Sums over the batches since the last optimizer step (kept in the training state)."""

    batches: int = 0
    loss: float = 0.0
    accuracy: float = 0.0
    seconds: float = 0.0

    def add(self, loss: float, accuracy: float, seconds: float) -> None:
        self.batches += 1
        self.loss += loss
        self.accuracy += accuracy
        self.seconds += seconds

    def record(self, epoch: int, step: int, lr: float, applied: bool, loss_scale: float | None) -> StepRecord:
        count = max(self.batches, 1)
        return StepRecord(epoch, step, self.batches, self.loss / count, self.accuracy / count, lr, self.seconds,
                          loss_scale, not applied)


class S1TrainingStep(torch.nn.Module):
    """The training forward of :mod:`.s1_model` as a module: DDP averages the gradients of what its forward computes."""

    def __init__(self, model: Text2Semantic) -> None:
        super().__init__()
        self.model = model

    def forward(self, phoneme_ids: torch.Tensor, phoneme_lens: torch.Tensor, semantic_ids: torch.Tensor,
                semantic_lens: torch.Tensor, bert: torch.Tensor) -> S1Output:
        """The tensors of an :class:`~.s1_model.S1Batch`, in its field order."""
        return training_forward(self.model, S1Batch(phoneme_ids, phoneme_lens, semantic_ids, semantic_lens, bert))


class S1Trainer:
    """The official s1 loop over a dataset (see the module docstring). ``config`` is the official dict.

    ``precision`` defaults to the config's ``train.precision``; ``group`` is this process's
    place among several (one process by default). Under DDP every process builds its trainer
    from the same pretrained weights and calls the same methods in the same order.
    """

    def __init__(self, model: Text2Semantic, config: dict, dataset: S1Dataset, device: str | torch.device = "cpu",
                 precision: TrainingPrecision | None = None, group: Distributed | None = None) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).train().requires_grad_(True)
        self.config = config
        self.dataset = dataset
        self.group = group or Distributed()
        train = config["train"]
        self.precision = precision or TrainingPrecision.official(train.get("precision", "32"), self.device)
        self.named = official_parameters(self.model)
        self.optimizer = official_optimizer([param for _, param in self.named])
        self.schedule = official_schedule(self.optimizer, config)
        self.step_module = wrap_for_training(S1TrainingStep(self.model), self.group, self.device)
        self.epochs = int(train["epochs"])
        self.batch_size = loader_batch_size(int(train["batch_size"]), len(dataset.items), bool(train.get("if_dpo", False)))
        self.position = Position()
        self.pending = PendingStep()
        self._seconds = dataset.seconds()

    def start(self) -> None:
        """Seed every generator as ``seed_everything`` does and make the official run's first draws."""
        seed = int(self.config["train"]["seed"])
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        draw_like_official_start(self.config)

    def batches(self, epoch: int) -> list[list[int]]:
        """This process's batches of ``epoch`` (item indices)."""
        return epoch_batches(self._seconds, self.batch_size, epoch, seed=SAMPLER_SEED, replicas=self.group.world_size,
                             rank=self.group.rank)

    def train_batch(self, batch_idx: int, batch: S1Batch) -> tuple[S1Output, bool, bool, float]:
        """Forward and backward of one batch, then the optimizer step where the official loop makes one.

        Returns the output, whether the loop stepped here, whether the step changed the
        parameters (False when the float16 loss scaler skipped it) and the step's lr.
        """
        batch = batch.to(self.device)
        with self.precision.autocast():
            output = self.step_module(batch.phoneme_ids, batch.phoneme_lens, batch.semantic_ids, batch.semantic_lens,
                                      batch.bert)
        self.precision.backward(output.loss)
        lr = float(self.optimizer.param_groups[0]["lr"])
        stepped, applied = steps_here(batch_idx), True
        if stepped:
            applied = self.precision.step(self.optimizer)
            self.optimizer.zero_grad(set_to_none=True)
            self.schedule.step()  # officially also after a step the loss scaler skipped
        return output, stepped, applied, lr

    def run(self, out_dir: str | Path, state_path: str | Path | None = None, state_every: int = ACCUMULATE_BATCHES,
            on_batch: Callable[[BatchRecord], None] | None = None, stop_after: int | None = None,
            on_step: Callable[[StepRecord], None] | None = None) -> Position:
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
                output, stepped, applied, lr = self.train_batch(
                    batch_idx, collate([self.dataset.items[i] for i in batches[batch_idx]]))
                loss, accuracy = mean_over_ranks([float(output.loss.detach()), output.accuracy], self.group, self.device)
                seconds = time.perf_counter() - began
                self.position = Position(epoch, batch_idx + 1, self.position.steps + int(stepped))
                self.pending.add(loss, accuracy, seconds)
                done += 1
                if on_batch is not None:
                    on_batch(BatchRecord(epoch, batch_idx, loss, accuracy, stepped, lr, seconds, len(batches), self.epochs))
                if stepped:
                    record = self.pending.record(epoch, self.position.steps, lr, applied, self.precision.loss_scale())
                    self.pending = PendingStep()
                    if on_step is not None:
                        on_step(record)
                if state_path is not None and (stepped or (batch_idx + 1) % state_every == 0):
                    self.save_state(state_path)
            self._end_epoch(epoch, out_dir)
            self.position = Position(epoch + 1, 0, self.position.steps)
            if state_path is not None:
                self.save_state(state_path)
        return self.position

    def _end_epoch(self, epoch: int, out_dir: Path) -> None:
        train = self.config["train"]
        if (self.group.is_main and train.get("if_save_every_weights", True)
                and (epoch + 1) % int(train.get("save_every_n_epoch", 1)) == 0):
            save_s1_checkpoint(out_dir / f"{train.get('exp_name', 'gpt')}-e{epoch + 1}.ckpt", self.model, self.config,
                               epoch + 1)

    def state(self) -> dict:
        """Everything :meth:`load_state` needs to continue exactly (see :mod:`.checkpoints`).

        A collective under DDP: every rank calls it (each one's generators are gathered).
        """
        return {
            "stage": "s1",
            "config": self.config,
            "world_size": self.group.world_size,
            "position": asdict(self.position),
            "params": {name: param.detach().cpu().clone() for name, param in self.named},
            "grads": {name: param.grad.detach().cpu().clone() for name, param in self.named if param.grad is not None},
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "precision": self.precision.state_dict(),
            "pending_step": asdict(self.pending),
            "rng": gather_to_all(rng_states(self.device), self.group),
        }

    def save_state(self, path: str | Path) -> None:
        """Write the state (rank 0 only; every rank must call this)."""
        state = self.state()
        if self.group.is_main:
            save_training_state(path, state)

    def load_state(self, path: str | Path) -> None:
        """Continue from a saved state: parameters, gradients, optimizer, schedule, position, generators.

        Under DDP rank 0 reads the file and hands it to the others (every rank must call this).
        """
        self.load_state_dict(read_s1_state(path, self.group), path)

    def load_state_dict(self, state: dict, source: str | Path = "the training state") -> None:
        """:meth:`load_state` from a state already read (by :func:`read_s1_state`)."""
        saved_world = int(state.get("world_size", 1))
        if saved_world != self.group.world_size:
            raise ValueError(f"{source} was saved by a run of {saved_world} process(es); resume it with as many "
                             f"(torchrun --nproc_per_node {saved_world}), not {self.group.world_size}")
        with torch.no_grad():
            for name, param in self.named:
                param.copy_(state["params"][name])
                saved = state["grads"].get(name)
                param.grad = None if saved is None else saved.to(param.device).clone()
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.precision.load_state_dict(state.get("precision", {}))
        self.pending = PendingStep(**state.get("pending_step", {}))
        self.position = Position(**state["position"])
        restore_rng_states(state["rng"][self.group.rank], self.device)


def read_s1_state(path: str | Path, group: Distributed | None = None) -> dict:
    """A GPT training state from ``path``; under DDP rank 0 reads it and every rank gets it (a collective)."""
    group = group or Distributed()
    state = from_rank_0(load_training_state(path) if group.is_main else None, group)
    if state.get("stage") != "s1":
        raise ValueError(f"{path} is not the state of a GPT (s1) training run")
    return state
