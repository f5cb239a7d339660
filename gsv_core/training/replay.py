"""Replay of a training reference: each stage run from the reference's own recorded inputs.

A reference folder is laid out like ``gsv-reference/training/``: ``data/`` (wavs and
``train.list``), ``prepared.npz`` / ``.json`` and one ``<stage>_step.npz`` / ``.json`` per
training stage, with every random draw recorded (``rng_calls``). A stage is a function

    replay_stage(reference_dir: Path) -> dict[str, np.ndarray]

returning every array it reproduced under the reference's own key names. :data:`STAGES`
registers them with the file that marks a reference as holding that stage. Models the
reference names but does not hold are looked for in the ``models/`` folders of the reference
and its parents (the public reference keeps the shared tiny models one level up).

Stages here:

* ``prepare``: the preparation of ``data/train.list`` (:mod:`.prepare`): ``<k>_phone_ids``,
  ``<k>_word2ph``, ``<k>_bert``, ``<k>_hubert_input_16k``, ``<k>_ssl``, ``<k>_wav32k``,
  ``<k>_semantic`` and, where the reference has them, ``<k>_sv_wav16k`` and ``<k>_sv_fbank``
  (``<k>_sv_emb`` needs the real-size SV network, which no reference ships: the next stage
  takes the recorded one).
* ``s1``: the batches our sampler builds from ``prepared.npz`` (``batch<b>_phoneme_ids``, ...),
  then each batch's forward and backward on the recorded batch tensors with the recorded
  draws injected, and each optimizer step where the official loop makes one: ``batch<b>_loss``,
  ``batch<b>_acc``, ``step<s>_grad/<name>`` (the summed gradient the step used),
  ``step<s>_lr`` and ``step<s>_param/<name>``. Before step s > 1 the parameters are set to the
  recorded ``step<s-1>_param`` (the optimizer state is the replay's own).
* ``s2``: each SoVITS step (a D step, then a G step) from the prepared arrays and the recorded
  draws (:mod:`.s2_replay`): ``step<s>/batch/*``, ``step<s>/fwd/*``, ``step<s>/loss/*``,
  ``step<s>/param_G/*``, ``step<s>/param_D/*``, plus the json's gradient norms and learning rates.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

STAGE_SIGNATURE = "replay_stage(reference_dir: Path) -> dict[str, np.ndarray]"
MODEL_SEARCH_DEPTH = 3  # the reference, its parent and grandparent


@dataclass(frozen=True)
class Stage:
    """A replayable stage: it applies to references holding ``marker``; ``target`` = ``module:function``."""

    name: str
    marker: str
    target: str

    def applies(self, reference_dir: Path) -> bool:
        return (reference_dir / self.marker).is_file()

    def function(self) -> Callable[[Path], dict[str, np.ndarray]]:
        module, name = self.target.split(":")
        return getattr(importlib.import_module(module), name)


STAGES: tuple[Stage, ...] = (
    Stage("prepare", "prepared.json", "gsv_core.training.replay:replay_prepare"),
    Stage("s1", "s1_step.json", "gsv_core.training.replay:replay_s1"),
    Stage("s2", "s2_step.json", "gsv_core.training.s2_replay:replay_s2"),
)


class ReplayError(ValueError):
    """The folder is not a training reference, or lacks a file a stage needs."""


def find_model(reference_dir: Path, name: str) -> Path:
    """``models/<name>`` in the reference or one of its parents (see the module docstring)."""
    folder = reference_dir.resolve()
    for _ in range(MODEL_SEARCH_DEPTH):
        candidate = folder / "models" / name
        if candidate.exists():
            return candidate
        folder = folder.parent
    raise ReplayError(f"model {name!r} not found in models/ of {reference_dir} or its parents")


def _official_data(reference_dir: Path) -> Path | None:
    """The official dictionary files next to a parent of the reference, if any (else the package's own)."""
    folder = reference_dir.resolve()
    for _ in range(MODEL_SEARCH_DEPTH):
        if (folder / "data" / "opencpop-strict.txt").is_file():
            return folder / "data"
        folder = folder.parent
    return None


def replay(reference_dir: str | Path, stages: tuple[str, ...] | None = None,
           on_stage: Callable[[str, int], None] | None = None) -> dict[str, np.ndarray]:
    """Every applicable stage (or those named) of a reference; ``on_stage(name, n_arrays)`` after each."""
    reference_dir = Path(reference_dir)
    if not reference_dir.is_dir():
        raise ReplayError(f"{reference_dir} is not a folder")
    known = {stage.name: stage for stage in STAGES}
    unknown = sorted(set(stages or ()) - set(known))
    if unknown:
        raise ReplayError(f"unknown stage(s) {unknown}; known: {sorted(known)}")
    chosen = [known[name] for name in stages] if stages else [s for s in STAGES if s.applies(reference_dir)]
    if not chosen:
        raise ReplayError(f"{reference_dir} holds none of the stages {sorted(known)}")
    arrays: dict[str, np.ndarray] = {}
    for stage in chosen:
        if not stage.applies(reference_dir):
            raise ReplayError(f"{reference_dir} has no {stage.marker} for stage {stage.name}")
        produced = stage.function()(reference_dir)
        arrays.update(produced)
        if on_stage is not None:
            on_stage(stage.name, len(produced))
    return arrays


def _reference_json(reference_dir: Path, name: str) -> dict:
    try:
        return json.loads((reference_dir / name).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReplayError(f"{reference_dir} has no {name}") from None


def replay_prepare(reference_dir: Path) -> dict[str, np.ndarray]:
    """The ``prepare`` stage (see the module docstring)."""
    from ..features.bert import BertFeatures
    from ..features.ssl import HubertFeatures
    from ..models.sovits.loader import load_sovits
    from ..text.lexicon import load_lexicon
    from .prepare import DatasetPreparer, parse_list

    recorded = _reference_json(reference_dir, "prepared.json")
    keys_by_name = {u["wav_name"]: u["key"] for u in recorded.get("utterances", [])}
    with_sv = any(key.endswith("_sv_wav16k") for key in recorded.get("keys", {}))
    entries, _ = parse_list((reference_dir / "data" / "train.list").read_text(encoding="utf-8"), reference_dir / "data" / "wavs")
    preparer = DatasetPreparer(
        load_lexicon(official_data=_official_data(reference_dir)),
        BertFeatures(find_model(reference_dir, "chinese-roberta-tiny")),
        HubertFeatures(find_model(reference_dir, "chinese-hubert-tiny")),
        load_sovits(find_model(reference_dir, "s2G-tiny-v2.pth")),
        with_sv=with_sv,
    )
    prepared, skipped = preparer.prepare_all(entries)
    if skipped:
        raise ReplayError(f"preparation left out {[(s.wav_name, s.reason) for s in skipped]}")
    arrays = {}
    for utterance in prepared:
        key = keys_by_name.get(utterance.wav_name, utterance.key)
        arrays.update({f"{key}{name[len(utterance.key):]}": value for name, value in utterance.arrays().items()})
    return arrays


def replay_s1(reference_dir: Path) -> dict[str, np.ndarray]:
    """The ``s1`` stage (see the module docstring)."""
    from .s1_replay import S1Replay

    return S1Replay.from_reference(reference_dir).run()
