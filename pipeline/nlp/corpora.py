"""Readers of the NER gold corpora (BMES/BIO tagged text, CLUENER JSON): what `tifa train ner`
trains on and `tifa evaluate` scores against."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

Gold = tuple[str, set[tuple[int, int, str]]]


def read_tagged(path: Path) -> Iterator[Gold]:
    """Character-per-line BMES or BIO files, sentences separated by blank lines."""
    chars: list[str] = []
    tags: list[str] = []
    with open(path, encoding="utf-8-sig") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 2:
                chars.append(parts[0])
                tags.append(parts[-1])
            elif not parts and chars:
                yield "".join(chars), _spans_from_tags(tags)
                chars, tags = [], []
    if chars:
        yield "".join(chars), _spans_from_tags(tags)


def _spans_from_tags(tags: list[str]) -> set[tuple[int, int, str]]:
    spans = set()
    start, label = None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, lab = tag.partition("-")
        if start is not None and (prefix in ("O", "B", "S") or lab != label):
            spans.add((start, i, label))
            start, label = None, None
        if prefix in ("B", "S") or (prefix in ("I", "M", "E") and start is None):
            start, label = i, lab
        if prefix in ("E", "S") and start is not None:
            spans.add((start, i + 1, label))
            start, label = None, None
    return spans


def read_cluener(path: Path) -> Iterator[Gold]:
    """CLUENER: JSON objects, one per line or pretty-printed back to back."""
    decoder = json.JSONDecoder()
    text = path.read_text(encoding="utf-8")
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return
        record, pos = decoder.raw_decode(text, pos)
        spans = set()
        for label, mentions in record.get("label", {}).items():
            for offsets in mentions.values():
                for start, end in offsets:
                    spans.add((start, end + 1, label))  # CLUENER ends are inclusive
        yield record["text"], spans
