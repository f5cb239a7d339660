"""When two voice names look the same, and names that are mostly combining marks.

Two names are the same name when their keys (:func:`name_key`) are equal. The key is
Unicode's confusable skeleton (UTS #39) narrowed to what voice names need: NFKC (full-width
``Ａｌｉｃｅ``, mathematical and circled letters, ligatures all become plain letters), the
letters of other scripts that look like Latin letters replaced by those (Cyrillic ``Аlice``,
Greek ``Αlice``), decomposed (NFD, so a precomposed and a combined accent agree), then case
folded, with the invisible joiners and runs of spaces that a name may hold dropped.

Why a table and not a library: the full UTS #39 data comes with ICU (PyICU: about 50 MB of
compiled ICU, or a libicu build), or with packages that keep only a symmetric list of
look-alikes without the prototypes a skeleton needs (confusable-homoglyphs) or that compare
by expanding every combination of look-alikes, exponential in a name's length (confusables).
The table below holds the letters of Cyrillic, Greek, Armenian and Latin's own variants (and
the digits 0 and 1) that UTS #39 (confusables.txt) maps to a Latin letter or digit, in the case
they are written in; NFKC already folds the other common look-alikes. Where UTS #39 maps a
capital I look-alike to ``l``, it maps to ``I`` here: case is folded after the table, so ``Ian``
and ``IAN`` stay one name (``Ian`` and ``lan`` stay two).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

MAX_MARKS_PER_CHARACTER = 3  # Vietnamese, Hebrew points and Indic vowel signs need at most 2-3
_MARKS = frozenset(("Mn", "Me"))  # non-spacing and enclosing marks: those that stack over a letter
_JOINERS = "\u200c\u200d"  # zero-width (non-)joiner: allowed inside names, invisible


# (letters, the Latin letters or digits each looks like), in the case they are written in
_LATIN_LOOKALIKES = (
    ("АВЕЗКМНОРСТУХЅІЈҮԜӀЬ", "ABE3KMHOPCTYXSIJYWlb"),  # Cyrillic capitals
    ("аеорсухѕіјһԁԛԝӏүѵб", "aeopcyxsijhdqwiyv6"),  # Cyrillic small letters
    ("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧϹͿ", "ABEZHIKMNOPTYXCJ"),  # Greek capitals
    ("αγινορσυηϲϳ", "ayivopouncj"),  # Greek small letters
    ("ՕՍՏհոսօզց", "OUShnuoqg"),  # Armenian
    ("ıɑɡǀᴄᴏᴜᴠᴡᴢꜱ", "iaglcouvwzs"),  # Latin: dotless i, IPA letters, small capitals
    ("01", "Ol"),
)


@lru_cache(maxsize=1)
def _lookalike_table() -> dict[int, int]:
    """``_LATIN_LOOKALIKES`` as a ``str.translate`` table."""
    return str.maketrans("".join(s for s, _ in _LATIN_LOOKALIKES), "".join(t for _, t in _LATIN_LOOKALIKES))


def name_key(name: str) -> str:
    """What makes two display names the same name: ``name_key("Аlice") == name_key("ALICE")``
    (the first A is Cyrillic), ``== name_key("Ａｌｉｃｅ")``; ``name_key("Alicé") != name_key("Alice")``."""
    text = unicodedata.normalize("NFKC", name).translate(_lookalike_table())
    text = unicodedata.normalize("NFD", text).casefold()
    text = "".join(char for char in text if char not in _JOINERS)
    return " ".join(text.split())


def marks_problem(name: str) -> str | None:
    """What is wrong with a name's combining marks, or None: more than MAX_MARKS_PER_CHARACTER
    stacked on one character, or more marks than other characters (a "zalgo" flood that covers
    the text around it and can make two different names look alike). ``name`` is NFC, so an
    accent that has a precomposed letter (Vietnamese ``ễ``) is no mark here."""
    marks = others = run = 0
    for char in name:
        if unicodedata.category(char) in _MARKS:
            marks, run = marks + 1, run + 1
            if run > MAX_MARKS_PER_CHARACTER:
                return f"stacks more than {MAX_MARKS_PER_CHARACTER} combining marks on one character"
        else:
            others, run = others + 1, 0
    if marks > others:
        return f"is mostly combining marks ({marks} marks on {others} other characters)"
    return None
