"""The GPT stage (s1): phones + BERT features + prompt tokens -> semantic tokens.

A post-norm transformer over the concatenation [text | semantic tokens]: text positions
see all text, semantic positions see all text and the tokens before them. Decoding keeps
a key/value cache and runs several text segments as one left-padded batch, with the
official stop rules: no EOS in the first 11 steps, stop on a sampled or greedy EOS, stop
after ``early_stop`` tokens or ``max_steps`` steps.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import CheckpointError, read_t2s_checkpoint
from .sampling import SamplingOptions, draw, filtered_probabilities, penalize_repetitions

BERT_DIM = 1024
MIN_STEPS_BEFORE_EOS = 11
MAX_STEPS = 1500  # the official hard cap of the batched decoder
EARLY_STOP_TOKENS = 50 * 54  # official: configs.hz (50) * max_sec (54)

# (logits (B, V), history (B, T), live rows) -> (sampled (B, 1), greedy (B,)); see Text2Semantic._decode
Chooser = Callable[[torch.Tensor, torch.Tensor, list[int]], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class T2SConfig:
    vocab_size: int = 1025  # semantic codes + EOS
    phoneme_vocab_size: int = 732
    embedding_dim: int = 512
    hidden_dim: int = 512
    num_heads: int = 16
    num_layers: int = 24
    eos: int = 1024

    @classmethod
    def from_checkpoint_config(cls, config: dict) -> "T2SConfig":
        model = config["model"]
        return cls(
            vocab_size=model["vocab_size"],
            phoneme_vocab_size=model["phoneme_vocab_size"],
            embedding_dim=model["embedding_dim"],
            hidden_dim=model["hidden_dim"],
            num_heads=model["head"],
            num_layers=model["n_layer"],
            eos=model["EOS"],
        )


@lru_cache(maxsize=8)
def _sine_table(length: int, dim: int) -> torch.Tensor:
    """(length, dim) sinusoidal position table, sin on even and cos on odd channels."""
    position = torch.arange(0, length, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * -(math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * div_term)
    table[:, 1::2] = torch.cos(position * div_term)
    return table


def sine_positions(start: int, count: int, dim: int) -> torch.Tensor:
    """Rows ``start .. start+count`` of the position table, (count, dim)."""
    return _sine_table(max(4000, 1 << (start + count - 1).bit_length()), dim)[start : start + count]


SMALL_BATCH_ROWS = 8


def project(x: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
    """``linear(x)`` for x (..., D_in); a few rows on the CPU go as W @ x^T.

    Decoding steps have one row per live sequence. CPU BLAS runs ``W @ x^T`` as a
    matrix-vector product that reads W once however many rows there are, while
    ``F.linear`` repacks W on every call and costs about 2.5x more at 4 rows (see
    ``benchmarks/bench_batching.py``). For one row both give the same bits.
    """
    rows = x.reshape(-1, x.shape[-1])
    if rows.shape[0] > SMALL_BATCH_ROWS or rows.device.type != "cpu":
        return linear(x)
    if linear.bias is None:
        out = torch.mm(linear.weight, rows.t())
    else:
        out = torch.addmm(linear.bias.unsqueeze(1), linear.weight, rows.t())
    return out.t().contiguous().view(*x.shape[:-1], -1)


class Block(nn.Module):
    """Post-norm transformer layer: x = LN(x + attn(x)); x = LN(x + ffn(x))."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ffn_in = nn.Linear(dim, 4 * dim)
        self.ffn_out = nn.Linear(4 * dim, dim)
        self.norm_attn = nn.LayerNorm(dim)
        self.norm_ffn = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, cache: "KVCache", layer: int, mask: torch.Tensor | None) -> torch.Tensor:
        """x: (B, L, D) new positions; mask: (B, 1, L, S) True = may attend, or None."""
        batch, length, dim = x.shape
        q, k, v = project(x, self.qkv).view(batch, length, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        k, v = cache.append(layer, k, v)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = self.norm_attn(x + project(attn.transpose(1, 2).reshape(batch, length, dim), self.out))
        return self.norm_ffn(x + project(F.relu(project(x, self.ffn_in)), self.ffn_out))


class KVCache:
    """Per-layer keys and values (B, H, S, Dh), grown in chunks to avoid a copy per step."""

    def __init__(self, num_layers: int) -> None:
        self.keys: list[torch.Tensor | None] = [None] * num_layers
        self.values: list[torch.Tensor | None] = [None] * num_layers
        self.length = 0

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start = self.length
        end = start + k.shape[2]
        keys = self.keys[layer]
        if keys is None or keys.shape[2] < end:
            capacity = end + 256
            grown_k = k.new_empty(k.shape[0], k.shape[1], capacity, k.shape[3])
            grown_v = torch.empty_like(grown_k)
            if keys is not None:
                grown_k[:, :, :start] = keys[:, :, :start]
                grown_v[:, :, :start] = self.values[layer][:, :, :start]
            self.keys[layer], self.values[layer] = grown_k, grown_v
        self.keys[layer][:, :, start:end] = k
        self.values[layer][:, :, start:end] = v
        if layer == len(self.keys) - 1:
            self.length = end
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def keep(self, rows: torch.Tensor) -> None:
        """Drop finished batch rows."""
        self.keys = [None if t is None else t.index_select(0, rows) for t in self.keys]
        self.values = [None if t is None else t.index_select(0, rows) for t in self.values]


class Text2Semantic(nn.Module):
    def __init__(self, config: T2SConfig) -> None:
        super().__init__()
        if config.embedding_dim != config.hidden_dim:
            raise ValueError("embedding_dim and hidden_dim must be equal")
        self.config = config
        dim = config.hidden_dim
        self.bert_proj = nn.Linear(BERT_DIM, dim)
        self.phone_embedding = nn.Embedding(config.phoneme_vocab_size, dim)
        self.phone_position_alpha = nn.Parameter(torch.ones(1))
        self.semantic_embedding = nn.Embedding(config.vocab_size, dim)
        self.semantic_position_alpha = nn.Parameter(torch.ones(1))
        self.layers = nn.ModuleList(Block(dim, config.num_heads) for _ in range(config.num_layers))
        self.semantic_head = nn.Linear(dim, config.vocab_size, bias=False)

    def _embed_text(self, phones: torch.Tensor, bert: torch.Tensor) -> torch.Tensor:
        """phones (P,), bert (1024, P) -> (P, D) with positions from 0."""
        x = self.phone_embedding(phones) + self.bert_proj(bert.transpose(0, 1).to(self.bert_proj.weight.dtype))
        return x + self.phone_position_alpha * sine_positions(0, len(phones), x.shape[-1]).to(x)

    def _embed_semantic(self, tokens: torch.Tensor, start: int) -> torch.Tensor:
        """tokens (B, T) at positions start.. -> (B, T, D)."""
        y = self.semantic_embedding(tokens)
        return y + self.semantic_position_alpha * sine_positions(start, tokens.shape[1], y.shape[-1]).to(y)

    def _run(self, x: torch.Tensor, cache: KVCache, mask: torch.Tensor | None) -> torch.Tensor:
        for layer, block in enumerate(self.layers):
            x = block(x, cache, layer, mask)
        return x

    def _embed_next(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """tokens (B, 1) at per-row positions (B,) -> (B, 1, D)."""
        y = self.semantic_embedding(tokens)
        table = sine_positions(0, int(positions.max()) + 1, y.shape[-1]).to(y)
        return y + self.semantic_position_alpha * table[positions].unsqueeze(1)

    @torch.inference_mode()
    def generate(
        self,
        phones: list[torch.Tensor],
        bert: list[torch.Tensor],
        prompt: torch.Tensor | None,
        options: SamplingOptions = SamplingOptions(),
        generator: torch.Generator | None = None,
        max_steps: int = MAX_STEPS,
        early_stop: int = EARLY_STOP_TOKENS,
    ) -> list[torch.Tensor]:
        """Semantic tokens for the text segments of one request, decoded as one batch.

        Every row shares the prompt and the sampling options, and one draw from
        ``generator`` covers the whole batch, as in the official batched decoder.

        Args:
            phones: per segment (P_i,) int64 phone ids (prompt phones first).
            bert: per segment (1024, P_i) features.
            prompt: (T,) int64 prompt semantic tokens shared by all segments, or None.
        Returns:
            per segment (N_i,) int64 generated tokens, EOS and prompt removed.
        """

        def choose(logits: torch.Tensor, history: torch.Tensor, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
            logits = penalize_repetitions(logits, history, options.repetition_penalty)
            return draw(filtered_probabilities(logits, options), generator), logits.argmax(dim=-1)

        return self._decode(phones, bert, [prompt] * len(phones), choose, max_steps, early_stop)

    @torch.inference_mode()
    def generate_independent(
        self,
        phones: list[torch.Tensor],
        bert: list[torch.Tensor],
        prompts: list[torch.Tensor | None],
        options: list[SamplingOptions],
        generators: list[torch.Generator | None],
        max_steps: int = MAX_STEPS,
        early_stop: int = EARLY_STOP_TOKENS,
    ) -> list[torch.Tensor]:
        """Semantic tokens for rows of unrelated requests, decoded together for throughput.

        Each row has its own prompt, sampling options and generator, and samples only
        from its own generator, so it gets the tokens it would get if decoded alone with
        the same seed. The batch shares the weight reads of every step, which is what
        makes it faster than decoding the rows one after another.

        Args:
            phones, bert: as for :meth:`generate`, one entry per row.
            prompts: per row (T_i,) int64 prompt semantic tokens, or None.
            options, generators: per row.
        Returns:
            per row (N_i,) int64 generated tokens, EOS and prompt removed.
        """
        if not len(phones) == len(bert) == len(prompts) == len(options) == len(generators):
            raise ValueError("phones, bert, prompts, options and generators need one entry per row")
        prompt_lengths = [0 if p is None else len(p) for p in prompts]
        history_start = [max(prompt_lengths) - n for n in prompt_lengths]  # left padding of each row's history

        def choose(logits: torch.Tensor, history: torch.Tensor, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
            sampled, greedy = [], []
            for live, row in enumerate(rows):
                row_logits = penalize_repetitions(
                    logits[live : live + 1], history[live : live + 1, history_start[row] :], options[row].repetition_penalty
                )
                sampled.append(draw(filtered_probabilities(row_logits, options[row]), generators[row]))
                greedy.append(row_logits.argmax(dim=-1))
            return torch.cat(sampled), torch.cat(greedy)

        return self._decode(phones, bert, prompts, choose, max_steps, early_stop)

    def _decode(
        self,
        phones: list[torch.Tensor],
        bert: list[torch.Tensor],
        prompts: list[torch.Tensor | None],
        choose: Chooser,
        max_steps: int,
        early_stop: int,
    ) -> list[torch.Tensor]:
        """Prefill each row's [text | prompt], left-padded to one length, then decode step by step.

        ``choose(logits (B, V), history (B, T), rows)`` returns the sampled tokens (B, 1) and
        the greedy choices (B,) after the repetition penalty; ``history`` holds each row's
        prompt and generated tokens, left-padded, and ``rows`` maps live rows to input rows.
        """
        device = self.semantic_head.weight.device
        eos = self.config.eos
        prompts = [torch.zeros(0, dtype=torch.long, device=device) if p is None else p.to(device) for p in prompts]
        sequences = []
        for row_phones, row_bert, prompt in zip(phones, bert, prompts):
            parts = [self._embed_text(row_phones.to(device), row_bert.to(device))]
            if len(prompt):
                parts.append(self._embed_semantic(prompt.view(1, -1), 0)[0])
            sequences.append(torch.cat(parts))
        total = max(len(s) for s in sequences)
        xy = torch.stack([F.pad(s, (0, 0, total - len(s), 0)) for s in sequences])
        batch = xy.shape[0]
        prompt_len = max(len(p) for p in prompts)
        y = torch.stack([F.pad(p, (prompt_len - len(p), 0)) for p in prompts])  # (B, prompt_len) history
        positions = torch.tensor([len(p) for p in prompts], device=device)  # next semantic position per row

        # prefill mask (True = may attend): text sees its text, tokens see text and earlier tokens, nobody sees padding
        index = torch.arange(total, device=device)
        starts = torch.tensor([total - len(s) for s in sequences], device=device).unsqueeze(1)
        text_ends = starts + torch.tensor([len(p) for p in phones], device=device).unsqueeze(1)
        is_text = (index >= starts) & (index < text_ends)  # (B, total)
        is_token = index >= text_ends
        causal = index.view(1, -1) <= index.view(-1, 1)  # [query, key]
        mask = is_text.unsqueeze(1) | (is_token.unsqueeze(1) & is_token.unsqueeze(2) & causal)
        step_mask = (index >= starts).view(batch, 1, 1, total)

        cache = KVCache(len(self.layers))
        hidden = self._run(xy, cache, mask.unsqueeze(1))[:, -1]
        rows = list(range(batch))  # input row of each live row
        results: list[torch.Tensor | None] = [None] * batch
        for step in range(max_steps):
            logits = project(hidden, self.semantic_head)
            if step < MIN_STEPS_BEFORE_EOS:
                logits = logits[:, :-1]
            sampled, greedy = choose(logits.contiguous(), y, rows)
            y = torch.cat([y, sampled], dim=1)
            finished = (sampled[:, 0] == eos) | (greedy == eos)
            if step + 1 > early_stop or step == max_steps - 1:
                finished[:] = True
            for live in torch.nonzero(finished).flatten().tolist():
                results[rows[live]] = y[live, prompt_len:-1].clone()
            if bool(finished.all()):
                break
            if bool(finished.any()):
                keep = torch.nonzero(~finished).flatten()
                rows = [rows[i] for i in keep.tolist()]
                y, step_mask, positions = y.index_select(0, keep), step_mask.index_select(0, keep), positions.index_select(0, keep)
                cache.keep(keep)
            step_mask = F.pad(step_mask, (0, 1), value=True)
            hidden = self._run(self._embed_next(y[:, -1:], positions + step), cache, step_mask)[:, -1]
        return results  # type: ignore[return-value]


# official state-dict names -> ours
_RENAMES = {
    "model.bert_proj.": "bert_proj.",
    "model.ar_text_embedding.word_embeddings.": "phone_embedding.",
    "model.ar_text_position.alpha": "phone_position_alpha",
    "model.ar_audio_embedding.word_embeddings.": "semantic_embedding.",
    "model.ar_audio_position.alpha": "semantic_position_alpha",
    "model.ar_predict_layer.": "semantic_head.",
    "model.h.layers.": "layers.",
}
_LAYER_RENAMES = {
    "self_attn.in_proj_weight": "qkv.weight",
    "self_attn.in_proj_bias": "qkv.bias",
    "self_attn.out_proj.": "out.",
    "linear1.": "ffn_in.",
    "linear2.": "ffn_out.",
    "norm1.": "norm_attn.",
    "norm2.": "norm_ffn.",
}


def rename_official_key(key: str) -> str:
    """Our parameter name for an official s1 state-dict key (unknown keys pass through)."""
    for old, new in _RENAMES.items():
        if key.startswith(old):
            key = new + key[len(old) :]
            break
    if key.startswith("layers."):
        index, rest = key[len("layers.") :].split(".", 1)
        for old, new in _LAYER_RENAMES.items():
            if rest.startswith(old):
                return f"layers.{index}.{new}{rest[len(old):]}"
    return key


def load_state_strict(model: nn.Module, weights: dict[str, torch.Tensor], source: str) -> None:
    """Copy ``weights`` (our names) into ``model``: every key must match in name and shape."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{source}: weights do not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for key, tensor in weights.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(f"{source}: {key} has shape {tuple(tensor.shape)}, the model expects {tuple(expected[key].shape)}")
    model.load_state_dict(weights, strict=True)


def load_t2s(path: str | os.PathLike, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Text2Semantic:
    """Build the GPT stage from an official s1 ``.ckpt`` (config read from the file)."""
    raw = read_t2s_checkpoint(path)
    try:
        config = T2SConfig.from_checkpoint_config(raw.config)
    except (KeyError, TypeError) as error:
        raise CheckpointError(f"{path}: incomplete s1 model config ({error})") from error
    model = Text2Semantic(config)
    load_state_strict(model, {rename_official_key(k): v for k, v in raw.weights.items()}, str(path))
    return model.to(device=device, dtype=dtype).eval()
