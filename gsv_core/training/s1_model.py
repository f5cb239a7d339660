"""The GPT (s1) training forward: teacher-forced loss and top-3 accuracy, with every dropout.

It runs on the inference model (:class:`gsv_core.models.t2s.Text2Semantic`: same tensors as the
official ``Text2SemanticDecoder``) and adds what only training does, as the official
``forward_old`` does it:

* dropout p = 0.1 after each positional embedding, on the attention weights, after the
  attention, inside the feed-forward and after it (hard-coded officially, whatever the config's
  ``dropout``, which only feeds the token embeddings' no-op dropout of p = 0);
* the text padding mask is built as if the phones were padded on the left
  (``make_pad_mask_left``) although the collate pads them on the right: rows shorter than the
  batch hide their *first* phones, not their padding, from every query;
* the targets are the codes followed by EOS, with every padding position also EOS, and the
  logits start at the last text position (position ``x_len - 1`` predicts the first code);
* loss = cross-entropy summed over every position, padding included; accuracy = top-3 over
  the positions whose target is not EOS (the real EOS and the padding are both left out).

The inference modules stay as they are: the attention here is
``F.multi_head_attention_forward`` on the model's own ``qkv`` / ``out`` projections (what the
official module calls), so the official dropout of the attention weights happens inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.t2s import Block, Text2Semantic, official_key, sine_positions

OFFICIAL_DROPOUT = 0.1  # positional, attention and layer dropouts of the official model
ACCURACY_TOP_K = 3


@dataclass(frozen=True)
class S1Batch:
    """One collated batch, as the official ``Text2SemanticDataset.collate`` builds it."""

    phoneme_ids: torch.Tensor  # (B, Lx) int64, right-padded with 0
    phoneme_lens: torch.Tensor  # (B,) int64
    semantic_ids: torch.Tensor  # (B, Ly) int64, right-padded with the pad value (1024)
    semantic_lens: torch.Tensor  # (B,) int64
    bert: torch.Tensor  # (B, 1024, Lx) float32, zero-padded

    def to(self, device: torch.device | str) -> S1Batch:
        return S1Batch(*(getattr(self, name).to(device) for name in self.__dataclass_fields__))


@dataclass(frozen=True)
class S1Output:
    loss: torch.Tensor  # () summed cross-entropy, differentiable
    accuracy: float  # top-3 accuracy over non-EOS targets


def official_parameters(model: Text2Semantic) -> list[tuple[str, torch.nn.Parameter]]:
    """``(official name, parameter)`` in the official ``named_parameters()`` order (no ``model.`` prefix).

    The order decides how ScaledAdam groups and stacks parameters and the key order of the
    exported checkpoint. Ours lists the two position scales first (they are direct
    parameters), the official module lists each after its embedding.
    """
    params = dict(model.named_parameters())
    head = ["bert_proj.weight", "bert_proj.bias", "phone_embedding.weight", "phone_position_alpha",
            "semantic_embedding.weight", "semantic_position_alpha"]
    order = head + [name for name in params if name.startswith("layers.")] + ["semantic_head.weight"]
    if sorted(order) != sorted(params):
        raise ValueError("the GPT model has parameters the official layout does not know")
    return [(official_key(name).removeprefix("model."), params[name]) for name in order]


def _embed(tokens: torch.Tensor, embedding: torch.nn.Embedding, alpha: torch.Tensor, extra: torch.Tensor | None,
           dropout: float) -> torch.Tensor:
    """Token embedding (+ BERT projection), scaled sine positions, dropout: (B, L) -> (B, L, D)."""
    x = embedding(tokens)
    if extra is not None:
        x = x + extra
    positions = sine_positions(0, tokens.shape[1], x.shape[-1]).to(x)
    return F.dropout(x + alpha * positions.unsqueeze(0), dropout, training=dropout > 0)


def attention_mask(phoneme_lens: torch.Tensor, semantic_lens: torch.Tensor, num_heads: int,
                   dtype: torch.dtype) -> torch.Tensor:
    """The official additive mask (B * heads, Lx + Ly, Lx + Ly): 0 visible, -inf hidden.

    Text queries see all text and no codes; code queries see all text and the codes up to
    themselves; on top, the padding of each row is hidden from every query, with the text
    part counted from the left (the official quirk, see the module docstring).
    """
    device = phoneme_lens.device
    text_len, code_len = int(phoneme_lens.max()), int(semantic_lens.max())
    total = text_len + code_len
    index = torch.arange(total, device=device)
    is_code_key = index >= text_len
    future = index.view(1, -1) > index.view(-1, 1)  # [query, key]
    hidden = is_code_key.view(1, -1) & (~is_code_key.view(-1, 1) | future)  # (L, L)
    text_padding = index[:text_len].view(1, -1) < (text_len - phoneme_lens).view(-1, 1)  # left-style
    code_padding = index[:code_len].view(1, -1) >= semantic_lens.view(-1, 1)
    padding = torch.cat([text_padding, code_padding], dim=1)  # (B, L)
    hidden = hidden.unsqueeze(0) | padding.repeat_interleave(num_heads, dim=0).unsqueeze(1)
    return torch.zeros(hidden.shape, dtype=dtype, device=device).masked_fill_(hidden, float("-inf"))


def _block(block: Block, x: torch.Tensor, mask: torch.Tensor, dropout: float) -> torch.Tensor:
    """One post-norm layer in train mode: x (B, L, D), mask (B * heads, L, L)."""
    seq_first = x.transpose(0, 1)
    attended, _ = F.multi_head_attention_forward(
        seq_first, seq_first, seq_first, x.shape[-1], block.num_heads, block.qkv.weight, block.qkv.bias,
        None, None, False, dropout, block.out.weight, block.out.bias,
        training=dropout > 0, need_weights=False, attn_mask=mask,
    )
    x = block.norm_attn(x + F.dropout(attended.transpose(0, 1), dropout, training=dropout > 0))
    hidden = F.dropout(F.relu(block.ffn_in(x)), dropout, training=dropout > 0)
    return block.norm_ffn(x + F.dropout(block.ffn_out(hidden), dropout, training=dropout > 0))


def targets_and_inputs(semantic_ids: torch.Tensor, semantic_lens: torch.Tensor,
                       eos: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs (B, Ly), targets (B, Ly + 1))``: codes then EOS, padding positions EOS too."""
    padding = (torch.arange(semantic_ids.shape[1], device=semantic_ids.device).view(1, -1)
               >= semantic_lens.view(-1, 1)).long()
    codes = semantic_ids.long() * (1 - padding)
    targets = F.pad(codes, (0, 1), value=0) + eos * F.pad(padding, (0, 1), value=1)
    return targets[:, :-1], targets


