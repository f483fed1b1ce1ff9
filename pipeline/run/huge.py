"""Huge documents, processed in chunks so that memory stays bounded whatever their size.

A document longer than `chunk_chars` raw characters is cut at sentence boundaries of its raw
text (`normalise/chunks.py`), and each chunk is normalised, annotated and extracted on its own
exactly
like a small document. Every row is then moved into the WHOLE document: text offsets by where
the chunk's clean text starts in the document's clean text (the chunks' clean texts joined),
raw offsets by where the chunk starts in the raw text, sentence ids by the sentences of the
chunks before, `removed_lines.line` by the lines before. The rows of each chunk are handed to
the caller as soon as they are made (`iter_chunk_rows`), so the runner streams them to disk and
no table's rows of the whole document are ever held in memory; only the clean text (for the one
`documents` row) grows with the document.

What is decided per chunk rather than per document (the price of bounded memory; with cuts at
sentence ends the rows are otherwise those of an unchunked run, `tests/test_huge.py`):

* page chrome by shape (`normalise/chrome.py`: the article is the chunk's largest prose block)
  and by repetition is judged within each chunk; a huge document is a book, a transcript or a
  concatenation, rarely a scraped page, and the pattern chrome, metadata and credits are
  line-local anyway. The title hint and the page title go to the first chunk only, and only
  the first chunk's text can give the title (`detect_title` reads the top of the text);
* the NER's "same name said with confidence elsewhere in the document" evidence comes from the
  chunk and the chunks before it (`CRFEntityTagger.carried_names`); the relation
  rules' running context (locality, the meeting being reported) and the person-name resolution
  (李书记 → the 李… the document names) see the current chunk only; relations found again in a
  later chunk are dropped as in an unchunked run (`relations.base.dedupe` keeps the first).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from pipeline.core.document import Document
from pipeline.normalise.chunks import chunk_bounds, seam_separator
from pipeline.run.batch import RunContext, add_story_rows, error_row, fill_from_page
from pipeline.run.config import RunConfig

# Row fields moved into the whole document, per kind of offset.
_TEXT_FIELDS = ("start", "end")
_RAW_FIELDS = ("raw_start", "raw_end")
_SPAN_TABLES = (
    "sentences",
    "entities",
    "formulations",
    "formulation_usage",
    "candidate_mentions",
    "relations",
)
_CREDIT_FIELDS = ("author", "photographer", "editor")


@dataclass
class ChunkState:
    """What carries from one chunk to the next while a huge document is processed."""

    clean_parts: list[str] = field(default_factory=list)
    n_clean: int = 0
    n_sentences: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    credits: dict[str, list[str]] = field(default_factory=dict)
    flags: dict[str, Any] = field(default_factory=dict)
    relation_keys: set[tuple[Any, ...]] = field(default_factory=set)
    n_chunks: int = 0
    line_base: int = 0  # lines of the raw text before the current chunk
    line_seen: int = 0  # where the line count stopped
    context: Any = None  # the relation rules' running context (relations.Context)
    bylines: list[dict[str, Any]] = field(default_factory=list)  # every chunk's, raw offsets

    def merge_page_facts(self, metadata: dict[str, str], flags: dict[str, Any]) -> None:
        # Metadata fields: the first value wins, as within one text (`metadata_line`
        # setdefaults); credits: every name, once, in order.
        for key, value in metadata.items():
            if key == "title":
                continue
            if key in _CREDIT_FIELDS:
                names = self.credits.setdefault(key, [])
                names.extend(n for n in value.split("、") if n and n not in names)
            else:
                self.metadata.setdefault(key, value)
        for key, value in flags.items():
            if isinstance(value, bool):
                self.flags[key] = bool(self.flags.get(key, False)) or value
            else:
                self.flags[key] = int(self.flags.get(key, 0)) + int(value)


def iter_chunk_rows(
    doc: Document, ctx: RunContext, chunk_chars: int, models: tuple[Any, Any, Any, Any]
) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Rows of a huge document, chunk by chunk, offsets already in the whole document; the
    last item holds the `documents` row. A failing chunk raises `StageError` (the caller drops
    what it streamed and writes an errors row: a document is written whole or not at all)."""
    nlp = models[0]
    tagger = nlp.get_pipe("tifa_ner") if "tifa_ner" in nlp.pipe_names else None
    if tagger is not None:
        tagger.carried_names = set()
    try:
        state = ChunkState()
        for k, (rs, re_) in enumerate(chunk_bounds(doc.raw_text, chunk_chars)):
            yield _chunk_rows(doc, ctx, models, state, k, rs, re_)
        rows = {"documents": [_document_row(doc, ctx, state)]}
        add_story_rows(doc, rows, ctx.run_id)
        yield rows
    finally:
        if tagger is not None:
            tagger.carried_names = None


