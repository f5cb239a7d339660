"""Hangul spelling -> Hangul as pronounced, with g2pk2's rules and python-mecab-ko, offline.

``g2pk2.G2p`` is not used directly, for two reasons. Importing ``g2pk2`` runs
``nltk.download("cmudict")`` when nltk's cmudict corpus is missing (a network call, or a
wait for its timeout), and ``G2p()`` then loads that corpus, prints, and may even
``pip install`` a MeCab binding. GPT-SoVITS never needs the English dictionary: it spells
every Latin letter out in Hangul before g2pk2 runs, so g2pk2's English step finds no words.

So :class:`Pronouncer` runs g2pk2's steps itself (idioms, part-of-speech annotation with
MeCab, numbers, special rules, the batchim table, linking, syllable composition) on its own
MeCab instance, skipping the English step. The one-time import of the ``g2pk2`` package
happens inside :func:`_importing_without_download`, which replaces ``nltk.download`` by a
refusal for the duration of that import only and then puts the original back: no download
is attempted, nothing waits, and nltk is left as it was found.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

_IMPORT_LOCK = threading.Lock()
_ANNOTATION_TAGS = re.compile("/[PJEB]")


@contextmanager
def _importing_without_download() -> Iterator[None]:
    """While importing g2pk2, let its import-time ``nltk.download`` call do nothing."""
    import nltk

    with _IMPORT_LOCK:
        original = nltk.download

        def refuse(*args: Any, **kwargs: Any) -> bool:
            return False

        nltk.download = refuse
        try:
            yield
        finally:
            nltk.download = original


def _g2pk2_modules() -> tuple[Any, Any, Any, Any]:
    """g2pk2's rule modules (special, regular, utils, numerals), imported without downloads."""
    import sys

    if "g2pk2.g2pk2" not in sys.modules:
        with _importing_without_download():
            import g2pk2  # noqa: F401  (the package import is what calls nltk.download)
    from g2pk2 import numerals, regular, special, utils

    return special, regular, utils, numerals


def _idioms() -> list[tuple[re.Pattern, str]]:
    """g2pk2's idiom rewrites (``idioms.txt``: ``pattern===replacement``, ``#`` comments), in order."""
    rules = []
    for line in files("g2pk2").joinpath("idioms.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if "===" in line:
            pattern, replacement = line.split("===")
            rules.append((re.compile(pattern), replacement))
    return rules


@dataclass(frozen=True)
class _Rules:
    special: tuple[Any, ...]  # functions (text, descriptive, verbose) -> text, in g2pk2's order
    table: tuple[tuple[re.Pattern, str], ...]  # the batchim + onset table: (pattern, replacement)
    linking: tuple[Any, ...]
    idioms: tuple[tuple[re.Pattern, str], ...]
    annotate: Any
    convert_num: Any
    compose: Any


def _load_rules() -> _Rules:
    special, regular, utils, numerals = _g2pk2_modules()
    return _Rules(
        special=(special.jyeo, special.ye, special.consonant_ui, special.josa_ui, special.vowel_ui, special.jamo,
                 special.rieulgiyeok, special.rieulbieub, special.verb_nieun, special.balb, special.palatalize,
                 special.modifying_rieul),
        # compiled once: the table has more patterns than the re module caches, and g2pk2's
        # own re.sub calls recompile them all for every sentence
        table=tuple((re.compile(pattern), replacement) for pattern, replacement, _ in utils.parse_table()),
        linking=(regular.link1, regular.link2, regular.link3, regular.link4),
        idioms=tuple(_idioms()),
        annotate=utils.annotate,
        convert_num=numerals.convert_num,
        compose=utils.compose,
    )


class Pronouncer:
    """g2pk2's pronunciation of Hangul text (``G2p()(text)`` with its defaults), minus English."""

    def __init__(self) -> None:
        self._loaded: tuple[_Rules, Any] | None = None
        self._lock = threading.Lock()
        self._tagging = threading.Lock()  # a MeCab tagger is not safe to share across threads

    def _rules_and_mecab(self) -> tuple[_Rules, Any]:
        with self._lock:
            if self._loaded is None:
                import mecab

                self._loaded = (_load_rules(), mecab.MeCab())
            return self._loaded

    def __call__(self, text: str) -> str:
        from jamo import h2j

        rules, tagger = self._rules_and_mecab()
        for pattern, replacement in rules.idioms:
            text = pattern.sub(replacement, text)
        with self._tagging:
            annotated = rules.annotate(text, tagger)
        text = rules.convert_num(annotated)
        letters = h2j(text)
        for rule in rules.special:
            letters = rule(letters, False, False)
        letters = _ANNOTATION_TAGS.sub("", letters)
        for pattern, replacement in rules.table:
            letters = pattern.sub(replacement, letters)
        for rule in rules.linking:
            letters = rule(letters, False, False)
        return rules.compose(letters)
