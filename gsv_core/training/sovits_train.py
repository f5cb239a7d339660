"""One SoVITS (s2) training step as the official ``s2_train.py`` takes it: a D step, then a G step.

    out   = G(batch)                                 (training forward, draws dropouts/noise/slices)
    y     = the real waveform at the slice; y_mel = mel(spec) at the slice; y_hat_mel = mel(y_hat)
    D step: L_D = sum_d mean((1 - D(y))^2) + mean(D(y_hat.detach())^2); AdamW step of D
    G step: L_G = adversarial + 2 x feature matching + c_mel x L1(y_mel, y_hat_mel) + kl_ssl + c_kl x KL
            (D already updated); AdamW step of G

Optimizers and schedule as upstream: AdamW (betas and eps from the config, torch's default weight
decay 0.01), the text embedding, text encoder and MRTE at ``text_low_lr_rate`` times the
learning rate, ``ExponentialLR(lr_decay)`` stepped once before the first epoch (so epoch 1
already runs at lr * lr_decay) and once after each epoch. The gradient "clipping" with a clip
value of None only measures the total norm, which is reported.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .discriminator import MultiPeriodDiscriminator
from .mel import MelSettings, mel_spectrogram, spec_to_mel
from .s2_data import S2Batch
from .s2_losses import discriminator_loss, feature_loss, generator_loss, kl_loss
from .s2_model import GeneratorOutput, TrainableSoVITS, slice_segments

ADAMW_WEIGHT_DECAY = 0.01  # torch's AdamW default, which upstream does not override


@dataclass(frozen=True)
class S2TrainSettings:
    """The ``train`` section of the official s2 config that a step reads."""

    learning_rate: float
    betas: tuple[float, float]
    eps: float
    lr_decay: float
    segment_size: int  # samples
    c_mel: float
    c_kl: float
    text_low_lr_rate: float

    @classmethod
    def from_config(cls, train: Mapping[str, Any]) -> S2TrainSettings:
        return cls(
            learning_rate=float(train["learning_rate"]), betas=(float(train["betas"][0]), float(train["betas"][1])),
            eps=float(train["eps"]), lr_decay=float(train["lr_decay"]), segment_size=int(train["segment_size"]),
            c_mel=float(train["c_mel"]), c_kl=float(train["c_kl"]), text_low_lr_rate=float(train["text_low_lr_rate"]),
        )


@dataclass
class StepResult:
    """Everything one step computed (the values the training reference records)."""

    output: GeneratorOutput
    y_slice: torch.Tensor  # (B, 1, segment) the real waveform at the slice
    y_mel: torch.Tensor  # (B, n_mels, S) target log mels at the slice
    y_hat_mel: torch.Tensor  # (B, n_mels, S) log mels of the generated segment
    d_step_real: list[torch.Tensor]  # per-discriminator scores of the D step
    d_step_fake: list[torch.Tensor]
    g_step_fake: list[torch.Tensor]  # per-discriminator scores of the generated audio in the G step
    losses: dict[str, torch.Tensor]  # scalar losses, official names
    grad_norm_d: float
    grad_norm_g: float
    lr_d: float
    lr_g_groups: list[float]


def gradient_norm(parameters: Iterable[torch.nn.Parameter]) -> float:
    """Total L2 norm of the gradients that exist, summed in double from per-tensor norms as upstream."""
    total = 0.0
    for parameter in parameters:
        if parameter.grad is not None:
            total += parameter.grad.detach().norm(2).item() ** 2
    return total**0.5


def _step_schedulers_once(*schedulers: torch.optim.lr_scheduler.LRScheduler) -> None:
    """The official pre-epoch scheduler step (before any optimizer step, so torch would warn)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
        for scheduler in schedulers:
            scheduler.step()


