"""The SoVITS generator in training form: built from an official full checkpoint, run forward.

It is the inference :class:`~gsv_core.models.sovits.SoVITS` with the posterior encoder kept,
the official weight norm kept as torch parametrizations (the optimizer updates each layer's
g and v, as upstream), the attention dropouts of the training config, and the training
forward of the official ``SynthesizerTrn.forward``:

    ge      = style(spec, mask) [+ SV: prelu(ge + sv_proj(sv)), ge512 = to_mrte(ge)]
    content = codebook rows of the frozen quantizer's codes (no gradient), repeated to 50 Hz
    m_p, logs_p = prior(content, phones, ge512 or ge)             (text side)
    z, m_q, logs_q = posterior(spec, mask, ge)                     (z = m_q + noise * exp(logs_q))
    z_p     = flow(z)                                              (meets the prior in the KL loss)
    y_hat   = generator(z[:, :, slice], ge)                        (a random segment per row)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from ..checkpoints import CheckpointError, RawCheckpoint, read_sovits_checkpoint
from ..models.sovits import SoVITS, SynthesizerConfig
from ..models.sovits.config import FRAMES_PER_TOKEN, SynthesizerConfigError
from ..models.sovits.loader import CODEBOOK_STATS, POSTERIOR, config_from_checkpoint, load_weights, ours_to_official, rename_official
from ..versions import VersionInfo, get_version
from .s2_data import S2Batch


@dataclass(frozen=True)
class GeneratorOutput:
    """What one training forward returns (shapes for a batch B, latent frames T, segment S frames)."""

    y_hat: torch.Tensor  # (B, 1, S * hop) generated waveform of the sliced segment
    ids_slice: torch.Tensor  # (B,) int64 first latent frame of each row's segment
    z: torch.Tensor  # (B, inter, T) posterior sample
    z_p: torch.Tensor  # (B, inter, T) z through the flow
    m_p: torch.Tensor  # (B, inter, T) prior mean (0 on padded frames)
    logs_p: torch.Tensor  # (B, inter, T) prior log-std
    m_q: torch.Tensor  # (B, inter, T) posterior mean
    logs_q: torch.Tensor  # (B, inter, T) posterior log-std
    y_mask: torch.Tensor  # (B, 1, T) 1 on real frames
    kl_ssl: torch.Tensor  # () the quantizer's commitment loss: 0, the quantizer being frozen
    codes: torch.Tensor  # (n_q, B, T / 2) the frozen quantizer's codes


def sequence_mask(lengths: torch.Tensor, total: int, like: torch.Tensor) -> torch.Tensor:
    """(B,) lengths -> (B, 1, total) mask in ``like``'s dtype: 1 on the first lengths[b] frames."""
    return (torch.arange(total, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(1).to(like.dtype)


def slice_segments(x: torch.Tensor, starts: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, T) -> (B, C, size): row b from starts[b]."""
    return torch.stack([x[b, :, int(start) : int(start) + size] for b, start in enumerate(starts)])


class TrainableSoVITS(nn.Module):
    """The generator being trained; ``model`` is the inference module tree (with ``posterior``)."""

    def __init__(self, model: SoVITS, segment_frames: int, source_keys: list[str], passthrough: Mapping[str, torch.Tensor]) -> None:
        super().__init__()
        if model.posterior is None:
            raise ValueError("training needs the posterior encoder (build the SoVITS with keep_posterior=True)")
        self.model = model
        self.segment_frames = segment_frames
        # official key order of the source file, and its tensors training never changes
        # (codebook statistics): both come back in exported files
        self.source_keys = list(source_keys)
        self.passthrough = {key: tensor.detach().clone() for key, tensor in passthrough.items()}
        model.codec.requires_grad_(False)  # freeze_quantizer: ssl_proj and codebook never train

    @property
    def version(self) -> VersionInfo:
        return self.model.version

    def text_side_groups(self) -> tuple[list[nn.Parameter], list[list[nn.Parameter]]]:
        """(every other trainable parameter, [text embedding, text encoder, MRTE]): the optimizer's groups."""
        encoder = self.model.text_encoder
        low = [list(module.parameters()) for module in (encoder.text_embedding, encoder.encoder_text, encoder.mrte)]
        low_ids = {id(p) for group in low for p in group}
        base = [p for p in self.parameters() if p.requires_grad and id(p) not in low_ids]
        return base, low

    def forward(self, batch: S2Batch) -> GeneratorOutput:
        """The official training forward for a collated batch (draws dropout masks, noise and slices)."""
        model = self.model
        spec = batch.spec
        y_mask = sequence_mask(batch.spec_lengths, spec.shape[-1], spec)
        ge = model.style_encoder(spec * y_mask, y_mask)
        text_ge = ge
        if model.speaker_projection is not None:
            if batch.sv_emb is None:
                raise ValueError(f"{model.version.name} training needs each utterance's SV embedding")
            ge = model.speaker_projection.combine(ge, batch.sv_emb)
            text_ge = model.speaker_projection.for_text_encoder(ge)
        with torch.no_grad():  # frozen quantizer: codebook rows, no straight-through gradient
            codes = model.codec.encode(batch.ssl).transpose(0, 1)
            quantized = model.codec.decode(codes)
        content = F.interpolate(quantized, scale_factor=FRAMES_PER_TOKEN, mode="nearest")
        text_mask = sequence_mask(batch.text_lengths, batch.text.shape[-1], spec)
        hidden = model.text_encoder.hidden(content * y_mask, batch.text, text_ge, y_mask, text_mask)
        m_p, logs_p = model.text_encoder.project(hidden)
        m_p, logs_p = m_p * y_mask, logs_p * y_mask
        z, m_q, logs_q = model.posterior(spec, y_mask, ge)
        z_p = model.flow(z, ge, y_mask)
        # rand_slice_segments: a uniform start per row within its real frames
        ids_slice = (torch.rand([z.shape[0]]).to(device=z.device) * (batch.spec_lengths - self.segment_frames + 1)).to(torch.long)
        y_hat = model.generator(slice_segments(z, ids_slice, self.segment_frames), ge)
        return GeneratorOutput(
            y_hat=y_hat, ids_slice=ids_slice, z=z, z_p=z_p, m_p=m_p, logs_p=logs_p, m_q=m_q, logs_q=logs_q,
            y_mask=y_mask, kl_ssl=torch.zeros((), device=z.device), codes=codes,
        )

    def official_state_dict(self) -> dict[str, torch.Tensor]:
        """The full state under official names, in the source file's key order (incl. ``enc_q``)."""
        ours = {ours_to_official(key): tensor for key, tensor in self.model.state_dict().items()}
        ours.update(self.passthrough)
        known = set(self.source_keys)
        order = [*self.source_keys, *(key for key in ours if key not in known)]
        return {key: ours[key] for key in order if key in ours}


def _weight_norm_layers(model: SoVITS, official_keys: list[str]) -> None:
    """Give every layer the checkpoint weight-norms (official ``<layer>.weight_g``) a weight-norm parametrization."""
    for key in official_keys:
        ours = rename_official(key[: -len(".weight_g")] + ".weight") if key.endswith(".weight_g") else None
        try:
            layer = model.get_submodule(ours[: -len(".weight")]) if ours else None
        except AttributeError:
            layer = None  # not a layer of this model: the strict load names the key
        if layer is not None:
            weight_norm(layer, "weight", dim=0)


def load_trainable_sovits(
    path: str | os.PathLike, train_config: Mapping[str, Any], version: str | None = None
) -> TrainableSoVITS:
    """A :class:`TrainableSoVITS` from an official full s2 file (with ``enc_q``), float32 on the CPU.

    The architecture comes from ``train_config`` (the official hps: ``model``, ``data``,
    ``train.segment_size``), as the official trainer builds it; the weights must fit it
    strictly. ``version`` (default: ``train_config["model"]["version"]``) overrides the file's
    header, since pretrained full files are plain zips whatever their version.
    """
    raw: RawCheckpoint = read_sovits_checkpoint(path)
    name = version or train_config.get("model", {}).get("version") or raw.version.name
    raw = dataclasses.replace(raw, version=get_version(name))
    if not any(POSTERIOR.match(key) for key in raw.weights):
        raise CheckpointError(f"{path} holds no posterior encoder (enc_q): training needs a full pretrained file")
    shapes = config_from_checkpoint(raw)  # checks the file's kind and reads MRTE's width
    try:
        config = SynthesizerConfig.from_checkpoint_config(
            train_config, uses_sv=raw.version.uses_sv, mrte_channels=shapes.mrte_channels
        )
    except SynthesizerConfigError as error:
        raise CheckpointError(f"training config: {error}") from error
    with torch.device("meta"):
        model = SoVITS(config, raw.version, keep_posterior=True)
        _weight_norm_layers(model, list(raw.weights))
    load_weights(model, raw.weights, str(path), keep_weight_norm=True)
    hop = int(train_config["data"]["hop_length"])
    passthrough = {key: tensor for key, tensor in raw.weights.items() if CODEBOOK_STATS.match(key)}
    return TrainableSoVITS(model, int(train_config["train"]["segment_size"]) // hop, list(raw.weights), passthrough)
