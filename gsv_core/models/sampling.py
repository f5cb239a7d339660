"""Choosing the next semantic token: repetition penalty, top-p, temperature, top-k.

The order of the steps and the sampling trick (argmax of probabilities divided by
exponential noise, which draws from the categorical distribution) follow the official
decoder, so that a seeded run and greedy (top_k=1) runs give the official tokens.
Every step is vectorized over rows that each have their own options; the results are
bit-identical to applying each row's options alone. Randomness comes only from the
generators passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingOptions:
    top_k: int | None = 15  # None keeps every token
    top_p: float = 1.0
    temperature: float = 1.0
    repetition_penalty: float = 1.35


@dataclass(frozen=True)
class RowOptions:
    """The options of B rows as (B, 1) tensors, ready for vectorized sampling."""

    top_k: torch.Tensor  # int64; a row without top-k holds a huge k
    top_p: torch.Tensor  # float32; +inf where top-p is off (>= 1), so no rounding can cut a token
    temperature: torch.Tensor  # float32, already clamped to >= 1e-5 as the official sampler does
    repetition_penalty: torch.Tensor  # float32
    uses_top_p: bool
    largest_top_k: int  # an upper bound of top_k, known on the host so that top-k needs no sync

    @classmethod
    def of(cls, options: Sequence[SamplingOptions], device: torch.device | str = "cpu") -> "RowOptions":
        column = lambda values, dtype: torch.tensor(values, dtype=dtype, device=device).view(-1, 1)
        return cls(
            top_k=column([o.top_k if o.top_k is not None else 2**62 for o in options], torch.long),
            top_p=column([o.top_p if o.top_p < 1.0 else float("inf") for o in options], torch.float32),
            temperature=column([max(o.temperature, 1e-5) for o in options], torch.float32),
            repetition_penalty=column([o.repetition_penalty for o in options], torch.float32),
            uses_top_p=any(o.top_p < 1.0 for o in options),
            largest_top_k=max(o.top_k if o.top_k is not None else 2**62 for o in options),
        )

    def select(self, rows: torch.Tensor) -> "RowOptions":
        """The options of the rows ``rows`` (int64 indices), in that order."""
        pick = lambda t: t.index_select(0, rows)
        return RowOptions(pick(self.top_k), pick(self.top_p), pick(self.temperature), pick(self.repetition_penalty),
                          self.uses_top_p, self.largest_top_k)


def seen_tokens(history: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """(B, V) bool mask of the tokens present in each row of ``history`` (B, T) int64."""
    seen = torch.zeros(history.shape[0], vocab_size, dtype=torch.bool, device=history.device)
    return seen.scatter_(1, history, True)


def penalize_repetitions(logits: torch.Tensor, seen: torch.Tensor, penalty: torch.Tensor | float) -> torch.Tensor:
    """Make every token already seen less likely: positive scores are divided, negative multiplied.

    Args:
        logits: (B, V) scores (not modified).
        seen: (B, V') bool, V' >= V; only the first V columns are read.
        penalty: a float or (B, 1) per row; 1.0 leaves a row unchanged.
    Returns:
        (B, V) new scores, bit-identical to a gather/scatter over the history tokens.
    """
    penalized = torch.where(logits < 0, logits * penalty, logits / penalty)
    return torch.where(seen[:, : logits.shape[1]], penalized, logits)


def filtered_probabilities(logits: torch.Tensor, options: RowOptions | SamplingOptions) -> torch.Tensor:
    """(B, V) probabilities after top-p, temperature and top-k filtering of (B, V) logits."""
    if isinstance(options, SamplingOptions):
        options = RowOptions.of([options] * logits.shape[0], logits.device)
    if options.uses_top_p:
        sorted_logits, sorted_indices = torch.sort(logits, descending=True)
        cumulative = torch.cumsum(torch.softmax(sorted_logits, dim=-1), dim=-1)
        remove_sorted = cumulative > options.top_p
        remove_sorted[:, 0] = False  # always keep the most likely token
        remove = remove_sorted.scatter(1, sorted_indices, remove_sorted)
        logits = logits.masked_fill(remove, float("-inf"))
    logits = logits / options.temperature
    vocab = logits.shape[-1]
    # the k-th best value of a row is also the k-th of the row's top-k for any larger k
    best = torch.topk(logits, min(options.largest_top_k, vocab)).values
    kth_best = best.gather(1, options.top_k.clamp(max=vocab) - 1)
    logits = torch.where(logits < kth_best, float("-inf"), logits)
    return torch.softmax(logits, dim=-1)


def draw(probabilities: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One token per row of (B, V) probabilities -> (B,) int64, with one (B, V) noise draw."""
    noise = torch.empty_like(probabilities).exponential_(1, generator=generator)
    return torch.argmax(probabilities / noise, dim=-1)


class RowSampler:
    """The sampling state of one decoding: per-row options, seen tokens and generators.

    Rows that share one generator object draw their noise together, one (B_g, V) draw in
    row order, as the official batched decoder does for the segments of one request; a
    row with a generator of its own draws alone, so it gets the tokens it would get if
    decoded by itself. ``None`` stands for the device's default generator.
    """

    def __init__(self, options: Sequence[SamplingOptions], generators: Sequence[torch.Generator | None],
                 prompts: Sequence[torch.Tensor], vocab_size: int, device: torch.device, keep_states: bool) -> None:
        """prompts: per row (T_i,) int64 tokens that count as seen; keep_states: see :meth:`rewind`."""
        self.options = RowOptions.of(options, device)
        self.seen = torch.zeros(len(prompts), vocab_size, dtype=torch.bool, device=device)
        for row, prompt in enumerate(prompts):
            self.seen[row, prompt] = True
        default = torch.default_generator
        if device.type == "cuda":
            default = torch.cuda.default_generators[torch.cuda.current_device() if device.index is None else device.index]
        self.generators = [default if g is None else g for g in generators]
        self.keep_states = keep_states
        self.states: list[list[torch.Tensor]] = [[] for _ in generators]
        self._group()

    def _group(self) -> None:
        rows_of: dict[int, list[int]] = {}
        for row, generator in enumerate(self.generators):
            rows_of.setdefault(id(generator), []).append(row)
        device = self.seen.device
        self.groups = [(self.generators[rows[0]], torch.tensor(rows, device=device)) for rows in rows_of.values()]
        self.shares_generators = any(len(rows) > 1 for rows in rows_of.values())

    def choose(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """logits (B, V') -> sampled tokens (B,) and greedy choices (B,) after the penalty."""
        logits = penalize_repetitions(logits.float(), self.seen, self.options.repetition_penalty)
        probabilities = filtered_probabilities(logits, self.options)
        if self.keep_states:
            for generator, states in zip(self.generators, self.states):
                states.append(generator.get_state())
        if len(self.groups) == 1:
            sampled = draw(probabilities, self.groups[0][0])
        else:
            sampled = torch.empty(len(logits), dtype=torch.long, device=logits.device)
            for generator, rows in self.groups:
                sampled[rows] = draw(probabilities.index_select(0, rows), generator)
        self.seen.scatter_(1, sampled.view(-1, 1), True)
        return sampled, logits.argmax(dim=-1)

    def rewind(self, row: int, extra_draws: int) -> None:
        """Undo the last ``extra_draws`` draws of ``row``'s own generator.

        A decoder that checks for finished rows only every few steps lets a finished row
        draw a few more times; rewinding leaves its generator as if it had stopped at once,
        so later users of the generator (the SoVITS noise) see the same state. Needs
        ``keep_states`` and a generator used by this row alone.
        """
        if extra_draws > 0:
            self.generators[row].set_state(self.states[row][-extra_draws])

    def forget_states(self) -> None:
        """Drop the saved generator states (after each stop check)."""
        self.states = [[] for _ in self.generators]

    def keep(self, rows: list[int]) -> None:
        """Keep only the rows ``rows`` (indices into the current rows), in that order."""
        index = torch.tensor(rows, device=self.seen.device)
        self.options = self.options.select(index)
        self.seen = self.seen.index_select(0, index)
        self.generators = [self.generators[row] for row in rows]
        self.states = [self.states[row] for row in rows]
        self._group()
