"""Where a huge document is cut into chunks, and what joins the chunks' clean texts again.

A document longer than the run's `chunk_chars` is processed a chunk at a time
(`pipeline/run/huge.py`); the cuts fall on sentence boundaries of its raw text, so that each
chunk normalises and annotates as it would inside the whole document.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pipeline.core.textutil import CLOSERS

# Where a chunk may end, best first: a sentence end followed by a line break (a paragraph
# end); any line break; a sentence end inside a line (。！？；… with its closing quotes);
# as a last resort a hard cut. Each is searched in the last WINDOW_FRACTION of the chunk.
WINDOW_FRACTION = 0.5
_RX_PARAGRAPH_END = re.compile(rf"[。！？!?；;…][{re.escape(CLOSERS)}]*[ \t\u3000]*\r?\n\s*")
_RX_LINE_END = re.compile(r"\n\s*")
_RX_SENTENCE_END = re.compile(rf"[。！？!?；;…]+[{re.escape(CLOSERS)}]*\s*")


def _last_match(rx: re.Pattern[str], text: str, lo: int, hi: int) -> int | None:
    """End of the last match of ``rx`` that ends in (lo, hi], or None."""
    end = None
    for m in rx.finditer(text, lo, hi):
        if lo < m.end() <= hi:
            end = m.end()
    return end


def chunk_bounds(raw: str, chunk_chars: int) -> list[tuple[int, int]]:
    """``[start, end)`` ranges covering ``raw``, each at most ``chunk_chars`` characters (but
    for a hard cut moved off a surrogate-free boundary), cut at sentence boundaries."""
    if chunk_chars < 1:
        raise ValueError("chunk_chars must be >= 1")
    n = len(raw)
    bounds = []
    start = 0
    while n - start > chunk_chars:
        hi = start + chunk_chars
        lo = start + max(1, int(chunk_chars * (1 - WINDOW_FRACTION)))
        cut = None
        for rx in (_RX_PARAGRAPH_END, _RX_LINE_END, _RX_SENTENCE_END):
            cut = _last_match(rx, raw, lo, hi)
            if cut is not None:
                break
        if cut is None:  # no boundary in the window: a hard cut, never inside an ASCII word
            cut = hi
            while cut > lo and raw[cut - 1].isascii() and raw[cut - 1].isalnum():
                cut -= 1
            if cut == lo:
                cut = hi
        bounds.append((start, cut))
        start = cut
    bounds.append((start, n))
    return bounds


# Raw characters each side of a cut that decide how the two clean texts join.
_SEAM = 100


def seam_separator(raw: str, cut: int) -> str:
    """What joins the clean texts of the chunks either side of ``cut``: the whitespace the
    character steps make of the seam when it is normalised whole (a paragraph break for a line
    break or an indented line "　　", nothing between two Chinese sentences, a space between two
    English ones). Page-chrome removal cannot remove whitespace, so these steps decide it."""
    from pipeline.normalise import _characters

    a, b = max(0, cut - _SEAM), min(len(raw), cut + _SEAM)
    text, offs, _, _ = _characters(raw[a:b], list(range(b - a + 1)))
    assert offs is not None
    j = next((i for i, o in enumerate(offs[:-1]) if o >= cut - a), len(text))
    k = j
    while k > 0 and text[k - 1].isspace():
        k -= 1
    return text[k:j]


def document_lines(raw: str, chunk_chars: int | None) -> Iterable[str]:
    """The lines of a document for the boilerplate count; a document longer than
    `chunk_chars` is read a chunk at a time, as it is processed, so no whole-document copy is
    made here either."""
    from pipeline.normalise import boilerplate_lines

    if chunk_chars is None or len(raw) <= chunk_chars:
        return boilerplate_lines(raw)
    return (line for a, b in chunk_bounds(raw, chunk_chars) for line in boilerplate_lines(raw[a:b]))
