"""Shared pieces of the relation rules: the row type, the document context, rule tables.

Every word a rule looks for is data in `resources/relation_rules.yaml` (or `post_bodies.tsv`);
this module only loads it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import regex
from spacy.tokens import Doc, Span

from pipeline.core.resources import RESOURCES
from pipeline.core.vocabulary import RelationName
from pipeline.nlp.docs import doc_text, sentence_bounds


@dataclass
class Relation:
    relation: RelationName
    head: str
    head_label: str
    tail: str
    tail_label: str
    role: str | None
    start: int
    end: int
    confidence: float
    rule: str
    resolved_from: str | None = None


class RelationFamily:
    """A family of relation rules (posts, events, issues): what it finds in each sentence, and
    in the whole document after the last sentence. A family registers itself (`@family`) and
    families run in their declared order, so a new family is a new module with one registered
    class, imported by `relations/__init__.py`; the extractor itself needs no change."""

    # The relations this family writes.
    relations: ClassVar[tuple[RelationName, ...]] = ()

    def __init__(self, extractor: Any) -> None:  # a relations.RelationExtractor
        self.extractor = extractor

    def prepare(self, ctx: Context, sent: Span, ents: list[Span]) -> None:
        """Note what this sentence says for the rules of every family (before any row)."""

    def sentence(self, doc: Doc, sent: Span, ents: list[Span], ctx: Context) -> Iterable[Relation]:
        return ()

    def document(self, doc: Doc, ents: list[Span], ctx: Context) -> Iterable[Relation]:
        return ()


# The registered families, by the order they run in.
FAMILIES: dict[int, type[RelationFamily]] = {}


def family(order: int) -> Callable[[type[RelationFamily]], type[RelationFamily]]:
    """Register a family of relation rules, to run `order`-th (a class decorator). The order
    matters: when two families find the same fact, the row found first is kept."""

    def register(cls: type[RelationFamily]) -> type[RelationFamily]:
        if FAMILIES.get(order, cls) is not cls:
            raise RuntimeError(f"two relation families registered at order {order}")
        FAMILIES[order] = cls
        return cls

    return register


@dataclass
class Context:
    """What a document says about itself: its locality, organisations and meetings so far."""

    # level suffix (省/市/区/县/自治区/镇) -> full name, e.g. 省 -> 湖北省
    localities: dict[str, str] = field(default_factory=dict)
    main_meeting: str | None = None
    # The meeting the title names, for a generic 会议 when the text names none.
    title_meeting: str | None = None
    orgs_seen: list[str] = field(default_factory=list)
    meetings: list[str] = field(default_factory=list)
    title: str = ""
    year: int | None = None
    # Distinct MEETING names of the earlier chunks of a huge document (pipeline/run/huge.py),
    # so that a meeting gets the fullest name the text before gives, as in one piece.
    meeting_names: list[str] = field(default_factory=list)
    # post -> the body the first holder named in this sentence holds it in (主任 -> 虹口区
    # 人大常委会), for a deputy named after the head without a body of its own.
    sentence_heads: dict[str, str] = field(default_factory=dict)
    # Foreign states named so far (relations/proposals.py): the state a 总统 without one holds.
    foreign_states: list[str] = field(default_factory=list)

    def top_locality(self, levels: tuple[str, ...]) -> str | None:
        for level in levels:
            if level in self.localities:
                return self.localities[level]
        return None


@functools.cache
def rules() -> dict[str, Any]:
    from pipeline.core.resources import load_yaml

    return load_yaml(RESOURCES / "relation_rules.yaml")


def words(key: str) -> tuple[str, ...]:
    """A word list from the rules file, longest first (so alternations prefer the longest)."""
    return tuple(sorted(rules()[key], key=len, reverse=True))


def alternation(key: str) -> str:
    return "(?:" + "|".join(map(regex.escape, words(key))) + ")"


def text_of(doc: Doc) -> str:
    """doc.text joins every token on each access; relations read it per sentence, so cache it."""
    return doc_text(doc)


@dataclass(frozen=True, slots=True)
class Sentence:
    """What the rules read of a sentence (a `doc.sents` Span's attributes), made from arrays:
    a Span's `.text` makes a Token object per word, and every rule reads it."""

    doc: Doc
    start: int
    end: int
    start_char: int
    end_char: int
    text: str


def sentences(doc: Doc) -> list[Sentence]:
    text = doc_text(doc)
    return [Sentence(doc, s, e, cs, ce, text[cs:ce]) for s, e, cs, ce in sentence_bounds(doc)]


def gap(text: str, start: int, end: int) -> str:
    return text[start:end].strip(" \u3000")


def dedupe(rows: list[Relation]) -> list[Relation]:
    seen = set()
    out = []
    for r in rows:
        key = (r.relation, r.head, r.tail, r.role)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


@functools.cache
def foreign_states() -> frozenset[str]:
    """Foreign states and international bodies by name (resources/foreign_states.txt)."""
    from pipeline.core.resources import read_lines

    return frozenset(read_lines(RESOURCES / "foreign_states.txt"))


@functools.cache
def foreign_state_re(around: str = "{}") -> regex.Pattern[str]:
    """The foreign states as one pattern, longest name first, set in `around` ("{}$": a name
    that ends the text; "(?P<state>{})(?:政府|国会)$": with more after it)."""
    names = sorted(foreign_states(), key=len, reverse=True)
    return regex.compile(around.format("(?:" + "|".join(map(regex.escape, names)) + ")"))


@functools.cache
def confidence_table() -> dict[str, float]:
    return {str(k): float(v) for k, v in rules()["confidence"].items()}


def confidence(rule: str, resolved_from: str | None) -> float:
    """Calibrated confidence of a row: measured precision of its rule (and how its tail was
    resolved) on the gold sets; see `confidence` in relation_rules.yaml."""
    table = confidence_table()
    key = f"{rule}/{resolved_from}" if resolved_from else rule
    return table.get(key, table.get(rule, table["default"]))
