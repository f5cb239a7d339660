"""Mandarin tone sandhi on pypinyin finals ("a3", "i5", ...), word by word.

Rules: 不 before a fourth tone becomes second; 一 changes with the next tone; two third
tones in a row make the first a second; suffixes, particles and listed words take the
neutral tone. Segments are first re-merged (不/一/reduplications/third-tone runs/儿) so the
rules see whole words. Finals lists are modified in place and returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from importlib.resources import files

import jieba
from pypinyin import Style, lazy_pinyin

_PUNCTUATION = "：，；。？！“”‘’':,;.?!"
Segment = list  # [word, part_of_speech]
WordSplitter = Callable[[str], tuple[str, str]]
FinalsAt = Callable[[str, int], Sequence[str]]  # (word, its character offset) -> finals


@lru_cache(maxsize=None)
def _word_list(name: str) -> frozenset[str]:
    text = files(__package__).joinpath(f"data/{name}.txt").read_text(encoding="utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def _neutral_words() -> frozenset[str]:
    return _word_list("neutral_tone_words")


def _not_neutral_words() -> frozenset[str]:
    return _word_list("not_neutral_tone_words")


@lru_cache(maxsize=65536)
def word_finals(word: str) -> tuple[str, ...]:
    """pypinyin's tone-numbered finals of a word (cached: it is a pure lookup)."""
    return tuple(lazy_pinyin(word, neutral_tone_with_five=True, style=Style.FINALS_TONE3))


def _set_tone(finals: list[str], index: int, tone: str) -> None:
    finals[index] = finals[index][:-1] + tone


def _all_third(finals: list[str]) -> bool:
    return all(final[-1] == "3" for final in finals)


@lru_cache(maxsize=65536)
def split_word(word: str) -> tuple[str, str]:
    """Two parts of a word, around its shortest search-mode sub-word (jieba's default dictionary, cached)."""
    return split_around_shortest(word, jieba.cut_for_search(word))


def split_around_shortest(word: str, sub_words) -> tuple[str, str]:
    """Cut ``word`` before or after the shortest of its search-mode ``sub_words`` (the first if tied)."""
    shortest = sorted(sub_words, key=len)[0]
    if word.find(shortest) == 0:
        return shortest, word[len(shortest):]
    return word[: -len(shortest)], shortest


def _neutral(word: str, pos: str, finals: list[str], split: WordSplitter) -> list[str]:
    not_neutral = _not_neutral_words()
    for j in range(1, len(word)):
        if word[j] == word[j - 1] and pos[0] in "nva" and word not in not_neutral:
            _set_tone(finals, j, "5")
    ge = word.find("个")
    last = word[-1] if word else ""
    if last and last in "吧呢哈啊呐噻嘛吖嗨呐哦哒额滴哩哟喽啰耶喔诶":
        _set_tone(finals, -1, "5")
    elif last and last in "的地得":
        _set_tone(finals, -1, "5")
    elif len(word) == 1 and word in "了着过" and pos in {"ul", "uz", "ug"}:
        _set_tone(finals, -1, "5")
    elif len(word) > 1 and last in "们子" and pos in {"r", "n"} and word not in not_neutral:
        _set_tone(finals, -1, "5")
    elif len(word) > 1 and last in "上下里" and pos in {"s", "l", "f"}:
        _set_tone(finals, -1, "5")
    elif len(word) > 1 and last in "来去" and word[-2] in "上下进出回过起开":
        _set_tone(finals, -1, "5")
    elif (ge >= 1 and (word[ge - 1].isnumeric() or word[ge - 1] in "几有两半多各整每做是")) or word == "个":
        _set_tone(finals, ge, "5")
    elif word in _neutral_words() or word[-2:] in _neutral_words():
        _set_tone(finals, -1, "5")
    parts = split(word)
    halves = [finals[: len(parts[0])], finals[len(parts[0]):]]
    for half, part in zip(halves, parts):
        if part in _neutral_words() or part[-2:] in _neutral_words():
            _set_tone(half, -1, "5")
    return halves[0] + halves[1]


def _bu(word: str, finals: list[str]) -> list[str]:
    if len(word) == 3 and word[1] == "不":
        _set_tone(finals, 1, "5")
        return finals
    for i, char in enumerate(word[:-1]):
        if char == "不" and finals[i + 1][-1] == "4":
            _set_tone(finals, i, "2")
    return finals


def _yi(word: str, finals: list[str]) -> list[str]:
    if "一" in word and all(c.isnumeric() for c in word if c != "一"):
        return finals
    if len(word) == 3 and word[1] == "一" and word[0] == word[-1]:
        _set_tone(finals, 1, "5")
    elif word.startswith("第一"):
        _set_tone(finals, 1, "1")
    else:
        for i, char in enumerate(word[:-1]):
            if char != "一":
                continue
            if finals[i + 1][-1] == "4":
                _set_tone(finals, i, "2")
            elif word[i + 1] not in _PUNCTUATION:
                _set_tone(finals, i, "4")
    return finals


