"""Text frontend speed: warm sentences/s on the public corpus, cold start, and where time goes.

    python benchmarks/bench_frontend.py [--reference DIR] [--seconds 3] [--g2pw-only] [--g2pw-threads 2] [--no-cold]

Warm throughput runs in this process on one thread after a warm-up pass, per language group
of the public goldens (frontend_public + frontend_public_multilang). Cold start is measured
in fresh subprocesses: import + dictionary load + first sentence, timed from inside (after
interpreter start) and from outside (the whole `python -c`). Goals: >= 200 Chinese
sentences/s warm, cold start < 3 s.

g2pW (Chinese polyphones, v2): the v2 Chinese rows of the corpus and the g2pW goldens, read
with g2pW off, with the reference's tiny model, and with a random network of the released
model's size (bert-base-chinese: hidden 768, 12 layers; built once with ``tests/random_g2pw.py``
into ``benchmarks/results/g2pw-released-shape/``); warm ms per sentence and cold start of each.
Goal: a warm Chinese sentence under 40 ms with the released size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from gsv_core.text.languages import SUPPORTED_LANGUAGE_MODES  # noqa: E402

WARM_GOAL = 200.0  # Chinese sentences per second
COLD_GOAL = 3.0  # seconds
G2PW_GOAL_MS = 40.0  # a warm Chinese sentence with the released g2pW size
RELEASED_SHAPE_DIR = PROJECT_ROOT / "benchmarks" / "results" / "g2pw-released-shape"


def _rate(run: Callable[[], int], seconds: float) -> tuple[float, int]:
    """Calls per second of ``run`` (which reports how many items it did) over ~``seconds``."""
    done, start = 0, time.perf_counter()
    while True:
        done += run()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed, done


CORPUS_FILES = ("frontend_public.jsonl", "frontend_public_multilang.jsonl")
GROUPS = {  # name -> language modes
    "Chinese (all_zh + zh)": ("all_zh", "zh"),
    "English (en)": ("en",),
    "Japanese (all_ja + ja)": ("all_ja", "ja"),
    "Korean (all_ko + ko)": ("all_ko", "ko"),
    "Cantonese (all_yue + yue)": ("all_yue", "yue"),
    "Automatic (auto + auto_yue)": ("auto", "auto_yue"),
}
COLD_SENTENCES = {  # name -> (text, language mode)
    "Chinese": ("今天是2024年3月15日，星期五。", "zh"),
    "English": ("Hello world, this is a test.", "en"),
    "Japanese": ("今日はいい天気ですね。散歩に行きましょう！", "ja"),
    "Korean": ("안녕하세요, 고객센터입니다. 무엇을 도와드릴까요?", "ko"),
    "Cantonese": ("佢哋今日唔嚟開會喇。", "yue"),
    "Automatic": ("今日はいい天気ですね。오늘 날씨가 좋네요. 我们去公园吧。", "auto"),
}


def _corpus(reference: Path) -> list[dict]:
    rows = []
    for name in CORPUS_FILES:
        path = reference / "text" / name
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row for row in rows if row["language"] in SUPPORTED_LANGUAGE_MODES]


def warm_throughput(frontend, rows: Sequence[dict], seconds: float) -> dict[str, float]:
    for row in rows:  # warm-up: lazy loads, jieba dictionary, caches
        frontend.phonemize(row["text"], row["language"], row["version"])
    groups = {name: [r for r in rows if r["language"] in modes] for name, modes in GROUPS.items()}
    rates = {}
    for name, group in groups.items():
        def run(group=group) -> int:
            for row in group:
                frontend.phonemize(row["text"], row["language"], row["version"])
            return len(group)

        rates[name], _ = _rate(run, seconds)
    return rates


def stage_breakdown(frontend, rows: Sequence[dict], repeats: int = 3) -> dict[str, float]:
    """Milliseconds per sentence spent in each stage, timed on the stage inputs alone."""
    from gsv_core.text.cleaner import clean_text
    from gsv_core.text.en import g2p_en, normalize_en
    from gsv_core.text.frontend import language_runs
    from gsv_core.text.segment import segment_languages
    from gsv_core.text.zh import g2p_zh, normalize_zh

    zh_rows = [r for r in rows if r["language"] in ("all_zh", "zh")]
    runs = [(r["version"], language_runs(r["text"], r["language"])) for r in zh_rows]
    zh_runs = [(v, text) for v, rs in runs for lang, text in rs if lang == "zh"]
    en_runs = [text for _, rs in runs for lang, text in rs if lang == "en"] + [r["text"] for r in rows if r["language"] == "en"]
    zh_norms = [(v, normalize_zh(text, v)) for v, text in zh_runs]
    en_norms = [normalize_en(text) for text in en_runs]
    lexicon = frontend.lexicon
    stages: dict[str, Callable[[], object]] = {
        "segmentation (split_lang + rules)": lambda: [
            segment_languages(r["text"], "zh" if r["language"] == "all_zh" else "") for r in zh_rows
        ],
        "normalize_zh": lambda: [normalize_zh(text, v) for v, text in zh_runs],
        "g2p_zh": lambda: [g2p_zh(norm, v, lexicon) for v, norm in zh_norms],
        "normalize_en": lambda: [normalize_en(text) for text in en_runs],
        "g2p_en": lambda: [g2p_en(norm, lexicon) for norm in en_norms],
        "clean_text total": lambda: [clean_text(text, lang, v, lexicon) for v, rs in runs for lang, text in rs],
    }
    sentences = len(zh_rows) + sum(r["language"] == "en" for r in rows)
    result = {}
    for name, stage in stages.items():
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            stage()
            times.append(time.perf_counter() - start)
        result[name] = min(times) / sentences * 1000
    return result


_COLD_SCRIPT = """
import time
start = time.perf_counter()
from gsv_core.text.frontend import TextFrontend
g2pw = None
if {g2pw!r}:
    from gsv_core.text.zh.g2pw import G2PW
    g2pw = G2PW.load({g2pw!r}, official_data={data!r}, threads={threads!r})
