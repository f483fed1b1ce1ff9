"""The one run loop: admitted documents in, batches processed, written and counted.

Every executor runs this loop. A local run runs it once over the whole input, its batches
processed in this process (`executors.serially`) or in a process pool (`executors.in_pool`); a
Dask run runs it on each worker over that worker's partition (`dask.process_partition`). What
differs is only where batches are processed (the `process` strategy) and where rows go (the
`Sink`): a local sink writes replacements in place and each distinct failure once, a worker's
sink sends replacements and errors back to the driver. A huge document is a step of the loop:
processed chunk by chunk and streamed to its part files where it is read (`huge.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.core.document import Document
from pipeline.io.ingest import IngestError
from pipeline.io.write import DatasetWriter, build_tables, error_key, safe_error_row
from pipeline.run.accounting import Outcome
from pipeline.run.admission import utf8_size
from pipeline.run.batch import BatchResult, RunContext, error_row, load_models
from pipeline.run.config import RunConfig
from pipeline.run.huge import HugeResult, write_huge_document


@dataclass
class Batch:
    key: int | str  # the batch's number in a local run, "p<partition>-<n>" on Dask
    docs: list[Document]
    errors: list[IngestError] = field(default_factory=list)
    n_bytes: int = 0  # UTF-8 size of its documents (progress)


def make_batches(
    items: Iterable[Document | IngestError],
    config: RunConfig,
    should_stop: Callable[[], bool] = lambda: False,
    key: Callable[[int], int | str] = lambda n: n,
) -> Iterator[Batch]:
    """Batches of at most `batch_size` documents or `batch_chars` characters, ingest errors
    riding with the documents read beside them. A document longer than `chunk_chars` is a
    batch of its own (processed in chunks and streamed to disk: `huge.py`)."""
    limit = config.run_batch_chars
    batch = Batch(key(0), [])
    chars = n = 0
    for item in items:
        if should_stop():
            return
        if isinstance(item, IngestError):
            batch.errors.append(item)
            continue
        if len(item.raw_text) > config.chunk_chars:
            if batch.docs or batch.errors:
                yield batch
                n += 1
            yield Batch(key(n), [item], [], utf8_size(item))
            n += 1
            batch, chars = Batch(key(n), []), 0
            continue
        batch.docs.append(item)
        batch.n_bytes += utf8_size(item)
        chars += len(item.raw_text)
        if len(batch.docs) >= config.batch_size or chars >= limit:
            yield batch
            n += 1
            batch, chars = Batch(key(n), []), 0
    if (batch.docs or batch.errors) and not should_stop():
        yield batch


def is_huge(batch: Batch, config: RunConfig) -> bool:
    return (
        len(batch.docs) == 1
        and not batch.errors
        and len(batch.docs[0].raw_text) > config.chunk_chars
    )


class Sink(Protocol):
    """Where a processed batch goes, and what came of it."""

    def write(self, batch: Batch, result: BatchResult) -> Outcome: ...

    def write_huge(self, batch: Batch, should_stop: Callable[[], bool]) -> Outcome | None: ...


# Where batches are processed: batches in, (batch, result) out, in the order they are written.
Process = Callable[[Iterator[Batch]], Iterator[tuple[Batch, BatchResult]]]


def run_batches(
    items: Iterable[Document | IngestError],
    config: RunConfig,
    sink: Sink,
    process: Process,
    count: Callable[[Outcome], None],
    should_stop: Callable[[], bool] = lambda: False,
    key: Callable[[int], int | str] = lambda n: n,
) -> None:
    """The loop: `items` (admitted documents and ingest errors) batched, each batch processed
    by `process` and written by `sink`, every outcome handed to `count`."""

    def small(batches: Iterator[Batch]) -> Iterator[Batch]:
        # Huge documents are handled here, where they are read, as `process` pulls batches.
        for batch in batches:
            if is_huge(batch, config):
                outcome = sink.write_huge(batch, should_stop)
                if outcome is not None:
                    count(outcome)
            else:
                yield batch

    for batch, result in process(small(make_batches(items, config, should_stop, key))):
        count(sink.write(batch, result))


def ingest_error_rows(batch: Batch, run_id: str) -> list[dict[str, Any]]:
    return [
        error_row(run_id, e.source_file, e.doc_id, e.stage, e.message, e.error_type)
        for e in batch.errors
    ]


class _Sink:
    """What both sinks share: the writer, the settings, the homes of replaced documents, and
    a huge document streamed to its part files where it is read."""

    # Held while a huge document's replacement rewrites its home file (None: no one to share
    # the file with in this process).
    home_lock: Callable[[str], Any] | None = None

    def __init__(
        self, writer: DatasetWriter, config: RunConfig, ctx: RunContext, homes: dict[str, str]
    ) -> None:
        self.writer, self.config, self.ctx, self.homes = writer, config, ctx, homes

    def _write_huge(
        self, batch: Batch, should_stop: Callable[[], bool]
    ) -> tuple[HugeResult, Outcome]:
        """The document written chunk by chunk, and the outcome if it succeeded."""
        doc = batch.docs[0]
        done = write_huge_document(
            doc,
            self.config,
            self.ctx,
            self.writer,
            batch.key,
            self.homes.get(doc.doc_id),
            load_models(self.config),
            should_stop=should_stop,
            home_lock=self.home_lock,
        )
        out = Outcome(n_documents=1, n_chars=done.n_chars, n_batches=1, n_bytes=batch.n_bytes)
        out.n_replaced = int(doc.doc_id in self.homes)
        for table, n in done.counts.items():
            out.count_rows(table, n)
        return done, out


class LocalSink(_Sink):
    """A local run's sink: batches written by this process, a changed document's rows swapped
    into its home files, each distinct failure written once (`known_errors`, shared with the
    errors already in the output)."""

    def __init__(
        self,
        writer: DatasetWriter,
        config: RunConfig,
        ctx: RunContext,
        homes: dict[str, str],
        known_errors: set[tuple[Any, ...]],
    ) -> None:
        super().__init__(writer, config, ctx, homes)
        self.known_errors = known_errors

    def write(self, batch: Batch, result: BatchResult) -> Outcome:
        rows = result.rows
        errors = rows.get("errors", []) + ingest_error_rows(batch, self.ctx.run_id)
        errors = [safe_error_row(e) for e in errors]
        out = Outcome(
            n_errors=len(errors), n_chars=result.n_chars, n_batches=1, n_bytes=batch.n_bytes
        )
        fresh = [e for e in errors if error_key(e) not in self.known_errors]
        self.known_errors.update(error_key(e) for e in fresh)
        rows["errors"] = fresh
        isolated = self.writer.write_batch(batch.key, rows, self.homes)
        bad = {e["doc_id"] for e in isolated}
        out.n_errors += len(isolated)
        for table, table_rows in rows.items():
            n = sum(1 for r in table_rows if table == "errors" or r.get("doc_id") not in bad)
            out.count_rows(table, n)
        out.count_rows("errors", len(isolated))
        written = [r["doc_id"] for r in rows.get("documents", []) if r["doc_id"] not in bad]
        out.n_replaced = sum(1 for d in written if d in self.homes)
        out.n_documents = len(written)
        return out

    def write_huge(self, batch: Batch, should_stop: Callable[[], bool]) -> Outcome | None:
        """A huge document, chunk by chunk, in this process (never pickled to a worker), its
        rows streamed to the batch's part files; a failure drops them and is an errors row."""
        done, out = self._write_huge(batch, should_stop)
        if done.stopped:
            return None
        if done.error is not None:
            return self.write(batch, BatchResult(rows={"errors": [done.error]}))
        return out