class S2Trainer:
    """Generator, discriminator, their optimizers and schedules; :meth:`step` runs one batch."""

    def __init__(self, generator: TrainableSoVITS, discriminator: MultiPeriodDiscriminator, config: Mapping[str, Any]) -> None:
        self.generator = generator
        self.discriminator = discriminator
        self.config = config
        self.settings = S2TrainSettings.from_config(config["train"])
        self.mel = MelSettings.from_config(config["data"])
        s = self.settings
        base, text_side = generator.text_side_groups()
        low_lr = s.learning_rate * s.text_low_lr_rate
        self.optim_g = torch.optim.AdamW(
            [{"params": base, "lr": s.learning_rate}, *({"params": group, "lr": low_lr} for group in text_side)],
            s.learning_rate, betas=s.betas, eps=s.eps, weight_decay=ADAMW_WEIGHT_DECAY,
        )
        self.optim_d = torch.optim.AdamW(
            discriminator.parameters(), s.learning_rate, betas=s.betas, eps=s.eps, weight_decay=ADAMW_WEIGHT_DECAY
        )
        self.sched_g = torch.optim.lr_scheduler.ExponentialLR(self.optim_g, gamma=s.lr_decay)
        self.sched_d = torch.optim.lr_scheduler.ExponentialLR(self.optim_d, gamma=s.lr_decay)
        _step_schedulers_once(self.sched_g, self.sched_d)

    def end_epoch(self) -> None:
        """The schedule's per-epoch decay."""
        self.sched_g.step()
        self.sched_d.step()

    def step(self, batch: S2Batch, draws: AbstractContextManager | None = None) -> StepResult:
        """One official training step on ``batch``: D step, then G step (both models in train mode).

        Every random draw happens in the generator's forward; ``draws`` (e.g. a
        :class:`~gsv_core.training.random_draws.DrawInjector`) is entered around it when given.
        """
        generator, discriminator = self.generator.train(), self.discriminator.train()
        hop = self.mel.audio.hop_length
        with draws or nullcontext():
            output = generator(batch)
        y_mel = slice_segments(spec_to_mel(batch.spec, self.mel), output.ids_slice, generator.segment_frames)
        y_hat_mel = mel_spectrogram(output.y_hat.squeeze(1), self.mel)
        y = slice_segments(batch.y, output.ids_slice * hop, self.settings.segment_size)

        real, fake, _, _ = discriminator(y, output.y_hat.detach())
        loss_disc, _, _ = discriminator_loss(real, fake)
        self.optim_d.zero_grad()
        loss_disc.backward()
        grad_norm_d = gradient_norm(discriminator.parameters())
        lr_d = self.optim_d.param_groups[0]["lr"]
        self.optim_d.step()

        # the D weights' gradients of this pass are never used (upstream discards them at the next
        # zero_grad), so they are not computed
        discriminator.requires_grad_(False)
        try:
            _, fake_g, real_features, fake_features = discriminator(y, output.y_hat)
        finally:
            discriminator.requires_grad_(True)
        losses = self._generator_losses(output, y_mel, y_hat_mel, fake_g, real_features, fake_features)
        self.optim_g.zero_grad()
        losses["loss_gen_all"].backward()
        grad_norm_g = gradient_norm(generator.parameters())
        lr_g = [group["lr"] for group in self.optim_g.param_groups]
        self.optim_g.step()
        losses["loss_disc"] = losses["loss_disc_all"] = loss_disc
        return StepResult(
            output=output, y_slice=y, y_mel=y_mel, y_hat_mel=y_hat_mel, d_step_real=real, d_step_fake=fake,
            g_step_fake=fake_g, losses=losses, grad_norm_d=grad_norm_d, grad_norm_g=grad_norm_g, lr_d=lr_d, lr_g_groups=lr_g,
        )

    def _generator_losses(
        self, output: GeneratorOutput, y_mel: torch.Tensor, y_hat_mel: torch.Tensor, fake_scores: list[torch.Tensor],
        real_features: list[list[torch.Tensor]], fake_features: list[list[torch.Tensor]],
    ) -> dict[str, torch.Tensor]:
        s = self.settings
        mel_raw = F.l1_loss(y_mel, y_hat_mel)
        kl_raw = kl_loss(output.z_p, output.logs_q, output.m_p, output.logs_p, output.y_mask)
        loss_mel, loss_kl = mel_raw * s.c_mel, kl_raw * s.c_kl
        loss_fm = feature_loss(real_features, fake_features)
        loss_gen, _ = generator_loss(fake_scores)
        total = loss_gen + loss_fm + loss_mel + output.kl_ssl * 1 + loss_kl
        return {
            "loss_gen": loss_gen, "loss_fm": loss_fm, "loss_mel_raw": mel_raw, "loss_kl_raw": kl_raw,
            "loss_mel": loss_mel, "loss_kl": loss_kl, "loss_gen_all": total,
        }
