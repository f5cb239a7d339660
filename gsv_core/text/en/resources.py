"""Data files shipped inside installed wheels, found without importing their packages.

``g2p_en`` downloads nltk data when imported, which fails offline, so its files (the seq2seq
weights ``checkpoint20.npz`` and the homograph table ``homographs.en``, Apache-2.0) are read
straight from its install directory. ``importlib.util.find_spec`` locates a top-level
package without executing it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from gsv_core.text.errors import TextError

# (pronunciation when the POS tag matches, pronunciation otherwise, tag prefix)
Homograph = tuple[tuple[str, ...], tuple[str, ...], str]

# Upstream GPT-SoVITS replaces two rows of g2p_en's table: "read" is present tense for
# VB/VBP (and any shorter prefix of VBP), "complex" is read as the adjective only for JJ*.
_OFFICIAL_HOMOGRAPH_FIXES: Mapping[str, Homograph] = {
    "read": (("R", "IY1", "D"), ("R", "EH1", "D"), "VBP"),
    "complex": (("K", "AH0", "M", "P", "L", "EH1", "K", "S"), ("K", "AA1", "M", "P", "L", "EH0", "K", "S"), "JJ"),
}


def package_file(package: str, filename: str) -> Path:
    """Path of ``filename`` inside the installed top-level ``package``, without importing it."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / filename
        if path.is_file():
            return path
    raise TextError(f"{filename} not found: the English frontend needs the {package!r} package installed")


@lru_cache(maxsize=1)
def homographs() -> Mapping[str, Homograph]:
    """g2p_en's homograph table (lower-case word -> entry) with upstream GPT-SoVITS's two fixes."""
    table: dict[str, Homograph] = {}
    for line in package_file("g2p_en", "homographs.en").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        word, if_tagged, otherwise, tag_prefix = line.strip().split("|")
        table[word.lower()] = (tuple(if_tagged.split()), tuple(otherwise.split()), tag_prefix)
    table.update(_OFFICIAL_HOMOGRAPH_FIXES)
    return MappingProxyType(table)
