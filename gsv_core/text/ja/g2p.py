"""Japanese normalized text -> phones with pitch-accent marks (the official ``japanese.g2p``).

The text is cut at every character that is not Japanese (kana, kanji, ASCII letters and
digits, most full-width letters and digits); each Japanese stretch is analysed by OpenJTalk
and read as phones plus prosody marks, and the cutting characters are kept between them as
symbols (CJK punctuation mapped to ASCII, spaces dropped). Prosody marks, after ESPnet's
``pyopenjtalk_g2p_prosody`` (Kurihara et al. 2021): ``[`` pitch rises, ``]`` pitch falls,
``#`` accent-phrase border (not in the symbol tables: it ends up as UNK, as upstream),
``_`` a pause inside the stretch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gsv_core.text.ja.openjtalk import OpenJTalkAnalyzer

# What counts as Japanese, exactly as upstream (note: full-width 0 and a few others are not).
_JAPANESE_CLASS = r"A-Za-z\d\u3005\u3040-\u30ff\u4e00-\u9fff\uff11-\uff19\uff21-\uff3a\uff41-\uff5a\uff66-\uff9d"
_JAPANESE_CHAR = re.compile(f"[{_JAPANESE_CLASS}]")
_NON_JAPANESE_CHAR = re.compile(f"[^{_JAPANESE_CLASS}]")
_SPELLED_SYMBOLS = (("％", "パーセント"),)
_PUNCTUATION = "!?…,.-"
_REPEATED_PUNCTUATION = re.compile(f"([{re.escape(_PUNCTUATION)}])([{re.escape(_PUNCTUATION)}])+")
_MARK_SYMBOLS = {"：": ",", "；": ",", "，": ",", "。": ".", "！": "!", "？": "?", "\n": ".", "·": ",", "、": ",",
                 "...": "…"}

# HTS full-context label fields (see the HTS-style label format of OpenJTalk).
_PHONE = re.compile(r"\-(.*?)\+")
_ACCENT_DISTANCE = re.compile(r"/A:([0-9\-]+)\+")  # a1: mora position relative to the accent nucleus
_MORA_FORWARD = re.compile(r"\+(\d+)\+")  # a2: mora position in the accent phrase, from the start
_MORA_BACKWARD = re.compile(r"\+(\d+)/")  # a3: mora position in the accent phrase, from the end
_PHRASE_MORAE = re.compile(r"/F:(\d+)_")  # f1: morae in the accent phrase
_QUESTION = re.compile(r"!(\d+)_")  # e3: 1 when the utterance is a question
_MISSING = -50
_UNVOICED_VOWELS = "AEIOU"  # substring tests, as upstream: read as voiced vowels
_BORDER_PHONES = "aeiouAEIOUNcl"  # a phrase border is marked after these (substring test, as upstream)


def normalize_ja(text: str) -> str:
    """Runs of the pause marks ``!?…,.-`` collapse to their first mark; nothing else changes."""
    return _REPEATED_PUNCTUATION.sub(r"\1", text)


def _feature(pattern: re.Pattern, label: str) -> int:
    match = pattern.search(label)
    return _MISSING if match is None else int(match.group(1))


def _prosody_mark(label: str, next_label: str, phone: str) -> str | None:
    """The mark to put after ``phone``: a phrase border, a pitch fall or a pitch rise."""
    a1 = _feature(_ACCENT_DISTANCE, label)
    a2 = _feature(_MORA_FORWARD, label)
    a3 = _feature(_MORA_BACKWARD, label)
    f1 = _feature(_PHRASE_MORAE, label)
    a2_next = _feature(_MORA_FORWARD, next_label)
    if a3 == 1 and a2_next == 1 and phone in _BORDER_PHONES:
        return "#"
    if a1 == 0 and a2_next == a2 + 1 and a2 != f1:
        return "]"
    if a2 == 1 and a2_next == 2:
        return "["
    return None


def prosody_phones(labels: Sequence[str]) -> list[str]:
    """Phones and prosody marks from full-context labels, with ``^`` and ``$``/``?`` at the ends."""
    phones: list[str] = []
    for index, label in enumerate(labels):
        phone = _PHONE.search(label).group(1)
        if phone in _UNVOICED_VOWELS:
            phone = phone.lower()
        if phone == "sil":
            if index == 0:
                phones.append("^")
            elif index == len(labels) - 1:
                question = _feature(_QUESTION, label)
                if question in (0, 1):
                    phones.append("?" if question else "$")
            continue
        if phone == "pau":
            phones.append("_")
            continue
        phones.append(phone)
        mark = _prosody_mark(label, labels[index + 1], phone)
        if mark:
            phones.append(mark)
    return phones


class JapaneseG2P:
    """Japanese text -> phones through an owned OpenJTalk analyser (dictionary loaded on first use)."""

    def __init__(self, analyzer: OpenJTalkAnalyzer | None = None) -> None:
        self.analyzer = analyzer or OpenJTalkAnalyzer()

    def _stretch_phones(self, stretch: str) -> list[str]:
        return prosody_phones(self.analyzer.labels(stretch))[1:-1]  # without the end markers

    def __call__(self, norm_text: str) -> list[str]:
        """Phone symbols of normalized Japanese text (symbols outside the tables included)."""
        text = norm_text
        for symbol, spelled in _SPELLED_SYMBOLS:
            text = text.replace(symbol, spelled)
        text = text.lower()
        stretches = _NON_JAPANESE_CHAR.split(text)
        marks = _NON_JAPANESE_CHAR.findall(text)
        phones: list[str] = []
        for index, stretch in enumerate(stretches):
            if _JAPANESE_CHAR.match(stretch):
                phones += self._stretch_phones(stretch)
            if index < len(marks) and marks[index] != " ":
                phones.append(marks[index])
        return [_MARK_SYMBOLS.get(phone, phone) for phone in phones]
