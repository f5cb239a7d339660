"""The language modes and text versions the frontend accepts, with clear errors for the rest.

A language mode says how text is read. ``all_X`` reads every run that is not plain English as
language X; ``X`` mixes X with English (neighbouring non-English runs are merged and read as
X, since Chinese characters alone cannot tell Chinese from Japanese); ``auto`` detects the
language of each run (``auto_yue`` reads detected Chinese as Cantonese). ``LANGUAGE_OPTIONS``
lists them with English display labels, in menu order, for the app to build its menus from.
"""

from __future__ import annotations

from dataclasses import dataclass

from gsv_core.text.errors import TextError
from gsv_core.text.symbols import TEXT_VERSIONS


@dataclass(frozen=True)
class LanguageOption:
    """One language mode: its code, an English display label, and the text versions it suits.

    Korean and Cantonese have phones only in the v2 symbol table (v2, v2Pro, v3, v4 models).
    """

    mode: str
    label: str
    versions: tuple[str, ...] = TEXT_VERSIONS


LANGUAGE_OPTIONS: tuple[LanguageOption, ...] = (
    LanguageOption("all_zh", "Chinese"),
    LanguageOption("zh", "Chinese + English"),
    LanguageOption("en", "English"),
    LanguageOption("all_ja", "Japanese"),
    LanguageOption("ja", "Japanese + English"),
    LanguageOption("all_yue", "Cantonese", ("v2",)),
    LanguageOption("yue", "Cantonese + English", ("v2",)),
    LanguageOption("all_ko", "Korean", ("v2",)),
    LanguageOption("ko", "Korean + English", ("v2",)),
    LanguageOption("auto", "Automatic (detect each language)"),
    LanguageOption("auto_yue", "Automatic, Chinese read as Cantonese", ("v2",)),
)
SUPPORTED_LANGUAGE_MODES: tuple[str, ...] = tuple(option.mode for option in LANGUAGE_OPTIONS)
LANGUAGE_LABELS: dict[str, str] = {option.mode: option.label for option in LANGUAGE_OPTIONS}


def language_options(version: str | None = None) -> tuple[LanguageOption, ...]:
    """The language modes in menu order; with ``version``, only those that suit it."""
    return tuple(option for option in LANGUAGE_OPTIONS if version is None or version in option.versions)


def check_language(language: str, version: str | None = None) -> None:
    """Raise TextError unless ``language`` is a known mode (and, with ``version``, suits it)."""
    if language not in LANGUAGE_LABELS:
        raise TextError(f"unknown language {language!r}; supported: {', '.join(SUPPORTED_LANGUAGE_MODES)}")
    if version is not None and version not in next(o for o in LANGUAGE_OPTIONS if o.mode == language).versions:
        raise TextError(
            f"language {language!r} ({LANGUAGE_LABELS[language]}) needs a v2 model: "
            f"the {version} symbol table has no Korean or Cantonese phones"
        )


def check_version(version: str) -> None:
    """Raise TextError unless ``version`` names a symbol table ("v1" or "v2")."""
    if version not in TEXT_VERSIONS:
        raise TextError(
            f"unknown text version {version!r}; expected one of {', '.join(TEXT_VERSIONS)} "
            "(a model version maps to one through gsv_core.versions)"
        )