frontend = TextFrontend.load(official_data={data!r}, g2pw=g2pw)
imported = time.perf_counter()
frontend.phonemize({text!r}, {language!r}, "v2")
done = time.perf_counter()
print(imported - start, done - imported)
"""


def cold_start(data: Path, text: str, language: str, runs: int = 3, g2pw: Path | None = None,
               threads: int | None = None) -> dict[str, float]:
    inside, load, outside = [], [], []
    for _ in range(runs):
        script = _COLD_SCRIPT.format(data=str(data), text=text, language=language, g2pw=str(g2pw or ""), threads=threads)
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
        outside.append(time.perf_counter() - start)
        import_s, first_s = map(float, out.stdout.split())
        load.append(import_s)
        inside.append(import_s + first_s)
    return {
        "import + load (s)": statistics.median(load),
        "import + load + first sentence (s)": statistics.median(inside),
        "whole process incl. interpreter (s)": statistics.median(outside),
    }


def released_shape_model(reference: Path) -> Path:
    """A g2pW folder with the reference's lists and a random network of the released size (built once)."""
    if (RELEASED_SHAPE_DIR / "g2pW.onnx").is_file():
        return RELEASED_SHAPE_DIR
    import shutil
    import warnings

    sys.path.insert(0, str(PROJECT_ROOT / "tests"))
    from random_g2pw import model_folder, released_shape  # noqa: E402

    shutil.rmtree(RELEASED_SHAPE_DIR, ignore_errors=True)
    print("building a random g2pW network of the released size (once) ...", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model_folder(reference / "g2pw" / "G2PWModel-tiny", RELEASED_SHAPE_DIR, released_shape())


def g2pw_rows(reference: Path) -> list[dict]:
    """The v2 Chinese rows of the public corpus and the g2pW goldens (v1 never uses g2pW)."""
    rows = [r for r in _corpus(reference) if r["language"] in ("all_zh", "zh") and r["version"] == "v2"]
    golden = reference / "g2pw" / "frontend_public_g2pw.jsonl"
    texts = {r["text"] for r in rows}
    for line in golden.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["text"] not in texts:
            rows.append(row)
            texts.add(row["text"])
    return rows


def _pass(run: Callable[[], int]) -> tuple[float, float]:
    """Wall and CPU seconds per item of one call of ``run`` (CPU time counts every thread)."""
    wall, cpu = time.perf_counter(), time.process_time()
    items = run()
    return (time.perf_counter() - wall) / items, (time.process_time() - cpu) / items


def g2pw_costs(reference: Path, seconds: float, threads: int | None, cold: bool = True) -> None:
    """Warm ms per Chinese sentence and cold start with g2pW off, the tiny model and the released size."""
    from gsv_core.text.frontend import TextFrontend
    from gsv_core.text.zh.g2p import g2pw_reading
    from gsv_core.text.zh.g2pw import G2PW

    data = reference / "data"
    rows = g2pw_rows(reference)
    released = released_shape_model(reference)
    int8_dir = RELEASED_SHAPE_DIR.parent / "g2pw-int8"
    models = {"off": (None, None), "tiny reference model": (reference / "g2pw" / "G2PWModel-tiny", None),
              "released size (random)": (released, None), "released size, int8": (released, int8_dir)}
    print(f"\ng2pW: {len(rows)} v2 Chinese sentences (corpus + g2pW goldens), network threads {threads}; "
          "warm: the mean over the timing window and the fastest of 5 passes")
    for label, (model_dir, int8) in models.items():
        g2pw = G2PW.load(model_dir, official_data=data, threads=threads, int8_dir=int8) if model_dir else None
        frontend = TextFrontend.load(official_data=data, g2pw=g2pw)

        def run() -> int:
            for row in rows:
                frontend.phonemize(row["text"], row["language"], "v2")
            return len(rows)

        run()  # warm-up
        rate, _ = _rate(run, seconds)
        wall, cpu = min(_pass(run) for _ in range(5))
        line = (f"  {label:<24} {rate:7.1f} sentences/s  {1000 / rate:6.1f} ms/sentence "
                f"(fastest pass {1000 * wall:6.1f} ms, {1000 * cpu:6.1f} CPU ms)")
        if g2pw is not None:
            readings = [g2pw_reading(frontend.phonemize(r["text"], r["language"], "v2").norm_text, g2pw) for r in rows]
            queries = sum(len(r.queries) for r in readings) / len(rows)
            runs = sum(len(r.runs) for r in readings) / len(rows)
            line += f"  ({queries:.1f} queries, {runs:.1f} network runs per sentence)"
        if label.startswith("released"):
            line += f"  ({1000 * wall / G2PW_GOAL_MS:.2f}x the {G2PW_GOAL_MS:.0f} ms goal)"
        print(line, flush=True)
    if not cold:
        return
    text, language = COLD_SENTENCES["Chinese"]
    for label, (model_dir, int8) in models.items():
        if int8 is not None:
            continue  # the same load as fp32 once its int8 network exists
        cold = cold_start(data, text, language, g2pw=model_dir, threads=threads)
        print(f"  cold start, {label:<24} load {cold['import + load (s)']:5.2f} s, + first sentence "
              f"{cold['import + load + first sentence (s)']:5.2f} s, whole process {cold['whole process incl. interpreter (s)']:5.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=PROJECT_ROOT.parent / "shared" / "gsv-reference")
    parser.add_argument("--seconds", type=float, default=3.0, help="timing window per group")
    parser.add_argument("--g2pw-only", action="store_true", help="measure g2pW on and off only")
    parser.add_argument("--g2pw-threads", type=int, default=2, help="the g2pW network's CPU threads (upstream: 2)")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-start measurements of g2pW")
    args = parser.parse_args()
    data = args.reference / "data"
    if args.g2pw_only:
        g2pw_costs(args.reference, args.seconds, args.g2pw_threads, cold=not args.no_cold)
        return

    from gsv_core.text.frontend import TextFrontend

    rows = _corpus(args.reference)
    frontend = TextFrontend.load(official_data=data)
    print(f"corpus: {len(rows)} rows in modes {', '.join(SUPPORTED_LANGUAGE_MODES)} (v1 and v2), one thread")

    print("\nwarm throughput (after a warm-up pass):")
    for name, rate in warm_throughput(frontend, rows, args.seconds).items():
        goal = f"  ({rate / WARM_GOAL:.2f}x the {WARM_GOAL:.0f}/s goal)" if name.startswith("Chinese") else ""
        print(f"  {name:<28} {rate:8.1f} sentences/s{goal}")

    print("\nwhere the time goes in Chinese and English (ms per sentence, each stage timed alone):")
    for name, ms in stage_breakdown(frontend, rows).items():
        print(f"  {name:<36} {ms:7.2f} ms")

    print("\ncold start (fresh process, median of 3):")
    for label, (text, language) in COLD_SENTENCES.items():
        for name, seconds in cold_start(data, text, language).items():
            goal = f"  ({seconds / COLD_GOAL:.2f}x the {COLD_GOAL:.0f} s budget)" if "first" in name else ""
            print(f"  {label:<9} {name:<38} {seconds:6.2f}{goal}")
    g2pw_costs(args.reference, args.seconds, args.g2pw_threads, cold=not args.no_cold)


if __name__ == "__main__":
    main()
