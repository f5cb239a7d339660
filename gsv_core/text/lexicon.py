"""Pronunciation dictionaries: the defaults from packages, the official files, and user overrides.

A :class:`Lexicon` is immutable once built and owned by the frontend that uses it, so two
frontends with different user dictionaries never disturb each other.

SKELETON: the English fields are filled in by gsv_core.text.en; see that package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


def _frozen(mapping: Mapping | None = None) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Lexicon:
    """All pronunciation data one frontend uses.

    ``zh_words`` maps a Chinese word to one pinyin syllable with tone digit per character
    (``"重庆" -> ("chong2", "qing4")``); ``zh_char_readings`` forces the reading of a single
    character everywhere (``"行" -> "hang2"``).
    """

    english: Mapping[str, tuple[tuple[str, ...], ...]] = field(default_factory=_frozen)
    names: Mapping[str, tuple[tuple[str, ...], ...]] = field(default_factory=_frozen)
    zh_words: Mapping[str, tuple[str, ...]] = field(default_factory=_frozen)
    zh_char_readings: Mapping[str, str] = field(default_factory=_frozen)
