"""The rows of one annotated document, table by table (sentences, relations, entities,
formulations, candidate mentions, removed lines, the documents row).

Each table is built by a declared step (`ROW_STEPS`) that names what it reads; the order is
derived from that. Every row of a span table carries the document id, sentence id, clean-text
offsets, raw-text offsets and the text (`_Spans.row`).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spacy.attrs import TAG

from pipeline.core.document import Document
from pipeline.core.vocabulary import RelationName
from pipeline.extract.persons import get_person_names
from pipeline.extract.usage import usage_rows
from pipeline.nlp.docs import (
    NER_SOURCE_USER_DATA,
    RULE_SPANS,
    doc_text,
    entities,
    lac_words,
    sentence_bounds,
    token_boundaries,
)
from pipeline.nlp.labels import DOMAIN_LABELS


class StageError(Exception):
    def __init__(self, stage: str, cause: BaseException):
        super().__init__(f"{stage}: {cause}")
        self.stage, self.cause = stage, cause


class _Spans:
    """Row fields shared by every span table: doc_id, sent_id, offsets, raw offsets, text."""

    def __init__(self, doc: Document, sdoc: Any):
        self.doc = doc
        self.sentences = _sentence_spans(sdoc)
        self._starts = [s for s, _ in self.sentences]

    def sent_of(self, pos: int) -> int:
        return max(bisect.bisect_right(self._starts, pos) - 1, 0)

    def sentence_text(self, pos: int) -> str:
        if not self.sentences:
            return self.doc.text
        start, end = self.sentences[self.sent_of(pos)]
        return self.doc.text[start:end]

    def row(self, start: int, end: int) -> dict[str, Any]:
        raw_start, raw_end = self.doc.raw_span(start, end)
        return {
            "doc_id": self.doc.doc_id,
            "sent_id": self.sent_of(start),
            "start": start,
            "end": end,
            "raw_start": raw_start,
            "raw_end": raw_end,
            "text": self.doc.text[start:end],
        }


@dataclass(frozen=True)
class RowStep:
    """One step of a document's row building: what it `reads` (the outputs of other steps) and
    what it `writes` (tables, or values such as `people` that only other steps read)."""

    writes: tuple[str, ...]
    reads: tuple[str, ...]
    build: Callable[[_Inputs, dict[str, Any]], tuple[Any, ...]]


@dataclass
class _Inputs:
    doc: Document
    sdoc: Any
    spans: _Spans
    matcher: Any
    finder: Any
    extractor: Any
    run_id: str
    context: Any


def _relations_and_people(i: _Inputs, _: dict[str, Any]) -> tuple[Any, ...]:
    relations = _relation_rows(i.doc, i.sdoc, i.extractor, i.spans, i.context)
    return relations, _person_names(i.sdoc, relations)


# The steps, each with what it reads; `document_rows` runs them in an order derived from that
# (the order written here where the reads allow).
ROW_STEPS = (
    RowStep(("sentences",), (), lambda i, _: ([i.spans.row(s, e) for s, e in i.spans.sentences],)),
    RowStep(("relations", "people"), (), _relations_and_people),
    RowStep(
        ("entities",),
        ("relations", "people"),
        lambda i, v: (
            _entity_rows(
                i.sdoc, i.spans, v["relations"], *v["people"], i.extractor.issues.issuer_in_title
            ),
        ),
    ),
    RowStep(("formulations",), (), lambda i, _: (_formulation_rows(i.doc, i.matcher, i.spans),)),
    RowStep(
        ("formulation_usage",),
        ("formulations",),
        lambda i, v: (
            usage_rows(
                i.doc.text, v["formulations"], lac_words(i.sdoc) if v["formulations"] else []
            ),
        ),
    ),
    RowStep(
        ("candidate_mentions",),
        ("formulations",),
        lambda i, v: (_candidate_rows(i.doc, i.sdoc, i.matcher, i.finder, i.spans, v),),
    ),
    RowStep(("removed_lines",), (), lambda i, _: (removed_line_rows(i.doc, i.run_id),)),
    RowStep(("documents",), (), lambda i, _: ([document_row(i.doc, i.run_id)],)),
)
# What the steps write that is not a table.
_VALUES = frozenset({"people"})


def step_order(steps: tuple[RowStep, ...]) -> tuple[RowStep, ...]:
    """`steps` in an order where each comes after the steps it reads (stable; a step reading
    what no step writes, or a cycle, is a programming error caught at import)."""
    done: set[str] = set()
    todo, order = list(steps), []
    while todo:
        ready = next((s for s in todo if set(s.reads) <= done), None)
        if ready is None:
            raise RuntimeError(f"row steps cannot be ordered: {[s.writes for s in todo]}")
        order.append(ready)
        done.update(ready.writes)
        todo.remove(ready)
    return tuple(order)


_ORDERED_STEPS = step_order(ROW_STEPS)


def document_rows(
    doc: Document,
    sdoc: Any,
    matcher: Any,
    finder: Any,
    extractor: Any,
    run_id: str,
    context: Any = None,
) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows for one annotated document; a failure names its step's first output.
    `context`: the relation rules' running context, carried from chunk to chunk of a huge
    document."""
    try:
        spans = _Spans(doc, sdoc)
    except Exception as exc:  # noqa: BLE001
        raise StageError("sentences", exc) from exc
    inputs = _Inputs(doc, sdoc, spans, matcher, finder, extractor, run_id, context)
    values: dict[str, Any] = {}
    for step in _ORDERED_STEPS:
        try:
            values.update(zip(step.writes, step.build(inputs, values), strict=True))
        except Exception as exc:  # noqa: BLE001 - recorded as an errors row by the caller
            raise StageError(step.writes[0], exc) from exc
    return {k: v for k, v in values.items() if k not in _VALUES}


