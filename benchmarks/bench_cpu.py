"""CPU figures in one run: our previous code, float32 now, and the fast CPU mode (int8).

    python benchmarks/bench_cpu.py [--rounds 2] [--threads 2] [--previous c3706a9]

"Our previous code" is the ``gsv_core`` of commit ``--previous`` (c3706a9), unpacked by
``git archive`` into a temporary folder and measured in this same run; it is not the
official GPT-SoVITS. Each configuration runs in a fresh subprocess (``cpu_worker.py``),
configurations alternating round by round so that load from other processes hits all of
them alike; the best round per figure is reported (the least disturbed; all rounds are
in the JSON), the median for memory. Per stage: text frontend (cold start,
warm sentence), BERT (one ~50-character sentence), GPT ms/token at batch 1, SoVITS
v2ProPlus s per audio s; end to end: a v2ProPlus synthesis of 10 s of audio, the first of
its length and then another of the same length (RTF; oneDNN builds kernels per shape), and
each process's peak resident memory. A last subprocess measures int8 against float32 on
identical inputs. Models are real-size with random weights built from
../shared/gsv-reference/shapes and written in the official formats (the whole v2ProPlus
set: s1 ``.ckpt``, s2 ``.pth``, ERes2NetV2, float16 BERT and HuBERT ``pytorch_model.bin``);
every configuration loads them with ``VoicePipeline.from_paths``, so the peak memory covers
loading as the app does it. Nothing is downloaded. JSON goes to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # make_assets writes the checkpoints with this code's models
SHAPES = ROOT.parent / "shared" / "gsv-reference" / "shapes"
TINY_BERT = ROOT.parent / "shared" / "gsv-reference" / "models" / "chinese-roberta-tiny"
CONFIGS = ("previous", "fp32", "int8")
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def _half(weights: dict) -> dict:
    return {key: value.half() if value.is_floating_point() else value for key, value in weights.items()}


def _official_s1(config: dict, folder: Path) -> Path:
    """A real-size random s1 ``.ckpt`` as the official files are: ``model.`` keys, float16, config dict.

    Random weights never choose EOS: its head row is -1 (as in ``bench_models.py``), so
    decoding runs a fixed number of steps.
    """
    import torch

    from gsv_core.models.t2s import T2SConfig, Text2Semantic, rename_official_key

    manifest = json.loads((SHAPES / "s1_v2.json").read_text())
    ours = Text2Semantic(T2SConfig.from_checkpoint_config(config)).state_dict()
    weights = {key: ours[rename_official_key(key)] for key in manifest["state_dict"]}
    weights["model.ar_predict_layer.weight"][config["model"]["EOS"]] = -1.0
    torch.save({"weight": _half(weights), "config": config, "info": "GPT-random"}, folder / "s1.ckpt")
    return folder / "s1.ckpt"


def _official_s2(config: dict, folder: Path) -> Path:
    """A real-size random v2ProPlus s2 ``.pth``: float16, weight norm as ``weight_g``/``weight_v``,
    codebook statistics, no ``enc_q``, the ``06`` header over the zip magic."""
    import torch

    from gsv_core.models.sovits import SoVITS, SynthesizerConfig
    from gsv_core.models.sovits.loader import rename_official
    from gsv_core.versions import VERSIONS

    info = VERSIONS["v2ProPlus"]
    ours = SoVITS(SynthesizerConfig.from_checkpoint_config(config, info.uses_sv), info).state_dict()
    weights = {}
    for key in json.loads((SHAPES / "s2_v2ProPlus.json").read_text())["state_dict_full"]:
        stem, _, part = key.rpartition(".")
        if "enc_q" in key:
            continue
        if part in ("weight_g", "weight_v"):
            weight = ours[rename_official(stem + ".weight")]
            weights[key] = weight.norm(dim=tuple(range(1, weight.dim())), keepdim=True) if part == "weight_g" else weight
        elif part in ("inited", "cluster_size", "embed_avg"):
            embed = ours[rename_official(stem + ".embed")]
            weights[key] = {"inited": torch.ones(1), "cluster_size": torch.ones(len(embed)), "embed_avg": embed}[part]
        else:
            weights[key] = ours[rename_official(key)]
    buffer = io.BytesIO()
    torch.save({"weight": _half(weights), "config": config, "info": "random"}, buffer)
    (folder / "s2.pth").write_bytes(info.header + buffer.getvalue()[2:])
    return folder / "s2.pth"


def make_assets(folder: Path) -> None:
    """Real-size random checkpoints in the official formats, and a reference clip.

    The GPT (s1 ``.ckpt``), the v2ProPlus SoVITS (s2 ``.pth``) and ERes2NetV2 (a bare float32
    state dict) as the official files are laid out; BERT-large and HuBERT-base as
    ``pytorch_model.bin`` in float16 with their Hub files' key names (BERT under ``bert.``,
    HuBERT's positional conv as ``weight_g``/``weight_v``). The BERT folder takes the tiny
    golden model's tokenizer (184 entries): the real one is not here, and characters it
    lacks become [UNK], one token each, as many as before.
    """
    import soundfile as sf
    import torch
    from transformers import BertConfig, BertModel, HubertConfig, HubertModel

    from gsv_core.features.eres2net import ERes2NetV2, ERes2NetV2Config

    torch.manual_seed(0)
    folder.mkdir(parents=True)
    _official_s1(json.loads((SHAPES / "s1_v2.json").read_text())["config"], folder)
    _official_s2(json.loads((SHAPES / "s2_v2ProPlus.json").read_text())["config"], folder)
    torch.save(ERes2NetV2(ERes2NetV2Config()).state_dict(), folder / "sv.ckpt")
    bert_config = BertConfig(**json.loads((SHAPES / "chinese-roberta-wwm-ext-large.json").read_text())["config_assumed"])
    bert_config.save_pretrained(folder / "bert")
    bert = BertModel(bert_config, add_pooling_layer=False).state_dict()
    torch.save(_half({f"bert.{key}": value for key, value in bert.items()}), folder / "bert" / "pytorch_model.bin")
    for name in TOKENIZER_FILES:
        shutil.copy(TINY_BERT / name, folder / "bert" / name)
    hubert_config = HubertConfig(**json.loads((SHAPES / "chinese-hubert-base.json").read_text())["config_assumed"])
    hubert_config.save_pretrained(folder / "hubert")
    legacy = {key.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1", "weight_v"): value
              for key, value in HubertModel(hubert_config).state_dict().items()}
    torch.save(_half(legacy), folder / "hubert" / "pytorch_model.bin")
    seconds = np.arange(6 * 32000) / 32000
    voice = 0.3 * np.sin(2 * np.pi * 180 * seconds) * (1 + np.sin(2 * np.pi * 3 * seconds)) / 2
    sf.write(folder / "reference.wav", voice.astype(np.float32), 32000)


def unpack_previous(commit: str, folder: Path) -> Path:
    """Our code at ``commit`` (its gsv_core package only), unpacked under ``folder``."""
    folder.mkdir()
    archive = subprocess.run(["git", "archive", commit, "gsv_core"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def run_worker(config: str, code: Path, assets: Path, threads: int) -> dict:
    command = [sys.executable, str(ROOT / "benchmarks" / "cpu_worker.py"), config, "--code", str(code),
               "--assets", str(assets), "--threads", str(threads)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONWARNINGS="ignore")
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"{config} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(runs: list[dict]) -> dict:
    """The best round for times (the one other processes disturbed least), the median for memory."""
    keys = [key for key, value in runs[0].items() if isinstance(value, (int, float))]
    return {key: (statistics.median if key == "peak_rss_GiB" else min)(run[key] for run in runs) for key in keys}


ROWS = (  # (label, key, format)
    ("text frontend, cold start (s)", "frontend_cold_s", "{:.2f}"),
    ("text frontend, warm sentence (ms)", "frontend_warm_ms", "{:.1f}"),
    ("BERT, one sentence (s)", "bert_s", "{:.3f}"),
    ("GPT, batch 1 (ms/token)", "gpt_ms_per_token", "{:.1f}"),
    ("SoVITS v2ProPlus (s per audio s)", "sovits_s_per_audio_s", "{:.3f}"),
    ("whole synthesis, 10 s of audio, first of its length (s)", "e2e_first_s", "{:.2f}"),
    ("whole synthesis, 10 s of audio, a length met before (s)", "e2e_s", "{:.2f}"),
    ("whole synthesis RTF (a length met before)", "e2e_rtf", "{:.2f}"),
    ("peak memory (GiB)", "peak_rss_GiB", "{:.2f}"),
)


def table(results: dict[str, dict]) -> str:
    width = max(len(label) for label, _, _ in ROWS) + 2
    names = [f"{name:>{max(len(name) + 2, 14)}s}" for name in results]
    lines = [" " * width + "".join(names)]
    for label, key, fmt in ROWS:
        lines.append(f"{label:{width}s}" + "".join(f"{fmt.format(r[key]):>{len(name)}s}"
                                                  for name, r in zip(names, results.values())))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--previous", default="c3706a9", help="commit of 'our previous code'")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_cpu_") as temp:
        assets, previous = Path(temp) / "assets", unpack_previous(args.previous, Path(temp) / "previous")
        make_assets(assets)
        code = {"previous": previous, "fp32": ROOT, "int8": ROOT}
        runs: dict[str, list[dict]] = {config: [] for config in CONFIGS}
        for round_index in range(args.rounds):
            for config in CONFIGS:
                runs[config].append(run_worker(config, code[config], assets, args.threads))
                print(f"round {round_index + 1}: {config} done", file=sys.stderr)
        quality = run_worker("quality", ROOT, assets, args.threads)
    results = {("previous (c3706a9)" if name == "previous" else name): summarize(run) for name, run in runs.items()}
    report = {"threads": args.threads, "rounds": args.rounds, "previous_commit": args.previous,
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "cpu_count": os.cpu_count(), "summary": results, "runs": runs, "quality_int8_vs_fp32": quality}
    print(table(results))
    print(json.dumps({"quality_int8_vs_fp32": quality, "load_average_before": load_before,
                      "load_average_after": report["load_average_after"]}, indent=1))
    out = ROOT / "benchmarks" / "results" / f"bench_cpu_{time.strftime('%Y%m%d_%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
