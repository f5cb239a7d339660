"""GPT (s1) training: optimizer, schedule, batching, loss, random stream, export, kill -9 and resume.

The step-by-step parity of a whole replay (every loss, gradient, parameter, lr) is in
test_train_replay.py; these tests check the parts, against the training reference where it
records them, and run without it where they need no official numbers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gsv_core.models.t2s import DecodeRow, load_t2s
from gsv_core.training.checkpoints import load_training_state, s1_export, save_s1_checkpoint
from gsv_core.training.lr_schedule import PINNED_LR, WarmupCosineLRSchedule
from gsv_core.training.prepared import load_prepared
from gsv_core.training.random_draws import DrawMismatch, DrawRecorder, RecordedDraws
from gsv_core.training.s1 import S1Trainer, official_optimizer, official_schedule, steps_here
from gsv_core.training.s1_data import S1Dataset, collate, epoch_batches, loader_batch_size
from gsv_core.training.s1_model import S1Batch, attention_mask, official_parameters, training_forward
from gsv_core.training.scaled_adam import ScaledAdam
from tiny_s1 import tiny_s1_config, write_tiny_prepared, write_tiny_pretrained

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def s1_reference(training_dir: Path):
    meta = json.loads((training_dir / "s1_step.json").read_text(encoding="utf-8"))
    with np.load(training_dir / "s1_step.npz") as npz:
        arrays = {name: npz[name] for name in npz.files}
    return meta, arrays


def _pretrained(reference_dir: Path):
    model = load_t2s(reference_dir / "models" / "s1-tiny.ckpt").train().requires_grad_(True)
    return model


def _recorded_batch(training_dir: Path, meta: dict, arrays: dict, b: int) -> S1Batch:
    bert = {u.wav_name: u.bert for u in load_prepared(training_dir, names=("bert",))}
    ids = torch.from_numpy(arrays[f"batch{b}_phoneme_ids"])
    features = torch.zeros(ids.shape[0], 1024, ids.shape[1])
    for row, name in enumerate(meta["batches"][b]["items"]):
        features[row, :, : bert[name].shape[1]] = torch.from_numpy(bert[name])
    return S1Batch(ids, torch.from_numpy(arrays[f"batch{b}_phoneme_ids_len"]),
                   torch.from_numpy(arrays[f"batch{b}_semantic_ids"]), torch.from_numpy(arrays[f"batch{b}_semantic_ids_len"]),
                   features)


# --- schedule and accumulation -----------------------------------------------------------------

def test_schedule_leaves_the_first_lr_and_then_pins_every_group_to_0_002(s1_reference):
    meta, _ = s1_reference
    params = [torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))]
    optimizer = ScaledAdam([{"params": params[:1]}, {"params": params[1:]}], lr=0.01)
    schedule = official_schedule(optimizer, meta["config"])
    lrs = []
    for _ in meta["steps"]:
        lrs.append([group["lr"] for group in optimizer.param_groups][:1])
        schedule.step()
    assert lrs == [step["lr"] for step in meta["steps"]]
    assert [group["lr"] for group in optimizer.param_groups] == [PINNED_LR, PINNED_LR]
    assert schedule.get_last_lr() == [PINNED_LR, PINNED_LR]


def test_schedule_state_round_trip():
    optimizer = ScaledAdam([torch.nn.Parameter(torch.ones(2))], lr=0.01)
    schedule = WarmupCosineLRSchedule(optimizer, 1e-5, 0.01, 1e-4, 2000, 40000)
    schedule.step()
    other = WarmupCosineLRSchedule(ScaledAdam([torch.nn.Parameter(torch.ones(2))], lr=0.01), 1e-5, 0.01, 1e-4)
    other.load_state_dict(schedule.state_dict())
    assert other.current_step == 1 and other.get_last_lr() == [0.01]


def test_optimizer_steps_where_the_official_loop_does(s1_reference):
    meta, _ = s1_reference
    stepped = [b["batch_idx"] for b in meta["batches"] if steps_here(b["batch_idx"])]
    assert stepped == [step["at_batch_idx"] for step in meta["steps"]]
    assert not steps_here(0) and [b for b in range(13) if steps_here(b)] == [4, 8, 12]


# --- ScaledAdam --------------------------------------------------------------------------------

def test_scaled_adam_step_1_from_the_recorded_gradient_gives_the_official_parameters_and_state(reference_dir, s1_reference):
    meta, arrays = s1_reference
    named = official_parameters(_pretrained(reference_dir))
    for name, param in named:
        param.grad = torch.from_numpy(arrays[f"step1_grad/{name}"]).clone()
    optimizer = official_optimizer([param for _, param in named])
    optimizer.step()
    for name, param in named:
        np.testing.assert_allclose(param.detach().numpy(), arrays[f"step1_param/{name}"], rtol=0, atol=1e-6, err_msg=name)
    states = {name: optimizer.state[param] for name, param in named}
    for name, recorded in meta["steps"][0]["opt_state_small"].items():
        state = states[name]
        assert state["step"] == recorded["step"]
        for key, value in recorded.items():
            if key != "step":
                np.testing.assert_allclose(state[key].flatten().numpy(), value, rtol=1e-5, atol=1e-7, err_msg=f"{name} {key}")


def test_scaled_adam_clips_only_the_size_statistics_not_the_step():
    """Official quirk: the clipping factor scales the gradients recorded for the size update only.

    With a clipping period of 2 the threshold is set at step 2, whose 100x gradient is clipped;
    no size update happens before step 3, so the parameters must not see the clipping at all.
    """
    def run(clipping_scale):
        torch.manual_seed(0)
        param = torch.nn.Parameter(torch.randn(4, 3))
        optimizer = ScaledAdam([param], lr=0.01, clipping_scale=clipping_scale, clipping_update_period=2)
        for step in range(3):
            param.grad = torch.randn(4, 3) * (100.0 if step == 2 else 1.0)
            optimizer.step()
        return param.detach().clone(), optimizer.state[param]["scale_grads"].clone()

    clipped_param, clipped_grads = run(2.0)
    plain_param, plain_grads = run(None)
    assert torch.equal(clipped_param, plain_param)
    assert torch.equal(clipped_grads[:2], plain_grads[:2])
    assert (clipped_grads[2].abs() < plain_grads[2].abs() / 10).all()  # scaled by the clipping factor


def test_scaled_adam_clamps_a_scalar_before_adding_its_update():
    """Official quirk: scalars are clamped to +-scalar_max, then the step is added (so they can end past it)."""
    scalar = torch.nn.Parameter(torch.tensor([12.0]))
    optimizer = ScaledAdam([scalar], lr=0.01, scalar_max=10.0)
    scalar.grad = torch.tensor([-1.0])
    optimizer.step()
    step = 0.01 * 0.1 * (1 - 0.9) / (1.0 + 1e-8)  # lr * scalar_lr_scale * (1 - beta1) * |g| / (|g| + eps)
    assert scalar.item() == pytest.approx(10.0 + step, abs=2e-6)  # clamped after the step it would be 10


def test_scaled_adam_state_survives_a_save_and_load():
    import io

    torch.manual_seed(1)
    params = [torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.randn(1))]
    optimizer = ScaledAdam(params, lr=0.01)
    for p in params:
        p.grad = torch.randn_like(p)
    optimizer.step()
    copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
    restored = ScaledAdam(copies, lr=0.01)
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    for original, copy in zip(params, copies):
        original.grad = copy.grad = torch.ones_like(original)
    optimizer.step()
    restored.step()
    for original, copy in zip(params, copies):
        assert torch.equal(original, copy)


# --- data ---------------------------------------------------------------------------------------

def test_sampler_and_collate_build_the_recorded_batches(training_dir, s1_reference):
    meta, arrays = s1_reference
    dataset = S1Dataset.from_utterances(load_prepared(training_dir, names=("phone_ids", "bert", "semantic")))
    size = loader_batch_size(meta["config"]["train"]["batch_size"], len(dataset.items))
    batches = epoch_batches(dataset.seconds(), size, epoch=0)
    for b, info in enumerate(meta["batches"]):
        assert batches[b] == info["ids"] and [dataset.items[i].name for i in batches[b]] == info["items"]
        batch = collate([dataset.items[i] for i in batches[b]])
        assert np.array_equal(batch.phoneme_ids.numpy(), arrays[f"batch{b}_phoneme_ids"])
        assert np.array_equal(batch.semantic_ids.numpy(), arrays[f"batch{b}_semantic_ids"])
        assert np.array_equal(batch.semantic_lens.numpy(), arrays[f"batch{b}_semantic_ids_len"])


def test_dataset_filters_and_repeats_as_the_official_loader(tmp_path):
    utterances = load_prepared(write_tiny_prepared(tmp_path / "data", count=3))
    fast = utterances[0].__class__(**{**utterances[0].__dict__, "key": "fast", "wav_name": "fast.wav",
                                      "phone_ids": np.arange(1, 31), "semantic": np.zeros(20, dtype=np.int64)})
    dataset = S1Dataset.from_utterances([*utterances, fast])
    assert dataset.removed["phone rate"] == 1  # 30 phones in 0.8 s: 37.5 per second > 25
    assert len(dataset.items) == 3 * 33  # max(2, 100 // 3) copies
    assert loader_batch_size(8, 7) == 1 and loader_batch_size(8, 100) == 8 and loader_batch_size(8, 100, dpo=True) == 4


def test_first_bucket_is_empty_when_every_item_lasts_two_seconds_or_more():
    """Official quirk: the bucket bound moves by 2 s at a time, so 2.5 s items all share the second bucket."""
    seconds = [2.5, 3.9, 2.1, 3.0]
    batches = epoch_batches(seconds, batch_size=4, epoch=0)
    assert sorted(batches[0]) == [0, 1, 2, 3]


def test_text_padding_is_masked_from_the_left_as_officially():
    mask = attention_mask(torch.tensor([3, 2]), torch.tensor([2, 2]), num_heads=1, dtype=torch.float32)
    hidden = torch.isinf(mask[1, 0])
    assert hidden[0].item() and not hidden[2].item()  # row 1 (2 phones, padded at the end) hides phone 0
    assert torch.isinf(mask[0, 0, 3:]).all() and not torch.isinf(mask[0, 3, :4]).any()  # text sees no codes


# --- forward and random stream -----------------------------------------------------------------

def test_batch_loss_with_the_recorded_draws_equals_the_official(reference_dir, training_dir, s1_reference):
    meta, arrays = s1_reference
    model = _pretrained(reference_dir)
    info = meta["batches"][0]
    with RecordedDraws(meta["rng_calls"], arrays).injector(info["rng_first"], info["rng_last"]):
        output = training_forward(model, _recorded_batch(training_dir, meta, arrays, 0))
    assert output.loss.item() == pytest.approx(info["loss"], rel=1e-5)
    assert output.accuracy == pytest.approx(info["acc"], abs=1e-7)


def test_injector_refuses_a_draw_of_another_shape(reference_dir, training_dir, s1_reference):
    meta, arrays = s1_reference
    info = meta["batches"][0]
    model, other_batch = _pretrained(reference_dir), _recorded_batch(training_dir, meta, arrays, 1)
    with pytest.raises(DrawMismatch, match="shape"):
        with RecordedDraws(meta["rng_calls"], arrays).injector(info["rng_first"], info["rng_last"]):
            training_forward(model, other_batch)


@pytest.mark.slow
def test_trainer_draws_the_official_dropout_masks_from_the_seed(reference_dir, training_dir, s1_reference):
    """From seed_everything(1234) on, our trainer consumes the generator as the official run: same masks, same loss."""
    meta, arrays = s1_reference
    dataset = S1Dataset.from_utterances(load_prepared(training_dir, names=("phone_ids", "bert", "semantic")))
    trainer = S1Trainer(load_t2s(reference_dir / "models" / "s1-tiny.ckpt"), meta["config"], dataset)
    trainer.start()
    records, recorder = [], DrawRecorder()
    with recorder:
        trainer.run(Path("unused"), stop_after=2, on_batch=records.append)
    recorded = RecordedDraws(meta["rng_calls"], arrays).draws[meta["batches"][0]["rng_first"]:meta["batches"][1]["rng_last"]]
    assert len(recorder.calls) == len(recorded)
    for (op, shape, values), draw in zip(recorder.calls, recorded):
        assert (op, shape) == (draw.op, draw.shape)
        assert np.array_equal(values, draw.values(arrays)), draw.module
    assert [r.loss for r in records] == pytest.approx([b["loss"] for b in meta["batches"][:2]], rel=1e-5)


# --- export and resume -------------------------------------------------------------------------

def test_export_is_the_official_layout_and_loads_strictly_for_generation(tmp_path):
    config = tiny_s1_config()
    pretrained = write_tiny_pretrained(tmp_path / "p.ckpt", config)
    model = load_t2s(pretrained)
    export = s1_export(model, config, epoch=3)
    assert list(export) == ["weight", "config", "info"] and export["info"] == "GPT-e3"
    assert all(name.startswith("model.") and value.dtype == torch.float16 for name, value in export["weight"].items())
    assert list(export["weight"])[:4] == ["model.bert_proj.weight", "model.bert_proj.bias",
                                          "model.ar_text_embedding.word_embeddings.weight", "model.ar_text_position.alpha"]
    path = save_s1_checkpoint(tmp_path / "out.ckpt", model, config, epoch=3)
    loaded = load_t2s(path)
    tokens = loaded.generate([DecodeRow(phones=torch.tensor([5, 6, 7]), bert=torch.zeros(1024, 3))], max_steps=12)
    assert tokens[0].dtype == torch.long and len(tokens[0]) > 0


def _train_command(prepared: Path, pretrained: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "gsv_core", "train-s1", "--prepared", str(prepared), "--pretrained", str(pretrained),
            "--out", str(out), "--state-every", "1", "--threads", "1"]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_kill_9_during_training_then_resume_ends_with_the_uninterrupted_parameters(tmp_path):
    """Two epochs of 12 batches: the gradients of batches 9-11 (after epoch 1's last step) carry into epoch 2."""
    config = tiny_s1_config(epochs=2, batch_size=8)
    pretrained = write_tiny_pretrained(tmp_path / "pretrained.ckpt", config)
    prepared = write_tiny_prepared(tmp_path / "prepared", count=6)
    whole = subprocess.run(_train_command(prepared, pretrained, tmp_path / "whole"), env=_env(), capture_output=True,
                           text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr[-2000:]
    killed_out = tmp_path / "killed"
    process = subprocess.Popen(_train_command(prepared, pretrained, killed_out), env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = killed_out / "s1-metrics.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 15:  # inside epoch 2
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved = load_training_state(killed_out / "s1-state.pt")
    assert saved["position"]["epoch"] == 1 and 0 < saved["position"]["batch"] < 12
    resumed = subprocess.run(_train_command(prepared, pretrained, killed_out), env=_env(), capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    final, reference = load_training_state(killed_out / "s1-state.pt"), load_training_state(tmp_path / "whole" / "s1-state.pt")
    assert final["position"] == reference["position"] == {"epoch": 2, "batch": 0, "steps": 4}
    for name, value in reference["params"].items():
        assert torch.equal(final["params"][name], value), name
    exported = torch.load(killed_out / "tiny-e2.ckpt", weights_only=True)["weight"]
    expected = torch.load(tmp_path / "whole" / "tiny-e2.ckpt", weights_only=True)["weight"]
    assert all(torch.equal(exported[k], expected[k]) for k in expected)


def test_a_state_of_another_kind_is_refused_with_a_clear_message(tmp_path):
    from gsv_core.training.checkpoints import save_training_state

    config = tiny_s1_config()
    trainer = S1Trainer(load_t2s(write_tiny_pretrained(tmp_path / "p.ckpt", config)), config,
                        S1Dataset.from_utterances(load_prepared(write_tiny_prepared(tmp_path / "d"))))
    save_training_state(tmp_path / "s2.pt", {"stage": "s2"})
    with pytest.raises(ValueError, match="not the state of a GPT"):
        trainer.load_state(tmp_path / "s2.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot read the training state"):
        trainer.load_state(tmp_path / "junk.pt")


def test_training_after_decoding_in_the_same_process(tmp_path):
    """The position table is cached; built first while decoding (inference mode), it broke every later backward."""
    config = tiny_s1_config()
    model = load_t2s(write_tiny_pretrained(tmp_path / "p.ckpt", config))
    model.generate([DecodeRow(phones=torch.tensor([5, 6, 7]), bert=torch.zeros(1024, 3), prompt=torch.tensor([1, 2]))],
                   max_steps=4)
    batch = collate(S1Dataset.from_utterances(load_prepared(write_tiny_prepared(tmp_path / "d"))).items[:2])
    output = training_forward(model.train().requires_grad_(True), batch)
    output.loss.backward()
    assert model.phone_position_alpha.grad is not None and torch.isfinite(output.loss)
