"""Text in, phone sequences out: the language-aware front of the synthesis pipeline.

``TextFrontend.prepare`` is what synthesis calls: it validates the input, cuts it into
pieces and phonemizes each one. ``phonemize`` and ``preseg`` mirror the official
``TextPreprocessor.get_phones_and_bert`` (without BERT) and ``pre_seg_text`` exactly, so
their results can be checked against the official goldens.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

from gsv_core.text.cleaner import Analyzers, clean_text
from gsv_core.text.errors import TextError, check_readable
from gsv_core.text.languages import check_language, check_version
from gsv_core.text.lexicon import Lexicon, load_lexicon
from gsv_core.text.segment import LanguageSegmenter, segment_languages
from gsv_core.text.split import SPLIT_MARKS, get_split_method, pre_seg_text, replace_consecutive_punctuation

if TYPE_CHECKING:
    from gsv_core.text.zh.g2pw import G2PW

DEFAULT_SPLIT_METHOD = "cut1"  # the official TTS default
MIN_PHONES = 6  # fewer phones: upstream tries again with a leading "."
_SPACE_RUNS = re.compile(" {2,}")


@dataclass(frozen=True)
class TextPart:
    """One run of one language: its text, normalized text and phones.

    ``word2ph[i]`` is the number of phones of ``norm_text[i]``; it exists for Chinese only
    (the BERT stage spreads character features over phones with it).
    """

    language: str
    text: str
    norm_text: str
    phones: tuple[str, ...]
    phone_ids: tuple[int, ...]
    word2ph: tuple[int, ...] | None


@dataclass(frozen=True)
class PhoneSequence:
    """The phones of one piece of text, as the parts of different languages it is made of."""

    parts: tuple[TextPart, ...]

    @property
    def text(self) -> str:
        return "".join(part.text for part in self.parts)

    @property
    def norm_text(self) -> str:
        return "".join(part.norm_text for part in self.parts)

    @property
    def phones(self) -> tuple[str, ...]:
        return tuple(chain.from_iterable(part.phones for part in self.parts))

    @property
    def phone_ids(self) -> tuple[int, ...]:
        return tuple(chain.from_iterable(part.phone_ids for part in self.parts))

    @property
    def word2ph(self) -> tuple[int, ...] | None:
        """Phones per char of ``norm_text``, or None unless every part has them (all Chinese)."""
        if any(part.word2ph is None for part in self.parts):
            return None
        return tuple(chain.from_iterable(part.word2ph for part in self.parts))

    def as_dict(self) -> dict:
        """The flat JSON-ready form: norm_text, phones, phone_ids, word2ph."""
        word2ph = self.word2ph
        return {
            "norm_text": self.norm_text,
            "phones": list(self.phones),
            "phone_ids": list(self.phone_ids),
            "word2ph": list(word2ph) if word2ph is not None else None,
        }


# all_X modes: the segmenter's default label, and the label their runs are read with.
_ALL_MODES = {"all_zh": ("zh", "zh"), "all_yue": ("zh", "yue"), "all_ja": ("ja", "ja"), "all_ko": ("ko", "ko")}
_AUTO_MODES = {"auto": "zh", "auto_yue": "yue"}  # what a detected Chinese run is read as


def language_runs(text: str, language: str, segmenter: LanguageSegmenter | None = None) -> list[tuple[str, str]]:
    """(language, text) runs of a language mode, merged as upstream does before G2P.

    ``en`` reads everything as English; ``all_X`` reads plain-English runs as English and the
    rest as X; ``auto``/``auto_yue`` keep the detected labels (Chinese read as Cantonese in
    ``auto_yue``); ``X`` (zh, ja, ko, yue) merges neighbouring non-English runs into X runs.
    """
    if language == "en":
        return [("en", text)]
    if language in _ALL_MODES:
        default, reading = _ALL_MODES[language]
        segments = segment_languages(text, default, segmenter)
        return [(reading if seg.language == default else seg.language, seg.text) for seg in segments]
    segments = segment_languages(text, "", segmenter)
    if language in _AUTO_MODES:
        chinese = _AUTO_MODES[language]
        return [(chinese if seg.language == "zh" else seg.language, seg.text) for seg in segments]
    runs: list[tuple[str, str]] = []
    for segment in segments:
        run_language = "en" if segment.language == "en" else language
        if runs and (runs[-1][0] == "en") == (run_language == "en"):
            runs[-1] = (runs[-1][0], runs[-1][1] + segment.text)
        else:
            runs.append((run_language, segment.text))
    return runs


def _has_speakable_char(text: str) -> bool:
    return any(char.isalnum() for char in text)


class TextFrontend:
    """Owns the pronunciation data, the language detector, the Japanese and Korean analysers
    and the g2pW reader, and turns text into phones. Each dictionary loads on first use."""

    def __init__(
        self, lexicon: Lexicon, segmenter: LanguageSegmenter | None = None, analyzers: Analyzers | None = None,
        g2pw_note: str | None = None,
    ) -> None:
        """``g2pw_note``: one plain sentence on how Chinese polyphones are read when that is
        worth telling (g2pW asked for but missing), for a status line."""
        self.lexicon = lexicon
        self.segmenter = segmenter or LanguageSegmenter()
        self.analyzers = analyzers or Analyzers()
        self.g2pw_note = g2pw_note

    @classmethod
    def load(
        cls,
        official_data: Path | None = None,
        user_dicts: Sequence[Path] = (),
        zh_char_readings: Mapping[str, str] | None = None,
        g2pw: G2PW | None = None,
        g2pw_note: str | None = None,
    ) -> TextFrontend:
        """A frontend on the package dictionaries, or the official data files when given.

        ``user_dicts`` (official ``.rep`` format) are layered over the defaults;
        ``zh_char_readings`` forces the pinyin of single Chinese characters ({"行": "hang2"}).
        ``g2pw`` reads Chinese polyphones for v2 text as the official frontend does
        (:func:`gsv_core.text.zh.g2pw_setup.setup_g2pw` builds one); without it pypinyin does.
        """
        lexicon = load_lexicon(official_data=official_data, user_dicts=user_dicts, zh_char_readings=zh_char_readings)
        return cls(lexicon, analyzers=Analyzers(g2pw=g2pw), g2pw_note=g2pw_note)

    @property
    def reading_files(self) -> tuple[Path, ...]:
        """The model files, besides the packages' data, that decide how v2 Chinese is read (the
        g2pW model and the polyphone dictionaries; none with g2pW off): a speaker's cached
        prompt phones depend on them."""
        g2pw = self.analyzers.g2pw
        return g2pw.files if g2pw is not None else ()

    def _phonemize_once(self, text: str, language: str, version: str) -> PhoneSequence:
        parts = []
        for run_language, run_text in language_runs(text, language, self.segmenter):
            cleaned = clean_text(run_text, run_language, version, self.lexicon, self.analyzers)
            parts.append(
                TextPart(run_language, run_text, cleaned.norm_text, cleaned.phones, cleaned.phone_ids, cleaned.word2ph)
            )
        if not parts:
            raise TextError(f"nothing to phonemize in {text!r}")
        return PhoneSequence(tuple(parts))

    def phonemize(self, text: str, language: str, version: str) -> PhoneSequence:
        """Phones of one piece of text (the official ``get_phones_and_bert`` minus BERT).

        Runs of two or more spaces become one; a result of fewer than 6 phones is redone
        once with a leading ".", which gives short texts a lead-in pause.
        Raises TextError for an unknown language or version, and for text without any
        segment (empty or whitespace-only outside ``en`` mode, where upstream crashes).
        """
        check_language(language)
        check_version(version)
        check_readable(text)
        text = _SPACE_RUNS.sub(" ", text)
        sequence = self._phonemize_once(text, language, version)
        if len(sequence.phones) < MIN_PHONES:
            sequence = self._phonemize_once("." + text, language, version)
        return sequence

    def prompt_phonemes(self, transcript: str, language: str, version: str) -> PhoneSequence:
        """Phones of a reference transcript, read as official inference reads it.

        The transcript is not cut; a missing end mark is added ("." for English, "。"
        otherwise) so the prompt ends in a pause. Raises TextError when nothing is speakable,
        and for Korean or Cantonese with a v1 model (as ``prepare``).
        """
        check_version(version)
        check_language(language, version)
        check_readable(transcript, "the transcript")
        transcript = transcript.strip("\n")
        if not _has_speakable_char(transcript):
            raise TextError("the transcript has nothing to speak: it needs at least one letter, character or digit")
        if transcript[-1] not in SPLIT_MARKS:
            transcript += "." if language == "en" else "。"
        return self.phonemize(transcript, language, version)

    def preseg(self, text: str, language: str, method: str) -> list[str]:
        """The pieces official inference cuts ``text`` into (its ``preseg_texts``)."""
        check_language(language)
        check_readable(text)
        return pre_seg_text(replace_consecutive_punctuation(text), language, method)

    def prepare(
        self, text: str, language: str, version: str = "v2", method: str = DEFAULT_SPLIT_METHOD
    ) -> list[PhoneSequence]:
        """Validate, cut and phonemize text for synthesis: one PhoneSequence per piece.

        Raises TextError with a plain message for text with nothing to speak (empty,
        whitespace, punctuation, emoji or control characters only), text that is not valid
        Unicode (a lone surrogate, which the language detector cannot read), an unsupported
        language, an unknown version or split method, and for Korean or Cantonese with a
        v1 model (whose symbol table has no such phones; upstream would read silence).
        """
        if not isinstance(text, str):
            raise TextError(f"text must be a string, not {type(text).__name__}")
        check_readable(text)
        check_version(version)
        check_language(language, version)
        get_split_method(method)
        if not _has_speakable_char(text):
            raise TextError("the text has nothing to speak: it needs at least one letter, character or digit")
        sequences = []
        for piece in self.preseg(text, language, method):
            if not piece.strip():
                continue  # upstream can emit an empty piece before an over-long one
            sequence = self.phonemize(piece, language, version)
            if sequence.norm_text:
                sequences.append(sequence)
        if not sequences:
            raise TextError("the text has nothing to speak after normalization")
        return sequences
