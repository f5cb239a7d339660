"""cut0..cut5 and the pre-segmentation must give exactly the official pieces."""

from __future__ import annotations

import json

import pytest

from gsv_core.text.errors import TextError
from gsv_core.text.split import (
    INVALID_TEXT_MESSAGE,
    MAX_PIECE_CHARS,
    SPLIT_METHODS,
    get_split_method,
    merge_short_text_in_array,
    pre_seg_text,
    replace_consecutive_punctuation,
    split_big_text,
)


def _rows(reference_dir):
    path = reference_dir / "text" / "split_public.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_official_row(reference_dir):
    rows = _rows(reference_dir)
    assert len(rows) == 96 and {row["method"] for row in rows} == set(SPLIT_METHODS)
    mismatches = []
    for row in rows:
        raw = get_split_method(row["method"])(row["text"])
        if raw != row["raw_output"]:
            mismatches.append((row["id"], "raw_output", raw, row["raw_output"]))
        try:
            pieces, error = pre_seg_text(replace_consecutive_punctuation(row["text"]), row["preseg_lang"], row["method"]), None
        except TextError as exc:
            pieces, error = None, f"ValueError: {exc}"
        if pieces != row["preseg_texts"] or error != row["preseg_error"]:
            mismatches.append((row["id"], "preseg", pieces or error, row["preseg_texts"] or row["preseg_error"]))
    assert not mismatches


def test_replace_consecutive_punctuation():
    assert replace_consecutive_punctuation("等等……好吧?!!真的...") == "等等…好吧?真的."
    assert replace_consecutive_punctuation("——，，") == "——，，"  # only ! ? … , . - collapse


def test_long_piece_is_cut_at_clause_marks():
    long_clause = "字" * 300
    pieces = pre_seg_text(f"{long_clause}，{long_clause}。", "zh", "cut0")
    assert pieces == [long_clause + "，", long_clause + "。"]
    assert all(len(piece) <= MAX_PIECE_CHARS for piece in pieces)
    # a run without any mark cannot be cut: upstream emits an empty piece before it
    assert split_big_text("字" * 600) == ["", "字" * 600]
    assert pre_seg_text("字" * 600, "zh", "cut0") == ["", "字" * 600, "。"]


def test_ten_thousand_characters():
    text = "今天天气很好，我们去公园散步吧。" * 625
    assert len(text) == 10_000
    pieces = pre_seg_text(text, "zh", "cut0")
    assert "".join(pieces) == text and max(map(len, pieces)) <= MAX_PIECE_CHARS
    assert pre_seg_text(text, "zh", "cut5")[:2] == ["今天天气很好，", "我们去公园散步吧。"]


def test_merge_short_text_in_array():
    assert merge_short_text_in_array(["好。", "行。", "可以。", "没问题了。", "好。"], 5) == ["好。行。可以。", "没问题了。好。"]
    assert merge_short_text_in_array(["好。"], 5) == ["好。"]


@pytest.mark.parametrize("method", sorted(SPLIT_METHODS))
def test_bad_input_does_what_the_official_does(method):
    assert pre_seg_text("", "zh", method) == []
    assert pre_seg_text("\n\n", "zh", method) == []
    for text in ("。。。，，，！！！", "?!", "🙂🙂"):
        try:
            pieces = pre_seg_text(replace_consecutive_punctuation(text), "zh", method)
        except TextError as exc:
            assert str(exc) == INVALID_TEXT_MESSAGE
        else:
            assert pieces == []  # symbol-only pieces are dropped
    for cut in SPLIT_METHODS.values():
        assert isinstance(cut(""), str)  # upstream cut1/cut2 index an empty string; ours do not crash


def test_unknown_method():
    with pytest.raises(TextError, match="unknown split method 'cut9'"):
        pre_seg_text("你好，世界。", "zh", "cut9")
