"""The per-batch work: Documents in, rows for every batch table out.

`process_batch` is a pure function of its inputs plus models loaded once per process, so it runs
unchanged in the main process, in a process pool (`--workers N`) or on a Dask worker. A document
that fails in any stage becomes an errors row and the rest of the batch carries on.
"""

from __future__ import annotations

import bisect
import json
import traceback
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import regex

from pipeline.boilerplate import Boilerplate
from pipeline.document import Document
from pipeline.formulations import LEXICON_PATH


@dataclass(frozen=True)
class StageOptions:
    lac_runner: str = "batched"
    # NER backend (pipeline.nlp.NER_BACKENDS) and its model folder (None: the bundled model).
    ner: str = "model"
    ner_model: str | None = None
    # Tokenizer (pipeline.nlp.TOKENIZERS) and the spacy-pkuseg model folder (None: models/pkuseg).
    tokenizer: str = "lac"
    pkuseg_model: str | None = None
    nested_formulations: bool = False
    run_id: str = "adhoc"
    lexicon: str = str(LEXICON_PATH)
    # LAC threads per process; None lets a single process use every core.
    lac_threads: int | None = None
    # Lines repeated across the documents of a site or file in this run (page boilerplate),
    # counted by the driver before the run and sent to every worker with the options.
    boilerplate: Boilerplate = field(default_factory=Boilerplate)
    # A document longer than this (raw characters) is processed in chunks cut at sentence
    # boundaries, its rows streamed to disk (pipeline/chunked.py). Default: DEFAULT_CHUNK_CHARS.
    chunk_chars: int = 300_000


@dataclass
class BatchResult:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    n_documents: int = 0
    n_chars: int = 0

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.rows.setdefault(table, []).append(row)


def error_row(
    run_id: str,
    source_file: str,
    doc_id: str | None,
    stage: str,
    exc: BaseException | str,
    error_type: str = "Error",
) -> dict[str, Any]:
    """An errors-table row from an exception, or from a message and its error type."""
    if isinstance(exc, BaseException):
        error_type = type(exc).__name__
        message = str(exc) or error_type
        # Keep where it happened: a one-line location is enough to reproduce, a traceback is not.
        tb = traceback.extract_tb(exc.__traceback__)
        if tb:
            message += f" (at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno})"
    else:
        message = exc
    return {
        "run_id": run_id,
        "source_file": source_file,
        "doc_id": doc_id,
        "stage": stage,
        "error_type": error_type,
        "message": message,
    }


def normalise_document(doc: Document, boilerplate: frozenset[int] = frozenset()) -> Document:
    """Clean ``doc``'s text and fill what its page says about it (title, date, credits) where
    the input did not; ``boilerplate``: lines repeated across its group in this run."""
    # Imported on first use: a rerun whose documents are all unchanged never normalises.
    from pipeline.normalise import normalise, normalise_title

    result = normalise(doc.raw_text, boilerplate=boilerplate, title_hint=doc.title_raw)
    doc.text = result.text
    doc.normalised = result
    doc.flags = {**doc.flags, **result.flags}
    meta = result.metadata
    if doc.title:
        doc.title = normalise_title(doc.title)
    doc.title = doc.title or meta.get("title")
    doc.source = doc.source or meta.get("source")
    doc.author = doc.author or meta.get("author")
    doc.photographer = doc.photographer or meta.get("photographer")
    doc.editor = doc.editor or meta.get("editor")
    doc.contributor = doc.contributor or meta.get("contributor")
    if doc.published_at is None and meta.get("published_at"):
        doc.published_at = date.fromisoformat(meta["published_at"])
    if doc.date_problem is None and doc.published_at is None and meta.get("date_problem"):
        doc.date_problem = f"page header: {meta['date_problem']}"
    if doc.published_at is not None:
        doc.year = doc.published_at.year
    return doc


def load_models(options: StageOptions) -> tuple[Any, Any, Any, Any]:
    """(spaCy pipeline, formulation matcher, candidate finder, relation extractor), each built
    once per process; a worker calls this at start-up so its first batch is not slow."""
    from pipeline import nlp
    from pipeline.formulations import get_candidate_finder, get_matcher
    from pipeline.relations import get_extractor

    if options.lac_threads is not None:
        nlp.LAC_THREADS = options.lac_threads
    return (
        nlp.get_nlp(
            options.lac_runner,
            options.ner,
            options.ner_model,
            options.tokenizer,
            options.pkuseg_model,
        ),
        get_matcher(options.lexicon, nested=options.nested_formulations),
        get_candidate_finder(),
        get_extractor(),
    )


def process_batch(docs: list[Document], options: StageOptions) -> BatchResult:
    return finish_batch(prepare_batch(docs, options), options)


@dataclass
class PreparedBatch:
    """A batch after normalisation: its errors so far and the documents left to analyse."""

    result: BatchResult
    ready: list[Document]

    @property
    def texts(self) -> list[str]:
        return [d.text for d in self.ready]


def prepare_batch(docs: list[Document], options: StageOptions) -> PreparedBatch:
    """Normalise a batch (the part of `process_batch` before the model)."""
    result = BatchResult()
    ready: list[Document] = []
    for doc in docs:
        try:
            normalise_document(doc, options.boilerplate.for_group(doc.group))
        except Exception as exc:  # noqa: BLE001 - any failure is recorded, never raised
            result.add(
                "errors", error_row(options.run_id, doc.source_file, doc.doc_id, "normalise", exc)
            )
            continue
        if not doc.text.strip():
            msg = "nothing left after normalisation (only page chrome or metadata)"
            result.add(
                "errors", error_row(options.run_id, doc.source_file, doc.doc_id, "normalise", msg)
            )
            continue
        ready.append(doc)
    return PreparedBatch(result, ready)


