"""The language modes and text versions the frontend accepts, with clear errors for the rest."""

from __future__ import annotations

from gsv_core.text.errors import TextError
from gsv_core.text.symbols import TEXT_VERSIONS

# The official language modes: "all_X" reads every non-English run as X, "X" mixes X with
# English, "auto" detects. This frontend implements the first three so far.
LANGUAGE_MODES = ("all_zh", "zh", "en")
PLANNED_LANGUAGE_MODES = ("all_ja", "ja", "all_ko", "ko", "all_yue", "yue", "auto", "auto_yue")


def check_language(language: str, planned_ok: bool = False) -> None:
    """Raise TextError unless ``language`` is a mode this frontend implements.

    With ``planned_ok`` the official modes not implemented yet pass too (cutting text
    into pieces does not depend on the language).
    """
    if language in LANGUAGE_MODES or (planned_ok and language in PLANNED_LANGUAGE_MODES):
        return
    if language in PLANNED_LANGUAGE_MODES:
        raise TextError(f"language {language!r} is not supported yet; supported: {', '.join(LANGUAGE_MODES)}")
    raise TextError(f"unknown language {language!r}; supported: {', '.join(LANGUAGE_MODES)}")


def check_version(version: str) -> None:
    """Raise TextError unless ``version`` names a symbol table ("v1" or "v2")."""
    if version not in TEXT_VERSIONS:
        raise TextError(
            f"unknown text version {version!r}; expected one of {', '.join(TEXT_VERSIONS)} "
            "(a model version maps to one through gsv_core.versions)"
        )
