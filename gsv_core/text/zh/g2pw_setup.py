"""From a g2pW setting ("auto", "off" or a path) to a reader, or to a plain note on why there is none.

The app and the command lines switch g2pW with one word: ``auto`` resolves the released model
through :func:`gsv_core.hub.resolve_g2pw_files` (cache first, downloading unless offline),
``off`` reads polyphones with pypinyin as before, a path names a model folder or
``G2PWModel.zip``. When g2pW is wanted but cannot be had, the frontend falls back to pypinyin's
readings: the reason is logged once and :attr:`G2PWSetup.note` says so for a status line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import TextError
from .g2pw import G2PW

G2PW_WORDS = ("auto", "off")
LOGGER = logging.getLogger("gsv_core.text.g2pw")
NOTE_MISSING = "Chinese polyphones: the g2pW model is missing, so they are read from pypinyin's dictionary"
NOTE_NO_DICTIONARY = "Chinese polyphones: g2pW, without the official polyphone dictionary"


@dataclass(frozen=True)
class G2PWSetup:
    """The reader (None: pypinyin reads polyphones) and what a status line should say (None: nothing)."""

    reader: G2PW | None
    note: str | None


def check_g2pw_setting(setting: str) -> str:
    """``setting`` if it is auto, off or an existing folder or file; else TextError saying what is accepted."""
    if setting in G2PW_WORDS or Path(setting).exists():
        return setting
    raise TextError(f"g2pW setting {setting!r}: use auto, off, or the path of a g2pW model folder or G2PWModel.zip")


def setup_g2pw(
    setting: str,
    *,
    official_data: Path | None = None,
    bert_dir: Path | None = None,
    cache_dir: Path | None = None,
    offline: bool | None = None,
    progress: Callable[[float, str], None] | None = None,
    threads: int | None = None,
    int8: bool = False,
) -> G2PWSetup:
    """The g2pW reader for ``setting``, falling back to none (with a note) when it cannot be had.

    ``official_data``: the folder whose ``polyphonic*.rep`` override the model (as upstream);
    ``bert_dir``: the BERT folder, whose ``tokenizer.json`` g2pW shares (unless its model folder
    has a ``tokenizer/``; None: that file from the Hub); the other
    arguments go to the resolver (``progress(fraction, message)`` while downloading) and to
    the network (``threads``; ``int8``: its int8 version, made once beside the cache).
    """
    if check_g2pw_setting(setting) == "off":
        return G2PWSetup(None, None)
    from gsv_core.hub import ArchiveError, ModelFilesError, resolve_g2pw_files, unpacked_dir

    try:
        files = resolve_g2pw_files(None if setting == "auto" else setting, bert_dir, cache_dir=cache_dir,
                                   offline=offline, progress=progress)
        reader = G2PW.load(files.model_dir, files.tokenizer_dir, official_data=official_data, threads=threads,
                           int8_dir=unpacked_dir(cache_dir) if int8 else None)
    except (ModelFilesError, ArchiveError, TextError, OSError) as error:
        LOGGER.warning("g2pW is not used, Chinese polyphones are read from pypinyin's dictionary: %s", error)
        return G2PWSetup(None, NOTE_MISSING)
    LOGGER.info("g2pW reads Chinese polyphones (%s)", os.fspath(files.model_dir))
    return G2PWSetup(reader, None if official_data is not None else NOTE_NO_DICTIONARY)
