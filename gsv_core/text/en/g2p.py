"""English grapheme-to-phoneme, as upstream GPT-SoVITS ``english.g2p`` does it.

Per token of nltk's TweetTokenizer (case kept), in this order:

1. an entry from a user dictionary (our addition: the user's word wins over every rule below);
2. no letter: the token itself (punctuation);
3. one letter: its dictionary reading, except a capital "A", read "EY1";
4. a homograph: one of two readings, picked by the token's POS tag;
5. otherwise a lookup: the dictionary (words of 2+ letters), the name dictionary (title-case
   tokens only), letter by letter for words of at most 3 letters, "'s" possessives by the
   last phone of the stem, compounds split by ``wordsegment`` and looked up part by part,
   and finally the learned model of g2p_en for anything left.

Phones outside the v2 symbol table are dropped (upstream does this for both versions), an
apostrophe becomes "-", and the learned model's unknown token becomes "UNK".
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

from gsv_core.text.en.oov_model import predict_phones
from gsv_core.text.en.resources import homographs
from gsv_core.text.en.tagger import load_pos_tagger
from gsv_core.text.lexicon import Lexicon
from gsv_core.text.symbols import UNKNOWN, symbol_ids

if TYPE_CHECKING:
    from nltk.tokenize import TweetTokenizer
    from wordsegment import Segmenter

_HAS_LETTER = re.compile(r"[a-z]")
_POSSESSIVE = re.compile(r"[a-z]+'s")
_VOICELESS = frozenset({"P", "T", "K", "F", "TH", "HH"})  # + "'s" -> S
_SIBILANTS = frozenset({"S", "Z", "SH", "ZH", "CH", "JH"})  # + "'s" -> AH0 Z; any other phone -> Z
_SPELL_OUT_MAX_LETTERS = 3


def g2p_en(norm_text: str, lexicon: Lexicon) -> list[str]:
    """ARPAbet phones and punctuation marks for text already run through ``normalize_en``."""
    tokens = _tokenizer().tokenize(norm_text)
    phones: list[str] = []
    for token, tag in zip(tokens, _pos_tags(tokens, lexicon)):
        phones.extend(_token_phones(token, tag, lexicon))
    return _to_symbols(phones)


def _pos_tags(tokens: list[str], lexicon: Lexicon) -> list[str]:
    """POS tags, which only homographs use: tagging is most of the G2P's time, so skip it without one.

    The tagger is greedy left to right and looks two words ahead, so a sentence is tagged whole.
    """
    table = homographs()
    if not any(token.lower() in table for token in tokens):
        return [""] * len(tokens)
    return [tag for _, tag in load_pos_tagger(lexicon.en_tagger_model).tag(tokens)]


def _token_phones(token: str, tag: str, lexicon: Lexicon) -> tuple[str, ...] | list[str]:
    word = token.lower()
    if word in lexicon.user_english:
        return lexicon.english[word][0]
    if not _HAS_LETTER.search(word):
        return [word]
    if len(word) == 1:
        return ("EY1",) if token == "A" else _letter(word, lexicon)
    homograph = homographs().get(word)
    if homograph is not None:
        if_tagged, otherwise, tag_prefix = homograph
        # A tag shorter than the prefix also counts when it starts it ("VB" for "VBP").
        return if_tagged if tag.startswith(tag_prefix) or tag_prefix.startswith(tag) else otherwise
    return _lookup(token, lexicon)


def _lookup(token: str, lexicon: Lexicon) -> list[str]:
    word = token.lower()
    if len(word) > 1 and word in lexicon.english:
        return list(lexicon.english[word][0])
    if token.istitle() and word in lexicon.names:
        return list(lexicon.names[word][0])
    if len(word) <= _SPELL_OUT_MAX_LETTERS:
        return _spell_out(word, lexicon)
    if _POSSESSIVE.fullmatch(word):
        stem = _lookup(word[:-2], lexicon)
        last = stem[-1] if stem else ""
        return stem + (["S"] if last in _VOICELESS else ["AH0", "Z"] if last in _SIBILANTS else ["Z"])
    parts = _segment(word)
    if len(parts) == 1:
        return list(predict_phones(word))
    return [phone for part in parts for phone in _lookup(part, lexicon)]


def _spell_out(word: str, lexicon: Lexicon) -> list[str]:
    """Letter by letter ("nfc" -> EH1 N EH1 F S IY1); "a" is "EY1", non-letters stay as they are."""
    phones: list[str] = []
    for char in word:
        if char == "a":
            phones.append("EY1")
        elif not char.isalpha():
            phones.append(char)
        else:
            phones.extend(_letter(char, lexicon))
    return phones


def _letter(letter: str, lexicon: Lexicon) -> tuple[str, ...]:
    """A letter's name; every CMUdict has the 26, the spelling model covers a bare Lexicon()."""
    entry = lexicon.english.get(letter)
    return entry[0] if entry else predict_phones(letter)


def _to_symbols(phones: list[str]) -> list[str]:
    known = symbol_ids("v2")
    symbols: list[str] = []
    for phone in phones:
        if phone in known:
            symbols.append(phone)
        elif phone == "'":
            symbols.append("-")
        elif phone == "<unk>":
            symbols.append(UNKNOWN)
    return symbols


@lru_cache(maxsize=1)
def _tokenizer() -> TweetTokenizer:
    from nltk.tokenize import TweetTokenizer  # importing nltk takes seconds: only on first use

    return TweetTokenizer()


@lru_cache(maxsize=1)
def _segmenter() -> Segmenter:
    from wordsegment import Segmenter

    segmenter = Segmenter()
    segmenter.load()  # reads the unigram/bigram counts shipped in the wordsegment wheel
    return segmenter


@lru_cache(maxsize=8192)
def _segment(word: str) -> tuple[str, ...]:
    return tuple(_segmenter().segment(word))