def _normalised_chunk(
    doc: Document, ctx: RunContext, state: ChunkState, k: int, rs: int, re_: int
) -> Document:
    """Chunk `k` of `doc` (raw[rs:re_]) normalised, as a Document of its own; the first chunk
    gives the document its title and what its page states."""
    from pipeline.extract.rows import StageError
    from pipeline.normalise import normalise

    raw = doc.raw_text
    try:
        result = normalise(
            raw[rs:re_],
            boilerplate=ctx.boilerplate.for_group(doc.group),
            title_hint=doc.title_raw if k == 0 else None,
        )
    except Exception as exc:  # noqa: BLE001 - the caller records it
        raise StageError("normalise", exc) from exc
    state.merge_page_facts(result.metadata, result.flags)
    for byline in result.bylines:  # speaker and delivery lines, placed in the whole raw text
        row = byline.as_row()
        for f in _RAW_FIELDS:
            if int(row[f]) >= 0:  # type: ignore[call-overload]
                row[f] = int(row[f]) + rs  # type: ignore[call-overload]
        state.bylines.append(row)
    if k == 0:  # the top of the document: its title, metadata lines and dates
        fill_from_page(doc, {**state.metadata, "title": result.metadata.get("title")}, False)
    state.line_base += raw.count("\n", state.line_seen, rs)
    state.line_seen = rs
    chunk = Document(
        doc_id=doc.doc_id,
        source_file=doc.source_file,
        raw_text=raw[rs:re_],  # removed_line_rows counts its lines
        title=doc.title,
        published_at=doc.published_at,
        year=doc.year,
    )
    chunk.text = result.text
    chunk.normalised = result
    state.n_chunks += 1
    return chunk


def _chunk_rows(
    doc: Document,
    ctx: RunContext,
    models: tuple[Any, Any, Any, Any],
    state: ChunkState,
    k: int,
    rs: int,
    re_: int,
) -> dict[str, list[dict[str, Any]]]:
    from pipeline.extract.relations import Context
    from pipeline.extract.rows import StageError, document_rows, removed_line_rows
    from pipeline.nlp.build import annotate

    nlp, matcher, finder, extractor = models
    chunk = _normalised_chunk(doc, ctx, state, k, rs, re_)
    if not chunk.text.strip():
        # All chrome or metadata: its removed lines still count, nothing else.
        rows = {"removed_lines": removed_line_rows(chunk, ctx.run_id)}
        _shift(rows, 0, rs, 0, state.line_base)
        return rows
    sep = seam_separator(doc.raw_text, rs) if state.clean_parts else ""
    base = state.n_clean + len(sep)
    try:
        sdoc = next(iter(annotate(nlp, [chunk.text])))
    except Exception as exc:  # noqa: BLE001
        raise StageError("nlp", exc) from exc
    if state.context is None:
        state.context = Context(title=doc.title or "", year=doc.year)
        if doc.title:
            extractor.localities.from_title(state.context, doc.title)
    rows = document_rows(chunk, sdoc, matcher, finder, extractor, ctx.run_id, state.context)
    del sdoc
    rows.pop("documents")
    # Relations found again in a later chunk: one row, as `dedupe` gives in one text.
    kept = []
    for r in rows.get("relations", []):
        key = (r["relation"], r["head"], r["tail"], r["role"])
        if key not in state.relation_keys:
            state.relation_keys.add(key)
            kept.append(r)
    rows["relations"] = kept
    n_sent = len(rows.get("sentences", []))
    _shift(rows, base, rs, state.n_sentences, state.line_base)
    state.n_sentences += n_sent
    if sep:
        state.clean_parts.append(sep)
    state.clean_parts.append(chunk.text)
    state.n_clean = base + len(chunk.text)
    return rows


