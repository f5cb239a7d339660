"""Cantonese text -> normalized text, jyutping phones and phones per character (word2ph).

Normalization is the Chinese one (numbers, dates, units spelled out; traditional characters
simplified), then only Chinese characters and the pause marks ``!?…,.-`` are kept. Each
character's jyutping syllable (from ToJyutping, which reads words in context) is cut into
an initial and a toned final, each prefixed with "Y" so they never clash with Mandarin
phones: 你 nei5 -> Yn Yei5. Punctuation stays as it is, one phone per mark.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gsv_core.text.errors import TextError
from gsv_core.text.zh.normalize import normalize_sentence, split_sentences

PUNCTUATION = ("!", "?", "…", ",", ".", "-")
_PUNCTUATION_CLASS = re.escape("".join(PUNCTUATION))
_MARKS = {"：": ",", "；": ",", "，": ",", "。": ".", "！": "!", "？": "?", "\n": ".", "·": ",", "、": ",",
          "...": "…", "$": ".", "“": "'", "”": "'", '"': "'", "‘": "'", "’": "'", "（": "'", "）": "'",
          "(": "'", ")": "'", "《": "'", "》": "'", "【": "'", "】": "'", "[": "'", "]": "'", "—": "-",
          "～": "-", "~": "-", "「": "'", "」": "'"}
_MARK_PATTERN = re.compile("|".join(re.escape(mark) for mark in _MARKS))
_NOT_KEPT = re.compile(r"[^\u4e00-\u9fa5" + "".join(PUNCTUATION) + r"]+")
_PUNCTUATION_ONLY = re.compile(f"^[{_PUNCTUATION_CLASS}]+$")
_JYUTPING = re.compile(r"^([a-z]+[1-6]+[ ]?)+$")
# Syllable onsets, tried in this order (the first that prefixes the syllable wins); a few are
# really finals, so a syllable such as "aa3" reads as the pair "aa" + "a3", as upstream.
ONSETS = (
    "aa aai aak aap aat aau ai au ap at ak a p b e ts t dz d kw k gw g f h l m ng n s y w c z j "
    "ong on ou oi ok o uk ung sp spl spn sil"
).split()


def _keep_cantonese_and_marks(sentence: str) -> str:
    sentence = _MARK_PATTERN.sub(lambda match: _MARKS[match.group(0)], sentence)
    return _NOT_KEPT.sub("", sentence)


def normalize_yue(text: str) -> str:
    """Spell out numbers and symbols, keep only Chinese characters and the six pause marks."""
    return "".join(_keep_cantonese_and_marks(normalize_sentence(s)) for s in split_sentences(text))


def jyutping_units(text: str) -> list[str]:
    """One jyutping syllable per character, or the mark itself for punctuation."""
    import ToJyutping

    units: list[str] = []
    for word, syllable in ToJyutping.get_jyutping_list(text):
        if _PUNCTUATION_ONLY.match(word):
            units.extend(word)
        elif syllable is None or not _JYUTPING.search(syllable):
            raise TextError(f"no Cantonese reading for {word!r}")
        else:
            units.append(syllable)
    return units


def _split_syllable(syllable: str) -> tuple[str, str] | None:
    """(onset, final with tone) of a jyutping syllable; None when no onset fits."""
    tone = syllable[-1] if syllable[-1].isdecimal() else ""
    toneless = syllable[:-1] if tone else syllable
    for onset in ONSETS:
        if toneless.startswith(onset):
            if toneless.startswith("nga"):
                onset = toneless[:2]
                final = toneless[2:] or toneless[-1]
            else:
                final = toneless[len(onset):] or onset[-1]
            return onset, final + (tone if tone not in ("", "0") else "")
    return None


def units_to_phones(units: Sequence[str]) -> tuple[list[str], list[int]]:
    """Phones ("Y" + onset, "Y" + final, or a mark) and phones per unit."""
    phones: list[str] = []
    word2ph: list[int] = []
    for unit in units:
        if unit in PUNCTUATION:
            phones.append(unit)
            word2ph.append(1)
            continue
        parts = _split_syllable(unit)
        if parts is None:
            continue  # upstream skips it too; the alignment check then reports the text
        phones += ["Y" + part for part in parts]
        word2ph.append(2)
    return phones, word2ph


def g2p_yue(norm_text: str) -> tuple[list[str], list[int]]:
    """Phones and phones-per-character of normalized Cantonese text."""
    return units_to_phones(jyutping_units(norm_text))
