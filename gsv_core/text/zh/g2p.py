"""Chinese normalized text -> phones and phones-per-character (word2ph).

jieba segments and tags each clause, the segments are re-merged for tone sandhi, pypinyin
gives initials and tone-numbered finals, the sandhi and (v2) erhua rules adjust them, and
each syllable becomes two phones (one for punctuation).
"""

from __future__ import annotations

import re
from functools import lru_cache

import jieba
import jieba.posseg
from pypinyin import Style, lazy_pinyin
from pypinyin.contrib.tone_convert import to_finals_tone3, to_initials

from ..lexicon import Lexicon
from .normalize import normalize_sentence, split_sentences
from .pinyin import phones_for
from .tone_sandhi import merge_for_sandhi, modified_tone, word_finals

PUNCTUATION = ("!", "?", "…", ",", ".", "-")
_PUNCTUATION_MAP = {"：": ",", "；": ",", "，": ",", "。": ".", "！": "!", "？": "?", "\n": ".", "·": ",", "、": ",",
                    "...": "…", "$": ".", "/": ",", "—": "-", "~": "…", "～": "…"}
_PUNCTUATION_PATTERN = re.compile("|".join(re.escape(p) for p in _PUNCTUATION_MAP))
_NOT_KEPT = re.compile(r"[^\u4e00-\u9fa5" + "".join(PUNCTUATION) + r"]+")
_REPEATED_PUNCTUATION = re.compile(f"([{''.join(re.escape(p) for p in PUNCTUATION)}])([{''.join(re.escape(p) for p in PUNCTUATION)}])+")
_CLAUSE_SPLIT = re.compile(r"(?<=[{0}])\s*".format("".join(PUNCTUATION)))
_LATIN = re.compile("[a-zA-Z]+")

_MUST_ERHUA = frozenset({"小院儿", "胡同儿", "范儿", "老汉儿", "撒欢儿", "寻老礼儿", "妥妥儿", "媳妇儿"})
_NOT_ERHUA = frozenset(
    "虐儿 为儿 护儿 瞒儿 救儿 替儿 有儿 一儿 我儿 俺儿 妻儿 拐儿 聋儿 乞儿 患儿 幼儿 孤儿 婴儿 婴幼儿 连体儿 脑瘫儿 "
    "流浪儿 体弱儿 混血儿 蜜雪儿 舫儿 祖儿 美儿 应采儿 可儿 侄儿 孙儿 侄孙儿 女儿 男儿 红孩儿 花儿 虫儿 马儿 鸟儿 "
    "猪儿 猫儿 狗儿 少儿".split()
)


def _keep_chinese_and_marks(sentence: str) -> str:
    sentence = sentence.replace("嗯", "恩").replace("呣", "母")
    sentence = _PUNCTUATION_PATTERN.sub(lambda m: _PUNCTUATION_MAP[m.group(0)], sentence)
    return _NOT_KEPT.sub("", sentence)


def normalize_zh(text: str, version: str = "v2") -> str:
    """Spell out numbers and symbols, keep only Chinese characters and the six pause marks.

    Both symbol-table versions normalize the same way; ``version`` is accepted for symmetry.
    """
    spoken = "".join(_keep_chinese_and_marks(normalize_sentence(s)) for s in split_sentences(text))
    return _REPEATED_PUNCTUATION.sub(r"\1", spoken)


@lru_cache(maxsize=8)
def _tagger(lexicon: Lexicon) -> jieba.posseg.POSTokenizer:
    """The part-of-speech segmenter; a private one when the lexicon adds words, so nothing global changes."""
    if not lexicon.zh_words:
        return jieba.posseg.dt
    tokenizer = jieba.Tokenizer()
    for word in lexicon.zh_words:
        tokenizer.add_word(word, freq=None)
    return jieba.posseg.POSTokenizer(tokenizer)


def _erhua(initials: list[str], finals: list[str], word: str, pos: str) -> tuple[list[str], list[str]]:
    """Merge a word-final 儿 into the previous syllable's tone ('er' + that tone)."""
    last = len(finals) - 1
    if 0 <= last < len(word) and word[last] == "儿" and finals[last] == "er1":
        finals[last] = "er2"
    if (word not in _MUST_ERHUA and (word in _NOT_ERHUA or pos in {"a", "j", "nr"})) or len(finals) != len(word):
        return initials, finals
    if last > 0 and word[last] == "儿" and finals[last] in {"er2", "er5"} and word[-2:] not in _NOT_ERHUA:
        finals = finals[:last] + ["er" + finals[last - 1][-1]]
    return initials, finals


@lru_cache(maxsize=65536)
def _word_initials(word: str) -> tuple[str, ...]:
    return tuple(lazy_pinyin(word, neutral_tone_with_five=True, style=Style.INITIALS))


def _initials_finals(word: str, lexicon: Lexicon) -> tuple[list[str], list[str]]:
    if word in lexicon.zh_words:
        syllables = list(lexicon.zh_words[word])
        return [to_initials(s) for s in syllables], [to_finals_tone3(s, neutral_tone_with_five=True) for s in syllables]
    initials, finals = list(_word_initials(word)), list(word_finals(word))
    if lexicon.zh_char_readings and len(initials) == len(word):
        for i, char in enumerate(word):
            forced = lexicon.zh_char_readings.get(char)
            if forced:
                initials[i], finals[i] = to_initials(forced), to_finals_tone3(forced, neutral_tone_with_five=True)
    return initials, finals


def _clause_syllables(clause: str, version: str, lexicon: Lexicon) -> tuple[list[str], list[str]]:
    initials: list[str] = []
    finals: list[str] = []
    for word, pos in merge_for_sandhi(_tagger(lexicon).lcut(clause)):
        if pos == "eng":
            continue
        word_initials, word_finals = _initials_finals(word, lexicon)
        word_finals = modified_tone(word, pos, word_finals)
        if version != "v1":
            word_initials, word_finals = _erhua(word_initials, word_finals, word, pos)
        initials += word_initials
        finals += word_finals
    return initials, finals


def g2p_zh(norm_text: str, version: str, lexicon: Lexicon) -> tuple[list[str], list[int]]:
    """Phones and phones-per-character of normalized Chinese text.

    Raises ValueError for a syllable the phone table does not know.
    """
    phones: list[str] = []
    word2ph: list[int] = []
    table = lexicon.zh_pinyin_to_phones
    for clause in (c for c in _CLAUSE_SPLIT.split(norm_text) if c.strip()):
        initials, finals = _clause_syllables(_LATIN.sub("", clause), version, lexicon)
        for initial, final in zip(initials, finals):
            if initial == final:  # punctuation passes through as one phone
                if initial not in PUNCTUATION:
                    raise ValueError(f"unexpected symbol {initial!r} in Chinese text")
                phones.append(initial)
                word2ph.append(1)
            else:
                phones += phones_for(initial, final, table)
                word2ph.append(2)
    return phones, word2ph
