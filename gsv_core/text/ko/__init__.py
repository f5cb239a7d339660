"""Korean (v2 only): g2pk2 pronunciation rules, then jamo, as the official ``text/korean.py``.

The MeCab analyser and g2pk2 load on first use, never at import; see :mod:`.pronounce` for
how g2pk2 is kept from downloading nltk data.
"""

from gsv_core.text.ko.g2p import KoreanG2P

__all__ = ["KoreanG2P"]
