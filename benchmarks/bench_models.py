"""Speed and memory of the real-size models (random weights, CPU float32 by default).

    python benchmarks/bench_models.py [--threads 2] [--tokens 100] [--device cpu] [--s1-only]

* s1: prefill of 80 phones + 150 prompt tokens, then a fixed number of decode steps, for
  1 row and for 4 rows (4 unrelated requests); baseline measured in the same run, runs
  alternating: the same weights decoded by our previous code (the decoder as of commit
  PREVIOUS_COMMIT, imported from a temporary copy); the tokens must be identical.
* s2: 125 semantic tokens (5 s of audio) through the v2 and v2ProPlus decoders;
  baseline: the same decoder with weight norm recomputed on every call (as the official
  modules do).
* end-to-end RTF from the two, and the peak memory of a full v2ProPlus model set
  (s1, s2, HuBERT, BERT-large, ERes2NetV2) measured in a fresh subprocess.
Shapes come from ../shared/gsv-reference/shapes; official figures are from its
perf_real_cpu2threads.json.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHAPES = ROOT.parent / "shared" / "gsv-reference" / "shapes"

from gsv_core.models.sampling import SamplingOptions  # noqa: E402
from gsv_core.models.sovits import SoVITS, SynthesizerConfig  # noqa: E402
from gsv_core.models.t2s import DecodeRow, T2SConfig, Text2Semantic  # noqa: E402
from gsv_core.versions import VERSIONS  # noqa: E402


PREVIOUS_COMMIT = "c3706a9"  # our previous code: the GPT decoder before generate(rows)


def _previous_t2s_module():
    """``gsv_core.models.t2s`` as of PREVIOUS_COMMIT, imported from a temporary copy named gsv_core_previous."""
    folder = Path(tempfile.mkdtemp(prefix="gsv_previous_"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", PREVIOUS_COMMIT, "gsv_core"], capture_output=True,
                             check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    (folder / "gsv_core").rename(folder / "gsv_core_previous")
    sys.path.insert(0, str(folder))
    return importlib.import_module("gsv_core_previous.models.t2s")


def _t2s(device: str) -> Text2Semantic:
    config = T2SConfig.from_checkpoint_config(json.loads((SHAPES / "s1_v2.json").read_text())["config"])
    torch.manual_seed(0)
    model = Text2Semantic(config).to(device).eval()
    with torch.no_grad():
        model.semantic_head.weight[config.eos] = -1.0  # random weights: keep EOS away, decode a fixed length
    return model


def bench_t2s(device: str, steps: int, repeats: int) -> dict:
    """ms per decoded token at 1 row and at 4 rows (4 unrelated requests), ours against our previous
    code on the same weights; runs alternate and the medians are reported. Asserts equal tokens."""
    previous_module = _previous_t2s_module()
    model = _t2s(device)
    previous = previous_module.Text2Semantic(model.config).to(device).eval()
    previous.load_state_dict(model.state_dict())
    generator = torch.Generator().manual_seed(0)
    inputs = [(torch.randint(0, 732, (80,), generator=generator).to(device), torch.randn(1024, 80, generator=generator).to(device),
               torch.randint(0, 1024, (150,), generator=generator).to(device)) for _ in range(4)]
    options = SamplingOptions(top_k=15)

    def ours(rows: int, max_steps: int) -> list[torch.Tensor]:
        return model.generate([DecodeRow(*inputs[i], options, torch.Generator(device).manual_seed(i)) for i in range(rows)],
                              max_steps=max_steps)

    def before(rows: int, max_steps: int) -> list[torch.Tensor]:
        phones, bert, prompts = ([row[j] for row in inputs[:rows]] for j in range(3))
        return previous.generate_independent(phones, bert, prompts, [options] * rows,
                                             [torch.Generator(device).manual_seed(i) for i in range(rows)], max_steps=max_steps)

    results: dict = {}
    for rows in (1, 4):
        per_token: dict[str, list[float]] = {"ours": [], "our_previous_code": []}
        for _ in range(repeats):
            for name, run in (("ours", ours), ("our_previous_code", before)):
                prefill = _timed(device, lambda: run(rows, 1))
                total = _timed(device, lambda: run(rows, steps + 1))
                per_token[name].append(1000 * (total - prefill) / steps)
        assert all(torch.equal(a, b) for a, b in zip(ours(rows, steps + 1), before(rows, steps + 1))), "tokens differ"
        results[f"batch_{rows}"] = {name: {"ms_per_token_median": statistics.median(times),
                                           "ms_per_token_runs": [round(t, 2) for t in times]}
                                    for name, times in per_token.items()}
        results[f"batch_{rows}"]["identical_tokens"] = True
        results[f"batch_{rows}"]["speedup"] = (results[f"batch_{rows}"]["our_previous_code"]["ms_per_token_median"]
                                               / results[f"batch_{rows}"]["ours"]["ms_per_token_median"])
    results["memory_floor_ms_per_token"] = 1000 * _weight_read_floor(model, device, repeats)
    return results


def _timed(device: str, run) -> float:
    _sync(device)
    start = time.perf_counter()
    run()
    _sync(device)
    return time.perf_counter() - start


def _weight_read_floor(model: torch.nn.Module, device: str, repeats: int) -> float:
    """Seconds to multiply one vector by every Linear weight of the model: the per-token floor on this machine now."""
    weights = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear) and m.weight.shape[1] != 1024]
    times = []
    with torch.inference_mode():
        for _ in range(repeats + 1):
            _sync(device)
            start = time.perf_counter()
            for weight in weights:
                F.linear(torch.ones(1, weight.shape[1], device=device), weight)
            _sync(device)
            times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def _sovits(version: str, device: str) -> SoVITS:
    manifest = json.loads((SHAPES / f"s2_{version}.json").read_text())
    info = VERSIONS[version]
    config = SynthesizerConfig.from_checkpoint_config(manifest["config"], info.uses_sv, 732)
    torch.manual_seed(0)
    return SoVITS(config, info).to(device).eval()


def _with_weight_norm(model: SoVITS) -> SoVITS:
    """Re-parametrize every conv like the official modules (norm recomputed per forward)."""
    for module in list(model.generator.modules()) + list(model.flow.modules()):
        if isinstance(module, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
            torch.nn.utils.parametrizations.weight_norm(module)
    return model


def bench_sovits(version: str, device: str, repeats: int, tokens: int = 125) -> dict:
    codes = torch.randint(0, 1024, (1, 1, tokens), device=device)
    phones = torch.randint(0, 732, (1, 60), device=device)
    audio_s = tokens * 1280 / 32000
    results = {}
    for name, model in (("ours", _sovits(version, device)), ("baseline_weight_norm", _with_weight_norm(_sovits(version, device)))):
        ge = torch.randn(1, model.config.gin_channels, 1, device=device)
        times = []
        with torch.inference_mode():
            model.decode(codes[..., :10], phones, ge, generator=torch.Generator(device).manual_seed(0))  # warm-up
            for _ in range(repeats):
                _sync(device)
                start = time.perf_counter()
                model.decode(codes, phones, ge, generator=torch.Generator(device).manual_seed(0))
                _sync(device)
                times.append(time.perf_counter() - start)
        results[name] = {"s_per_audio_s": statistics.median(times) / audio_s}
    results["speedup_vs_baseline"] = results["baseline_weight_norm"]["s_per_audio_s"] / results["ours"]["s_per_audio_s"]
    return results


def peak_memory_v2proplus(threads: int) -> float:
    """Peak resident memory (GiB) of loading every v2ProPlus model and decoding once, in a fresh process."""
    code = f"""