class WorkerSink(_Sink):
    """A Dask worker's sink: new documents written straight into the output; the rows of
    documents being replaced, and every errors row, sent back to the driver (a replacement
    rewrites a home file another worker may share; the driver keeps the errors table free of
    repeats). A huge document is written here, a replacement under its home file's lock."""

    def __init__(
        self,
        writer: DatasetWriter,
        config: RunConfig,
        ctx: RunContext,
        homes: dict[str, str],
        home_lock: Callable[[str], Any],
    ) -> None:
        super().__init__(writer, config, ctx, homes)
        self.home_lock = home_lock

    def write(self, batch: Batch, result: BatchResult) -> Outcome:
        run_id = self.ctx.run_id
        rows = result.rows
        errors = rows.pop("errors", []) + ingest_error_rows(batch, run_id)
        out = Outcome(n_chars=result.n_chars, n_batches=1, n_bytes=batch.n_bytes)
        moving = {t: [r for r in rs if r.get("doc_id") in self.homes] for t, rs in rows.items()}
        if any(moving.values()):
            rows = {
                t: [r for r in rs if r.get("doc_id") not in self.homes] for t, rs in rows.items()
            }
            tables, isolated = build_tables(moving, run_id)
            tables.pop("errors", None)
            errors += isolated
            out.replaced.append(tables)
        tables, isolated = build_tables(rows, run_id)
        tables.pop("errors", None)
        errors += isolated
        self.writer.write_tables(batch.key, tables)
        for table, data in tables.items():
            out.count_rows(table, data.num_rows)
        if "documents" in tables:
            out.n_documents += tables["documents"].num_rows
        out.errors = [safe_error_row(e) for e in errors]
        out.n_errors = len(out.errors)
        return out

    def write_huge(self, batch: Batch, should_stop: Callable[[], bool]) -> Outcome | None:
        done, out = self._write_huge(batch, should_stop)
        if done.error is not None:
            error = safe_error_row(done.error)
            return Outcome(n_errors=1, errors=[error], n_bytes=batch.n_bytes)
        if done.stopped:
            return Outcome(stopped=True)
        return out
