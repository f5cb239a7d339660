"""One run of one language -> normalized text, phones, phone ids (the official ``clean_text``).

The language modules do normalization and G2P; this stage adds what upstream adds around
them: the pause marks ``￥`` and ``^`` in Chinese, the comma before very short English,
and the mapping of phones outside the symbol table to ``UNK``. Every language module is
imported on first use, so a Chinese-only user never loads the Japanese or Korean dictionaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

from gsv_core.text.errors import TextError
from gsv_core.text.lexicon import Lexicon
from gsv_core.text.symbols import UNKNOWN, check_text_version, phones_to_ids, symbol_ids

# In Chinese, these characters ask for a longer pause: every comma phone of such a text
# becomes this pause symbol (the character itself is read as a comma).
PAUSE_MARKS = (("￥", "SP2"), ("^", "SP3"))
MIN_ENGLISH_PHONES = 4  # shorter English gets a leading comma phone

# The languages each symbol table has a G2P for (as upstream); any other label is read as
# English silence (upstream replaces the text by a space).
G2P_LANGUAGES = {"v1": ("zh", "ja", "en"), "v2": ("zh", "ja", "en", "ko", "yue")}

if TYPE_CHECKING:
    from gsv_core.text.ja import JapaneseG2P
    from gsv_core.text.ko import KoreanG2P
    from gsv_core.text.zh.g2pw import G2PW


def _japanese() -> JapaneseG2P:
    from gsv_core.text.ja import JapaneseG2P

    return JapaneseG2P()


def _korean() -> KoreanG2P:
    from gsv_core.text.ko import KoreanG2P

    return KoreanG2P()


@dataclass(frozen=True)
class Analyzers:
    """The converters that hold native dictionaries (OpenJTalk, MeCab) or a model (g2pW): one set
    per frontend.

    Building one is cheap: each dictionary loads on the first text of its language. ``g2pw``
    (already loaded, or None for pypinyin's readings) reads Chinese polyphones for v2 text.
    """

    japanese: JapaneseG2P = field(default_factory=_japanese)
    korean: KoreanG2P = field(default_factory=_korean)
    g2pw: G2PW | None = None


@cache
def shared_analyzers() -> Analyzers:
    """The analyzers used when a caller passes none (built on first use)."""
    return Analyzers()


@dataclass(frozen=True)
class CleanedText:
    """Phones of one run. ``word2ph[i]`` phones belong to ``norm_text[i]`` (Chinese only)."""

    norm_text: str
    phones: tuple[str, ...]
    phone_ids: tuple[int, ...]
    word2ph: tuple[int, ...] | None


def _normalize(text: str, language: str, version: str) -> str:
    # Each language module is imported here, on first use.
    if language == "zh":
        from gsv_core.text.zh import normalize_zh

        return normalize_zh(text, version)
    if language == "yue":
        from gsv_core.text.yue import normalize_yue

        return normalize_yue(text)
    if language == "ja":
        from gsv_core.text.ja import normalize_ja

        return normalize_ja(text)
    if language == "ko":
        return text  # upstream has no Korean normalization
    from gsv_core.text.en import normalize_en

    return normalize_en(text)


def _g2p(
    norm_text: str, language: str, version: str, lexicon: Lexicon, analyzers: Analyzers | None = None
) -> tuple[list[str], list[int] | None]:
    """Phones, and phones per character for Chinese and Cantonese (None for the others)."""
    if language == "zh":
        from gsv_core.text.zh import g2p_zh

        phones, word2ph = g2p_zh(norm_text, version, lexicon, analyzers.g2pw if analyzers else None)
        return list(phones), list(word2ph)
    if language == "yue":
        from gsv_core.text.yue import g2p_yue

        return g2p_yue(norm_text)
    if language in ("ja", "ko"):
        analyzers = analyzers or shared_analyzers()
        convert = analyzers.japanese if language == "ja" else analyzers.korean
        return convert(norm_text), None
    from gsv_core.text.en import g2p_en

    return list(g2p_en(norm_text, lexicon)), None


def _with_pause_marks(
    text: str, mark: str, pause: str, version: str, lexicon: Lexicon, analyzers: Analyzers | None
) -> CleanedText:
    """Chinese text containing a pause mark: the mark reads as a comma, every comma phone
    becomes ``pause``. Upstream skips the UNK mapping here and insists on known phones."""
    norm_text = _normalize(text.replace(mark, ","), "zh", version)
    phones, word2ph = _g2p(norm_text, "zh", version, lexicon, analyzers)
    table = symbol_ids(version)
    unknown = sorted({phone for phone in phones if phone not in table})
    if unknown:
        raise TextError(f"phones {unknown} of {text!r} are not in the {version} symbol table")
    phones = [pause if phone == "," else phone for phone in phones]
    return CleanedText(norm_text, tuple(phones), tuple(phones_to_ids(phones, version)), tuple(word2ph))


def clean_text(
    text: str, language: str, version: str, lexicon: Lexicon, analyzers: Analyzers | None = None
) -> CleanedText:
    """Normalize and phonemize one run of ``language`` (zh, en, ja, ko, yue) for table ``version``.

    A language without a G2P for that table upstream (ko and yue in v1, or any other label)
    reads as English silence, as upstream. ``analyzers`` holds the Japanese and Korean
    converters (the shared ones when omitted) and the g2pW reader (none when omitted).
    """
    check_text_version(version)
    if language not in G2P_LANGUAGES[version]:
        language, text = "en", " "
    if language == "zh":
        for mark, pause in PAUSE_MARKS:
            if mark in text:
                return _with_pause_marks(text, mark, pause, version, lexicon, analyzers)
    norm_text = _normalize(text, language, version)
    phones, word2ph = _g2p(norm_text, language, version, lexicon, analyzers)
    if word2ph is not None and (len(phones) != sum(word2ph) or len(norm_text) != len(word2ph)):
        raise TextError(
            f"cannot align phones with {norm_text!r}: {len(norm_text)} chars, "
            f"{len(word2ph)} word2ph entries for {sum(word2ph)} of {len(phones)} phones"
        )
    if language == "en" and len(phones) < MIN_ENGLISH_PHONES:
        phones = [","] + phones
    table = symbol_ids(version)
    phones = [phone if phone in table else UNKNOWN for phone in phones]
    word2ph_out = tuple(word2ph) if word2ph is not None else None
    return CleanedText(norm_text, tuple(phones), tuple(phones_to_ids(phones, version)), word2ph_out)
