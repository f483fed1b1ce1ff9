"""Character classes and resource readers shared by every stage (one copy of each).

Plain `re` character classes are several times faster than `regex` for the passes that use
them, so the classes are kept as strings that go inside ``[...]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Han ideographs: URO, extension A, compatibility ideographs, extensions B–H.
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
# CJK punctuation next to which spaces are never meaningful.
CJK_PUNCT = "，。、；：？！“”‘’「」『』（）《》〈〉【】〔〕…—·～"
# Horizontal whitespace (ideographic space included); zero-width chars are handled as controls.
HSPACE = " \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
# The same characters as a string for str.strip (the class above holds a range).
HSPACE_CHARS = " \t\u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"
SENT_FINAL = "。！？!?"
CLOSERS = "”’」』）)》〉】\"'"

_RX_HAN_ONLY = re.compile(f"[{HAN}]+")


def is_han_char(c: str) -> bool:
    o = ord(c)
    return (
        0x4E00 <= o <= 0x9FFF
        or 0x3400 <= o <= 0x4DBF
        or 0xF900 <= o <= 0xFAFF
        or 0x20000 <= o <= 0x3134F
    )


def is_han(text: str) -> bool:
    """True when ``text`` is non-empty and made only of Han ideographs."""
    return _RX_HAN_ONLY.fullmatch(text) is not None


def alternation(words: Iterable[str]) -> str:
    """A regex alternation of literal words, longest first (发布时间 wins over 时间)."""
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
