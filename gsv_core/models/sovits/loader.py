"""Strict loading of official s2 (SoVITS) ``.pth`` files into :class:`SoVITS`.

Every saved tensor is accounted for: it is renamed by :data:`RENAMES`, folded (weight
norm), or dropped as training-only state (:data:`CODEBOOK_STATS`, :data:`POSTERIOR`). Every
parameter of the model must be filled, with exactly the saved shape; otherwise a
:class:`CheckpointError` names the key.

Weight norm: upstream keeps ``weight_g`` (per-output-channel norm) and ``weight_v``
(direction) and recomputes ``weight = v * (g / |v|)`` on every call. The loader does that
once, so the model holds plain weights (the new-style ``parametrizations.weight.original0/1``
names are folded the same way). Training keeps the pairs instead (``keep_weight_norm``), since
the optimizer updates g and v, and :func:`ours_to_official` maps names back for export.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

import torch

from ...checkpoints import CheckpointError, RawCheckpoint, read_sovits_checkpoint
from ...versions import VersionInfo
from .config import MRTE_WIDTH, NUM_SYMBOLS_V2, SynthesizerConfig, SynthesizerConfigError
from .model import SoVITS

V1_NUM_SYMBOLS = 322

Rule = tuple[str, str | Callable[[re.Match], str]]

# (official prefix, our prefix): renamed in both directions; the rest of a key keeps its name.
PREFIXES: tuple[tuple[str, str], ...] = (
    ("enc_p.", "text_encoder."),
    ("dec.", "generator."),
    ("ref_enc.spectral.0.fc.", "style_encoder.spectral_in."),
    ("ref_enc.spectral.3.fc.", "style_encoder.spectral_out."),
    ("ref_enc.slf_attn.w_qs.", "style_encoder.attention.query."),
    ("ref_enc.slf_attn.w_ks.", "style_encoder.attention.key."),
    ("ref_enc.slf_attn.w_vs.", "style_encoder.attention.value."),
    ("ref_enc.slf_attn.fc.", "style_encoder.attention.out."),
    ("ref_enc.fc.fc.", "style_encoder.out_proj."),
    ("ssl_proj.", "codec.ssl_proj."),
    ("sv_emb.", "speaker_projection.sv_proj."),
    ("prelu.", "speaker_projection.prelu."),
    ("ge_to512.", "speaker_projection.to_mrte."),
    ("enc_q.", "posterior."),
)
# Keys with an index or a nested name: (official -> ours, ours -> official) rule pairs.
INDEXED: tuple[tuple[Rule, Rule], ...] = (
    # upstream interleaves parameterless flips: couplings sit at flows.0, .2, .4, .6
    ((r"flow\.flows\.(\d+)\.", lambda m: f"flow.couplings.{int(m[1]) // 2}."),
     (r"flow\.couplings\.(\d+)\.", lambda m: f"flow.flows.{2 * int(m[1])}.")),
    ((r"ref_enc\.temporal\.(\d+)\.conv1\.conv\.", r"style_encoder.temporal.\1.conv."),
     (r"style_encoder\.temporal\.(\d+)\.conv\.", r"ref_enc.temporal.\1.conv1.conv.")),
    ((r"quantizer\.vq\.layers\.(\d+)\._codebook\.embed$", r"codec.quantizer.codebooks.\1"),
     (r"codec\.quantizer\.codebooks\.(\d+)$", r"quantizer.vq.layers.\1._codebook.embed")),
)
# Official key -> ours, and ours -> official; first match wins (tests check the round trip).
RENAMES: tuple[Rule, ...] = (*(forward for forward, _ in INDEXED), *((re.escape(o), ours) for o, ours in PREFIXES))
TO_OFFICIAL: tuple[Rule, ...] = (*(back for _, back in INDEXED), *((re.escape(ours), o) for o, ours in PREFIXES))

# Saved state that inference never reads: the k-means statistics of the codebook (training
# carries them through unchanged, the quantizer being frozen) and the posterior encoder
# (normally stripped from released files; kept with ``keep_posterior``).
CODEBOOK_STATS = re.compile(r"quantizer\.vq\.layers\.\d+\._codebook\.(inited|cluster_size|embed_avg)$")
POSTERIOR = re.compile(r"enc_q\.")

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


# Official (legacy) weight-norm suffixes -> the parametrization names torch uses today.
_PARAMETRIZED = {".weight_g": ".parametrizations.weight.original0", ".weight_v": ".parametrizations.weight.original1"}


def _apply_rules(key: str, rules: tuple[Rule, ...]) -> str | None:
    for pattern, replacement in rules:
        renamed, count = re.subn("^" + pattern, replacement, key)
        if count:
            return renamed
    return None


def rename_official(key: str) -> str | None:
    """Our name for an official key, or None when no rule covers it."""
    return _apply_rules(key, RENAMES)


def parametrized_name(key: str) -> str:
    """``<layer>.weight_g`` / ``.weight_v`` (legacy weight norm) -> ``<layer>.parametrizations.weight.original0/1``."""
    for legacy, parametrized in _PARAMETRIZED.items():
        if key.endswith(legacy):
            return key[: -len(legacy)] + parametrized
    return key


def legacy_weight_norm_name(key: str) -> str:
    """The inverse of :func:`parametrized_name` (the names official files use)."""
    for legacy, parametrized in _PARAMETRIZED.items():
        if key.endswith(parametrized):
            return key[: -len(parametrized)] + legacy
    return key


def ours_to_official(key: str) -> str | None:
    """The official name of one of our keys (weight-norm parametrizations -> ``weight_g``/``weight_v``), or None."""
    return _apply_rules(legacy_weight_norm_name(key), TO_OFFICIAL)


def _keep_weight_norm(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official keys with legacy weight-norm suffixes renamed to the parametrization names (values untouched)."""
    return {parametrized_name(key): tensor for key, tensor in weights.items()}


