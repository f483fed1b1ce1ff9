"""Huge documents, processed in chunks so that memory stays bounded whatever their size.

A document longer than `chunk_chars` raw characters is cut at sentence boundaries of its raw
text (`chunk_bounds`), and each chunk is normalised, annotated and extracted on its own exactly
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

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pipeline.core.document import Document
from pipeline.core.textutil import CLOSERS

# Default size above which a document is processed in chunks (raw characters). Big enough
# that no ordinary document (the longest congress report has ~70k characters) is ever cut, and
# small enough that one chunk's offset maps, spaCy Doc and rows stay in the tens of MB.
DEFAULT_CHUNK_CHARS = 300_000

# Where a chunk may end, best first: a sentence end followed by a line break (a paragraph
# end); any line break; a sentence end inside a line (。！？；… with its closing quotes);
# as a last resort a hard cut. Each is searched in the last WINDOW_FRACTION of the chunk.
WINDOW_FRACTION = 0.5
_RX_PARAGRAPH_END = re.compile(rf"[。！？!?；;…][{re.escape(CLOSERS)}]*[ \t\u3000]*\r?\n\s*")
_RX_LINE_END = re.compile(r"\n\s*")
_RX_SENTENCE_END = re.compile(rf"[。！？!?；;…]+[{re.escape(CLOSERS)}]*\s*")

# Row fields moved into the whole document, per kind of offset.
_TEXT_FIELDS = ("start", "end")
_RAW_FIELDS = ("raw_start", "raw_end")
_SPAN_TABLES = ("sentences", "entities", "formulations", "candidate_mentions", "relations")


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


def _separator(raw: str, cut: int) -> str:
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


_CREDIT_FIELDS = ("author", "photographer", "editor")


def _merge_page_facts(state: ChunkState, metadata: dict[str, str], flags: dict[str, Any]) -> None:
    # Metadata fields: the first value wins, as within one text (`metadata_line` setdefaults);
    # credits: every name, once, in order.
    for key, value in metadata.items():
        if key == "title":
            continue
        if key in _CREDIT_FIELDS:
            names = state.credits.setdefault(key, [])
            names.extend(n for n in value.split("、") if n and n not in names)
        else:
            state.metadata.setdefault(key, value)
    for key, value in flags.items():
        if isinstance(value, bool):
            state.flags[key] = bool(state.flags.get(key, False)) or value
        else:
            state.flags[key] = int(state.flags.get(key, 0)) + int(value)


def iter_chunk_rows(
    doc: Document, options: Any, chunk_chars: int, models: tuple[Any, Any, Any, Any]
) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Rows of a huge document, chunk by chunk, offsets already in the whole document; the
    last item holds the `documents` row. A failing chunk raises `StageError` (the caller drops
    what it streamed and writes an errors row: a document is written whole or not at all)."""

    nlp, matcher, finder, extractor = models
    tagger = nlp.get_pipe("tifa_ner") if "tifa_ner" in nlp.pipe_names else None
    if tagger is not None:
        tagger.carried_names = set()
    try:
        yield from _chunks(doc, options, chunk_chars, nlp, matcher, finder, extractor)
    finally:
        if tagger is not None:
            tagger.carried_names = None


