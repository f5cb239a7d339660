"""The ``s1`` replay stage: the GPT steps of a reference, from its recorded inputs and draws.

See :mod:`.replay` for what it writes. Everything it needs is read from the reference:
``s1_step.json`` (config, batches with their draw spans, steps), ``s1_step.npz`` (batch tensors,
draws, parameters), ``prepared.npz`` (the BERT features of each batch's utterances) and the
pretrained s1 file named by the config (looked up in the ``models/`` folders).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..models.t2s import Text2Semantic, load_t2s
from .prepared import load_prepared
from .random_draws import RecordedDraws
from .s1 import official_optimizer, official_schedule, steps_here
from .s1_data import S1Dataset, collate, epoch_batches, loader_batch_size
from .s1_model import S1Batch, official_parameters, training_forward

BATCH_FIELDS = (("phoneme_ids", "phoneme_ids"), ("phoneme_lens", "phoneme_ids_len"),
                ("semantic_ids", "semantic_ids"), ("semantic_lens", "semantic_ids_len"))


@dataclass
class S1Replay:
    meta: dict
    arrays: dict[str, np.ndarray]
    model: Text2Semantic
    bert: dict[str, np.ndarray]  # wav name -> (1024, n) features of prepared.npz
    dataset: S1Dataset

    @classmethod
    def from_reference(cls, reference_dir: Path) -> S1Replay:
        from .replay import find_model

        meta = json.loads((reference_dir / "s1_step.json").read_text(encoding="utf-8"))
        with np.load(reference_dir / "s1_step.npz") as npz:
            arrays = {name: npz[name] for name in npz.files}
        pretrained = Path(str(meta["config"]["pretrained_s1"])).name
        model = load_t2s(find_model(reference_dir, pretrained)).train().requires_grad_(True)
        utterances = load_prepared(reference_dir, names=("phone_ids", "bert", "semantic"))
        bert = {u.wav_name: u.bert for u in utterances}
        return cls(meta, arrays, model, bert, S1Dataset.from_utterances(utterances, max_sec=meta["config"]["data"]["max_sec"]))

    def our_batches(self) -> dict[str, np.ndarray]:
        """The recorded batches as our sampler and collate build them from the prepared arrays."""
        train = self.meta["config"]["train"]
        size = loader_batch_size(int(train["batch_size"]), len(self.dataset.items), bool(train.get("if_dpo", False)))
        batches = epoch_batches(self.dataset.seconds(), size, epoch=0)
        out = {}
        for b in range(len(self.meta["batches"])):
            batch = collate([self.dataset.items[i] for i in batches[b]], int(self.meta["config"]["data"]["pad_val"]))
            out.update({f"batch{b}_{key}": getattr(batch, field).numpy() for field, key in BATCH_FIELDS})
        return out

    def recorded_batch(self, b: int) -> S1Batch:
        """Batch ``b`` from the reference's own tensors; BERT from prepared.npz, zero-padded."""
        tensors = {field: torch.from_numpy(self.arrays[f"batch{b}_{key}"]) for field, key in BATCH_FIELDS}
        items = self.meta["batches"][b]["items"]
        bert = torch.zeros(len(items), 1024, tensors["phoneme_ids"].shape[1])
        for row, name in enumerate(items):
            if self.bert.get(name) is not None:
                features = torch.from_numpy(self.bert[name])
                bert[row, :, : features.shape[1]] = features
        return S1Batch(bert=bert, **tensors)

    def _set_recorded_params(self, step: int) -> None:
        with torch.no_grad():
            for name, param in official_parameters(self.model):
                key = f"step{step}_param/{name}"
                if key in self.arrays:
                    param.copy_(torch.from_numpy(self.arrays[key]))

    def run(self) -> dict[str, np.ndarray]:
        named = official_parameters(self.model)
        optimizer = official_optimizer([param for _, param in named])
        schedule = official_schedule(optimizer, self.meta["config"])
        draws = RecordedDraws(self.meta["rng_calls"], self.arrays)
        out = self.our_batches()
        step = 0
        for b, info in enumerate(self.meta["batches"]):
            with draws.injector(info["rng_first"], info["rng_last"]):
                result = training_forward(self.model, self.recorded_batch(b))
            result.loss.backward()
            out[f"batch{b}_loss"] = np.float32(result.loss.detach())
            out[f"batch{b}_acc"] = np.float32(result.accuracy)
            if not steps_here(info["batch_idx"]):
                continue
            step += 1
            out[f"step{step}_lr"] = np.array([group["lr"] for group in optimizer.param_groups])
            out.update({f"step{step}_grad/{name}": param.grad.numpy().copy() for name, param in named
                        if param.grad is not None})
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            schedule.step()
            out.update({f"step{step}_param/{name}": param.detach().numpy().copy() for name, param in named})
            self._set_recorded_params(step)
        return out


def export_replayed(reference_dir: Path, arrays: dict[str, np.ndarray], path: Path) -> Path:
    """The official s1 export of the last replayed step's parameters, as the epoch-end callback writes it."""
    from .checkpoints import save_s1_checkpoint
    from .replay import find_model

    meta = json.loads((reference_dir / "s1_step.json").read_text(encoding="utf-8"))
    config = meta["config"]
    model = load_t2s(find_model(reference_dir, Path(str(config["pretrained_s1"])).name))
    last = len(meta["steps"])
    with torch.no_grad():
        for name, param in official_parameters(model):
            param.copy_(torch.from_numpy(arrays[f"step{last}_param/{name}"]))
    return save_s1_checkpoint(path, model, config, epoch=int(config["train"]["epochs"]))
