"""Random g2pW networks with the official ONNX signature, built in code (tests, ``bench_frontend.py``).

The graph is g2pW's inference path as the reference README describes it: a BERT, the hidden
state at each query, a part-of-speech guess that picks a second-order descriptor, and the
masked, descriptor-weighted softmax over the labels. ``released_shape()`` is the size of the
released model (bert-base-chinese: hidden 768, 12 layers, 12 heads, FFN 3072); the character
and label counts come from the model folder the network is written into.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

POS_TAGS = 11


@dataclass(frozen=True)
class G2PWShape:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int = 21128
    positions: int = 512


def released_shape() -> G2PWShape:
    return G2PWShape(hidden=768, layers=12, heads=12, ffn=3072)


def tiny_shape() -> G2PWShape:
    return G2PWShape(hidden=16, layers=1, heads=2, ffn=32)


def _network(shape: G2PWShape, chars: int, labels: int, seed: int):
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=shape.vocab, hidden_size=shape.hidden, num_hidden_layers=shape.layers,
                        num_attention_heads=shape.heads, intermediate_size=shape.ffn,
                        max_position_embeddings=shape.positions, attn_implementation="eager")

    class RandomG2PW(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = BertModel(config, add_pooling_layer=False)
            self.classifier = torch.nn.Linear(shape.hidden, labels)
            self.pos_classifier = torch.nn.Linear(shape.hidden, POS_TAGS)
            self.descriptor_bias = torch.nn.Parameter(torch.randn(labels) * 0.5)
            self.char_descriptor = torch.nn.Embedding(chars, labels)
            self.second_order_descriptor = torch.nn.Embedding(chars * POS_TAGS, labels)

        def forward(self, input_ids, token_type_ids, attention_mask, phoneme_mask, char_ids, position_ids):
            hidden = self.bert(input_ids=input_ids, token_type_ids=token_type_ids,
                               attention_mask=attention_mask).last_hidden_state  # (B, T, H)
            query = hidden[torch.arange(hidden.shape[0]), position_ids]  # (N, H); B == 1 broadcasts
            pos = self.pos_classifier(query).argmax(-1)
            affect = self.descriptor_bias + self.char_descriptor(char_ids) + self.second_order_descriptor(
                char_ids * POS_TAGS + pos)
            logits = self.classifier(query)
            weights = torch.exp(logits - logits.max()) * phoneme_mask * torch.sigmoid(affect)
            return (weights / weights.sum(-1, keepdim=True)).clamp(1e-6, 1 - 1e-6)

    return RandomG2PW().eval()


def write_network(path: Path, shape: G2PWShape, chars: int, labels: int, seed: int = 0) -> Path:
    """Export a random network for ``chars`` characters and ``labels`` labels to ``path`` (opset 12)."""
    import torch

    network = _network(shape, chars, labels, seed)
    length, queries = 8, 2
    example = (torch.ones(queries, length, dtype=torch.long), torch.zeros(queries, length, dtype=torch.long),
               torch.ones(queries, length, dtype=torch.long), torch.ones(queries, labels),
               torch.zeros(queries, dtype=torch.long), torch.ones(queries, dtype=torch.long))
    names = ["input_ids", "token_type_ids", "attention_mask", "phoneme_mask", "char_ids", "position_ids"]
    axes = {name: {0: "batch", 1: "tokens"} for name in names[:3]} | {name: {0: "queries"} for name in names[3:]}
    with torch.no_grad():
        torch.onnx.export(network, example, str(path), input_names=names, output_names=["probs"],
                          dynamic_axes=axes | {"probs": {0: "queries"}}, opset_version=12, dynamo=False)
    return path


def model_folder(lists_from: Path, target: Path, shape: G2PWShape, seed: int = 0) -> Path:
    """A g2pW model folder: the lists, config and tokenizer of ``lists_from`` with a new random network."""
    shutil.copytree(lists_from, target, ignore=shutil.ignore_patterns("*.onnx"))
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    rows = [line.split("\t") for line in (target / "POLYPHONIC_CHARS.txt").read_text("utf-8").strip().split("\n")]
    chars, labels = len({char for char, _ in rows}), len({reading for _, reading in rows})
    write_network(target / "g2pW.onnx", shape, chars, labels, seed)
    return target
