"""Offset-tracking edit machinery shared by every normalisation step.

Each step produces an *edit list* ``[(start, end, replacement), ...]`` over the current text and
hands it to ``apply_edits``, which rebuilds the text and the offset array (index into the raw
document of every character) together. The public ``str -> str`` wrappers pass ``offs=None``
so they pay nothing for offset tracking.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import chain

Offsets = list[int] | None
Edit = tuple[int, int, str]


def apply_edits(text: str, offs: Offsets, edits: list[Edit]) -> tuple[str, Offsets]:
    """Apply sorted, non-overlapping ``(start, end, replacement)`` edits to text and offsets.

    Offsets of a replacement: equal length -> 1:1; the replacement is a substring of the
    replaced text (e.g. a kept group) -> that substring's offsets; the replaced text with some
    characters taken out ("龚 正" -> "龚正") -> the offsets of the characters kept; otherwise
    char i maps to source char min(start+i, end-1) (monotonic, stays inside the replaced span).
    """
    if not edits:
        return text, offs
    parts: list[str] = []
    oparts: list[list[int]] = []
    last = 0
    for s, e, r in edits:
        parts.append(text[last:s])
        parts.append(r)
        if offs is not None:
            oparts.append(offs[last:s])
            n = len(r)
            if n:
                if n == e - s:
                    oparts.append(offs[s:e])
                elif e == s:
                    oparts.append([offs[s]] * n)
                else:
                    k = text.find(r, s, e) if n < e - s else -1
                    kept = _kept_positions(text, s, e, r) if k < 0 and n < e - s else None
                    if k >= 0:
                        oparts.append(offs[k : k + n])
                    elif kept is not None:
                        oparts.append([offs[i] for i in kept])
                    else:
                        oparts.append([offs[min(s + i, e - 1)] for i in range(n)])
        last = e
    parts.append(text[last:])
    new_text = "".join(parts)
    if offs is None:
        return new_text, None
    oparts.append(offs[last:])  # includes the len(raw) sentinel
    return new_text, list(chain.from_iterable(oparts))


def _kept_positions(text: str, s: int, e: int, r: str) -> list[int] | None:
    """Where each character of `r` is in text[s:e] when `r` is that text with characters taken
    out (a subsequence), else None."""
    out: list[int] = []
    i = s
    for ch in r:
        while i < e and text[i] != ch:
            i += 1
        if i >= e:
            return None
        out.append(i)
        i += 1
    return out


def regex_edits(
    rx: re.Pattern[str], repl: str | Callable[[re.Match[str]], str], text: str
) -> list[Edit]:
    edits: list[Edit] = []
    if isinstance(repl, str):
        for m in rx.finditer(text):
            if m.group() != repl:
                edits.append((m.start(), m.end(), repl))
    else:
        for m in rx.finditer(text):
            r = repl(m)
            if r != m.group():
                edits.append((m.start(), m.end(), r))
    return edits


def sub(
    rx: re.Pattern[str],
    repl: str | Callable[[re.Match[str]], str],
    text: str,
    offs: Offsets,
) -> tuple[str, Offsets]:
    return apply_edits(text, offs, regex_edits(rx, repl, text))


RX_NL = re.compile("\n")


def short_lines(text: str, max_len: int) -> list[tuple[int, int]]:
    """(start, end-without-newline) of non-empty lines of at most ``max_len`` chars."""
    out = []
    ls = 0
    for m in RX_NL.finditer(text):
        le = m.start()
        if 0 < le - ls <= max_len:
            out.append((ls, le))
        ls = le + 1
    if 0 < len(text) - ls <= max_len:
        out.append((ls, len(text)))
    return out


def line_bounds(text: str, s: int, e: int) -> tuple[int, int]:
    """[line_start, line_end_including_newline) of the line(s) containing text[s:e]."""
    ls = text.rfind("\n", 0, s) + 1
    le = text.find("\n", e)
    return ls, (len(text) if le < 0 else le + 1)


def line_delete_edit(text: str, ls: int, le: int) -> Edit:
    # Delete the line with its newline; for the last line eat the preceding newline instead,
    # so the document never ends with "\n".
    if le == len(text) and ls > 0 and not text.endswith("\n"):
        return (ls - 1, le, "")
    return (ls, le, "")


def merge_edits(edits: list[Edit]) -> list[Edit]:
    """Sort deletion edits and merge overlaps (line deletions may overlap via the newline)."""
    edits = sorted(edits)
    out: list[Edit] = []
    for s, e, r in edits:
        if out and s < out[-1][1]:
            ps, pe, pr = out[-1]
            out[-1] = (ps, max(pe, e), pr + r)
        else:
            out.append((s, e, r))
    return out


def drop_overlaps(edits: list[Edit]) -> list[Edit]:
    out: list[Edit] = []
    for ed in sorted(set(edits)):
        if not out or ed[0] >= out[-1][1]:
            out.append(ed)
    return out
