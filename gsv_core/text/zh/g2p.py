"""Chinese normalized text -> phones and phones-per-character (word2ph).

jieba segments and tags each clause, the segments are re-merged for tone sandhi, pypinyin
gives initials and tone-numbered finals (a lexicon can force some of them), the sandhi and
(v2) erhua rules adjust them, and each syllable becomes two phones (one for punctuation).
With a g2pW reader (v2 only, as upstream) the readings come from it instead: the model for
polyphonic characters, then the polyphone dictionary word by word (:mod:`.g2pw`,
:mod:`.g2pw_polyphones`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import jieba
import jieba.posseg
from pypinyin import Style, lazy_pinyin
from pypinyin.contrib.tone_convert import to_finals_tone3, to_initials

from ..errors import TextError
from ..lexicon import Lexicon
from .g2pw_polyphones import correct_with_dictionary
from .normalize import normalize_sentence, split_sentences
from .pinyin import phones_for
from .tone_sandhi import merge_for_sandhi, modified_tone, split_around_shortest, split_word, word_finals

if TYPE_CHECKING:
    from .g2pw import G2PW, G2PWReading

PUNCTUATION = ("!", "?", "…", ",", ".", "-")
VERSIONS = ("v1", "v2")
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

Reading = tuple[str, str]  # pypinyin's strict initial and tone-numbered final: ("zh", "ong1")


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


@lru_cache(maxsize=4)
def _segmenter(user_words: frozenset[str]) -> tuple[jieba.posseg.POSTokenizer, Callable[[str], tuple[str, str]]]:
    """The part-of-speech segmenter and the matching sandhi word splitter for a set of user words.

    Without user words: jieba's default instances, only read. With them: a private
    tokenizer (about 2 s to build, shared by every lexicon with the same words), so nothing
    global changes and other frontends keep the default segmentation.
    """
    if not user_words:
        return jieba.posseg.dt, split_word
    tokenizer = jieba.Tokenizer()
    for word in sorted(user_words):
        tokenizer.add_word(word)
    splitter = lru_cache(maxsize=65536)(lambda word: split_around_shortest(word, tokenizer.cut_for_search(word)))
    return jieba.posseg.POSTokenizer(tokenizer), splitter


@lru_cache(maxsize=65536)
def _word_initials(word: str) -> tuple[str, ...]:
    return tuple(lazy_pinyin(word, neutral_tone_with_five=True, style=Style.INITIALS))


@lru_cache(maxsize=4096)
def _split_pinyin(pinyin: str) -> Reading:
    """A converter's pinyin ("hang2") -> (initial, tone-numbered final); punctuation stays itself."""
    if not pinyin[:1].isalpha():
        return pinyin, pinyin
    return to_initials(pinyin), to_finals_tone3(pinyin, neutral_tone_with_five=True)


def _reading(syllable: str, table: Mapping[str, tuple[str, str]] | None, where: str) -> Reading:
    """A user's pinyin syllable ("chong2", "lv4", "ma") as pypinyin would give it, checked against the phone table."""
    reading = (to_initials(syllable), to_finals_tone3(syllable, neutral_tone_with_five=True))
    try:
        phones_for(*reading, table)
    except TextError:
        raise TextError(f"{where}: {syllable!r} is not a Mandarin syllable the phone table knows") from None
    return reading


def _erhua(initials: list[str], finals: list[str], word: str, pos: str) -> tuple[list[str], list[str]]:
    """A word-final 儿 takes the tone of the syllable before it (v2 only)."""
    last = len(finals) - 1
    if 0 <= last < len(word) and word[last] == "儿" and finals[last] == "er1":
        finals[last] = "er2"
    if (word not in _MUST_ERHUA and (word in _NOT_ERHUA or pos in {"a", "j", "nr"})) or len(finals) != len(word):
        return initials, finals
    if last > 0 and word[last] == "儿" and finals[last] in {"er2", "er5"} and word[-2:] not in _NOT_ERHUA:
        finals = finals[:last] + ["er" + finals[last - 1][-1]]
    return initials, finals