def _third(word: str, finals: list[str], split: WordSplitter) -> list[str]:
    if len(word) == 2 and _all_third(finals):
        _set_tone(finals, 0, "2")
    elif len(word) == 3:
        first = split(word)[0]
        if _all_third(finals):
            if len(first) == 2:
                _set_tone(finals, 0, "2")
                _set_tone(finals, 1, "2")
            elif len(first) == 1:
                _set_tone(finals, 1, "2")
        else:
            halves = [finals[: len(first)], finals[len(first):]]
            for i, half in enumerate(halves):
                if _all_third(half) and len(half) == 2:
                    _set_tone(half, 0, "2")
                elif i == 1 and not _all_third(half) and half[0][-1] == "3" and halves[0][-1][-1] == "3":
                    _set_tone(halves[0], -1, "2")
            finals = halves[0] + halves[1]
    elif len(word) == 4:
        halves = [finals[:2], finals[2:]]
        for half in halves:
            if _all_third(half):
                _set_tone(half, 0, "2")
        finals = halves[0] + halves[1]
    return finals


def modified_tone(word: str, pos: str, finals: list[str], split: WordSplitter = split_word) -> list[str]:
    """All sandhi rules for one segmented word; ``split`` cuts a word in two as the segmenter would."""
    for rule in (_bu, _yi):
        finals = rule(word, finals)
    finals = _neutral(word, pos, finals, split)
    return _third(word, finals, split)


# -- re-merging jieba's segments before the rules --------------------------------------


def _merge_bu(segments: list[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    previous = ""
    for word, pos in segments:
        if previous == "不":
            word = previous + word
        if word != "不":
            merged.append([word, pos])
        previous = word
    if previous == "不":
        merged.append([previous, "d"])
    return merged


def _merge_yi(segments: list[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    i = 0
    while i < len(segments):
        word, pos = segments[i]
        if 0 < i < len(segments) - 1 and word == "一":
            last = merged[-1] if merged else segments[i - 1]
            following = segments[i + 1]
            if last[0] == following[0] and last[1] == "v" and following[1] == "v":
                merged[-1] = [last[0] + "一" + following[0], last[1]]
                i += 2
                continue
        merged.append([word, pos])
        i += 1
    result: list[Segment] = []
    for word, pos in merged:
        if result and result[-1][0] == "一":
            result[-1][0] += word
        else:
            result.append([word, pos])
    return result


def _merge_third_tones(segments: list[Segment], whole_words: bool, finals_at: FinalsAt) -> list[Segment]:
    offsets = [0]
    for word, _ in segments:
        offsets.append(offsets[-1] + len(word))
    finals = [finals_at(word, offset) for (word, _), offset in zip(segments, offsets)]
    merged: list[Segment] = []
    merged_last = [False] * len(segments)
    for i, (word, pos) in enumerate(segments):
        if i > 0 and not merged_last[i - 1]:
            if whole_words:
                both_third = _all_third(finals[i - 1]) and _all_third(finals[i])
            else:
                both_third = finals[i - 1][-1][-1] == "3" and finals[i][0][-1] == "3"
            if both_third:
                previous = segments[i - 1][0]
                reduplicated = len(previous) == 2 and previous[0] == previous[1]
                if not reduplicated and len(previous) + len(word) <= 3:
                    merged[-1][0] += word
                    merged_last[i] = True
                    continue
        merged.append([word, pos])
    return merged


def _merge_er(segments: list[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    for i, (word, pos) in enumerate(segments):
        if i > 0 and word == "儿" and segments[i - 1][0] != "#":
            merged[-1][0] += word
        else:
            merged.append([word, pos])
    return merged


def _merge_reduplication(segments: list[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    for word, pos in segments:
        if merged and word == merged[-1][0]:
            merged[-1][0] += word
        else:
            merged.append([word, pos])
    return merged


def _guarded(step, segments: list[Segment]) -> list[Segment]:
    """Upstream skips a merge step that fails (e.g. an empty pinyin list), keeping the input."""
    try:
        return step(segments)
    except (IndexError, ValueError):
        return segments


def _default_finals(word: str, offset: int) -> Sequence[str]:
    return word_finals(word)


def merge_for_sandhi(segments: list[tuple[str, str]], finals_at: FinalsAt = _default_finals) -> list[Segment]:
    """jieba (word, pos) pairs -> the re-merged [word, pos] segments the rules expect.

    Every step only joins neighbours, so the words still spell the clause in order and a
    word's character offset is the summed length of the words before it; ``finals_at``
    gets that offset so forced readings can take part in the third-tone merges.
    """
    merged = _merge_bu([list(s) for s in segments])
    merged = _guarded(_merge_yi, merged)
    merged = _merge_reduplication(merged)
    merged = _guarded(lambda s: _merge_third_tones(s, True, finals_at), merged)
    merged = _guarded(lambda s: _merge_third_tones(s, False, finals_at), merged)
    return _merge_er(merged)
