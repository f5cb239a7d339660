"""Japanese: OpenJTalk phones with pitch-accent marks, as the official ``text/japanese.py`` gives them.

The same for v1 and v2 (v1's symbol table lacks the pitch marks, so they become UNK there).
The OpenJTalk dictionary loads on first use, never at import.
"""

from gsv_core.text.ja.g2p import JapaneseG2P, normalize_ja

__all__ = ["JapaneseG2P", "normalize_ja"]