def top_k_accuracy(logits: torch.Tensor, targets: torch.Tensor, ignore: int, k: int = ACCURACY_TOP_K) -> float:
    """Share of the targets (B, N) not equal to ``ignore`` found in the top ``k`` of logits (B, C, N)."""
    keep = targets != ignore
    count = int(keep.sum())
    if count == 0:
        return 0.0
    top = logits.topk(k, dim=1).indices  # (B, k, N)
    hit = (top == targets.unsqueeze(1)).any(dim=1) & keep
    return int(hit.sum()) / count


def training_forward(model: Text2Semantic, batch: S1Batch, dropout: float = OFFICIAL_DROPOUT) -> S1Output:
    """The official training loss of one batch (see the module docstring); ``dropout=0`` for a plain pass."""
    eos = model.config.eos
    text = _embed(batch.phoneme_ids, model.phone_embedding, model.phone_position_alpha,
                  model.bert_proj(batch.bert.transpose(1, 2)), dropout)
    inputs, targets = targets_and_inputs(batch.semantic_ids, batch.semantic_lens, eos)
    codes = _embed(inputs, model.semantic_embedding, model.semantic_position_alpha, None, dropout)
    x = torch.cat([text, codes], dim=1)
    mask = attention_mask(batch.phoneme_lens, batch.semantic_lens, model.config.num_heads, x.dtype)
    for block in model.layers:
        x = _block(block, x, mask, dropout)
    text_len = int(batch.phoneme_lens.max())
    logits = model.semantic_head(x[:, text_len - 1 :]).permute(0, 2, 1)  # (B, vocab, Ly + 1)
    loss = F.cross_entropy(logits, targets, reduction="sum")
    return S1Output(loss, top_k_accuracy(logits.detach(), targets, ignore=eos))