def _chunks(
    doc: Document,
    options: Any,
    chunk_chars: int,
    nlp: Any,
    matcher: Any,
    finder: Any,
    extractor: Any,
) -> Iterator[dict[str, list[dict[str, Any]]]]:
    from pipeline.nlp.build import annotate
    from pipeline.normalise import normalise, normalise_title
    from pipeline.run.batch import StageError, document_rows

    boiler = options.boilerplate.for_group(doc.group)
    raw = doc.raw_text
    state = ChunkState()
    line_base = 0
    line_seen = 0
    title_set = False
    context = None
    for k, (rs, re_) in enumerate(chunk_bounds(raw, chunk_chars)):
        try:
            result = normalise(
                raw[rs:re_], boilerplate=boiler, title_hint=doc.title_raw if k == 0 else None
            )
        except Exception as exc:  # noqa: BLE001 - the caller records it
            raise StageError("normalise", exc) from exc
        if k == 0:
            # The top of the document: its title, metadata lines and dates (normalise_document).
            meta = result.metadata
            if doc.title:
                doc.title = normalise_title(doc.title)
            doc.title = doc.title or meta.get("title")
            title_set = True
        _merge_page_facts(state, result.metadata, result.flags)
        line_base += raw.count("\n", line_seen, rs)
        line_seen = rs
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
        if k == 0:
            _fill_from_page(doc, state)
            chunk.published_at, chunk.year = doc.published_at, doc.year
        state.n_chunks += 1
        if not result.text.strip():
            # All chrome or metadata: its removed lines still count, nothing else.
            from pipeline.run.batch import removed_line_rows

            rows = {"removed_lines": removed_line_rows(chunk, options.run_id)}
            _shift(rows, 0, rs, 0, line_base)
            yield rows
            continue
        sep = _separator(raw, rs) if state.clean_parts else ""
        base = state.n_clean + len(sep)
        try:
            sdoc = next(iter(annotate(nlp, [result.text])))
        except Exception as exc:  # noqa: BLE001
            raise StageError("nlp", exc) from exc
        if context is None:
            from pipeline.extract.relations import Context

            context = Context(title=doc.title or "", year=doc.year)
            if doc.title:
                extractor.localities.from_title(context, doc.title)
        rows = document_rows(chunk, sdoc, matcher, finder, extractor, options.run_id, context)
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
        _shift(rows, base, rs, state.n_sentences, line_base)
        state.n_sentences += n_sent
        if sep:
            state.clean_parts.append(sep)
        state.clean_parts.append(result.text)
        state.n_clean = base + len(result.text)
        yield rows
    assert title_set
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
    _fill_from_page(doc, state)
    finish_credits(doc, state.credits)
    from pipeline.run.batch import document_row

    try:
        row = document_row(doc, options.run_id)
    except Exception as exc:  # noqa: BLE001
        raise StageError("documents", exc) from exc
    yield {"documents": [row]}


def _fill_from_page(doc: Document, state: ChunkState) -> None:
    """Document fields the first chunk's page gives (as `stages.normalise_document`)."""
    meta = state.metadata
    doc.source = doc.source or meta.get("source")
    doc.contributor = doc.contributor or meta.get("contributor")
    if doc.published_at is None and meta.get("published_at"):
        doc.published_at = date.fromisoformat(meta["published_at"])
    if doc.date_problem is None and doc.published_at is None and meta.get("date_problem"):
        doc.date_problem = f"page header: {meta['date_problem']}"
    if doc.published_at is not None:
        doc.year = doc.published_at.year


def finish_credits(doc: Document, credits: dict[str, list[str]]) -> None:
    doc.author = doc.author or ("、".join(credits["author"]) if credits.get("author") else None)
    doc.photographer = doc.photographer or (
        "、".join(credits["photographer"]) if credits.get("photographer") else None
    )
    doc.editor = doc.editor or ("、".join(credits["editor"]) if credits.get("editor") else None)


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
    options: Any,
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
    from pipeline.run.batch import StageError, error_row

    result = HugeResult()
    parts = writer.stream_batch(batch)
    stage = "process"
    try:
        for rows in iter_chunk_rows(doc, options, options.chunk_chars, models):
            if should_stop():
                parts.abort()  # the document is redone whole by the next run
                result.stopped = True
                return result
            for table, table_rows in rows.items():
                stage = "write"
                parts.write(table, table_rows)
                stage = "process"
                result.counts[table] = result.counts.get(table, 0) + len(table_rows)
        if home is not None and home_lock is not None:
            with home_lock(home):
                parts.commit([doc.doc_id], home)
        else:
            parts.commit([doc.doc_id], home)
    except (OSError, MemoryError):
        parts.abort()
        raise
    except Exception as exc:  # noqa: BLE001 - the document becomes an errors row
        parts.abort()
        if isinstance(exc, StageError):
            stage, exc = exc.stage, exc.cause
        result.counts = {}
        result.error = error_row(options.run_id, doc.source_file, doc.doc_id, stage, exc)
    result.n_chars = len(doc.text) if result.error is None else 0
    doc.raw_text = doc.text = ""
    return result
