"""The official polyphone dictionary that overrides g2pW's readings word by word.

Upstream GPT-SoVITS keeps it as two files of its source tree, ``polyphonic.rep`` and
``polyphonic-fix.rep`` (lines ``word: ['pin1', 'yin1']``); an entry of the fix file replaces
one of the same word in the first. They are official data, read from ``--official-data``
beside the other official dictionaries; without them g2pW's readings stand as they are.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from ..lexicon import LexiconError

POLYPHONE_FILES = ("polyphonic.rep", "polyphonic-fix.rep")  # later files win


def polyphone_files(official_data: Path) -> tuple[Path, ...]:
    """The dictionary files of an official data folder, in the order they are layered."""
    return tuple(Path(official_data) / name for name in POLYPHONE_FILES)


@lru_cache(maxsize=4)
def _read(path: Path) -> Mapping[str, tuple[str, ...]]:
    entries: dict[str, tuple[str, ...]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LexiconError(f"official dictionary file not found: {path}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        word, separator, readings = line.partition(":")
        word = word.strip()
        try:
            value = ast.literal_eval(readings.strip()) if separator else None
        except (ValueError, SyntaxError):
            value = None
        if not isinstance(value, list) or not all(isinstance(r, str) and r for r in value) or len(value) != len(word):
            raise LexiconError(f"{path}:{number}: expected \"word: ['pin1', 'yin1']\" with one reading per character")
        entries[word] = tuple(value)
    return MappingProxyType(entries)


def load_polyphones(official_data: Path) -> Mapping[str, tuple[str, ...]]:
    """word -> one pinyin with tone per character, the fix file winning (parsed once per process).

    Raises LexiconError for a missing file or a malformed line.
    """
    return _merged(Path(official_data).resolve())


@lru_cache(maxsize=4)
def _merged(official_data: Path) -> Mapping[str, tuple[str, ...]]:
    merged: dict[str, tuple[str, ...]] = {}
    for path in polyphone_files(official_data):
        merged.update(_read(path))
    return MappingProxyType(merged)


def correct_with_dictionary(word: str, pinyins: Sequence[str], polyphones: Mapping[str, tuple[str, ...]]) -> list[str]:
    """The polyphone dictionary over the converter's readings of one word.

    A word in the dictionary takes its listed readings whole; otherwise each character that
    is itself an entry takes that entry's first reading.
    """
    listed = polyphones.get(word)
    if listed is not None:
        return list(listed)
    corrected = list(pinyins)
    for i, char in enumerate(word[:len(corrected)]):
        entry = polyphones.get(char)
        if entry:
            corrected[i] = entry[0]
    return corrected
