"""Padding and padding masks for decoding items of different lengths as one batch.

A batched decode pads every item to the longest one. For each item to come out exactly as
it does alone, no layer may let a padded frame reach a real one: attention gives padded keys
zero weight, and every convolution wider than one frame sees zeros where the item alone
would see its zero padding, so the padded frames are zeroed before it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def padding_mask(lengths: Sequence[int], total: int, like: torch.Tensor) -> torch.Tensor:
    """(B, 1, total) mask in ``like``'s dtype and device: 1 on each item's first lengths[b] frames, 0 after.

    Multiplying by it zeroes padded frames exactly in any float dtype.
    """
    frames = torch.arange(total, device=like.device)
    limits = torch.tensor(list(lengths), device=like.device).view(-1, 1, 1)
    return (frames < limits).to(like.dtype)


def pad_right(tensors: Sequence[torch.Tensor], dim: int = 0) -> torch.Tensor:
    """Items right-padded with zeros to the longest last dimension, then joined along ``dim``.

    (1, C, T_b) items give (B, C, max T_b) along dim 0; (n_q, 1, T_b) codes give (n_q, B, max T_b) along dim 1.
    """
    longest = max(tensor.shape[-1] for tensor in tensors)
    return torch.cat([F.pad(tensor, (0, longest - tensor.shape[-1])) for tensor in tensors], dim)


def conv_output_length(length: int, conv: torch.nn.Conv1d | torch.nn.ConvTranspose1d) -> int:
    """Frames a (transposed) 1D convolution makes from ``length`` input frames (PyTorch's formulas)."""
    kernel, stride, padding, dilation = conv.kernel_size[0], conv.stride[0], conv.padding[0], conv.dilation[0]
    if isinstance(conv, torch.nn.ConvTranspose1d):
        return (length - 1) * stride - 2 * padding + dilation * (kernel - 1) + conv.output_padding[0] + 1
    return (length + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
