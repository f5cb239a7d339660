"""Chinese: normalization, segmentation, pinyin with tone sandhi and erhua, to GPT-SoVITS phones.

v1 mirrors the official ``text/chinese.py``; v2 mirrors ``text/chinese2.py`` on its pypinyin
path (no G2PW model).
"""

from .g2p import g2p_zh, normalize_zh

__all__ = ["g2p_zh", "normalize_zh"]
