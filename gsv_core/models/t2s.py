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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import CheckpointError, read_t2s_checkpoint
from .kv_cache import KVCache
from .sampling import RowSampler, SamplingOptions

BERT_DIM = 1024
MIN_STEPS_BEFORE_EOS = 11
MAX_STEPS = 1500  # the official hard cap of the batched decoder
EARLY_STOP_TOKENS = 50 * 54  # official: configs.hz (50) * max_sec (54)
GPU_CHECK_EVERY = 8  # decoding steps between stop checks (host syncs) off the CPU


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
    """(length, dim) sinusoidal position table, sin on even and cos on odd channels.

    Built outside inference mode even when first asked for while decoding: the cached table
    is shared with training, where an inference-mode tensor cannot enter autograd.
    """
    with torch.inference_mode(False), torch.no_grad():
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


def project(x: torch.Tensor, linear: nn.Module) -> torch.Tensor:
    """``linear(x)`` for x (..., D_in); a few rows on the CPU go as W @ x^T (plain ``nn.Linear`` only).

    Decoding steps have one row per live sequence. CPU BLAS runs ``W @ x^T`` as a
    matrix-vector product that reads W once however many rows there are, while
    ``F.linear`` repacks W on every call and costs about 2.5x more at 4 rows (see
    ``benchmarks/bench_batching.py``). For one row all three give the same bits, and
    ``addmv`` needs the fewest operations around it. The result is a new tensor.
    """
    rows = x.reshape(-1, x.shape[-1])
    count = rows.shape[0]
    if count > SMALL_BATCH_ROWS or rows.device.type != "cpu" or not isinstance(linear, nn.Linear):
        return linear(x)
    weight, bias = linear.weight, linear.bias
    if count == 1:
        out = torch.mv(weight, rows[0]) if bias is None else torch.addmv(bias, weight, rows[0])
    elif bias is None:
        out = torch.mm(weight, rows.t()).t().contiguous()
    else:
        out = torch.addmm(bias.unsqueeze(1), weight, rows.t()).t().contiguous()
    return out.view(*x.shape[:-1], -1)


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

    def forward(self, x: torch.Tensor, cache: KVCache, layer: int, mask: torch.Tensor | None) -> torch.Tensor:
        """x: (B, L, D) new positions; mask: (B, 1, L, S) additive float mask, or None."""
        batch, length, dim = x.shape
        qkv = project(x, self.qkv).view(batch, length, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)  # (3, B, H, L, Dh)
        k, v = cache.append(layer, qkv[1:])
        attn = F.scaled_dot_product_attention(qkv[0], k, v, attn_mask=mask)
        # in-place on the fresh projections: a + x gives the same bits as x + a, with no new tensor
        x = self.norm_attn(project(attn.transpose(1, 2).reshape(batch, length, dim), self.out).add_(x))
        return self.norm_ffn(project(F.relu_(project(x, self.ffn_in)), self.ffn_out).add_(x))


@dataclass(frozen=True)
class DecodeRow:
    """One sequence to decode: its text, its prompt and how to sample it."""

    phones: torch.Tensor  # (P,) int64 phone ids, prompt phones first
    bert: torch.Tensor  # (1024, P) phone-level BERT features
    prompt: torch.Tensor | None = None  # (T,) int64 prompt semantic tokens
    options: SamplingOptions = SamplingOptions()
    generator: torch.Generator | None = None  # rows sharing one object draw their noise together
    # streaming: called after every step with the row's new token, then once with (None, True)
    # when it stopped (the stopping EOS is never passed); makes every step a stop check
    on_step: Callable[[int | None, bool], None] | None = None
    # asked after every step: True leaves the batch at once (its result is None, on_step hears no more)
    should_stop: Callable[[], bool] | None = None


