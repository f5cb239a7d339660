"""Choosing the next semantic token: repetition penalty, top-p, temperature, top-k.

The order of the steps and the sampling trick (argmax of probabilities divided by
exponential noise, which draws from the categorical distribution) follow the official
decoder, so that a seeded run and greedy (top_k=1) runs give the official tokens.
Randomness comes only from the ``generator`` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingOptions:
    top_k: int = 15
    top_p: float = 1.0
    temperature: float = 1.0
    repetition_penalty: float = 1.35


def penalize_repetitions(logits: torch.Tensor, previous_tokens: torch.Tensor, penalty: float) -> torch.Tensor:
    """Make every token already in ``previous_tokens`` less likely, in place.

    Args:
        logits: (B, V) scores; modified and returned.
        previous_tokens: (B, T) int64 tokens so far (prompt included).
    """
    if penalty == 1.0 or previous_tokens.shape[1] == 0:
        return logits
    score = torch.gather(logits, 1, previous_tokens)
    score = torch.where(score < 0, score * penalty, score / penalty)
    return logits.scatter_(1, previous_tokens, score)


def filtered_probabilities(logits: torch.Tensor, options: SamplingOptions) -> torch.Tensor:
    """(B, V) probabilities after top-p, temperature and top-k filtering of (B, V) logits."""
    if options.top_p < 1.0:
        sorted_logits, sorted_indices = torch.sort(logits, descending=True)
        cumulative = torch.cumsum(torch.softmax(sorted_logits, dim=-1), dim=-1)
        remove_sorted = cumulative > options.top_p
        remove_sorted[:, 0] = False  # always keep the most likely token
        remove = remove_sorted.scatter(1, sorted_indices, remove_sorted)
        logits = logits.masked_fill(remove, float("-inf"))
    logits = logits / max(options.temperature, 1e-5)
    if options.top_k is not None:
        kth_best = torch.topk(logits, min(options.top_k, logits.shape[-1])).values[:, -1:]
        logits = torch.where(logits < kth_best, float("-inf"), logits)
    return torch.softmax(logits, dim=-1)


def draw(probabilities: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One token per row of (B, V) probabilities -> (B, 1) int64."""
    noise = torch.empty_like(probabilities).exponential_(1, generator=generator)
    return torch.argmax(probabilities / noise, dim=-1, keepdim=True)
