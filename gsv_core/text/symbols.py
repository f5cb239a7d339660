"""The phone symbol tables of GPT-SoVITS: symbol strings <-> the integer ids the models embed.

Two tables exist. ``v1`` (322 symbols) is used by v1 checkpoints; ``v2`` (732 symbols) by
v2, v2Pro, v2ProPlus, v3 and v4. Both are built the way upstream builds them (MIT licence):
the union of the Mandarin initials and tonal finals, the Japanese phones, the punctuation
and pause marks and the ARPAbet, sorted; v2 then appends the Japanese pitch marks, the
Korean jamo and the Cantonese (jyutping) phones, in that order, so every v1 id keeps its
meaning in v2. The order is part of the checkpoint format: never re-sort these tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from types import MappingProxyType

from gsv_core.text.errors import TextError

TEXT_VERSIONS = ("v1", "v2")
UNKNOWN = "UNK"
PAD = "_"
PUNCTUATION = ("!", "?", "…", ",", ".", "-")
PAUSES = ("SP", "SP2", "SP3")

# Mandarin: initials (AA/EE/OO stand for the zero initial before a/e/o) and toneless finals;
# every final comes with tones 1-5 (5 = neutral).
_ZH_INITIALS = "AA EE OO b c ch d f g h j k l m n p q r s sh t w x y z zh".split()
_ZH_FINALS = (
    "E En a ai an ang ao e ei en eng er i i0 ia ian iang iao ie in ing iong ir iu "
    "o ong ou u ua uai uan uang ui un uo v van ve vn"
).split()
_ZH_TONES = "12345"

# Japanese phones from pyopenjtalk (the pitch marks "[" and "]" were only added in v2).
_JA_PHONES = "I N U a b by ch cl d dy e f g gy h hy i j k ky m my n ny o p py r ry s sh t ts u v w y z".split()

# ARPAbet as CMUdict writes it: vowels carry stress 0-2; upstream also lists "ER" and "IH" bare.
_ARPA_VOWELS = "AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split()
_ARPA_BARE = "ER IH B CH D DH F G HH JH K L M N NG P R S SH T TH V W Y Z ZH".split()

# v2 additions.
_JA_PITCH_MARKS = ("[", "]")
_KO_SYMBOLS = "ㄱㄴㄷㄹㅁㅂㅅㅇㅈㅊㅋㅌㅍㅎㄲㄸㅃㅆㅉㅏㅓㅗㅜㅡㅣㅐㅔ空停"
# Cantonese: every symbol is "Y" + a jyutping unit. Finals that take tones 1-6, and units
# that also (or only) occur without a tone digit.
_YUE_TONED = (
    "a aa aai aak aam aan aang aap aat aau ai ak am an ang ap at au e ei ek eng eoi eon eot "
    "g i ik im in ing ip it iu k m n o oe oek oeng oi ok on ong ot ou p t u ui uk un ung ut "
    "yu yun yut"
).split()
_YUE_TONES = "123456"
_YUE_BARE = "a aa ai ak au e g k m n o oi ok on ou p t uk b c d f gw h j kw l ng s w z".split()


def _v1_base() -> list[str]:
    finals = [final + tone for tone in _ZH_TONES for final in _ZH_FINALS]
    arpa = [vowel + stress for vowel in _ARPA_VOWELS for stress in "012"] + _ARPA_BARE
    pieces = [PAD, *_ZH_INITIALS, *finals, *_JA_PHONES, *PUNCTUATION, *PAUSES, UNKNOWN, *arpa]
    return sorted(set(pieces))


def _yue_symbols() -> list[str]:
    toned = ["Y" + final + tone for final in _YUE_TONED for tone in _YUE_TONES]
    return sorted(set(toned) | {"Y" + unit for unit in _YUE_BARE})


@lru_cache(maxsize=None)
def symbol_table(version: str) -> tuple[str, ...]:
    """All phone symbols of a text version ("v1" or "v2"), in id order."""
    check_text_version(version)
    table = _v1_base()
    if version == "v2":
        table += [*_JA_PITCH_MARKS, *sorted(_KO_SYMBOLS), *_yue_symbols()]
    return tuple(table)


@lru_cache(maxsize=None)
def symbol_ids(version: str) -> Mapping[str, int]:
    """Read-only map from symbol string to phone id for a text version."""
    return MappingProxyType({symbol: index for index, symbol in enumerate(symbol_table(version))})


def phones_to_ids(phones: Iterable[str], version: str) -> list[int]:
    """Phone ids of symbol strings; raises KeyError for a symbol outside the table.

    Callers map out-of-table phones to ``UNK`` first (as the cleaner does).
    """
    ids = symbol_ids(version)
    return [ids[phone] for phone in phones]


def check_text_version(version: str) -> None:
    """Raise TextError unless ``version`` names a symbol table."""
    if version not in TEXT_VERSIONS:
        raise TextError(f"unknown text version {version!r}; expected one of {', '.join(TEXT_VERSIONS)}")
