"""GPT (s1) training on two processes (``torchrun``, gloo on the CPU, 127.0.0.1) against one process.

What the official trainer does under DDP and what "the same global batch" means is worked out
in ``gsv_core/training/distributed.py``: for every batch index the two ranks take their own
batches from the bucket sampler (``replicas=2``), each backpropagates its summed loss, DDP
averages the gradients. One process gets the same step by running both ranks' batches (each
collated on its own, each with that rank's dropout generator) and backpropagating each loss
divided by 2. The two-process run must give that process's parameters within the README's
s1 tolerance (1e-6), its losses within rtol 1e-5, and its ScaledAdam second moments (which
see the 1/2 of the average squared, so a sum of the gradients would be 4x off); killed with
SIGKILL and started again it must end bit for bit where the uninterrupted run ended.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gsv_core.models.t2s import load_t2s
from gsv_core.training.checkpoints import load_training_state
from gsv_core.training.prepared import load_prepared
from gsv_core.training.s1 import (S1Trainer, draw_like_official_start, official_optimizer, official_schedule,
                                  steps_here)
from gsv_core.training.s1_data import S1Dataset, collate, epoch_batches, loader_batch_size
from gsv_core.training.s1_model import official_parameters, training_forward
from tiny_s1 import tiny_s1_config, write_tiny_prepared, write_tiny_pretrained

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORLD = 2
EPOCHS, BATCH_SIZE = 3, 4  # 6 utterances x 16 = 96 items: 12 batches per rank and epoch, 2 steps each
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _env() -> dict:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    loopback = [name for _, name in socket.if_nameindex() if name.startswith("lo")]
    if loopback:
        env["GLOO_SOCKET_IFNAME"] = loopback[0]  # gloo's own address on the loopback too
    return env


def _torchrun(inputs: dict, out: Path) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(WORLD),
            "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
            "-m", "gsv_core", "train-s1", "--prepared", str(inputs["prepared"]), "--pretrained", str(inputs["pretrained"]),
            "--out", str(out), "--batch-size", str(BATCH_SIZE), "--threads", "1", "--state-every", "1"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("ddp")
    config = tiny_s1_config(epochs=EPOCHS, batch_size=BATCH_SIZE)
    return {"config": config, "pretrained": write_tiny_pretrained(folder / "pretrained.ckpt", config),
            "prepared": write_tiny_prepared(folder / "prepared", count=6), "folder": folder}


@pytest.fixture(scope="module")
def two_process_run(inputs) -> Path:
    out = inputs["folder"] / "ddp"
    done = subprocess.run(_torchrun(inputs, out), env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    (out / "torchrun.out").write_text(done.stdout)
    (out / "torchrun.err").write_text(done.stderr)
    return out


def one_process_with_the_same_global_batch(inputs: dict) -> tuple[dict, list[float], dict]:
    """Parameters, per-step mean losses and ScaledAdam state of one process emulating ``WORLD`` ranks."""
    config = inputs["config"]
    dataset = S1Dataset.from_utterances(load_prepared(inputs["prepared"], names=("phone_ids", "bert", "semantic")))
    model = load_t2s(inputs["pretrained"]).train().requires_grad_(True)
    named = official_parameters(model)
    optimizer = official_optimizer([param for _, param in named])
    schedule = official_schedule(optimizer, config)
    seed = config["train"]["seed"]
    random.seed(seed)  # every rank seeds alike
    np.random.seed(seed)
    torch.manual_seed(seed)
    draw_like_official_start(config)
    generators = [torch.get_rng_state()] * WORLD
    size = loader_batch_size(BATCH_SIZE, len(dataset.items))
    step_losses, pending = [], []
    for epoch in range(EPOCHS):
        per_rank = [epoch_batches(dataset.seconds(), size, epoch, replicas=WORLD, rank=r) for r in range(WORLD)]
        for b in range(len(per_rank[0])):
            losses = []
            for rank in range(WORLD):
                torch.set_rng_state(generators[rank])
                output = training_forward(model, collate([dataset.items[i] for i in per_rank[rank][b]]))
                (output.loss / WORLD).backward()
                generators[rank] = torch.get_rng_state()
                losses.append(output.loss.item())
            pending.append(sum(losses) / WORLD)
            if steps_here(b):
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                schedule.step()
                step_losses.append(sum(pending) / len(pending))
                pending = []
    return {name: param.detach().clone() for name, param in named}, step_losses, optimizer.state_dict()["state"]


def _without_key_biases(name: str, value: torch.Tensor) -> torch.Tensor:
    """``value`` without the attention's key bias (the middle third of ``in_proj_bias``).

    Softmax is blind to a bias added to every key, so its true gradient is zero; what backward
    stores is rounding noise, which differs with the order of the additions, and Adam scales
    that noise up to a step of about lr * rms. The training reference's README says the same
    of the SoVITS key biases.
    """
    if not name.endswith("in_proj_bias"):
        return value
    third = value.shape[-1] // 3
    return torch.cat([value[..., :third], value[..., 2 * third :]], dim=-1)


def test_two_gloo_processes_give_the_parameters_of_one_process_with_the_same_global_batch(inputs, two_process_run):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            params, step_losses, optimizer_state = one_process_with_the_same_global_batch(inputs)
    finally:
        torch.set_num_threads(threads)
    state = load_training_state(two_process_run / "s1-state.pt")
    assert state["world_size"] == WORLD and state["position"] == {"epoch": EPOCHS, "batch": 0, "steps": 2 * EPOCHS}
    assert len(state["rng"]) == WORLD and not torch.equal(state["rng"][0]["cpu"], state["rng"][1]["cpu"])
    for name, value in params.items():
        ours, theirs = _without_key_biases(name, state["params"][name]), _without_key_biases(name, value)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=0, atol=1e-6, err_msg=name)
        if name.endswith("in_proj_bias"):  # the key bias: within the lr per step (see _without_key_biases)
            np.testing.assert_allclose(state["params"][name].numpy(), value.numpy(), rtol=0, atol=1e-3, err_msg=name)
    lines = [json.loads(line) for line in (two_process_run / "s1-metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(1, 2 * EPOCHS + 1))  # rank 0 alone writes it
    assert [line["loss"] for line in lines] == pytest.approx(step_losses, rel=1e-5)
    saved = state["optimizer"]["state"]  # ScaledAdam keeps a stack's state on its first member
    assert sorted(saved) == sorted(optimizer_state)
    names = list(params)
    for index, entry in optimizer_state.items():
        ours, theirs = (_without_key_biases(names[index], e["exp_avg_sq"]) for e in (saved[index], entry))
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-12, err_msg=names[index])
    exported = torch.load(two_process_run / f"tiny-e{EPOCHS}.ckpt", weights_only=True)["weight"]
    assert all(torch.equal(exported[f"model.{name}"], state["params"][name].half()) for name in params)
    batches = EPOCHS * 12
    assert f"{batches}/{batches}" in (two_process_run / "torchrun.err").read_text()  # rank 0's progress bar
    assert (two_process_run / "torchrun.out").read_text().count("finished:") == 1


def test_two_process_run_killed_with_sigkill_resumes_to_the_uninterrupted_parameters(inputs, two_process_run):
    out = inputs["folder"] / "killed"
    process = subprocess.Popen(_torchrun(inputs, out), env=_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    metrics = out / "s1-metrics.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:  # inside epoch 2
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)  # torchrun and both of its workers
    process.wait()
    saved = load_training_state(out / "s1-state.pt")
    assert saved["position"]["epoch"] >= 1 and saved["position"]["steps"] < 2 * EPOCHS
    resumed = subprocess.run(_torchrun(inputs, out), env=_env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    final = load_training_state(out / "s1-state.pt")
    reference = load_training_state(two_process_run / "s1-state.pt")
    assert final["position"] == reference["position"]
    for name, value in reference["params"].items():
        assert torch.equal(final["params"][name], value), name


def test_a_state_saved_by_two_processes_is_refused_by_one(inputs, two_process_run):
    config = {**inputs["config"], "train": {**inputs["config"]["train"]}}
    dataset = S1Dataset.from_utterances(load_prepared(inputs["prepared"]))
    trainer = S1Trainer(load_t2s(inputs["pretrained"]), config, dataset)
    with pytest.raises(ValueError, match="saved by a run of 2 process"):
        trainer.load_state(two_process_run / "s1-state.pt")