def official_to_ours(
    weights: dict[str, torch.Tensor], keep_posterior: bool = False, keep_weight_norm: bool = False
) -> dict[str, torch.Tensor]:
    """Official state dict -> ours: fold weight norm (or keep it), drop what inference never reads, rename.

    Unknown keys raise. ``keep_posterior`` keeps ``enc_q.*`` (as ``posterior.*``);
    ``keep_weight_norm`` keeps each (g, v) pair as ``<layer>.parametrizations.weight.original0/1``.
    """
    ours: dict[str, torch.Tensor] = {}
    unknown = []
    prepared = _keep_weight_norm(weights) if keep_weight_norm else fold_weight_norm(weights)
    for key, tensor in prepared.items():
        if CODEBOOK_STATS.match(key) or (not keep_posterior and POSTERIOR.match(key)):
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


def load_weights(model: SoVITS, weights: dict[str, torch.Tensor], source: str = "checkpoint", keep_weight_norm: bool = False) -> None:
    """Load an official state dict into ``model`` strictly, checking every key and shape first.

    A model built with a posterior encoder takes ``enc_q.*``; ``keep_weight_norm`` expects the
    model's weight-normed layers to carry torch weight-norm parametrizations.
    """
    ours = official_to_ours(weights, keep_posterior=model.posterior is not None, keep_weight_norm=keep_weight_norm)
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
    on_meta = next(model.parameters()).is_meta  # a meta-built model takes the loaded tensors themselves
    model.load_state_dict(ours, strict=True, assign=on_meta)


def config_from_checkpoint(raw: RawCheckpoint) -> SynthesizerConfig:
    """The :class:`SynthesizerConfig` of an already-read checkpoint (its version, config and weight shapes)."""
    _check_kind(raw)
    mrte = raw.weights.get("enc_p.mrte.c_pre.weight")
    try:
        return SynthesizerConfig.from_checkpoint_config(
            raw.config, uses_sv=raw.version.uses_sv, num_symbols=NUM_SYMBOLS_V2,
            mrte_channels=MRTE_WIDTH if mrte is None else mrte.shape[0],
        )
    except SynthesizerConfigError as error:
        raise CheckpointError(f"{raw.path}: {error}") from error


def build_from_checkpoint(raw: RawCheckpoint, keep_posterior: bool = False) -> SoVITS:
    """An eval-mode, gradient-free float32 CPU :class:`SoVITS` holding an already-read checkpoint's weights.

    ``keep_posterior`` also builds and fills the training-only posterior encoder (``enc_q``),
    which the checkpoint must then hold.
    """
    config = config_from_checkpoint(raw)
    if keep_posterior and not any(POSTERIOR.match(key) for key in raw.weights):
        raise CheckpointError(f"{raw.path} holds no posterior encoder (enc_q): released and exported files drop it")
    version: VersionInfo = raw.version
    with torch.device("meta"):  # no random init: every tensor is replaced by the saved one
        model = SoVITS(config, version, keep_posterior=keep_posterior)
    load_weights(model, raw.weights, str(raw.path))
    return model.eval().requires_grad_(False)


def load_sovits(
    path: str | os.PathLike, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, keep_posterior: bool = False
) -> SoVITS:
    """Read an official s2 ``.pth`` (v2, v2Pro, v2ProPlus) and return the decoder in eval mode.

    Raises :class:`CheckpointError` for a missing, truncated or corrupt file, a file of
    another kind (s1 GPT, v1 SoVITS), or weights that do not fit the stored config.
    ``keep_posterior=True`` keeps the training-only posterior encoder of a full training file.
    """
    model = build_from_checkpoint(read_sovits_checkpoint(path), keep_posterior).to(device=device, dtype=dtype)
    model.generator.channels_last_weights()
    return model
