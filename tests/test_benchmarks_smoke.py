"""Benchmark scripts as smoke tests: the GPU session's scripts (the small GPU benchmark and the
parity check) on the CPU, and the quality check's cost on the tiny models.

Each script runs as a subprocess (as ``benchmarks/gpu_session.sh`` runs it on a GPU) and must
exit 0 and write a JSON report with the expected keys.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 900  # a guard against hangs: about a minute each on an idle 2-core CPU, 10x that on a busy shared one


def _run(script: str, *args: str, results: Path) -> dict:
    command = [sys.executable, f"benchmarks/{script}", *args, "--results", str(results)]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (report,) = results.glob("*.json")
    return json.loads(report.read_text())


@pytest.mark.slow
def test_small_gpu_benchmark_runs_on_the_cpu(reference_dir, tmp_path):
    report = _run("bench_gpu.py", "--device", "cpu", "--small", results=tmp_path)
    assert set(report["configurations"]) == {"fp32_eager", "bf16_eager", "cuda_graphs"}
    for name in ("fp32_eager", "bf16_eager"):
        configuration = report["configurations"][name]
        assert set(configuration["gpt_ms_per_token"]) == {"batch_1", "batch_8"}
        assert configuration["sovits_s_per_audio_s"] > 0
        assert {"rtf", "first_audio_s"} <= set(configuration["sentence"])
        assert set(configuration["throughput"]) == {"1", "4", "16"}
        assert configuration["peak_memory"]["gib"] > 0


@pytest.mark.slow
def test_parity_script_passes_on_the_cpu(reference_dir, tmp_path):
    report = _run("cuda_parity.py", "--device", "cpu", results=tmp_path)
    assert report["passed"]
    assert set(report["cases"]) == {"v2_zh", "v2_zh_en_mixed", "v2Pro_zh", "v2ProPlus_zh"}
    assert all(case["tokens_equal"] and case["decode_out_max_abs_diff"] <= 1e-3 for case in report["cases"].values())


@pytest.mark.slow
def test_the_check_cost_benchmark_runs_on_the_tiny_models(reference_dir, tmp_path):
    report = _run("bench_check_cost.py", "--sizes", "tiny", "--repeats", "1", results=tmp_path)
    figures = report["sizes"]["tiny"]
    assert {"one_take_s", "recognizer_per_take_s", "similarity_per_take_s", "checked_pass_at_once_s",
            "checked_fail_once_s"} <= set(figures)
    assert all(value > 0 for value in figures["ratios_to_one_take"].values())


def test_the_quantization_benchmark_runs_and_ours_decodes_as_torch_ao(tmp_path):
    report = _run("bench_quantization.py", "--small", "--tokens", "8", "--rounds", "1", results=tmp_path)
    assert {"fp32", "ours", "torch_ao"} <= set(report["ms_per_token"])
    assert report["ours_tokens_equal_torch_ao"]
