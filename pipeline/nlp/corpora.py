"""Readers of the NER gold corpora (BMES/BIO tagged text, CLUENER JSON): what `tifa train ner`
trains on and `tifa evaluate` scores against."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from pipeline.core.resources import RESOURCES, load_yaml

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


# People's Daily tags that name entities; a bracketed compound with one of them ([中央/n 人民/n
# 广播/vn 电台/n]nt) is one entity, and the words inside it are no entities of their own.
PEOPLES_DAILY_ENTITY_TAGS = frozenset({"nr", "ns", "nt"})
# The PKU release opens each line with a paragraph id tagged as a numeral (19980101-01-001-001/m).
_PD_LINE_ID = re.compile(r"^\d{8}-\d{2}-\d{3}-\d{3}$")


def read_peoples_daily(path: Path) -> Iterator[Gold]:
    """People's Daily 1998 (PKU ICL `word/tag` separated by spaces, one paragraph a line), with
    its own tags as labels (nr, ns, nt). A surname and the given name after it are one person
    (江/nr 泽民/nr), as in MSRA, and a run of names is several (李/nr 鹏/nr 乔/nr 石/nr); a
    bracketed compound `[…]nt` is one entity."""
    with open(path, encoding="utf-8-sig") as fh:
        for line in fh:
            tokens = line.split()
            if tokens and _PD_LINE_ID.match(tokens[0].rpartition("/")[0]):
                tokens = tokens[1:]
            if tokens:
                yield _peoples_daily_line(tokens)


def _peoples_daily_line(tokens: list[str]) -> Gold:
    parts: list[str] = []
    spans: set[tuple[int, int, str]] = set()
    pos = 0
    # The open name: (start, end, whether it is a lone surname that a given name may follow).
    # 江/nr 泽民/nr is one person; 李/nr 鹏/nr 乔/nr 石/nr are two (headline runs of names).
    surnames = frozenset(load_yaml(RESOURCES / "person_rules.yaml")["compound_surnames"])
    person: tuple[int, int, bool] | None = None
    compound_start: int | None = None
    inside: set[tuple[int, int, str]] = set()  # spans of the words of the open compound
    for token in tokens:
        opens = token.startswith("[") and len(token) > 1
        if opens:
            token = token[1:]
            compound_start = pos
        compound_tag = None
        if "]" in token and not token.endswith("/w"):
            token, _, compound_tag = token.rpartition("]")
        word, _, tag = token.rpartition("/")
        if not word:
            word, tag = token, ""
        start, pos = pos, pos + len(word)
        parts.append(word)
        if tag == "nr" and person is not None and person[1] == start and person[2]:
            person = (person[0], pos, False)
        else:
            if person is not None:
                (inside if compound_start is not None else spans).add((*person[:2], "nr"))
            person = (start, pos, len(word) == 1 or word in surnames) if tag == "nr" else None
            if tag in PEOPLES_DAILY_ENTITY_TAGS and tag != "nr":
                (inside if compound_start is not None else spans).add((start, pos, tag))
        if compound_tag is not None and compound_start is not None:
            if person is not None:
                inside.add((*person[:2], "nr"))
                person = None
            if compound_tag in PEOPLES_DAILY_ENTITY_TAGS:
                spans.add((compound_start, pos, compound_tag))
            else:
                spans.update(inside)
            compound_start, inside = None, set()
    if person is not None:
        spans.add((*person[:2], "nr"))
    spans.update(inside)  # a compound left open at the end of the line
    return "".join(parts), spans


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


# ---------------------------------------------------------------------------------------------
# Held-out splits of one training file.

# The split every 10th sentence made before issue 26: kept only to reproduce old figures.
INTERLEAVED_DEV = "dev-interleaved"


def held_out_blocks(config: dict) -> dict[str, tuple[float, float]]:
    """The named held-out blocks (`held_out:` of resources/ner_training.yaml) as fractions."""
    return {name: (float(lo), float(hi)) for name, (lo, hi) in config["held_out"].items()}


def count_sentences(path: Path) -> int:
    return sum(1 for _ in read_tagged(path))


def split_of(i: int, n: int, blocks: dict[str, tuple[float, float]]) -> str:
    """Which split sentence `i` of `n` belongs to: a held-out block's name, or 'train'."""
    for name, (lo, hi) in blocks.items():
        if int(lo * n) <= i < int(hi * n):
            return name
    return "train"


def select_split(
    gold: Iterable[Gold], split: str, n: int, blocks: dict[str, tuple[float, float]]
) -> Iterator[Gold]:
    """The sentences of `split`: 'all', 'train' (outside every block), a block's name, or
    'dev-interleaved' (every 10th sentence: the leaky split of the models before issue 26)."""
    for i, sentence in enumerate(gold):
        if split == "all":
            yield sentence
        elif split == INTERLEAVED_DEV:
            if i % 10 == 0:
                yield sentence
        elif split_of(i, n, blocks) == split:
            yield sentence
