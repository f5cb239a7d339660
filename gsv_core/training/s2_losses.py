"""The SoVITS training losses, as the official trainer defines them.

Least-squares GAN losses per discriminator, feature matching on every discriminator layer
(x2), the KL between the posterior (through the flow) and the text prior, and the mel L1
(weighted by ``c_mel``, 45 in the official config, by the caller). Every loss is computed in float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def discriminator_loss(
    real_scores: Sequence[torch.Tensor], fake_scores: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """sum_d mean((1 - real)^2) + mean(fake^2) -> (total, per-discriminator real terms, fake terms)."""
    real_terms = [torch.mean((1 - real.float()) ** 2) for real in real_scores]
    fake_terms = [torch.mean(fake.float() ** 2) for fake in fake_scores]
    total = 0
    for real, fake in zip(real_terms, fake_terms):
        total = total + (real + fake)  # upstream adds each pair first
    return total, real_terms, fake_terms


def generator_loss(fake_scores: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """sum_d mean((1 - fake)^2) -> (total, per-discriminator terms)."""
    terms = [torch.mean((1 - fake.float()) ** 2) for fake in fake_scores]
    total = 0
    for term in terms:
        total = total + term
    return total, terms


def feature_loss(real_features: Sequence[Sequence[torch.Tensor]], fake_features: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
    """2 * sum over discriminators and layers of mean|real - fake|; the real side carries no gradient."""
    total = 0
    for real_layers, fake_layers in zip(real_features, fake_features):
        for real, fake in zip(real_layers, fake_layers):
            total = total + torch.mean(torch.abs(real.float().detach() - fake.float()))
    return total * 2


def kl_loss(z_p: torch.Tensor, logs_q: torch.Tensor, m_p: torch.Tensor, logs_p: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL of the flowed posterior sample z_p against the prior N(m_p, exp(logs_p)), per unmasked element.

    All (B, C, T) except ``mask`` (B, 1, T); the sum runs over real frames and is divided by
    the mask's sum (frames, not frames x channels), as upstream.
    """
    z_p, logs_q, m_p, logs_p, mask = (t.float() for t in (z_p, logs_q, m_p, logs_p, mask))
    kl = logs_p - logs_q - 0.5
    kl = kl + 0.5 * ((z_p - m_p) ** 2) * torch.exp(-2.0 * logs_p)
    return torch.sum(kl * mask) / torch.sum(mask)
