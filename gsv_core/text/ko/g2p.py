"""Korean text -> jamo phones, as the official ``korean.g2p``.

Latin letters are spelled out in Hangul, g2pk2 turns the spelling into the pronunciation,
syllables are split into compatibility jamo (compound vowels into two simple ones), one g2pk2
slip is mended, and every character becomes one phone: a space is ``空``, CJK punctuation
becomes ASCII punctuation, anything outside the v2 symbol table becomes the pause ``停``.
The text itself is not normalized (``norm_text`` is the input).
"""

from __future__ import annotations

import re

from gsv_core.text.ko.pronounce import Pronouncer
from gsv_core.text.symbols import symbol_ids

LETTER_NAMES = {
    "a": "에이", "b": "비", "c": "시", "d": "디", "e": "이", "f": "에프", "g": "지", "h": "에이치", "i": "아이",
    "j": "제이", "k": "케이", "l": "엘", "m": "엠", "n": "엔", "o": "오", "p": "피", "q": "큐", "r": "아르",
    "s": "에스", "t": "티", "u": "유", "v": "브이", "w": "더블유", "x": "엑스", "y": "와이", "z": "제트",
}
_LATIN = re.compile("[a-z]", re.IGNORECASE)  # case-insensitive as upstream (also the Kelvin sign, long s)
COMPOUND_VOWELS = {
    "ㅘ": "ㅗㅏ", "ㅙ": "ㅗㅐ", "ㅚ": "ㅗㅣ", "ㅝ": "ㅜㅓ", "ㅞ": "ㅜㅔ", "ㅟ": "ㅜㅣ", "ㅢ": "ㅡㅣ",
    "ㅑ": "ㅣㅏ", "ㅒ": "ㅣㅐ", "ㅕ": "ㅣㅓ", "ㅖ": "ㅣㅔ", "ㅛ": "ㅣㅗ", "ㅠ": "ㅣㅜ",
}
_SPLIT_VOWELS = str.maketrans(COMPOUND_VOWELS)
_FINAL_JAMO = re.compile(r"([\u3131-\u3163])$")
_MARK_SYMBOLS = {"：": ",", "；": ",", "，": ",", "。": ".", "！": "!", "？": "?", "\n": ".", "·": ",", "、": ",",
                 " ": "空"}
PAUSE = "停"  # any character without a phone


def spell_latin(text: str) -> str:
    """Every Latin letter replaced by its Korean name ("a" -> "에이")."""
    return _LATIN.sub(lambda match: LETTER_NAMES[match.group(0).casefold()], text)


def split_jamo(text: str) -> str:
    """Hangul syllables to compatibility jamo, compound vowels split in two (ㅘ -> ㅗㅏ)."""
    from jamo import h2j, j2hcj

    return j2hcj(h2j(text)).translate(_SPLIT_VOWELS)


def mend_rieul_nieun(jamo: str) -> str:
    """Undo g2pk2's ㄹ for ㄴ after a word ending in 을/를: "ㅇㅡㄹ ㄹ" -> "ㅇㅡㄹ ㄴ" (left to right)."""
    mended, index = [], 0
    while index < len(jamo) - 4:
        if jamo[index : index + 3] in ("ㅇㅡㄹ", "ㄹㅡㄹ") and jamo[index + 3 : index + 5] == " ㄹ":
            mended.append(jamo[index : index + 3] + " ㄴ")
            index += 5
        else:
            mended.append(jamo[index])
            index += 1
    return "".join(mended) + jamo[index:]


def _phone(char: str, table) -> str:
    char = _MARK_SYMBOLS.get(char, char)
    return char if char in table else PAUSE


class KoreanG2P:
    """Korean text -> v2 phone symbols through an owned g2pk2 pronouncer (loaded on first use)."""

    def __init__(self, pronouncer: Pronouncer | None = None) -> None:
        self.pronouncer = pronouncer or Pronouncer()

    def __call__(self, text: str) -> list[str]:
        jamo = mend_rieul_nieun(split_jamo(self.pronouncer(spell_latin(text))))
        jamo = _FINAL_JAMO.sub(r"\1.", jamo)  # a trailing jamo gets a full stop after it
        table = symbol_ids("v2")
        return [_phone(char, table) for char in jamo]