def _person_names(
    sdoc: Any, relations: list[dict[str, Any]]
) -> tuple[dict[str, str], dict[int, str]]:
    """(surface → canonical name for the document's PERSON mentions, mention start → the surface
    it is known by when a title follows it: the NER tags 毛 in 毛主席, the alias is 毛主席);
    relation heads get their canonical name too."""

    resolver = get_person_names()
    text = doc_text(sdoc)
    extended: dict[int, str] = {}
    people = [e for e in entities(sdoc) if e.label_ == "PERSON"]
    for e in people:
        if e.end_char - e.start_char <= 2:
            for k in (4, 3, 2):
                form = text[e.start_char : e.end_char + k]
                if form in resolver.aliases:
                    extended[e.start_char] = form
                    break
    persons = [r for r in relations if r["head_label"] == "PERSON"]
    surfaces = [text[e.start_char : e.end_char] for e in people] + [r["head"] for r in persons]
    posts = [
        (r["head"], r["role"]) for r in persons if r["relation"] == RelationName.HOLDS_POSITION
    ]
    names = resolver.resolve([*surfaces, *extended.values()], posts)
    for r in persons:
        r["person"] = names.get(r["head"], r["head"])
    return names, extended


# Labels a trained NER backend sets (the rest come from LAC or the rules).
MODEL_ENTITY_LABELS = frozenset({"PERSON", "ORG", "LOC", "GPE"})


def _entity_rows(
    sdoc: Any,
    spans: _Spans,
    relations: list[dict[str, Any]],
    names: dict[str, str],
    extended: dict[int, str],
    issuer_in_title: Callable[[str], str | None],
) -> list[dict[str, Any]]:
    issuers = {r["tail"]: r["head"] for r in relations if r["relation"] == RelationName.ISSUES}
    out = []

    rule_spans = sdoc.user_data.get(RULE_SPANS) or set()
    ner_source = sdoc.user_data.get(NER_SOURCE_USER_DATA, "lac")
    text = doc_text(sdoc)
    tags: list[int] | None = None
    for ent in entities(sdoc):
        rule = ent.label_ in DOMAIN_LABELS or (ent.start_char, ent.end_char) in rule_spans
        ent_text = text[ent.start_char : ent.end_char]
        issuer = None
        if ent.label_ == "DOCUMENT":
            issuer = issuers.get(ent_text) or issuer_in_title(ent_text)
        if not rule and tags is None:
            tags = sdoc.to_array(TAG).tolist()
        out.append(
            {
                **spans.row(ent.start_char, ent.end_char),
                "label": ent.label_,
                "lac_tag": "rule" if rule else sdoc.vocab.strings[tags[ent.start]],
                "source": "rule"
                if rule
                else (ner_source if ent.label_ in MODEL_ENTITY_LABELS else "lac"),
                "issuer": issuer,
                "person": names.get(extended.get(ent.start_char, ent_text), ent_text)
                if ent.label_ == "PERSON"
                else None,
            }
        )
    return out


