"""Cutting long input into the pieces that are synthesized one by one.

These functions reproduce the official text splitting of GPT-SoVITS (the ``cut0``..``cut5``
methods and ``TextPreprocessor.pre_seg_text``) exactly, quirks included, because the
pieces decide where the model pauses and what it sees as one sentence. Each ``cut*``
method returns the pieces joined by ``"\\n"``, as upstream does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

from gsv_core.text.errors import TextError

# Marks that end a clause; a piece that does not end with one gets a full stop.
SPLIT_MARKS = frozenset("，。？！,.?!~:：—…")
# Pieces made only of these count as empty in cut0..cut4.
_CUT_PUNCTUATION = frozenset("!?…,.- ")
# cut5 cuts after each of these (a "." between two digits is a decimal point, not a cut).
_CUT5_MARKS = frozenset(",.;?!、，。？！;：…")
# A run of these collapses to its first mark before splitting.
_COLLAPSIBLE = "!?…,.-"
_COLLAPSE_RUNS = re.compile(f"([{re.escape(_COLLAPSIBLE)}])[{re.escape(_COLLAPSIBLE)}]+")
_FIRST_CLAUSE = re.compile("[" + "".join(re.escape(mark) for mark in sorted(SPLIT_MARKS)) + "]")
_SPLIT_BIG = re.compile("([" + "".join(sorted(SPLIT_MARKS)) + "])")
_NON_WORD = re.compile(r"\W+")
_ENGLISH_FULL_STOP = re.compile(r"(?<!\d)\.(?!\d)")

MAX_PIECE_CHARS = 510  # the BERT input limit: longer pieces are cut at clause marks
SHORT_PIECE_CHARS = 5  # shorter pieces are merged into their neighbours
INVALID_TEXT_MESSAGE = "Please enter valid text."


def _only_punctuation(text: str, marks: frozenset[str] = _CUT_PUNCTUATION) -> bool:
    return set(text) <= marks


def _clauses(text: str) -> list[str]:
    """Cut after every clause mark; a missing final mark is added first."""
    text = text.replace("……", "。").replace("——", "，")
    if not text:
        return []
    if text[-1] not in SPLIT_MARKS:
        text += "。"
    clauses, start = [], 0
    for index, char in enumerate(text):
        if char in SPLIT_MARKS:
            clauses.append(text[start : index + 1])
            start = index + 1
    return clauses


def cut0(text: str) -> str:
    """No cut: the text as is, or an empty piece when it is only punctuation."""
    return "\n" if _only_punctuation(text) else text


def cut1(text: str) -> str:
    """Groups of four clauses; the last, short group joins the one before it."""
    text = text.strip("\n")
    clauses = _clauses(text)
    starts: list[int | None] = list(range(0, len(clauses), 4))
    if len(starts) > 1:
        starts[-1] = None
        pieces = ["".join(clauses[begin:end]) for begin, end in zip(starts, starts[1:])]
    else:
        pieces = [text]
    return "\n".join(piece for piece in pieces if not _only_punctuation(piece))


def cut2(text: str) -> str:
    """Pieces of just over 50 characters, cut at clause marks; a short tail joins the last piece."""
    text = text.strip("\n")
    clauses = _clauses(text)
    if len(clauses) < 2:
        return text
    pieces, current = [], ""
    for clause in clauses:
        current += clause
        if len(current) > 50:
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    if len(pieces) > 1 and len(pieces[-1]) < 50:
        pieces[-2:] = [pieces[-2] + pieces[-1]]
    return "\n".join(piece for piece in pieces if not _only_punctuation(piece))


def cut3(text: str) -> str:
    """Cut at every Chinese full stop (the stops are dropped)."""
    pieces = text.strip("\n").strip("。").split("。")
    return "\n".join(piece for piece in pieces if not _only_punctuation(piece))


def cut4(text: str) -> str:
    """Cut at every English full stop that is not a decimal point (the stops are dropped)."""
    pieces = _ENGLISH_FULL_STOP.split(text.strip("\n").strip("."))
    return "\n".join(piece for piece in pieces if not _only_punctuation(piece))


def cut5(text: str) -> str:
    """Cut after every punctuation mark, keeping decimal points inside numbers."""
    text = text.strip("\n")
    pieces, current = [], []
    for index, char in enumerate(text):
        current.append(char)
        if char not in _CUT5_MARKS:
            continue
        decimal_point = char == "." and 0 < index < len(text) - 1 and text[index - 1].isdigit() and text[index + 1].isdigit()
        if not decimal_point:
            pieces.append("".join(current))
            current = []
    if current:
        pieces.append("".join(current))
    return "\n".join(piece for piece in pieces if not _only_punctuation(piece, _CUT5_MARKS))


SPLIT_METHODS: Mapping[str, Callable[[str], str]] = MappingProxyType(
    {"cut0": cut0, "cut1": cut1, "cut2": cut2, "cut3": cut3, "cut4": cut4, "cut5": cut5}
)


def get_split_method(name: str) -> Callable[[str], str]:
    """The cut function registered under ``name`` ("cut0".."cut5")."""
    try:
        return SPLIT_METHODS[name]
    except KeyError:
        raise TextError(f"unknown split method {name!r}; expected one of {', '.join(SPLIT_METHODS)}") from None


def split_big_text(text: str, max_len: int = MAX_PIECE_CHARS) -> list[str]:
    """Cut a piece longer than ``max_len`` at clause marks into pieces of at most ``max_len``.

    A single run without marks longer than ``max_len`` stays whole, as upstream.
    """
    pieces, current = [], ""
    for segment in _SPLIT_BIG.split(text):
        if len(current + segment) > max_len:
            pieces.append(current)
            current = segment
        else:
            current += segment
    if current:
        pieces.append(current)
    return pieces


def replace_consecutive_punctuation(text: str) -> str:
    """Collapse runs of ``! ? … , . -`` to their first mark ("……" -> "…", "?!" -> "?")."""
    return _COLLAPSE_RUNS.sub(r"\1", text)


def merge_short_text_in_array(texts: Sequence[str], threshold: int) -> list[str]:
    """Concatenate neighbours until each piece has ``threshold`` chars; a short tail joins the last."""
    if len(texts) < 2:
        return list(texts)
    merged, current = [], ""
    for text in texts:
        current += text
        if len(current) >= threshold:
            merged.append(current)
            current = ""
    if current:
        if merged:
            merged[-1] += current
        else:
            merged.append(current)
    return merged


def _first_clause(text: str) -> str:
    return _FIRST_CLAUSE.split(text)[0].strip()


def pre_seg_text(text: str, language: str, method: str) -> list[str]:
    """The pieces the official inference feeds one by one into the phonemizer.

    A leading full stop is added when the first clause is shorter than 4 chars, the text
    is cut by ``method``, empty and symbol-only pieces are dropped, pieces shorter than 5
    chars are merged, a full stop ("。", or "." for ``language == "en"``) is appended
    where a piece does not end with a clause mark, and pieces over 510 chars are cut.
    Raises TextError("Please enter valid text.") when the cut leaves only empty pieces.
    """
    full_stop = "." if language == "en" else "。"
    text = text.strip("\n")
    if not text:
        return []
    if text[0] not in SPLIT_MARKS and len(_first_clause(text)) < 4:
        text = full_stop + text
    cut = get_split_method(method)(text)
    while "\n\n" in cut:
        cut = cut.replace("\n\n", "\n")
    pieces = cut.split("\n")
    if all(piece in ("", " ", "\n") for piece in pieces):
        raise TextError(INVALID_TEXT_MESSAGE)
    pieces = merge_short_text_in_array([piece for piece in pieces if piece not in ("", " ")], SHORT_PIECE_CHARS)
    result = []
    for piece in pieces:
        if not piece.strip() or not _NON_WORD.sub("", piece):
            continue
        if piece[-1] not in SPLIT_MARKS:
            piece += full_stop
        result.extend(split_big_text(piece) if len(piece) > MAX_PIECE_CHARS else [piece])
    return result
