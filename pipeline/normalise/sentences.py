"""Sentence splitting over normalised text (spans, never copies)."""

from __future__ import annotations

import re
import unicodedata

from pipeline.core.textutil import CLOSERS, SENT_FINAL

_RX_SENT_END = re.compile(rf"[{SENT_FINAL}]+[{CLOSERS}]*|\n")
_SOFT_BOUNDARIES = frozenset("，；、：,;:")
_RX_ASCII_WORD = re.compile(r"[0-9A-Za-z]")


def _strip_span(text: str, s: int, e: int) -> tuple[int, int]:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


def _cut_long(text: str, s: int, e: int, max_len: int, out: list[tuple[int, int]]) -> None:
    while e - s > max_len:
        limit = s + max_len
        cut = -1
        for i in range(limit - 1, s, -1):  # soft punctuation: cut after it
            if text[i] in _SOFT_BOUNDARIES:
                cut = i + 1
                break
        if cut < 0:
            sp = text.rfind(" ", s + 1, limit + 1)
            if sp > s:
                cut = sp
        if cut < 0:
            cut = limit
            # never split inside an ASCII word/number or before a combining mark
            j = cut
            while j > s and _RX_ASCII_WORD.match(text[j - 1]) and _RX_ASCII_WORD.match(text[j]):
                j -= 1
            while j > s and unicodedata.combining(text[j]):
                j -= 1
            if j > s:
                cut = j
        a, b = _strip_span(text, s, cut)
        if b > a:
            out.append((a, b))
        s, e = _strip_span(text, cut, e)
    if e > s:
        out.append((s, e))


def split_sentences(text: str, max_len: int = 250) -> list[tuple[int, int]]:
    """Split into sentence spans ``[start, end)`` (whitespace-stripped, covering every
    non-whitespace char). Ends at 。！？!? (with trailing closing quotes/brackets) and at
    newlines, except a newline after ，；、： (the sentence goes on to the next line); longer
    sentences are cut at the last ，；、： (else space, else hard) before
    ``max_len``."""
    if max_len < 1:
        raise ValueError("max_len must be >= 1")
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _RX_SENT_END.finditer(text):
        if m.group() == "\n":
            j = m.start() - 1
            while j >= start and text[j] in " \t\u3000":
                j -= 1
            if j >= start and text[j] in _SOFT_BOUNDARIES:
                continue  # "任命：\n陈毅兼外交部部长，\n沙千里…": after ，、：； it goes on
        s, e = _strip_span(text, start, m.end())
        if e > s:
            _cut_long(text, s, e, max_len, spans)
        start = m.end()
    s, e = _strip_span(text, start, len(text))
    if e > s:
        _cut_long(text, s, e, max_len, spans)
    return spans
