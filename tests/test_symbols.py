"""The phone tables must equal the official ones id for id: the ids index model embeddings."""

from __future__ import annotations

import json

import pytest

from gsv_core.text.errors import TextError
from gsv_core.text.symbols import UNKNOWN, phones_to_ids, symbol_ids, symbol_table


@pytest.mark.parametrize("version, size", [("v1", 322), ("v2", 732)])
def test_table_equals_official(reference_dir, version, size):
    official = json.loads((reference_dir / f"symbols_{version}.json").read_text(encoding="utf-8"))
    table = symbol_table(version)
    assert len(table) == size
    assert list(table) == official


def test_v2_extends_v1_without_moving_ids():
    v1, v2 = symbol_table("v1"), symbol_table("v2")
    assert v2[: len(v1)] == v1


def test_ids_round_trip_and_unknown_symbol():
    phones = ["n", "i3", "h", "ao3", ",", UNKNOWN, "HH", "AH0"]
    for version in ("v1", "v2"):
        ids = phones_to_ids(phones, version)
        assert [symbol_table(version)[i] for i in ids] == phones
        assert symbol_ids(version)[UNKNOWN] == ids[5]
    with pytest.raises(KeyError):
        phones_to_ids(["Yaa1"], "v1")


def test_unknown_version_is_rejected():
    with pytest.raises(TextError, match="unknown text version 'v3'"):
        symbol_table("v3")
