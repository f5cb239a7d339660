"""One run of one language -> normalized text, phones, phone ids (the official ``clean_text``).

The language modules do normalization and G2P; this stage adds what upstream adds around
them: the pause marks ``￥`` and ``^`` in Chinese, the comma before very short English,
and the mapping of phones outside the symbol table to ``UNK``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gsv_core.text.errors import TextError
from gsv_core.text.lexicon import Lexicon
from gsv_core.text.symbols import UNKNOWN, check_text_version, phones_to_ids, symbol_ids

# In Chinese, these characters ask for a longer pause: every comma phone of such a text
# becomes this pause symbol (the character itself is read as a comma).
PAUSE_MARKS = (("￥", "SP2"), ("^", "SP3"))
MIN_ENGLISH_PHONES = 4  # shorter English gets a leading comma phone

# The languages each symbol table has a G2P for upstream; any other label is read as
# English silence (upstream replaces the text by a space).
_OFFICIAL_LANGUAGES = {"v1": ("zh", "ja", "en"), "v2": ("zh", "ja", "en", "ko", "yue")}
SUPPORTED_LANGUAGES = ("zh", "en")


@dataclass(frozen=True)
class CleanedText:
    """Phones of one run. ``word2ph[i]`` phones belong to ``norm_text[i]`` (Chinese only)."""

    norm_text: str
    phones: tuple[str, ...]
    phone_ids: tuple[int, ...]
    word2ph: tuple[int, ...] | None


def _normalize(text: str, language: str, version: str) -> str:
    # Imported here so that English-only use never loads the Chinese dictionaries.
    if language == "zh":
        from gsv_core.text.zh import normalize_zh

        return normalize_zh(text, version)
    from gsv_core.text.en import normalize_en

    return normalize_en(text)


def _g2p(norm_text: str, language: str, version: str, lexicon: Lexicon) -> tuple[list[str], list[int] | None]:
    if language == "zh":
        from gsv_core.text.zh import g2p_zh

        phones, word2ph = g2p_zh(norm_text, version, lexicon)
        return list(phones), list(word2ph)
    from gsv_core.text.en import g2p_en

    return list(g2p_en(norm_text, lexicon)), None


def _with_pause_marks(text: str, mark: str, pause: str, version: str, lexicon: Lexicon) -> CleanedText:
    """Chinese text containing a pause mark: the mark reads as a comma, every comma phone
    becomes ``pause``. Upstream skips the UNK mapping here and insists on known phones."""
    norm_text = _normalize(text.replace(mark, ","), "zh", version)
    phones, word2ph = _g2p(norm_text, "zh", version, lexicon)
    table = symbol_ids(version)
    unknown = sorted({phone for phone in phones if phone not in table})
    if unknown:
        raise TextError(f"phones {unknown} of {text!r} are not in the {version} symbol table")
    phones = [pause if phone == "," else phone for phone in phones]
    return CleanedText(norm_text, tuple(phones), tuple(phones_to_ids(phones, version)), tuple(word2ph))


def clean_text(text: str, language: str, version: str, lexicon: Lexicon) -> CleanedText:
    """Normalize and phonemize one run of ``language`` ("zh" or "en") for symbol table ``version``.

    Raises TextError for a language that has a G2P upstream but not here yet (ja, ko, yue).
    """
    check_text_version(version)
    if language not in _OFFICIAL_LANGUAGES[version]:
        language, text = "en", " "
    elif language not in SUPPORTED_LANGUAGES:
        raise TextError(f"language {language!r} is not supported yet; supported: {', '.join(SUPPORTED_LANGUAGES)}")
    if language == "zh":
        for mark, pause in PAUSE_MARKS:
            if mark in text:
                return _with_pause_marks(text, mark, pause, version, lexicon)
    norm_text = _normalize(text, language, version)
    phones, word2ph = _g2p(norm_text, language, version, lexicon)
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