def _document_row(doc: Document, ctx: RunContext, state: ChunkState) -> dict[str, Any]:
    from pipeline.extract.rows import StageError, document_row

    text = "".join(state.clean_parts)
    state.clean_parts.clear()
    if not text.strip():
        raise StageError(
            "normalise",
            ValueError("nothing left after normalisation (only page chrome or metadata)"),
        )
    doc.text = text
    doc.normalised = None
    doc.flags = {**doc.flags, **state.flags}
    # A metadata line after the first chunk (a date, a source) fills the documents row as in an
    # unchunked run; the chunks before it were processed without it.
    fill_from_page(doc, state.metadata, credits=False, title=False)
    finish_credits(doc, state.credits)
    try:
        row = document_row(doc, ctx.run_id)
    except Exception as exc:  # noqa: BLE001
        raise StageError("documents", exc) from exc
    # The speaker columns the chunks' normalisation read (the whole text has none of its own).
    row["speaker"] = state.metadata.get("speaker")
    row["speaker_post"] = state.metadata.get("speaker_post")
    row["bylines"] = state.bylines or None
    return row


def finish_credits(doc: Document, credits: dict[str, list[str]]) -> None:
    for name in _CREDIT_FIELDS:
        if not getattr(doc, name) and credits.get(name):
            setattr(doc, name, "、".join(credits[name]))


def _shift(
    rows: dict[str, list[dict[str, Any]]],
    text_base: int,
    raw_base: int,
    sent_base: int,
    line_base: int,
) -> None:
    """Move a chunk's rows into the whole document (in place)."""
    for table in _SPAN_TABLES:
        for r in rows.get(table, ()):
            for f in _TEXT_FIELDS:
                r[f] += text_base
            for f in _RAW_FIELDS:
                r[f] += raw_base
            r["sent_id"] += sent_base
    for r in rows.get("formulation_usage", ()):
        r["gov_start"] += text_base
        r["gov_end"] += text_base
    for r in rows.get("removed_lines", ()):
        r["raw_start"] += raw_base
        r["raw_end"] += raw_base
        r["line"] += line_base


@dataclass
class HugeResult:
    """What became of one huge document (see `write_huge_document`)."""

    counts: dict[str, int] = field(default_factory=dict)  # rows written per table
    error: dict[str, Any] | None = None  # its errors row, when it failed
    stopped: bool = False  # a stop was asked between chunks: nothing written
    n_chars: int = 0


def write_huge_document(
    doc: Document,
    config: RunConfig,
    ctx: RunContext,
    writer: Any,  # write.DatasetWriter
    batch: int | str,
    home: str | None,
    models: tuple[Any, Any, Any, Any],
    should_stop: Callable[[], bool] = lambda: False,
    home_lock: Callable[[str], AbstractContextManager[Any]] | None = None,
) -> HugeResult:
    """Process a huge document chunk by chunk and stream its rows into the batch's part files
    (or, when it replaces an older version, into its `home` files under `home_lock(home)`), in
    whatever process reads it: the main process of a local run, or a Dask worker. A failure
    drops what was streamed and gives its errors row; `OSError`/`MemoryError` propagate (the
    environment failed). The document's text is freed once written."""
    from pipeline.extract.rows import StageError

    result = HugeResult()
    parts = writer.stream_batch(batch)
    stage = "process"
    try:
        for rows in iter_chunk_rows(doc, ctx, config.chunk_chars, models):
            if should_stop():
                parts.abort()  # the document is redone whole by the next run
                result.stopped = True
                return result
            for table, table_rows in rows.items():
                stage = "write"
                parts.write(table, table_rows)
                stage = "process"
                result.counts[table] = result.counts.get(table, 0) + len(table_rows)
        lock = home_lock(home) if home is not None and home_lock is not None else nullcontext()
        with lock:
            parts.commit([doc.doc_id], home)
    except (OSError, MemoryError):
        parts.abort()
        raise
    except Exception as exc:  # noqa: BLE001 - the document becomes an errors row
        parts.abort()
        if isinstance(exc, StageError):
            stage, exc = exc.stage, exc.cause
        result.counts = {}
        result.error = error_row(ctx.run_id, doc.source_file, doc.doc_id, stage, exc)
    result.n_chars = len(doc.text) if result.error is None else 0
    doc.raw_text = doc.text = ""
    return result
