"""Pinyin syllables to the GPT-SoVITS initial/final phone pair (the 'opencpop-strict' convention).

With the official data the lexicon carries upstream's ``opencpop-strict.txt`` table; without
it :func:`derived_pinyin_table` builds the same table by rule from pypinyin's syllable
inventory (equal on all of upstream's 429 entries; see the tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

from ..errors import TextError

_TWO_LETTER_INITIALS = ("zh", "ch", "sh")
_ONE_LETTER_INITIALS = frozenset("bpmfdtnlgkhjqxrzcsyw")
_ZERO_INITIAL = {"a": "AA", "e": "EE", "o": "OO"}
_INITIALS = frozenset(_TWO_LETTER_INITIALS) | _ONE_LETTER_INITIALS | frozenset(_ZERO_INITIAL.values())
# The final phones of the symbol tables (each also comes with a tone digit 1-5).
FINALS = frozenset(
    "E En a ai an ang ao e ei en eng er i i0 ia ian iang iao ie in ing iong ir iu "
    "o ong ou u ua uai uan uang ui un uo v van ve vn".split()
)


def syllable_phones(syllable: str) -> tuple[str, str]:
    """Toneless pinyin (with 'v' for ü) -> (initial, final), e.g. "zhi" -> ("zh", "ir").

    Zero-initial syllables get a placeholder initial (AA/EE/OO); "i" after zh/ch/sh/r is the
    apical "ir", after z/c/s "i0"; "u" after j/q/x/y is "v"; "yan"/"ye" use "En"/"E".
    Raises TextError for a syllable with no such pair (also interjections like "m", "hng").
    """
    if not syllable:
        raise TextError("empty pinyin syllable")
    if syllable[0] in _ZERO_INITIAL:
        initial, final = _ZERO_INITIAL[syllable[0]], syllable
    else:
        initial = syllable[:2] if syllable.startswith(_TWO_LETTER_INITIALS) else syllable[0]
        final = syllable[len(initial):]
        if final == "i" and initial in ("zh", "ch", "sh", "r"):
            final = "ir"
        elif final == "i" and initial in ("z", "c", "s"):
            final = "i0"
        elif initial in ("j", "q", "x", "y") and final.startswith("u"):
            final = "v" + final[1:]
        if initial == "y" and final in ("an", "e"):
            final = {"an": "En", "e": "E"}[final]
    if initial not in _INITIALS or final not in FINALS:
        raise TextError(f"not a pinyin syllable with an initial/final phone pair: {syllable!r}")
    return initial, final


@lru_cache(maxsize=1)
def derived_pinyin_table() -> Mapping[str, tuple[str, str]]:
    """Every toneless syllable pypinyin knows -> its phone pair, keyed like the official table.

    j/q/x/y syllables are also keyed with 'v' for their 'u' ("jv" as well as "ju"), because the
    pinyin rebuilt from pypinyin's strict finals spells them that way.
    """
    from pypinyin.contrib.tone_convert import to_normal
    from pypinyin.pinyin_dict import pinyin_dict

    marked = {p for readings in pinyin_dict.values() for p in readings.split(",")}
    syllables = {to_normal(p).replace("ü", "v") for p in marked}
    table: dict[str, tuple[str, str]] = {}
    for syllable in sorted(syllables):
        try:
            table[syllable] = syllable_phones(syllable)
        except TextError:
            continue  # interjections without a vowel final ("m", "ng", "hm", "ê")
        if syllable[0] in "jqxy" and syllable[1] == "u":
            table[syllable[0] + "v" + syllable[2:]] = table[syllable]
    return MappingProxyType(table)


def to_syllable(initial: str, final_without_tone: str) -> str:
    """pypinyin's strict initial + final -> the spelled syllable the phone table is keyed by."""
    if initial:
        return initial + {"uei": "ui", "iou": "iu", "uen": "un"}.get(final_without_tone, final_without_tone)
    spelled = {"ing": "ying", "i": "yi", "in": "yin", "u": "wu"}.get(final_without_tone)
    if spelled:
        return spelled
    head = {"v": "yu", "e": "e", "i": "y", "u": "w"}.get(final_without_tone[:1])
    return head + final_without_tone[1:] if head is not None else final_without_tone


def phones_for(initial: str, final_with_tone: str, table: Mapping[str, tuple[str, str]] | None) -> list[str]:
    """The two phones of one syllable: [initial, final+tone]. ``table`` None: the derived table."""
    if not final_with_tone or final_with_tone[-1] not in "12345":
        raise TextError(f"pinyin {initial + final_with_tone!r} has no final with a tone digit 1-5")
    tone = final_with_tone[-1]
    syllable = to_syllable(initial, final_with_tone[:-1])
    phone_pair = (derived_pinyin_table() if table is None else table).get(syllable)
    if phone_pair is None:
        raise TextError(f"pinyin {syllable!r} is not in the phone table")
    return [phone_pair[0], phone_pair[1] + tone]
