"""Strict loading of official s2 (SoVITS) ``.pth`` files into :class:`SoVITS`.

Every saved tensor is accounted for: it is renamed by :data:`RENAMES`, folded (weight
norm), or listed in :data:`IGNORED` as training-only state. Every parameter of the model
must be filled, with exactly the saved shape; otherwise a :class:`CheckpointError` names
the key.

Weight norm: upstream keeps ``weight_g`` (per-output-channel norm) and ``weight_v``
(direction) and recomputes ``weight = v * (g / |v|)`` on every call. The loader does that
once, so the model holds plain weights (the new-style ``parametrizations.weight.original0/1``
names are folded the same way).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

import torch

from ...checkpoints import CheckpointError, RawCheckpoint, read_sovits_checkpoint
from ...versions import VersionInfo
from .config import NUM_SYMBOLS_V2, SynthesizerConfig, SynthesizerConfigError
from .model import SoVITS

V1_NUM_SYMBOLS = 322

# Official key prefix -> ours, first match wins; parts after the prefix keep their names.
RENAMES: tuple[tuple[str, str | Callable[[re.Match], str]], ...] = (
    (r"enc_p\.", "text_encoder."),
    (r"dec\.", "generator."),
    # upstream interleaves parameterless flips: couplings sit at flows.0, .2, .4, .6
    (r"flow\.flows\.(\d+)\.", lambda m: f"flow.couplings.{int(m[1]) // 2}."),
    (r"ref_enc\.spectral\.0\.fc\.", "style_encoder.spectral_in."),
    (r"ref_enc\.spectral\.3\.fc\.", "style_encoder.spectral_out."),
    (r"ref_enc\.temporal\.(\d+)\.conv1\.conv\.", r"style_encoder.temporal.\1.conv."),
    (r"ref_enc\.slf_attn\.w_qs\.", "style_encoder.attention.query."),
    (r"ref_enc\.slf_attn\.w_ks\.", "style_encoder.attention.key."),
    (r"ref_enc\.slf_attn\.w_vs\.", "style_encoder.attention.value."),
    (r"ref_enc\.slf_attn\.fc\.", "style_encoder.attention.out."),
    (r"ref_enc\.fc\.fc\.", "style_encoder.out_proj."),
    (r"ssl_proj\.", "codec.ssl_proj."),
    (r"quantizer\.vq\.layers\.(\d+)\._codebook\.embed$", r"codec.quantizer.codebooks.\1"),
    (r"sv_emb\.", "speaker_projection.sv_proj."),
    (r"prelu\.", "speaker_projection.prelu."),
    (r"ge_to512\.", "speaker_projection.to_mrte."),
)

# Saved state that inference never reads: k-means statistics of the codebook, and the
# posterior encoder (normally stripped from released files, harmless if present).
IGNORED = re.compile(r"quantizer\.vq\.layers\.\d+\._codebook\.(inited|cluster_size|embed_avg)$|enc_q\.")

_WEIGHT_NORM_PARTS = {
    ".weight_g": "magnitude",
    ".weight_v": "direction",
    ".parametrizations.weight.original0": "magnitude",
    ".parametrizations.weight.original1": "direction",
}


def fold_weight_norm(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace each (magnitude, direction) pair by ``<stem>.weight = direction * magnitude / |direction|``.

    The norm runs over every axis but the first, as ``torch.nn.utils.weight_norm(dim=0)``
    computes it (for transposed convolutions the first axis is the input channel).
    """
    plain: dict[str, torch.Tensor] = {}
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in weights.items():
        suffix = next((s for s in _WEIGHT_NORM_PARTS if key.endswith(s)), None)
        if suffix is None:
            plain[key] = tensor
        else:
            pairs.setdefault(key[: -len(suffix)], {})[_WEIGHT_NORM_PARTS[suffix]] = tensor
    for stem, pair in pairs.items():
        if len(pair) != 2:
            raise CheckpointError(f"weight-norm layer {stem!r} has a {next(iter(pair))} tensor but not its partner")
        direction, magnitude = pair["direction"], pair["magnitude"]
        norm = direction.norm(dim=tuple(range(1, direction.dim())), keepdim=True)
        plain[stem + ".weight"] = direction * (magnitude / norm)
    return plain