@dataclass
class _Live:
    """The rows still decoding, each tensor indexed by live row."""

    rows: list[int]  # input row of each live row
    positions: torch.Tensor  # (B,) semantic position of each row's first generated token
    tokens: torch.Tensor  # (B, max_steps) int64 tokens sampled so far
    finished_at: torch.Tensor  # (B,) int64 step at which the row stopped, -1 while it runs
    mask: torch.Tensor | None  # (B, 1, 1, limit) additive: -inf on left padding; None without padding


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

    def new_cache(self, batch: int, capacity: int, limit: int = 0) -> KVCache:
        """An empty cache for ``batch`` rows, room for ``capacity`` positions, growing up to ``limit``."""
        weight = self.semantic_head.weight
        heads = self.config.num_heads
        return KVCache(len(self.layers), batch, heads, self.config.hidden_dim // heads, capacity, limit,
                       weight.dtype, weight.device)

    def _run(self, x: torch.Tensor, cache: KVCache, mask: torch.Tensor | None) -> torch.Tensor:
        """x (B, L, D) new positions after the cached ones -> (B, L, D); mask (B, 1, L, S) or None."""
        cache.reserve(x.shape[1])
        for layer, block in enumerate(self.layers):
            x = block(x, cache, layer, mask)
        cache.advance(x.shape[1])
        return x

    @torch.inference_mode()
    def teacher_forced_logits(self, phones: torch.Tensor, bert: torch.Tensor, tokens: torch.Tensor,
                              prompt_length: int) -> torch.Tensor:
        """The logits decoding sees at every generated position of a given sequence, in one pass.

        phones (P,), bert (1024, P), tokens (T,) = the prompt's tokens then generated ones; returns
        (T - prompt_length + 1, vocab): row i is the distribution for generated token i when every
        token before it is fed (the last row: for the token after them all). Compares precisions or
        quantized weights on identical inputs, where sampled decoding would diverge at the first
        differing token.
        """
        text = self._embed_text(phones, bert)
        semantic = self._embed_semantic(tokens.view(1, -1), 0)[0]
        total, text_length = len(text) + len(semantic), len(phones)
        visible = torch.ones(total, total, dtype=torch.bool, device=tokens.device)
        visible[:text_length, text_length:] = False  # text sees text only; tokens see text and earlier tokens
        visible[text_length:, text_length:] = visible[text_length:, text_length:].tril()
        mask = _additive(visible.view(1, 1, total, total), text.dtype)
        hidden = self._run(torch.cat([text, semantic]).unsqueeze(0), self.new_cache(1, total), mask)
        return self.semantic_head(hidden[0, text_length + prompt_length - 1:])

    @torch.inference_mode()
    def generate(
        self,
        rows: Sequence[DecodeRow],
        max_steps: int = MAX_STEPS,
        early_stop: int = EARLY_STOP_TOKENS,
        check_every: int | None = None,
    ) -> list[torch.Tensor | None]:
        """Semantic tokens for each row, all rows decoded as one left-padded batch.

        Rows that share a generator object (the segments of one request) draw their noise
        together, as the official batched decoder does; a row with its own generator gets
        exactly the tokens it would get alone. The batch shares the weight reads of each
        step, which is what makes decoding several rows faster than one after another.

        ``check_every`` steps between looks at which rows stopped (a host sync on a GPU;
        by default every step on the CPU, where a look costs nothing, and every
        ``GPU_CHECK_EVERY`` steps elsewhere). Rows that stopped keep running until the next
        look without changing their output or their generator, so any value gives the same
        results; while two live rows share a generator every step is checked, since their
        next draw depends on it.
        Returns per row (N_i,) int64 generated tokens, EOS and prompt removed; None for a row whose
        ``should_stop()`` said True: it left after that step, the others went on as if it had stopped.
        """
        if not rows:
            return []
        device = self.semantic_head.weight.device
        if check_every is None:
            check_every = 1 if device.type == "cpu" else GPU_CHECK_EVERY
        if check_every < 1:
            raise ValueError("check_every must be at least 1")
        prompts = [torch.zeros(0, dtype=torch.long, device=device) if r.prompt is None else r.prompt.to(device)
                   for r in rows]
        hidden, cache, live = self._prefill(rows, prompts, max_steps)
        sampler = RowSampler([r.options for r in rows], [r.generator for r in rows], prompts, self.config.vocab_size,
                             device, keep_states=check_every > 1)
        table = self.semantic_position_alpha * sine_positions(0, max(len(p) for p in prompts) + max_steps,
                                                              hidden.shape[-1]).to(hidden)
        results: list[torch.Tensor | None] = [None] * len(rows)
        listening = any(row.on_step is not None for row in rows)
        stoppable = any(row.should_stop is not None for row in rows)
        cancelled: set[int] = set()  # input rows stopped by should_stop
        for step in range(max_steps):
            logits = project(hidden, self.semantic_head)
            if step < MIN_STEPS_BEFORE_EOS:
                logits = logits[:, :-1].contiguous()
            sampled, greedy = sampler.choose(logits)
            live.tokens[:, step] = sampled
            last = step + 1 > early_stop or step == max_steps - 1
            stopped = (sampled == self.config.eos) | (greedy == self.config.eos) | last
            live.finished_at = torch.where(stopped & (live.finished_at < 0), step, live.finished_at)
            cancelling = stoppable and _stop_cancelled(rows, live, step, cancelled)
            if cancelling or last or sampler.shares_generators or listening or (step + 1) % check_every == 0:
                if listening:
                    _notify(rows, live, step, cancelled)
                if not self._collect(live, cache, sampler, results, step):
                    break
            embedded = self.semantic_embedding(live.tokens[:, step : step + 1]) + table[live.positions + step].unsqueeze(1)
            step_mask = None if live.mask is None else live.mask[..., : cache.length + 1]
            hidden = self._run(embedded, cache, step_mask)[:, -1]
        for row in cancelled:
            results[row] = None
        return results

    def _prefill(self, rows: Sequence[DecodeRow], prompts: list[torch.Tensor],
                 max_steps: int) -> tuple[torch.Tensor, KVCache, _Live]:
        """Run each row's [text | prompt], left-padded to one length; return the last hidden state (B, D)."""
        device = prompts[0].device
        sequences = []
        for row, prompt in zip(rows, prompts):
            parts = [self._embed_text(row.phones.to(device), row.bert.to(device))]
            if len(prompt):
                parts.append(self._embed_semantic(prompt.view(1, -1), 0)[0])
            sequences.append(torch.cat(parts))
        total = max(len(s) for s in sequences)
        xy = torch.stack([F.pad(s, (0, 0, total - len(s), 0)) for s in sequences])
        batch = len(rows)
        # True = may attend: text sees its text, tokens see text and earlier tokens, nobody sees padding
        index = torch.arange(total + max_steps, device=device)
        starts = torch.tensor([total - len(s) for s in sequences], device=device).unsqueeze(1)
        text_ends = starts + torch.tensor([len(r.phones) for r in rows], device=device).unsqueeze(1)
        is_text = (index[:total] >= starts) & (index[:total] < text_ends)  # (B, total)
        is_token = index[:total] >= text_ends
        causal = index[:total].view(1, -1) <= index[:total].view(-1, 1)  # [query, key]
        visible = is_text.unsqueeze(1) | (is_token.unsqueeze(1) & is_token.unsqueeze(2) & causal)
        cache = self.new_cache(batch, total + min(max_steps, 256), total + max_steps)
        hidden = self._run(xy, cache, _additive(visible.unsqueeze(1), xy.dtype))[:, -1]
        padded = any(len(s) < total for s in sequences)  # else no mask at all in the steps
        live = _Live(
            rows=list(range(batch)),
            positions=torch.tensor([len(p) for p in prompts], device=device),
            tokens=torch.empty(batch, max_steps, dtype=torch.long, device=device),
            finished_at=torch.full((batch,), -1, dtype=torch.long, device=device),
            mask=_additive((index >= starts).view(batch, 1, 1, -1), xy.dtype) if padded else None,
        )
        return hidden, cache, live

    @staticmethod
    def _collect(live: _Live, cache: KVCache, sampler: RowSampler, results: list[torch.Tensor | None],
                 step: int) -> bool:
        """Hand out the rows that stopped and drop them from the batch; False once none is left."""
        keep = []
        for index, finished_at in enumerate(live.finished_at.tolist()):
            if finished_at < 0:
                keep.append(index)
                continue
            results[live.rows[index]] = live.tokens[index, :finished_at].clone()
            sampler.rewind(index, step - finished_at)
        sampler.forget_states()
        if keep and len(keep) < len(live.rows):
            rows = torch.tensor(keep, device=live.tokens.device)
            live.rows = [live.rows[i] for i in keep]
            for name in ("positions", "tokens", "finished_at", "mask"):
                value = getattr(live, name)
                setattr(live, name, None if value is None else value.index_select(0, rows))
            cache.keep(rows)
            sampler.keep(keep)
        return bool(keep)