def _formulation_rows(doc: Document, matcher: Any, spans: _Spans) -> list[dict[str, Any]]:
    return [
        {**spans.row(m.start, m.end), **mention_fields(m)}
        for m in matcher.find(doc.text, year=doc.year)
    ]


def mention_fields(m: Any) -> dict[str, Any]:
    """A formulation mention's own fields (its span's are the caller's): one shape for the
    row steps and the back-fill (run/backfill.py)."""
    return {
        "formulation_id": m.formulation.id,
        "canonical": m.formulation.canonical,
        "category": m.formulation.category,
        "match_kind": m.match_kind,
        "quoted": m.quoted,
        "nested": m.nested,
        "parent_id": m.parent.id if m.parent else None,
    }


def _candidate_rows(
    doc: Document, sdoc: Any, matcher: Any, finder: Any, spans: _Spans, rows: dict[str, list]
) -> list[dict[str, Any]]:
    known = {(r["start"], r["end"]) for r in rows["formulations"]}
    token_starts, token_ends = token_boundaries(sdoc)  # arrays: no Token object per word
    return [
        {
            **spans.row(c.start, c.end),
            "pattern": c.pattern,
            "published_at": doc.published_at,
            "sentence": spans.sentence_text(c.start),
        }
        for c in finder.find(doc.text, token_starts, token_ends)
        if (c.start, c.end) not in known and c.text not in matcher.forms
    ]


def _relation_rows(
    doc: Document, sdoc: Any, extractor: Any, spans: _Spans, context: Any = None
) -> list[dict[str, Any]]:
    out = []
    kwargs = {"context": context} if context is not None else {}
    rels = extractor.extract(sdoc, title=doc.title, year=doc.year, **kwargs)
    # The speaker line (浙江省省长 刘捷) is evidence like any sentence; a row the text rules
    # already give is not repeated.
    have = {(r.relation, r.head, r.tail, r.role) for r in rels}
    for rel in extractor.bylines.holds_position(sdoc, _byline_spans(doc), doc.title):
        if (rel.relation, rel.head, rel.tail, rel.role) not in have:
            rels.append(rel)
    for rel in rels:
        raw_start, raw_end = doc.raw_span(rel.start, rel.end)
        out.append(
            {
                "doc_id": doc.doc_id,
                "sent_id": spans.sent_of(rel.start),
                "relation": rel.relation,
                "head": rel.head,
                "head_label": rel.head_label,
                "tail": rel.tail,
                "tail_label": rel.tail_label,
                "role": rel.role,
                "evidence": spans.sentence_text(rel.start),
                "start": rel.start,
                "end": rel.end,
                "raw_start": raw_start,
                "raw_end": raw_end,
                "confidence": rel.confidence,
                "rule": rel.rule,
                "resolved_from": rel.resolved_from,
                "person": None,  # filled in by _person_names
            }
        )
    if extractor.decider is not None:  # the rules proposed; the learned model decides
        out = extractor.decider.decide(out, doc.title or "")
    return out


def _byline_spans(doc: Document) -> list[tuple[Any, int, int]]:
    """The document's bylines with their spans in the clean text (they stay in it)."""
    norm = doc.normalised
    if norm is None or not norm.bylines:
        return []
    n = len(doc.text)
    offs = norm.raw_offsets
    out = []
    for b in norm.bylines:
        start = bisect.bisect_left(offs, b.raw_start, 0, n)
        end = bisect.bisect_left(offs, b.raw_end, start, n)
        if start < end:
            out.append((b, start, end))
    return out