def finish_batch(prepared: PreparedBatch, options: StageOptions) -> BatchResult:
    """The model, the rules and the rows of a normalised batch."""
    from pipeline.nlp import annotate

    nlp, matcher, finder, extractor = load_models(options)
    result, ready = prepared.result, prepared.ready
    try:
        spacy_docs = list(annotate(nlp, prepared.texts))
    except Exception:  # noqa: BLE001 - isolate the document that breaks the batch
        spacy_docs = []
        for d in ready:
            try:
                spacy_docs.append(next(iter(annotate(nlp, [d.text]))))
            except Exception as exc:  # noqa: BLE001
                result.add("errors", error_row(options.run_id, d.source_file, d.doc_id, "nlp", exc))
                spacy_docs.append(None)

    for doc, sdoc in zip(ready, spacy_docs, strict=True):
        if sdoc is None:
            continue
        try:
            rows = document_rows(doc, sdoc, matcher, finder, extractor, options.run_id)
        except StageError as exc:
            result.add(
                "errors",
                error_row(options.run_id, doc.source_file, doc.doc_id, exc.stage, exc.cause),
            )
            continue
        for table, table_rows in rows.items():
            result.rows.setdefault(table, []).extend(table_rows)
        result.n_documents += 1
        result.n_chars += len(doc.text)
    return result


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


def document_rows(
    doc: Document,
    sdoc: Any,
    matcher: Any,
    finder: Any,
    extractor: Any,
    run_id: str,
    context: Any = None,
) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows for one annotated document; a failure names its stage. `context`:
    the relation rules' running context, carried from chunk to chunk of a huge document."""
    try:
        spans = _Spans(doc, sdoc)
    except Exception as exc:  # noqa: BLE001
        raise StageError("sentences", exc) from exc
    rows: dict[str, list[dict[str, Any]]] = {}
    steps = (
        ("sentences", lambda: [spans.row(s, e) for s, e in spans.sentences]),
        ("relations", lambda: _relation_rows(doc, sdoc, extractor, spans, context)),
        ("persons", lambda: [_person_names(sdoc, rows["relations"])]),
        ("entities", lambda: _entity_rows(sdoc, spans, rows["relations"], *rows["persons"][0])),
        ("formulations", lambda: _formulation_rows(doc, matcher, spans)),
        ("candidate_mentions", lambda: _candidate_rows(doc, sdoc, matcher, finder, spans, rows)),
        ("removed_lines", lambda: removed_line_rows(doc, run_id)),
        ("documents", lambda: [document_row(doc, run_id)]),
    )
    for table, build in steps:
        try:
            rows[table] = build()
        except Exception as exc:  # noqa: BLE001 - recorded as an errors row by the caller
            raise StageError(table, exc) from exc
    rows.pop("persons")  # a per-document name map, not a table
    return rows


def _person_names(
    sdoc: Any, relations: list[dict[str, Any]]
) -> tuple[dict[str, str], dict[int, str]]:
    """(surface → canonical name for the document's PERSON mentions, mention start → the surface
    it is known by when a title follows it: the NER tags 毛 in 毛主席, the alias is 毛主席);
    relation heads get their canonical name too."""
    from pipeline.nlp import doc_text, entities
    from pipeline.persons import get_person_names

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
    posts = [(r["head"], r["role"]) for r in persons if r["relation"] == "holds_position"]
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
) -> list[dict[str, Any]]:
    issuers = {r["tail"]: r["head"] for r in relations if r["relation"] == "issues"}
    out = []
    from spacy.attrs import TAG

    from pipeline.ner import NER_SOURCE_USER_DATA
    from pipeline.nlp import DOMAIN_LABELS, doc_text, entities

    rule_spans = sdoc.user_data.get("tifa_rule_spans", set())
    ner_source = sdoc.user_data.get(NER_SOURCE_USER_DATA, "lac")
    text = doc_text(sdoc)
    tags: list[int] | None = None
    for ent in entities(sdoc):
        rule = ent.label_ in DOMAIN_LABELS or (ent.start_char, ent.end_char) in rule_spans
        ent_text = text[ent.start_char : ent.end_char]
        issuer = None
        if ent.label_ == "DOCUMENT":
            issuer = issuers.get(ent_text) or _issuer_in_title(ent_text)
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


# 《中共中央关于加强党史工作的意见》: the issuing body is stated before 关于.
_TITLE_ISSUER = regex.compile(
    r"^《((?:中共|中国共产党)?[\p{Han}]{1,20}?(?:中央|国务院|委员会|人民政府|政府|办公厅|办公室|部|委|厅|局|院))"
    r"(?:、[\p{Han}]{2,20})?关于"
)


def _issuer_in_title(title: str) -> str | None:
    m = _TITLE_ISSUER.match(title)
    return m.group(1) if m else None


def _formulation_rows(doc: Document, matcher: Any, spans: _Spans) -> list[dict[str, Any]]:
    return [
        {
            **spans.row(m.start, m.end),
            "formulation_id": m.formulation.id,
            "canonical": m.formulation.canonical,
            "category": m.formulation.category,
            "match_kind": m.match_kind,
            "quoted": m.quoted,
            "nested": m.nested,
        }
        for m in matcher.find(doc.text, year=doc.year)
    ]


def _candidate_rows(
    doc: Document, sdoc: Any, matcher: Any, finder: Any, spans: _Spans, rows: dict[str, list]
) -> list[dict[str, Any]]:
    from pipeline.nlp import token_boundaries

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
    from pipeline.nlp import doc_text, sentence_bounds

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
    chunks (pipeline/chunked.py) has no whole-document normalisation: null there."""
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