import json, resource, sys, torch
sys.path.insert(0, {str(ROOT)!r})
torch.set_num_threads({threads})
from transformers import BertConfig, BertModel, HubertConfig, HubertModel
from gsv_core.features.eres2net import ERes2NetV2, ERes2NetV2Config
from benchmarks.bench_models import DecodeRow, _sovits, _t2s
shapes = {str(SHAPES)!r}
t2s = _t2s("cpu"); sovits = _sovits("v2ProPlus", "cpu")
hubert = HubertModel(HubertConfig(**json.load(open(shapes + "/chinese-hubert-base.json"))["config_assumed"])).eval()
bert = BertModel(BertConfig(**json.load(open(shapes + "/chinese-roberta-wwm-ext-large.json"))["config_assumed"])).eval()
sv = ERes2NetV2(ERes2NetV2Config()).eval()
with torch.inference_mode():
    hubert(torch.randn(1, 16000 * 8))
    bert(torch.randint(0, 21128, (1, 40)), output_hidden_states=True)
    sv.pooled_features(torch.randn(1, 700, 80))
    t2s.generate([DecodeRow(torch.randint(0, 732, (80,)), torch.randn(1024, 80), torch.randint(0, 1024, (150,)))], max_steps=126)
    sovits.decode(torch.randint(0, 1024, (1, 1, 125)), torch.randint(0, 732, (1, 60)), torch.randn(1, 1024, 1), generator=torch.Generator().manual_seed(0))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return int(output.stdout.strip().splitlines()[-1]) / 2**20


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--s1-only", action="store_true", help="only the GPT stage")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    official = json.loads((SHAPES / "perf_real_cpu2threads.json").read_text())
    report = {"device": args.device, "threads": args.threads, "torch": torch.__version__}
    report["s1"] = bench_t2s(args.device, args.tokens, args.repeats)
    report["s1"]["official_ms_per_token"] = 1000 * official["s1_real"]["per_step_median_s"]
    report["s1"]["official_prefill_s"] = official["s1_real"]["prefill_s"]
    if args.s1_only:
        print(json.dumps(report, indent=1))
        return
    for version in ("v2", "v2ProPlus"):
        report[f"s2_{version}"] = bench_sovits(version, args.device, args.repeats)
    report["s2_v2"]["official_s_per_audio_s"] = official["s2_v2_real"]["seconds_per_second_of_audio"]
    s1_per_audio_s = report["s1"]["batch_1"]["ours"]["ms_per_token_median"] * 25 / 1000
    report["rtf_end_to_end"] = {
        "ours_v2": s1_per_audio_s + report["s2_v2"]["ours"]["s_per_audio_s"],
        "ours_v2ProPlus": s1_per_audio_s + report["s2_v2ProPlus"]["ours"]["s_per_audio_s"],
        "official_v2": official["s1_real"]["seconds_per_second_of_audio_s1"] + official["s2_v2_real"]["seconds_per_second_of_audio"],
        "note": "GPT + SoVITS time per second of audio (25 tokens/s); text and BERT work excluded",
    }
    if not args.skip_memory and args.device == "cpu":
        report["peak_memory_v2ProPlus_GiB"] = peak_memory_v2proplus(args.threads)
    report["this_process_peak_rss_GiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
