"""Cantonese (v2 only): Chinese normalization, ToJyutping readings, jyutping phones ("Y" + unit).

Mirrors the official ``text/cantonese.py``. ToJyutping (pure Python, offline) is imported on
first use, never at import.
"""

from gsv_core.text.yue.g2p import g2p_yue, normalize_yue

__all__ = ["g2p_yue", "normalize_yue"]