class ChineseG2P:
    """Phones of normalized Chinese for one lexicon; build once, call for every text.

    ``lexicon.zh_words`` (word -> one syllable per character) and ``lexicon.zh_char_readings``
    (character -> syllable) replace pypinyin's readings wherever they occur, before the tone
    sandhi and erhua rules run, as upstream's own pronunciation dictionary does. User words
    are also added to a private jieba segmenter so that they stay whole words.
    """

    def __init__(self, lexicon: Lexicon) -> None:
        self._table = lexicon.zh_pinyin_to_phones
        self._words: dict[str, tuple[Reading, ...]] = {}
        for word, syllables in lexicon.zh_words.items():
            if len(syllables) != len(word):
                raise TextError(f"user word {word!r}: {len(syllables)} pinyin syllables for {len(word)} characters")
            self._words[word] = tuple(_reading(s, self._table, f"user word {word!r}") for s in syllables)
        self._chars = {
            char: _reading(syllable, self._table, f"reading of {char!r}")
            for char, syllable in lexicon.zh_char_readings.items()
        }
        self._longest_word = max(map(len, self._words), default=0)
        self._tagger, self._split = _segmenter(frozenset(self._words))

    def __call__(self, norm_text: str, version: str, g2pw: G2PW | None = None) -> tuple[list[str], list[int]]:
        """``normalize_zh`` output -> (phones, word2ph); ``word2ph[i]`` phones belong to character i.

        ``g2pw``: read the characters with it (v2 only; v1 never uses it, as upstream).
        """
        if version not in VERSIONS:
            raise TextError(f"unknown Chinese text version {version!r}; expected one of {', '.join(VERSIONS)}")
        phones: list[str] = []
        word2ph: list[int] = []
        clauses = _clauses(norm_text)
        readers = _model_readings(clauses, g2pw if version == "v2" else None)
        for clause, pinyins in zip(clauses, readers):
            initials, finals = self._clause_syllables(clause, version, pinyins, g2pw)
            for initial, final in zip(initials, finals):
                if initial == final:  # punctuation passes through as one phone
                    if initial not in PUNCTUATION:
                        raise TextError(f"unexpected symbol {initial!r} in normalized Chinese text {norm_text!r}")
                    phones.append(initial)
                    word2ph.append(1)
                else:
                    phones += phones_for(initial, final, self._table)
                    word2ph.append(2)
        return phones, word2ph

    def _forced(self, clause: str) -> dict[int, Reading]:
        """Character offset -> forced reading: user words (longest first, left to right), then single characters."""
        forced: dict[int, Reading] = {}
        i = 0
        while i < len(clause):
            for length in range(min(self._longest_word, len(clause) - i), 0, -1):
                readings = self._words.get(clause[i:i + length])
                if readings:
                    forced.update(enumerate(readings, i))
                    i += length
                    break
            else:
                if clause[i] in self._chars:
                    forced[i] = self._chars[clause[i]]
                i += 1
        return forced

    def _readings(self, word: str, offset: int, forced: Mapping[int, Reading], pinyins: Sequence[str] | None = None,
                  g2pw: G2PW | None = None) -> tuple[list[str], list[str]]:
        """The word's initials and finals: from ``pinyins`` (the clause's g2pW readings, corrected by the
        polyphone dictionary) or pypinyin, then the user's forced readings over them."""
        if pinyins is None or g2pw is None:
            initials, finals = list(_word_initials(word)), list(word_finals(word))
        else:
            corrected = correct_with_dictionary(word, pinyins[offset:offset + len(word)], g2pw.polyphones)
            initials, finals = (list(parts) for parts in zip(*map(_split_pinyin, corrected))) if corrected else ([], [])
        if forced and len(initials) == len(word):  # pypinyin gives one item per character here
            for i in range(len(word)):
                if offset + i in forced:
                    initials[i], finals[i] = forced[offset + i]
        return initials, finals

    def _clause_syllables(self, clause: str, version: str, pinyins: Sequence[str] | None = None,
                          g2pw: G2PW | None = None) -> tuple[list[str], list[str]]:
        forced = self._forced(clause) if self._words or self._chars else {}

        def finals_at(word: str, offset: int) -> Sequence[str]:
            return self._readings(word, offset, forced)[1] if forced else word_finals(word)

        initials: list[str] = []
        finals: list[str] = []
        offset = 0
        for word, pos in merge_for_sandhi(self._tagger.lcut(clause), finals_at):
            word_initials, word_finals_ = self._readings(word, offset, forced, pinyins, g2pw)
            offset += len(word)
            if pos == "eng":
                continue
            word_finals_ = modified_tone(word, pos, word_finals_, self._split)
            if version == "v2":
                word_initials, word_finals_ = _erhua(word_initials, word_finals_, word, pos)
            initials += word_initials
            finals += word_finals_
        return initials, finals


def _clauses(norm_text: str) -> list[str]:
    """The normalized text cut after each pause mark, Latin letters removed (some may be empty)."""
    return [_LATIN.sub("", clause) for clause in _CLAUSE_SPLIT.split(norm_text) if clause.strip()]


def g2pw_reading(norm_text: str, g2pw: G2PW) -> G2PWReading:
    """What g2pW answers for normalized Chinese text: the converter call :func:`g2p_zh` makes."""
    return g2pw.read([clause for clause in _clauses(norm_text) if clause])


def _model_readings(clauses: Sequence[str], g2pw: G2PW | None) -> list[Sequence[str] | None]:
    """Per clause, g2pW's pinyin per character (one converter call for the non-empty ones), or None."""
    if g2pw is None:
        return [None] * len(clauses)
    spoken = [clause for clause in clauses if clause]
    readings = iter(g2pw.read(spoken).pinyins if spoken else ())
    return [next(readings) if clause else None for clause in clauses]


@lru_cache(maxsize=8)
def chinese_g2p(lexicon: Lexicon) -> ChineseG2P:
    """The G2P of a lexicon (lexicons hash by identity), built on first use."""
    return ChineseG2P(lexicon)


def g2p_zh(norm_text: str, version: str, lexicon: Lexicon, g2pw: G2PW | None = None) -> tuple[list[str], list[int]]:
    """Phones and phones-per-character of normalized Chinese text (``version`` "v1" or "v2").

    ``g2pw``: the g2pW reader for polyphonic characters (used with v2 only).
    Raises TextError for a syllable or symbol the phone table does not know.
    """
    return chinese_g2p(lexicon)(norm_text, version, g2pw)
