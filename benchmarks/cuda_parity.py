"""Parity on a device: the public goldens' tokens exactly, ``decode_out`` within a tolerance.

    python benchmarks/cuda_parity.py [--device cuda] [--atol 1e-3] [--results DIR]

For each single-reference case (v2_zh, v2_zh_en_mixed, v2Pro_zh, v2ProPlus_zh) of
../shared/gsv-reference/cases, the command line (``python -m gsv_core synth``) runs the tiny
official-format models in float32 on ``--device`` with the recorded decoder noise (and SV
features) injected and dumps its arrays; the generated tokens (``t2s_y_full``) must equal the
official CPU run's and ``decode_out`` must be within ``--atol`` of it. On ``--device cpu`` this
checks the CPU against the goldens. Prints the max abs differences per case, writes JSON and
exits with 1 when any case mismatches.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.realsize import MODELS, REFERENCE, RESULTS, write_results  # noqa: E402
from gsv_core.__main__ import main as cli  # noqa: E402

CASES = {"v2_zh": "s2G-tiny-v2.pth", "v2_zh_en_mixed": "s2G-tiny-v2.pth", "v2Pro_zh": "s2G-tiny-v2Pro.pth",
         "v2ProPlus_zh": "s2G-tiny-v2ProPlus.pth"}


def case_argv(case: str, device: str, work: Path) -> list[str]:
    """The command line of one case, its noise (and SV features) written into ``work``."""
    case_dir = REFERENCE / "cases" / case
    golden = np.load(case_dir / "intermediates.npz")
    inputs = json.loads((case_dir / "inputs.json").read_text())["inputs"]
    np.savez(work / "noise.npz", decode_noise_0=golden["decode_noise"])
    argv = [
        "synth", "--t2s", str(MODELS / "s1-tiny.ckpt"), "--sovits", str(MODELS / CASES[case]),
        "--hubert", str(MODELS / "chinese-hubert-tiny"), "--bert", str(MODELS / "chinese-roberta-tiny"),
        "--ref-audio", str(case_dir / "ref.wav"), "--ref-text", inputs["prompt_text"], "--ref-lang", inputs["prompt_lang"],
        "--text", inputs["text"], "--text-lang", inputs["text_lang"], "--top-k", str(inputs["top_k"]),
        "--top-p", str(inputs["top_p"]), "--temperature", str(inputs["temperature"]),
        "--repetition-penalty", str(inputs["repetition_penalty"]), "--split", inputs["text_split_method"],
        "--seed", str(inputs["seed"]), "--noise", str(work / "noise.npz"), "--official-data", str(REFERENCE / "data"),
        "--device", device, "--precision", "fp32", "--threads", "2",
        "--out", str(work / "out.wav"), "--dump", str(work / "dump.npz"),
    ]
    if "sv_embedding" in golden:
        np.save(work / "sv.npy", golden["sv_embedding"])
        argv += ["--sv-embedding", str(work / "sv.npy")]
    return argv


def check_case(case: str, device: str, atol: float) -> dict:
    """Run one case on ``device`` and compare it with the official CPU run."""
    golden = np.load(REFERENCE / "cases" / case / "intermediates.npz")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        log = io.StringIO()
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            code = cli(case_argv(case, device, work))
        if code != 0:
            return {"passed": False, "error": f"exit code {code}: {log.getvalue().strip()[-500:]}"}
        dump = np.load(work / "dump.npz")
        ours, official = dump["t2s_y_full"], golden["t2s_y_full"]
        tokens_equal = ours.shape == official.shape and bool((ours == official).all())
        result = {"tokens_equal": tokens_equal, "generated_tokens": golden["t2s_idx"].item()}
        if dump["decode_out"].shape == golden["decode_out"].shape:
            result["decode_out_max_abs_diff"] = float(np.abs(dump["decode_out"] - golden["decode_out"]).max())
        else:
            result["decode_out_max_abs_diff"] = float("inf")
        result["passed"] = tokens_equal and result["decode_out_max_abs_diff"] <= atol
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--atol", type=float, default=1e-3, help="largest allowed |decode_out - official|")
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES),
                        help="a subset, when not every tiny model can be copied to the GPU machine")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON report")
    args = parser.parse_args()
    cases = {case: check_case(case, args.device, args.atol) for case in args.cases}
    for case, result in cases.items():
        detail = result.get("error") or (f"tokens {'equal' if result['tokens_equal'] else 'DIFFER'}, "
                                         f"decode_out max abs diff {result['decode_out_max_abs_diff']:.2e}")
        print(f"{case:16s} {'ok  ' if result['passed'] else 'FAIL'} {detail}")
    passed = all(result["passed"] for result in cases.values())
    report = {"benchmark": "cuda_parity", "device": args.device, "precision": "fp32", "atol": args.atol,
              "baseline": "the official GPT-SoVITS CPU float32 run recorded in gsv-reference/cases",
              "cases": cases, "passed": passed}
    print(f"{'all cases pass' if passed else 'MISMATCH'}; wrote {write_results('cuda_parity', report, args.results)}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
