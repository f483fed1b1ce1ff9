"""The per-batch work: Documents in, rows for every batch table out.

`process_batch` is a pure function of its inputs plus models loaded once per process, so it runs
unchanged in the main process, in a process pool (`--workers N`) or on a Dask worker. A document
that fails in any stage becomes an errors row and the rest of the batch carries on.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from pipeline.core.document import Document
from pipeline.normalise.boilerplate import Boilerplate
from pipeline.run.config import RunConfig


@dataclass(frozen=True)
class RunContext:
    """What the batches of one run share besides its settings."""

    run_id: str = "adhoc"
    # Lines repeated across the documents of a site or file in this run (page boilerplate),
    # counted before the run and sent to every worker with the batches.
    boilerplate: Boilerplate = field(default_factory=Boilerplate)


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


def fill_from_page(
    doc: Document, meta: dict[str, Any], credits: bool = True, title: bool = True
) -> None:
    """Document fields the page states (title, source, date, credits) where the input did not.
    A huge document fills its credits itself, from every chunk (`huge.finish_credits`)."""
    from pipeline.normalise import normalise_title

    if title:
        if doc.title:
            doc.title = normalise_title(doc.title)
        doc.title = doc.title or meta.get("title")
    doc.source = doc.source or meta.get("source")
    if credits:
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


def normalise_document(doc: Document, boilerplate: frozenset[int] = frozenset()) -> Document:
    """Clean ``doc``'s text and fill what its page says about it (title, date, credits) where
    the input did not; ``boilerplate``: lines repeated across its group in this run."""
    # Imported on first use: a rerun whose documents are all unchanged never normalises.
    from pipeline.normalise import normalise

    result = normalise(doc.raw_text, boilerplate=boilerplate, title_hint=doc.title_raw)
    doc.text = result.text
    doc.normalised = result
    doc.flags = {**doc.flags, **result.flags}
    fill_from_page(doc, result.metadata)
    return doc


def load_models(config: RunConfig) -> tuple[Any, Any, Any, Any]:
    """(spaCy pipeline, formulation matcher, candidate finder, relation extractor), each built
    once per process; a worker calls this at start-up so its first batch is not slow."""
    from pipeline.extract.formulations import get_candidate_finder, get_matcher
    from pipeline.extract.relations import get_extractor
    from pipeline.nlp.build import get_nlp

    return (
        get_nlp(replace(config.nlp, lac_threads=config.lac_threads)),
        get_matcher(config.lexicon, config.nested_formulations, config.user_lexicon),
        get_candidate_finder(),
        get_extractor(),
    )


def process_batch(docs: list[Document], config: RunConfig, ctx: RunContext) -> BatchResult:
    return finish_batch(prepare_batch(docs, ctx), config, ctx)


@dataclass
class PreparedBatch:
    """A batch after normalisation: its errors so far, the documents left to analyse and the
    copies whose rows the story's canonical copy gives (not analysed: run/stories.py)."""

    result: BatchResult
    ready: list[Document]
    derived: list[Document] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return [d.text for d in self.ready]


def prepare_batch(docs: list[Document], ctx: RunContext) -> PreparedBatch:
    """Normalise a batch (the part of `process_batch` before the model)."""
    result = BatchResult()
    ready: list[Document] = []
    for doc in docs:
        try:
            normalise_document(doc, ctx.boilerplate.for_group(doc.group))
        except Exception as exc:  # noqa: BLE001 - any failure is recorded, never raised
            result.add(
                "errors", error_row(ctx.run_id, doc.source_file, doc.doc_id, "normalise", exc)
            )
            continue
        if not doc.text.strip():
            msg = "nothing left after normalisation (only page chrome or metadata)"
            result.add(
                "errors", error_row(ctx.run_id, doc.source_file, doc.doc_id, "normalise", msg)
            )
            continue
        ready.append(doc)
    derived = [d for d in ready if d.story is not None and d.story.derived]
    if derived:
        ready = [d for d in ready if d.story is None or not d.story.derived]
    return PreparedBatch(result, ready, derived)


def add_story_rows(doc: Document, rows: dict[str, list[dict[str, Any]]], run_id: str) -> None:
    """The story columns of `doc`'s documents row and its row of the story index."""
    from pipeline.run.stories import own_story

    story = doc.story or own_story(doc.doc_id)
    for row in rows.get("documents", ()):
        row.update(story.columns(doc.doc_id))
    rows["signatures"] = [story.signature_row(doc.doc_id, run_id)]


def derived_rows(doc: Document, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """The rows of a copy not run through the NLP: its own documents row (metadata, clean
    text, story columns), what cleaning removed from its page, and its signature."""
    from pipeline.extract.rows import document_row, removed_line_rows

    rows = {
        "removed_lines": removed_line_rows(doc, run_id),
        "documents": [document_row(doc, run_id)],
    }
    add_story_rows(doc, rows, run_id)
    return rows


def finish_batch(prepared: PreparedBatch, config: RunConfig, ctx: RunContext) -> BatchResult:
    """The model, the rules and the rows of a normalised batch."""
    from pipeline.extract.rows import StageError, document_rows
    from pipeline.nlp.build import annotate

    nlp, matcher, finder, extractor = load_models(config)
    result, ready = prepared.result, prepared.ready
    try:
        spacy_docs = list(annotate(nlp, prepared.texts))
    except Exception:  # noqa: BLE001 - isolate the document that breaks the batch
        spacy_docs = []
        for d in ready:
            try:
                spacy_docs.append(next(iter(annotate(nlp, [d.text]))))
            except Exception as exc:  # noqa: BLE001
                result.add("errors", error_row(ctx.run_id, d.source_file, d.doc_id, "nlp", exc))
                spacy_docs.append(None)

    for doc, sdoc in zip(ready, spacy_docs, strict=True):
        if sdoc is None:
            continue
        try:
            rows = document_rows(doc, sdoc, matcher, finder, extractor, ctx.run_id)
        except StageError as exc:
            result.add(
                "errors", error_row(ctx.run_id, doc.source_file, doc.doc_id, exc.stage, exc.cause)
            )
            continue
        add_story_rows(doc, rows, ctx.run_id)
        _add_rows(result, doc, rows)
    for doc in prepared.derived:
        try:
            rows = derived_rows(doc, ctx.run_id)
        except Exception as exc:  # noqa: BLE001 - any failure is recorded, never raised
            result.add("errors", error_row(ctx.run_id, doc.source_file, doc.doc_id, "rows", exc))
            continue
        _add_rows(result, doc, rows)
    return result


def _add_rows(result: BatchResult, doc: Document, rows: dict[str, list[dict[str, Any]]]) -> None:
    for table, table_rows in rows.items():
        result.rows.setdefault(table, []).extend(table_rows)
    result.n_documents += 1
    result.n_chars += len(doc.text)