def _sentence_spans(sdoc: Any) -> list[tuple[int, int]]:
    doc_text_ = doc_text(sdoc)
    spans = []
    # Offsets from arrays, text by slicing: a sentence Span's .text makes a Token per word.
    for _, _, start_char, end_char in sentence_bounds(sdoc):
        text = doc_text_[start_char:end_char]
        stripped = text.strip()
        if not stripped:
            continue
        lead = len(text) - len(text.lstrip())
        start = start_char + lead
        spans.append((start, start + len(stripped)))
    return spans


def removed_line_rows(doc: Document, run_id: str) -> list[dict[str, Any]]:
    if doc.normalised is None:
        return []
    raw = doc.raw_text
    rows = []
    line, seen = 1, 0
    for r in sorted(doc.normalised.removed, key=lambda r: r.raw_start):
        line += raw.count("\n", seen, r.raw_start)
        seen = r.raw_start
        rows.append(
            {
                "doc_id": doc.doc_id,
                "line": line,
                "raw_start": r.raw_start,
                "raw_end": r.raw_end,
                "text": r.text,
                "reason": r.reason,
                "run_id": run_id,
            }
        )
    return rows


def document_row(doc: Document, run_id: str) -> dict[str, Any]:
    flags = doc.flags
    return {
        "doc_id": doc.doc_id,
        "source_file": doc.source_file,
        "title": doc.title,
        "published_at": doc.published_at,
        "year": doc.year,
        "source": doc.source,
        "url": doc.url,
        "author": doc.author,
        "contributor": doc.contributor,
        "title_raw": doc.title_raw,
        "photographer": doc.photographer,
        "editor": doc.editor,
        "date_problem": doc.date_problem,
        "metadata": json.dumps(doc.metadata, ensure_ascii=False, default=str)
        if doc.metadata
        else None,
        "text": doc.text,
        "n_chars": len(doc.text),
        "n_raw_chars": len(doc.raw_text),
        "encoding": doc.encoding,
        "content_hash": doc.content_hash,
        "had_pinyin_annotations": bool(flags.get("had_pinyin_annotations", False)),
        "converted_from_traditional": bool(flags.get("converted_from_traditional", False)),
        "n_chars_converted": int(flags.get("n_chars_converted", 0)),
        "chrome_lines_removed": int(flags.get("chrome_lines_removed", 0)),
        "has_redactions": bool(flags.get("has_redactions", False)),
        **_page_facts(doc),
        **_prose_loss(flags),
        "run_id": run_id,
    }


def _page_facts(doc: Document) -> dict[str, Any]:
    """The speaker columns, from the bylines normalisation read. A huge document processed in
    chunks has no whole-document normalisation: pipeline/run/huge.py fills them from its
    chunks'."""
    norm = doc.normalised
    if norm is None:
        return {"speaker": None, "speaker_post": None, "bylines": None}
    meta, bylines = norm.metadata, [b.as_row() for b in norm.bylines]
    return {
        "speaker": meta.get("speaker"),
        "speaker_post": meta.get("speaker_post"),
        "bylines": bylines or None,
    }


def _prose_loss(flags: dict[str, Any]) -> dict[str, Any]:
    """The loss alarm's columns from the prose counts of normalisation (summed over chunks):
    the share counts what shape rules removed; every reason is listed."""
    from pipeline.normalise.chrome import PROSE_LOSS_EVIDENCE, PROSE_REMOVED

    total = int(flags.get("prose_chars", 0))
    lost = {
        k.removeprefix(PROSE_REMOVED): int(v)
        for k, v in flags.items()
        if k.startswith(PROSE_REMOVED) and v
    }
    n_lost = sum(n for why, n in lost.items() if why not in PROSE_LOSS_EVIDENCE)
    return {
        "prose_chars": total,
        "prose_removed_share": n_lost / total if total else 0.0,
        "prose_removed_reasons": "; ".join(
            f"{why} {n}" for why, n in sorted(lost.items(), key=lambda kv: -kv[1])
        )
        or None,
    }
