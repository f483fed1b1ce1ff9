"""Entity labels: LAC's tags mapped to tifa's labels (one table: resources/lac_labels.tsv)."""

from __future__ import annotations

import functools
from pathlib import Path

import regex

from pipeline.core.resources import RESOURCES, read_lines, read_table


def _word_list(path: Path) -> list[str]:
    return read_lines(path, inline_comments=True)


DOMAIN_LABELS = ("POSITION", "MEETING", "DOCUMENT")


@functools.cache
def lac_label_table() -> dict[str, tuple[str, str]]:
    """LAC tag -> (entity label or "", UD POS)."""
    table: dict[str, tuple[str, str]] = {}
    for row in read_table("lac_labels.tsv", ("lac_tag", "entity_label", "ud_pos"), header=True):
        table[row["lac_tag"]] = (row["entity_label"], row["ud_pos"])
    return table


class _PosOfTag(dict):
    """LAC tag -> UD POS ("X" when the table has none; "SPACE" for layout), one lookup a word."""

    def __missing__(self, tag: str) -> str:
        pos = "SPACE" if tag == "_SP" else (lac_label_table().get(tag, ("", "X"))[1] or "X")
        self[tag] = pos
        return pos


_POS_OF_TAG = _PosOfTag()


@functools.cache
def gpe_names() -> frozenset[str]:
    return frozenset(_word_list(RESOURCES / "gpe_names.txt"))


_GPE_SUFFIX = regex.compile(r"(?:省|市|县|区|州|盟|旗|乡|镇|自治区|自治州|自治县|特别行政区|国)$")


# ...but 地区/试验区/开发区 name regions and zones, not governments.
_NOT_GPE_SUFFIX = regex.compile(r"(?:地区|试验区|开发区|示范区|功能区|经济区|湾区|园区|景区|社区)$")


def entity_label(lac_tag: str, text: str) -> str:
    label = lac_label_table().get(lac_tag, ("", ""))[0]
    if label == "LOC" and (
        text in gpe_names() or (_GPE_SUFFIX.search(text) and not _NOT_GPE_SUFFIX.search(text))
    ):
        return "GPE"
    return label


@functools.cache
def entity_corrections() -> dict[str, str]:
    """text -> corrected label ("-" = not an entity), from resources/entity_corrections.tsv."""
    rows = read_table("entity_corrections.tsv", ("text", "label"), header=True)
    return {row["text"]: row["label"] for row in rows}


# LAC entity labels the CRF does not predict and that are kept from LAC.
KEPT_LAC_LABELS = frozenset({"DATE", "WORK_OF_ART"})

# The CRF's labels -> tifa's labels (LOC is refined to GPE afterwards by `entity_label`).
MODEL_LABELS = {"PER": "PERSON", "PERSON": "PERSON", "ORG": "ORG", "LOC": "LOC"}
