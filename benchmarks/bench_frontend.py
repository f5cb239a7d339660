"""Text frontend speed: warm sentences/s on the public corpus, cold start, and where time goes.

    python benchmarks/bench_frontend.py [--reference DIR] [--seconds 3]

Warm throughput runs in this process on one thread after a warm-up pass, per language group
of the public goldens (frontend_public + frontend_public_multilang). Cold start is measured
in fresh subprocesses: import + dictionary load + first sentence, timed from inside (after
interpreter start) and from outside (the whole `python -c`). Goals: >= 200 Chinese
sentences/s warm, cold start < 3 s.
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
frontend = TextFrontend.load(official_data={data!r})
imported = time.perf_counter()
frontend.phonemize({text!r}, {language!r}, "v2")
done = time.perf_counter()
print(imported - start, done - imported)
"""


def cold_start(data: Path, text: str, language: str, runs: int = 3) -> dict[str, float]:
    inside, load, outside = [], [], []
    for _ in range(runs):
        script = _COLD_SCRIPT.format(data=str(data), text=text, language=language)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=PROJECT_ROOT.parent / "shared" / "gsv-reference")
    parser.add_argument("--seconds", type=float, default=3.0, help="timing window per group")
    args = parser.parse_args()
    data = args.reference / "data"

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


if __name__ == "__main__":
    main()
