"""Pinyin syllables to the GPT-SoVITS initial/final phone pair (the 'opencpop-strict' convention)."""

from __future__ import annotations

from collections.abc import Mapping

_TWO_LETTER_INITIALS = ("zh", "ch", "sh")
_ONE_LETTER_INITIALS = frozenset("bpmfdtnlgkhjqxrzcsyw")
_ZERO_INITIAL = {"a": "AA", "e": "EE", "o": "OO"}


def syllable_phones(syllable: str) -> tuple[str, str]:
    """Toneless pinyin (with 'v' for ü) -> (initial, final), e.g. "zhi" -> ("zh", "ir").

    Zero-initial syllables get a placeholder initial (AA/EE/OO); "i" after zh/ch/sh/r is the
    apical "ir", after z/c/s "i0"; "u" after j/q/x/y is "v"; "yan"/"ye" use "En"/"E".
    """
    if not syllable:
        raise ValueError("empty pinyin syllable")
    if syllable[0] in _ZERO_INITIAL:
        return _ZERO_INITIAL[syllable[0]], syllable
    initial = syllable[:2] if syllable.startswith(_TWO_LETTER_INITIALS) else syllable[0]
    if initial not in _TWO_LETTER_INITIALS and initial not in _ONE_LETTER_INITIALS:
        raise ValueError(f"not a pinyin syllable: {syllable!r}")
    final = syllable[len(initial):]
    if not final:
        raise ValueError(f"pinyin syllable {syllable!r} has no final")
    if final == "i" and initial in ("zh", "ch", "sh", "r"):
        final = "ir"
    elif final == "i" and initial in ("z", "c", "s"):
        final = "i0"
    elif initial in ("j", "q", "x", "y") and final.startswith("u"):
        final = "v" + final[1:]
    if initial == "y" and final in ("an", "e"):
        final = {"an": "En", "e": "E"}[final]
    return initial, final


def to_syllable(initial: str, final_without_tone: str) -> str:
    """pypinyin's strict initial + final -> the spelled syllable the phone table is keyed by."""
    if initial:
        return initial + {"uei": "ui", "iou": "iu", "uen": "un"}.get(final_without_tone, final_without_tone)
    spelled = {"ing": "ying", "i": "yi", "in": "yin", "u": "wu"}.get(final_without_tone)
    if spelled:
        return spelled
    head = {"v": "yu", "e": "e", "i": "y", "u": "w"}.get(final_without_tone[0])
    return head + final_without_tone[1:] if head is not None else final_without_tone


def phones_for(initial: str, final_with_tone: str, table: Mapping[str, tuple[str, str]] | None) -> list[str]:
    """The two phones of one syllable: [initial, final+tone]."""
    tone = final_with_tone[-1]
    if tone not in "12345":
        raise ValueError(f"pinyin final without tone: {final_with_tone!r}")
    syllable = to_syllable(initial, final_with_tone[:-1])
    if table is not None:
        if syllable not in table:
            raise ValueError(f"pinyin {syllable!r} is not in the phone table")
        new_initial, new_final = table[syllable]
    else:
        new_initial, new_final = syllable_phones(syllable)
    return [new_initial, new_final + tone]