def _stop_cancelled(rows: Sequence[DecodeRow], live: _Live, step: int, cancelled: set[int]) -> bool:
    """Mark the live rows whose ``should_stop()`` says so as stopped at ``step`` and add them to
    ``cancelled``; True when there was one (the caller then drops them from the batch at once)."""
    newly = [index for index, row in enumerate(live.rows) if rows[row].should_stop is not None and rows[row].should_stop()]
    if not newly:
        return False
    cancelled.update(live.rows[index] for index in newly)
    picked = torch.tensor(newly, device=live.finished_at.device)
    finished_at = live.finished_at[picked]
    live.finished_at[picked] = torch.where(finished_at < 0, step, finished_at)  # so no generator is rewound past now
    return True


def _notify(rows: Sequence[DecodeRow], live: _Live, step: int, cancelled: set[int]) -> None:
    """Tell the rows that listen what this step gave them (every step is checked while one listens);
    a cancelled row hears nothing more."""
    for index, (row, finished_at) in enumerate(zip(live.rows, live.finished_at.tolist())):
        on_step = rows[row].on_step
        if on_step is None or row in cancelled:
            continue
        if finished_at >= 0:
            on_step(None, True)
        else:
            on_step(int(live.tokens[index, step]), False)


def _additive(visible: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A float attention mask from a bool one: 0 where visible, -inf elsewhere (what SDPA does to bool masks)."""
    return torch.zeros(visible.shape, dtype=dtype, device=visible.device).masked_fill_(~visible, float("-inf"))


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


def official_key(name: str) -> str:
    """The official s1 state-dict key (``model.``-prefixed) of one of our parameter names."""
    if name.startswith("layers."):
        index, rest = name[len("layers.") :].split(".", 1)
        for official, ours in _LAYER_RENAMES.items():
            if rest.startswith(ours):
                return f"model.h.layers.{index}.{official}{rest[len(ours):]}"
    for official, ours in _RENAMES.items():
        if name.startswith(ours) and official != "model.h.layers.":
            return official + name[len(ours) :]
    raise KeyError(f"{name} is not a parameter of the GPT stage")


def load_state_strict(model: nn.Module, weights: dict[str, torch.Tensor], source: str) -> None:
    """Put ``weights`` (our names) into ``model`` as its tensors (no copy; ``model`` may be on the meta
    device): every key must match in name and shape."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{source}: weights do not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for key, tensor in weights.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(f"{source}: {key} has shape {tuple(tensor.shape)}, the model expects {tuple(expected[key].shape)}")
    model.load_state_dict(weights, strict=True, assign=True)


def load_t2s(path: str | os.PathLike, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Text2Semantic:
    """Build the GPT stage from an official s1 ``.ckpt`` (config read from the file)."""
    raw = read_t2s_checkpoint(path)
    try:
        config = T2SConfig.from_checkpoint_config(raw.config)
    except (KeyError, TypeError) as error:
        raise CheckpointError(f"{path}: incomplete s1 model config ({error})") from error
    with torch.device("meta"):  # no random init: every tensor is replaced by the saved one
        model = Text2Semantic(config)
    load_state_strict(model, {rename_official_key(k): v for k, v in raw.weights.items()}, str(path))
    return model.to(device=device, dtype=dtype).eval()
