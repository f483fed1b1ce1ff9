"""Run the whole job: stream documents in, process batches (locally, in processes or on Dask),
write Parquet parts, rebuild the dashboard tables, record the run.

Memory stays flat: documents are read lazily and at most `2 × workers` batches are in flight.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline import __version__
from pipeline.aggregate import rebuild_derived_tables
from pipeline.document import Document
from pipeline.formulations import LEXICON_PATH
from pipeline.ingest import FieldMap, IngestError, iter_documents
from pipeline.stages import BatchResult, StageOptions, error_row, load_models, process_batch
from pipeline.write import (
    DatasetWriter,
    error_key,
    existing_documents,
    existing_error_keys,
    remove_documents,
    remove_interrupted_batches,
    write_table_atomic,
)


@dataclass
class RunSummary:
    run_id: str
    out_dir: Path
    n_documents: int = 0
    n_skipped: int = 0
    n_replaced: int = 0
    n_errors: int = 0
    n_chars: int = 0
    n_interrupted_parts_removed: int = 0
    derived_rows: dict[str, int] = field(default_factory=dict)
    rows_written: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def _batches(
    items: Iterable[Document | IngestError],
    batch_size: int,
    batch_chars: int,
) -> Iterator[tuple[list[Document], list[IngestError]]]:
    docs: list[Document] = []
    errors: list[IngestError] = []
    chars = 0
    for item in items:
        if isinstance(item, IngestError):
            errors.append(item)
            continue
        docs.append(item)
        chars += len(item.raw_text)
        if len(docs) >= batch_size or chars >= batch_chars:
            yield docs, errors
            docs, errors, chars = [], [], 0
    if docs or errors:
        yield docs, errors


def _init_worker(options: StageOptions) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    load_models(options)


def run_pipeline(
    inputs: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    workers: int = 1,
    scheduler: str = "processes",
    dask_address: str | None = None,
    batch_size: int = 64,
    batch_chars: int = 400_000,
    fields: FieldMap | None = None,
    lac_runner: str = "batched",
    nested_formulations: bool = False,
    lexicon: str | os.PathLike | None = None,
    force: bool = False,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> RunSummary:
    """Process every document under `inputs` into Parquet tables in `out_dir`.

    `force` reprocesses documents already in `out_dir` (after a lexicon or rule update), replacing
    their rows. `on_progress(n_docs, n_chars, n_errors)` is called after each batch is written.
    """
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    out = Path(out_dir)
    run_id = new_run_id()
    summary = RunSummary(run_id=run_id, out_dir=out)
    writer = DatasetWriter(out, run_id)
    summary.n_interrupted_parts_removed = remove_interrupted_batches(out)
    existing = existing_documents(out)
    # The errors table lists each distinct failure once (with the run that first saw it), so a
    # nightly rerun over the same broken file does not grow it.
    known_errors = existing_error_keys(out)
    options = StageOptions(
        lac_runner=lac_runner,
        nested_formulations=nested_formulations,
        run_id=run_id,
        lexicon=str(lexicon or LEXICON_PATH),
        lac_threads=1 if (workers > 1 or scheduler == "dask") else None,
    )

    seen: set[str] = set()
    replaced: set[str] = set()

    def admit(stream: Iterable[Document | IngestError]) -> Iterator[Document | IngestError]:
        for item in stream:
            if isinstance(item, IngestError):
                yield item
                continue
            if item.doc_id in seen:
                yield IngestError(
                    item.source_file,
                    "DuplicateDocId",
                    f"doc_id {item.doc_id!r} already read in this run; the later copy is not used",
                    doc_id=item.doc_id,
                )
                continue
            seen.add(item.doc_id)
            previous = existing.get(item.doc_id)
            if previous == item.content_hash and not force:
                summary.n_skipped += 1
                continue
            if previous is not None:
                replaced.add(item.doc_id)
            yield item

    batches = _batches(admit(iter_documents(inputs, fields)), batch_size, batch_chars)

    def handle(batch_no: int, result: BatchResult, ingest_errors: list[IngestError]) -> None:
        rows = result.rows
        for err in ingest_errors:
            rows.setdefault("errors", []).append(
                error_row(
                    run_id, err.source_file, err.doc_id, err.stage, err.message, err.error_type
                )
            )
        errors = rows.get("errors", [])
        summary.n_errors += len(errors)
        if errors:
            fresh = [e for e in errors if error_key(e) not in known_errors]
            known_errors.update(error_key(e) for e in fresh)
            rows["errors"] = fresh
        writer.write_batch(batch_no, rows)
        for table, table_rows in rows.items():
            summary.rows_written[table] = summary.rows_written.get(table, 0) + len(table_rows)
        summary.n_documents += result.n_documents
        summary.n_chars += result.n_chars
        if on_progress:
            on_progress(summary.n_documents, summary.n_chars, summary.n_errors)

    if workers <= 1 and scheduler != "dask":
        for batch_no, (docs, errs) in enumerate(batches):
            handle(batch_no, process_batch(docs, options) if docs else BatchResult(), errs)
    elif scheduler == "dask":
        _run_dask(batches, options, handle, workers, dask_address)
    else:
        _run_processes(batches, options, handle, workers)

    summary.n_replaced = len(replaced)
    if replaced:
        remove_documents(out, replaced, keep_run_id=run_id)
    writer.ensure_tables()
    summary.derived_rows = rebuild_derived_tables(out, writer, options.lexicon)
    summary.seconds = time.perf_counter() - t0
    _write_run_row(writer, summary, started, workers)
    return summary


def _run_processes(batches, options, handle, workers: int) -> None:  # noqa: ANN001
    in_flight: dict[Future, tuple[int, list[IngestError]]] = {}
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_init_worker, initargs=(options,)
    ) as pool:
        for batch_no, (docs, errs) in enumerate(batches):
            if len(in_flight) >= 2 * workers:
                _drain(in_flight, handle)
            in_flight[pool.submit(process_batch, docs, options)] = (batch_no, errs)
        while in_flight:
            _drain(in_flight, handle)


def _drain(in_flight: dict, handle) -> None:  # noqa: ANN001
    done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
    for fut in done:
        batch_no, errs = in_flight.pop(fut)
        handle(batch_no, fut.result(), errs)


def _run_dask(batches, options, handle, workers: int, address: str | None) -> None:  # noqa: ANN001
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if address:
        client = Client(address)
    else:
        cluster = LocalCluster(
            n_workers=max(workers, 1), threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    try:
        pending = as_completed()
        meta: dict[str, tuple[int, list[IngestError]]] = {}
        n_in_flight = 0
        limit = 2 * max(workers, 1)
        for batch_no, (docs, errs) in enumerate(batches):
            fut = client.submit(process_batch, docs, options, pure=False)
            meta[fut.key] = (batch_no, errs)
            pending.add(fut)
            n_in_flight += 1
            while n_in_flight >= limit:
                fut = next(pending)
                n_in_flight -= 1
                batch_no_done, errs_done = meta.pop(fut.key)
                handle(batch_no_done, fut.result(), errs_done)
        for fut in pending:
            batch_no_done, errs_done = meta.pop(fut.key)
            handle(batch_no_done, fut.result(), errs_done)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _write_run_row(
    writer: DatasetWriter, summary: RunSummary, started: datetime, workers: int
) -> None:
    row: dict[str, Any] = {
        "run_id": summary.run_id,
        "started_at": started,
        "finished_at": datetime.now(UTC),
        "n_documents": summary.n_documents,
        "n_skipped": summary.n_skipped,
        "n_replaced": summary.n_replaced,
        "n_errors": summary.n_errors,
        "n_chars": summary.n_chars,
        "workers": workers,
        "version": __version__,
    }
    from pipeline.schema import RUNS

    write_table_atomic(
        pa.Table.from_pylist([row], schema=RUNS),
        writer.out / "runs" / f"part-{summary.run_id}.parquet",
    )
