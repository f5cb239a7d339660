"""Which int8 Linear the fast CPU mode should use: GPT decoding ms/token on the real-size s1 model.

    python benchmarks/bench_quantization.py [--threads 2] [--tokens 60] [--rounds 3]

Configurations, each a copy of the same randomly initialised real-size s1 model (shapes from
../shared/gsv-reference/shapes), alternated round by round in one process, best round reported:
* ``fp32``: the float32 model (the baseline);
* ``ours``: ``gsv_core.engine.fast_cpu.quantize_linears`` (ATen's FBGEMM dynamic int8 kernels);
* ``torch_ao``: ``torch.ao.quantization.quantize_dynamic`` (deprecated; what the mode used before);
* ``torchao_dynamic`` / ``torchao_weight_only``: torchao's ``quantize_`` with
  ``Int8DynamicActivationInt8WeightConfig`` / ``Int8WeightOnlyConfig`` (eager; when torchao is installed).
Batch 1 and batch 4 (4 unrelated rows), greedy; the tokens of ``ours`` must equal ``torch_ao``'s.
A configuration that cannot run the model is reported with its error instead of figures.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gsv_core.engine.fast_cpu import quantize_linears  # noqa: E402
from gsv_core.models.sampling import SamplingOptions  # noqa: E402
from gsv_core.models.t2s import DecodeRow  # noqa: E402
from realsize import build_t2s  # noqa: E402


def _torch_ao(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.ao.quantization.quantize_dynamic(model.layers, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    return model


def _torchao(config_name: str):
    def quantize(model):
        from torchao.quantization import quantize_
        import torchao.quantization as ao

        quantize_(model.layers, getattr(ao, config_name)())
        return model

    return quantize


def configurations(small: bool, tokens: int) -> dict:
    base = build_t2s(tokens, small, torch.device("cpu"), torch.float32)
    built = {"fp32": base, "ours": quantize_linears_of(copy.deepcopy(base)), "torch_ao": _torch_ao(copy.deepcopy(base))}
    try:
        import torchao  # noqa: F401
    except ImportError:
        return built
    for name, config in (("torchao_dynamic", "Int8DynamicActivationInt8WeightConfig"),
                         ("torchao_weight_only", "Int8WeightOnlyConfig")):
        built[name] = _torchao(config)(copy.deepcopy(base))
    return built


def quantize_linears_of(model):
    quantize_linears(model.layers)
    return model


def rows(batch: int) -> list[DecodeRow]:
    generator = torch.Generator().manual_seed(batch)
    made = []
    for _ in range(batch):
        phones, bert = torch.randint(0, 732, (80,), generator=generator), torch.randn(1024, 80, generator=generator)
        prompt = torch.randint(0, 1024, (150,), generator=generator)
        made.append(DecodeRow(phones, bert, prompt, SamplingOptions(top_k=1)))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="tiny model (a smoke run)")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = configurations(args.small, args.tokens)
    best: dict[str, dict[str, float]] = {name: {} for name in models}
    errors: dict[str, str] = {}
    tokens: dict[str, list] = {}
    for _ in range(args.rounds):
        for batch in (1, 4):
            for name, model in models.items():
                if name in errors:
                    continue
                try:
                    model.generate(rows(batch)[:1], max_steps=2)  # warm
                    start = time.perf_counter()
                    out = model.generate(rows(batch))
                except Exception as error:  # noqa: BLE001 - reported: the configuration cannot run this model
                    errors[name] = f"{type(error).__name__}: {str(error)[:300]}"
                    continue
                per_token = 1000 * (time.perf_counter() - start) / args.tokens
                key = f"batch_{batch}"
                best[name][key] = min(best[name].get(key, float("inf")), per_token)
                tokens[f"{name}_{key}"] = [t.tolist() for t in out]
    best = {name: figures for name, figures in best.items() if name not in errors}
    same = all(tokens[f"ours_batch_{b}"] == tokens[f"torch_ao_batch_{b}"] for b in (1, 4))
    report = {"ms_per_token": best, "errors": errors, "ours_tokens_equal_torch_ao": same,
              "vs_fp32": {name: {k: best["fp32"][k] / v for k, v in figures.items()} for name, figures in best.items()},
              "threads": args.threads, "tokens": args.tokens, "small": args.small}
    print(f"{'configuration':22} {'batch 1 ms/token':>17} {'batch 4 ms/step':>16} {'x fp32 (b1, b4)':>18}")
    for name, figures in best.items():
        ratio = report["vs_fp32"][name]
        print(f"{name:22} {figures['batch_1']:17.2f} {figures['batch_4']:16.2f} {ratio['batch_1']:8.2f} {ratio['batch_4']:8.2f}")
    for name, error in errors.items():
        print(f"{name:22} cannot run the model: {error}")
    print(f"ours == torch_ao tokens: {same}")
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"bench_quantization_{time.strftime('%Y%m%d_%H%M%S')}.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
