"""Command line for the text frontend.

    python -m gsv_core.text "你好，world" --language zh [--version v2]
    python -m gsv_core.text --jsonl IN.jsonl [--official-data DIR] [--g2pw MODEL_DIR]
    python -m gsv_core.text --split-jsonl IN.jsonl

``--jsonl`` reads lines {"id", "text", "language", "version"} and prints one JSON line per
input: {"id", "norm_text", "phones", "phone_ids", "word2ph"} or {"id", "error"}.
``--split-jsonl`` reads {"id", "text", "language", "method"} and prints
{"id", "preseg_texts"} or {"id", "error"}. Errors read "<ExceptionType>: <message>", as
in the official goldens. ``--official-data`` points at the official dictionary files
(cmudict.rep, namedict.json, ...) for results equal to the official system.
``--g2pw`` reads v2 Chinese polyphones with the g2pW model in that folder (its tokenizer from
its ``tokenizer/`` folder, or ``--g2pw-tokenizer``) and, with ``--official-data``, the
official polyphone dictionary, as the official frontend does; without it pypinyin reads them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

# Heavy modules (the frontend, its dictionaries) are imported only when a command needs them.


def _error_text(exc: Exception) -> str:
    from gsv_core.text.errors import TextError

    # A TextError is the ValueError upstream raises in the same place.
    name = "ValueError" if isinstance(exc, TextError) else type(exc).__name__
    return f"{name}: {exc}"


def _read_rows(path: Path) -> Iterator[tuple[object, dict | None, str | None]]:
    """(id, row, error) per non-blank line; a line that is not a JSON object gives an error."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield None, None, f"line {number} is not JSON: {exc}"
                continue
            if not isinstance(row, dict):
                yield None, None, f"line {number} is not a JSON object"
                continue
            yield row.get("id"), row, None


def _run_jsonl(path: Path, handle: Callable[[dict], dict]) -> int:
    for row_id, row, error in _read_rows(path):
        result: dict = {"id": row_id}
        if row is not None:
            try:
                result.update(handle(row))
            except Exception as exc:  # one bad row must not stop the others
                error = _error_text(exc)
        if error is not None:
            result["error"] = error
        print(json.dumps(result, ensure_ascii=False), flush=False)
    sys.stdout.flush()
    return 0


def _field(row: dict, name: str, default: str | None = None) -> str:
    value = row.get(name, default)
    if not isinstance(value, str):
        raise KeyError(f"the row needs a string field {name!r}")
    return value


def _frontend(args: argparse.Namespace):
    from gsv_core.text.frontend import TextFrontend

    return TextFrontend.load(official_data=args.official_data, g2pw=args.g2pw_reader)


def _load_g2pw(args: argparse.Namespace) -> str | None:
    """Load the g2pW reader the flags ask for into ``args.g2pw_reader``; the error message, if it fails."""
    args.g2pw_reader = None
    if args.g2pw is None:
        return None
    from gsv_core.text.errors import TextError
    from gsv_core.text.zh.g2pw import G2PW

    try:
        args.g2pw_reader = G2PW.load(args.g2pw, args.g2pw_tokenizer, official_data=args.official_data)
    except TextError as exc:
        return f"--g2pw {args.g2pw}: {exc}"
    return None


def _phonemize_rows(path: Path, args: argparse.Namespace) -> int:
    from gsv_core.text.languages import check_language, check_version

    @cache
    def frontend():  # built on the first row that needs one
        return _frontend(args)

    def handle(row: dict) -> dict:
        text, language = _field(row, "text"), _field(row, "language")
        version = _field(row, "version", "v2")
        check_language(language)
        check_version(version)
        return frontend().phonemize(text, language, version).as_dict()

    return _run_jsonl(path, handle)


def _split_rows(path: Path) -> int:
    from gsv_core.text.languages import check_language
    from gsv_core.text.split import pre_seg_text, replace_consecutive_punctuation

    def handle(row: dict) -> dict:
        text, language, method = _field(row, "text"), _field(row, "language"), _field(row, "method")
        check_language(language)
        return {"preseg_texts": pre_seg_text(replace_consecutive_punctuation(text), language, method)}

    return _run_jsonl(path, handle)


def _show(text: str, language: str, version: str, args: argparse.Namespace, as_json: bool) -> int:
    from gsv_core.text.errors import TextError

    try:
        sequence = _frontend(args).phonemize(text, language, version)
    except TextError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps(sequence.as_dict(), ensure_ascii=False))
        return 0
    for part in sequence.parts:
        print(f"[{part.language}] {part.text!r}")
        print(f"  norm_text: {part.norm_text}")
        print(f"  phones:    {' '.join(part.phones)}")
        print(f"  ids:       {' '.join(map(str, part.phone_ids))}")
        if part.word2ph is not None:
            print(f"  word2ph:   {' '.join(map(str, part.word2ph))}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gsv_core.text", description="GPT-SoVITS text frontend")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("text", nargs="?", help="text to phonemize")
    source.add_argument("--jsonl", type=Path, metavar="IN.jsonl", help="phonemize every line of a JSONL file")
    source.add_argument("--split-jsonl", type=Path, metavar="IN.jsonl", help="pre-segment every line of a JSONL file")
    parser.add_argument("--language", default="zh", help="all_zh, zh or en (default: zh)")
    parser.add_argument("--version", default="v2", help="symbol table: v1 or v2 (default: v2)")
    parser.add_argument("--official-data", type=Path, metavar="DIR", help="folder of the official dictionary files")
    parser.add_argument("--g2pw", type=Path, metavar="MODEL_DIR", help="read v2 Chinese polyphones with this g2pW model folder")
    parser.add_argument("--g2pw-tokenizer", type=Path, metavar="DIR",
                        help="folder with the tokenizer.json of the g2pW model (default: MODEL_DIR/tokenizer)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sys.stdout.reconfigure(encoding="utf-8")
    for flag, folder in (("--official-data", args.official_data), ("--g2pw", args.g2pw),
                         ("--g2pw-tokenizer", args.g2pw_tokenizer)):
        if folder is not None and not folder.is_dir():
            print(f"error: {flag} {folder} is not a folder", file=sys.stderr)
            return 2
    for path in (args.jsonl, args.split_jsonl):
        if path is not None and not path.is_file():
            print(f"error: {path} is not a file", file=sys.stderr)
            return 2
    failure = _load_g2pw(args)
    if failure is not None:
        print(f"error: {failure}", file=sys.stderr)
        return 2
    if args.jsonl is not None:
        return _phonemize_rows(args.jsonl, args)
    if args.split_jsonl is not None:
        return _split_rows(args.split_jsonl)
    return _show(args.text, args.language, args.version, args, args.json)


if __name__ == "__main__":
    sys.exit(main())