def rename_official(key: str) -> str | None:
    """Our name for an official key, or None when no rule covers it."""
    for pattern, replacement in RENAMES:
        renamed, count = re.subn("^" + pattern, replacement, key)
        if count:
            return renamed
    return None


def official_to_ours(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official state dict -> ours: fold weight norm, drop :data:`IGNORED`, rename; unknown keys raise."""
    ours: dict[str, torch.Tensor] = {}
    unknown = []
    for key, tensor in fold_weight_norm(weights).items():
        if IGNORED.match(key):
            continue
        renamed = rename_official(key)
        if renamed is None:
            unknown.append(key)
        else:
            ours[renamed] = tensor
    if unknown:
        raise CheckpointError(f"unexpected weights not used by the SoVITS decoder: {', '.join(sorted(unknown)[:8])}")
    return ours


def _check_kind(raw: RawCheckpoint) -> None:
    weights, path = raw.weights, raw.path
    if any(key.startswith("model.") for key in weights):
        raise CheckpointError(f"{path} is not a SoVITS file: it looks like a GPT (s1) checkpoint")
    text_rows = weights.get("enc_p.text_embedding.weight")
    if text_rows is None:
        raise CheckpointError(f"{path} is not a SoVITS file (no enc_p.text_embedding.weight)")
    if text_rows.shape[0] == V1_NUM_SYMBOLS:
        raise CheckpointError(f"{path} is a v1 SoVITS file (322 symbols); only v2, v2Pro and v2ProPlus are supported")
    has_sv = "sv_emb.weight" in weights
    if has_sv != raw.version.uses_sv:
        which = "has" if has_sv else "lacks"
        raise CheckpointError(f"{path} {which} speaker-verification weights, but its header marks it {raw.version.name}")


def load_weights(model: SoVITS, weights: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load an official state dict into ``model`` strictly, checking every key and shape first."""
    ours = official_to_ours(weights)
    expected = {key: tuple(t.shape) for key, t in model.state_dict().items()}
    missing = sorted(set(expected) - set(ours))
    unexpected = sorted(set(ours) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: weights do not match a {model.version.name} SoVITS model: "
            f"missing {missing[:6]}, unexpected {unexpected[:6]}"
        )
    for key, tensor in ours.items():
        if tuple(tensor.shape) != expected[key]:
            raise CheckpointError(f"{source}: {key} has shape {tuple(tensor.shape)}, the model expects {expected[key]}")
    model.load_state_dict(ours, strict=True, assign=True)


def build_from_checkpoint(raw: RawCheckpoint) -> SoVITS:
    """An eval-mode, gradient-free float32 CPU :class:`SoVITS` holding an already-read checkpoint's weights."""
    _check_kind(raw)
    version: VersionInfo = raw.version
    try:
        config = SynthesizerConfig.from_checkpoint_config(raw.config, uses_sv=version.uses_sv, num_symbols=NUM_SYMBOLS_V2)
    except SynthesizerConfigError as error:
        raise CheckpointError(f"{raw.path}: {error}") from error
    with torch.device("meta"):  # no random init: every tensor is replaced by the saved one
        model = SoVITS(config, version)
    load_weights(model, raw.weights, str(raw.path))
    return model.eval().requires_grad_(False)


def load_sovits(path: str | os.PathLike, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> SoVITS:
    """Read an official s2 ``.pth`` (v2, v2Pro, v2ProPlus) and return the decoder in eval mode.

    Raises :class:`CheckpointError` for a missing, truncated or corrupt file, a file of
    another kind (s1 GPT, v1 SoVITS), or weights that do not fit the stored config.
    """
    model = build_from_checkpoint(read_sovits_checkpoint(path)).to(device=device, dtype=dtype)
    model.generator.channels_last_weights()
    return model
