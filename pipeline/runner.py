"""Run the whole job: stream documents in, process batches (locally, in processes or on Dask),
write Parquet parts, rebuild the dashboard tables, record the run.

Memory stays flat: documents are read lazily and at most `2 × workers` batches are in flight.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline import __version__
from pipeline.boilerplate import Boilerplate, BoilerplateCounter
from pipeline.chunked import DEFAULT_CHUNK_CHARS
from pipeline.compact import (
    DEFAULT_COMPACT_ABOVE,
    DEFAULT_TARGET_BYTES,
    compact_locked,
    should_compact,
)
from pipeline.compact import recover as recover_compaction
from pipeline.document import Document
from pipeline.formulations import LEXICON_PATH
from pipeline.ingest import DEFAULT_MAX_DOC_BYTES, FieldMap, IngestError, iter_documents
from pipeline.lock import output_lock
from pipeline.stages import (
    BatchResult,
    PreparedBatch,
    StageOptions,
    error_row,
    finish_batch,
    load_models,
    prepare_batch,
    process_batch,
)
from pipeline.storage import is_url
from pipeline.write import (
    DatasetWriter,
    checkpoint,
    error_key,
    existing_documents,
    existing_error_keys,
    finish_replacements,
    pending_replacements,
    remove_duplicates,
    remove_interrupted_batches,
    safe_error_row,
)

# Largest batch (raw characters) when batches run in parallel: see `_run_locked`.
PARALLEL_BATCH_CHARS = 100_000


@dataclass
class RunSummary:
    run_id: str
    out_dir: Path | str
    n_documents: int = 0
    n_skipped: int = 0
    n_replaced: int = 0
    n_errors: int = 0
    n_chars: int = 0
    n_batches: int = 0
    n_interrupted_parts_removed: int = 0
    n_duplicates_removed: int = 0
    n_unfinished_replacements: int = 0
    # Documents whose interrupted replacement was finished from its journal's parts at start.
    n_replacements_finished: int = 0
    # Compactions a killed process left unfinished, finished or undone at start (compact.py).
    compactions_recovered: list[str] = field(default_factory=list)
    # The compaction after the batches (`compact_above`), when there was one.
    compaction: Any = None  # compact.CompactSummary
    # The holder recorded in a lock file a killed run left behind, when there was one.
    stale_lock: dict | None = None
    # Name of the signal (SIGINT/SIGTERM) that stopped the run early; None when it finished.
    interrupted: str | None = None
    derived_rows: dict[str, int] = field(default_factory=dict)
    rows_written: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    # UTF-8 size of the documents handled so far (processed or skipped), for progress and ETA.
    n_bytes_done: int = 0
    # Dashboard views and the nightly report, written after the runs row (see views/report.py).
    views_path: Path | None = None
    report_path: Path | None = None
    report_seconds: float = 0.0
    report_error: str | None = None
    # True when the run wrote nothing, so neither the views nor a report were rewritten.
    report_unchanged: bool = False
    # host:pid of each Dask worker that processed a partition.
    dask_workers: set[str] = field(default_factory=set)
    # Why no views or report were written at all (an output in an object store).
    views_skipped: str | None = None


def new_run_id() -> str:
    # Run ids sort by start time (the views find "tonight" and first-seen items by comparing
    # them), so they carry microseconds: two runs can start within one second (a rerun that
    # skips everything takes less). Ids of the older format (seconds only) still sort first.
    global _last_run_start
    now = max(datetime.now(UTC), _last_run_start + timedelta(microseconds=1))
    _last_run_start = now
    return now.strftime("%Y%m%dT%H%M%S%f") + "-" + uuid.uuid4().hex[:6]


_last_run_start = datetime.min.replace(tzinfo=UTC)


class StopOnSignal:
    """SIGINT (Ctrl-C) and SIGTERM ask the run to stop after the batch in flight; a second one
    stops it at once (the archive stays consistent either way: see write.py)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is not None:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.signum = signum

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


def make_batches(
    items: Iterable[Document | IngestError],
    batch_size: int,
    batch_chars: int,
    stop: StopOnSignal | None = None,
    chunk_chars: int | None = None,
) -> Iterator[tuple[int, list[Document], list[IngestError]]]:
    """(batch number, documents, ingest errors). A document longer than `chunk_chars` is a batch
    of its own (processed in chunks and streamed to disk: `pipeline/chunked.py`)."""
    docs: list[Document] = []
    errors: list[IngestError] = []
    chars = 0
    n = 0
    for item in items:
        if stop is not None and stop.requested:
            return
        if isinstance(item, IngestError):
            errors.append(item)
            continue
        if chunk_chars is not None and len(item.raw_text) > chunk_chars:
            if docs or errors:
                yield n, docs, errors
                n += 1
                docs, errors, chars = [], [], 0
            yield n, [item], []
            n += 1
            continue
        docs.append(item)
        chars += len(item.raw_text)
        if len(docs) >= batch_size or chars >= batch_chars:
            yield n, docs, errors
            n += 1
            docs, errors, chars = [], [], 0
    if (docs or errors) and not (stop is not None and stop.requested):
        yield n, docs, errors


def duplicate_doc_error(doc: Document) -> IngestError:
    return IngestError(
        doc.source_file,
        "DuplicateDocId",
        f"doc_id {doc.doc_id!r} already read in this run; the later copy is not used",
        doc_id=doc.doc_id,
    )


def count_boilerplate(
    read: Callable[[], Iterable[Document | IngestError]],
    needs_processing: Callable[[Document], bool] = lambda doc: True,
    stop: StopOnSignal | None = None,
    chunk_chars: int | None = None,
) -> Boilerplate:
    """Lines repeated across the documents of each site or file of the run (page boilerplate).

    A streaming pass before the run: the decision for one document depends on the others of
    its group, and must not depend on how documents fall into batches or workers. ``read``
    opens the input anew; when no document needs processing (a rerun over unchanged input)
    nothing is counted. A document longer than ``chunk_chars`` is read a chunk at a time, as
    it is processed (`pipeline/chunked.py`), so no whole-document copy is made here either.
    """
    if not any(isinstance(d, Document) and needs_processing(d) for d in read()):
        return Boilerplate()
    counter = BoilerplateCounter()
    for item in read():
        if stop is not None and stop.requested:
            break
        if isinstance(item, Document):
            counter.add(item.group, document_lines(item.raw_text, chunk_chars))
    return counter.result()


def document_lines(raw: str, chunk_chars: int | None) -> Iterable[str]:
    """The lines of a document for the boilerplate count; a document longer than
    `chunk_chars` is read a chunk at a time, as it is processed (`pipeline/chunked.py`), so no
    whole-document copy is made here either."""
    from pipeline.normalise import boilerplate_lines

    if chunk_chars is None or len(raw) <= chunk_chars:
        return boilerplate_lines(raw)
    from pipeline.chunked import chunk_bounds

    return (line for a, b in chunk_bounds(raw, chunk_chars) for line in boilerplate_lines(raw[a:b]))


def _watch_parent(parent_pid: int) -> None:
    """A worker exits when the run that started it is gone (even killed with SIGKILL)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="tifa-parent-watch", daemon=True).start()


def _init_worker(options: StageOptions, parent_pid: int) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # Ctrl-C reaches the whole process group: the main process decides what stops, not workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _watch_parent(parent_pid)
    load_models(options)


def _failed_batch(docs: list[Document], exc: BaseException, options: StageOptions) -> BatchResult:
    """Every document of a batch whose worker raised becomes an errors row (the run goes on)."""
    result = BatchResult()
    for doc in docs:
        result.add(
            "errors",
            error_row(options.run_id, doc.source_file, doc.doc_id, "process", exc),
        )
    return result


def run_pipeline(
    inputs: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    workers: int = 1,
    scheduler: str = "processes",
    dask_address: str | None = None,
    batch_size: int = 64,
    # Small enough that LAC's analysis of the next batch overlaps most of a run (`_run_serial`:
    # 150k beat 400k by 6% on the dev corpora, 100k and 60k batched LAC less well), large
    # enough that LAC gets thousands of sentences per call.
    batch_chars: int = 150_000,
    fields: FieldMap | None = None,
    lac_runner: str = "batched",
    ner: str = "model",
    ner_model: str | os.PathLike | None = None,
    tokenizer: str = "lac",
    pkuseg_model: str | os.PathLike | None = None,
    nested_formulations: bool = False,
    lexicon: str | os.PathLike | None = None,
    force: bool = False,
    on_progress: Callable[[int, int, int], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    report: bool = False,
    partition_bytes: int | None = None,
    compact_above: int | None = DEFAULT_COMPACT_ABOVE,
    compact_target_bytes: int = DEFAULT_TARGET_BYTES,
    chunk_chars: int = DEFAULT_CHUNK_CHARS,
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
) -> RunSummary:
    """Process every document under `inputs` into Parquet tables in `out_dir` (a path, or an
    fsspec URL such as s3://bucket/tifa: see storage.py).

    `scheduler="dask"` runs on a Dask cluster (`dask_address`, else a LocalCluster of `workers`
    processes) whose workers read `partition_bytes` of input each and write their own part files
    (see distributed.py).

    A document longer than `chunk_chars` characters is processed in chunks cut at sentence
    boundaries and its rows streamed to disk (`pipeline/chunked.py`), so memory stays bounded
    whatever its size; one larger than `max_doc_bytes` bytes is not read: it becomes an errors
    row (`DocumentTooLarge`) and the rest of its file is read.

    `force` reprocesses documents already in `out_dir` (after a lexicon or rule update), replacing
    their rows. `on_progress(n_docs, n_chars, n_errors)` is called after each batch is written,
    `on_bytes(n)` with the UTF-8 size of the documents handled so far. `report` also writes the
    HTML report (`pipeline/report.py`); `DIR/tifa.duckdb` (`pipeline/views.py`) is always written.
    After the batches, when a batch table has more than `compact_above` small part files (0 or
    None: never), they are merged into files of about `compact_target_bytes` (compact.py).
    Raises `pipeline.lock.OutputLocked` at once when another run is writing to `out_dir`.
    SIGINT/SIGTERM stop the run after the batch in flight (`summary.interrupted` says so).
    """
    out: Path | str = out_dir if is_url(out_dir) else Path(out_dir)  # type: ignore[assignment]
    if dask_address and scheduler != "dask":
        raise ValueError(
            "a Dask scheduler address was given but the scheduler is "
            f"{scheduler!r}: pass scheduler='dask' (tifa run --scheduler dask)"
        )
    with output_lock(out) as lock, StopOnSignal() as stop:
        summary = _run_locked(
            [Path(p) for p in inputs],
            out,
            stop=stop,
            workers=workers,
            scheduler=scheduler,
            dask_address=dask_address,
            batch_size=batch_size,
            batch_chars=batch_chars,
            fields=fields,
            lac_runner=lac_runner,
            ner=ner,
            ner_model=ner_model,
            tokenizer=tokenizer,
            pkuseg_model=pkuseg_model,
            nested_formulations=nested_formulations,
            lexicon=lexicon,
            force=force,
            on_progress=on_progress,
            on_bytes=on_bytes,
            report=report,
            partition_bytes=partition_bytes,
            compact_above=compact_above,
            compact_target_bytes=compact_target_bytes,
            chunk_chars=chunk_chars,
            max_doc_bytes=max_doc_bytes,
        )
        summary.stale_lock = lock.stale
        return summary


def _run_locked(
    inputs: list[Path],
    out: Path,
    *,
    stop: StopOnSignal,
    workers: int,
    scheduler: str,
    dask_address: str | None,
    batch_size: int,
    batch_chars: int,
    fields: FieldMap | None,
    lac_runner: str,
    ner: str,
    ner_model: str | os.PathLike | None,
    tokenizer: str,
    pkuseg_model: str | os.PathLike | None,
    nested_formulations: bool,
    lexicon: str | os.PathLike | None,
    force: bool,
    on_progress: Callable[[int, int, int], None] | None,
    on_bytes: Callable[[int], None] | None = None,
    report: bool = False,
    partition_bytes: int | None = None,
    compact_above: int | None = None,
    compact_target_bytes: int = DEFAULT_TARGET_BYTES,
    chunk_chars: int = 0,
    max_doc_bytes: int = 0,
) -> RunSummary:
    if chunk_chars < 1:
        raise ValueError("chunk_chars must be at least 1")
    if max_doc_bytes < 1:
        raise ValueError("max_doc_bytes must be at least 1")
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    run_id = new_run_id()
    summary = RunSummary(run_id=run_id, out_dir=out)
    writer = DatasetWriter(out, run_id)
    # First of all: a compaction a kill interrupted leaves a group's rows in its old files and
    # (after its commit) in the merged one. Everything below reads homes or deletes parts
    # without a marker, so the compaction is finished or undone before anything else.
    summary.compactions_recovered = recover_compaction(writer.store)
    summary.n_interrupted_parts_removed = remove_interrupted_batches(out)
    # Issue 25 hook: replacements a kill interrupted are finished from their journalled parts
    # before the archive is read, whatever tonight's input holds (write.finish_replacements).
    summary.n_replacements_finished = finish_replacements(out)
    existing, duplicates = existing_documents(out)
    if duplicates:
        summary.n_duplicates_removed = remove_duplicates(out, duplicates)
    # Replacements a killed run left half done are redone whatever the content hash says.
    unfinished, journals = pending_replacements(out)
    summary.n_unfinished_replacements = len(unfinished)
    # The errors table lists each distinct failure once (with the run that first saw it), so a
    # nightly rerun over the same broken file does not grow it.
    known_errors = existing_error_keys(out)
    exclude = [out] if writer.store.local else []  # the output is never read as input
    options = StageOptions(
        lac_runner=lac_runner,
        ner=ner,
        # Absolute: a Dask worker may run in another folder.
        ner_model=os.path.abspath(ner_model) if ner_model else None,
        tokenizer=tokenizer,
        pkuseg_model=os.path.abspath(pkuseg_model) if pkuseg_model else None,
        nested_formulations=nested_formulations,
        run_id=run_id,
        lexicon=os.path.abspath(lexicon or LEXICON_PATH),
        lac_threads=1 if (workers > 1 or scheduler == "dask") else None,
        chunk_chars=chunk_chars,
    )
    if scheduler == "dask":
        from pipeline.distributed import RunState, run_on_dask

        checkpoint("run.started")
        run_on_dask(
            inputs,
            writer.out if isinstance(writer.out, str) else os.path.abspath(writer.out),
            writer,
            options,
            RunState(existing, unfinished, known_errors, force),
            summary,
            fields=fields,
            workers=workers,
            address=dask_address,
            batch_size=batch_size,
            batch_chars=min(batch_chars, PARALLEL_BATCH_CHARS),
            stop=stop,
            exclude=exclude,
            on_progress=on_progress,
            on_bytes=on_bytes,
            partition_bytes=partition_bytes,
            max_doc_bytes=max_doc_bytes,
        )
        return _finish_run(
            writer, summary, journals, options, stop, started, t0, workers, report,
            compact_above, compact_target_bytes,
        )  # fmt: skip
    options = replace(
        options,
        boilerplate=count_boilerplate(
            lambda: iter_documents(inputs, fields, exclude=exclude, max_doc_bytes=max_doc_bytes),
            lambda doc: (
                force
                or doc.doc_id in unfinished
                or (prev := existing.get(doc.doc_id)) is None
                or prev.content_hash != doc.content_hash
            ),
            stop,
            chunk_chars,
        ),
    )
    checkpoint("run.started")

    seen: set[str] = set()
    homes: dict[str, str] = {}  # doc_id -> home of each document being replaced
    in_flight_bytes: dict[str, int] = {}  # doc_id -> UTF-8 size, until its batch is handled

    def admit(stream: Iterable[Document | IngestError]) -> Iterator[Document | IngestError]:
        for item in stream:
            if isinstance(item, IngestError):
                yield item
                continue
            if item.doc_id in seen:
                yield duplicate_doc_error(item)
                continue
            seen.add(item.doc_id)
            previous = existing.get(item.doc_id)
            if previous is not None:
                redo = force or item.doc_id in unfinished
                if previous.content_hash == item.content_hash and not redo:
                    summary.n_skipped += 1
                    summary.n_bytes_done += len(item.raw_text.encode("utf-8", "replace"))
                    if on_bytes:
                        on_bytes(summary.n_bytes_done)
                    continue
                homes[item.doc_id] = previous.home
            in_flight_bytes[item.doc_id] = len(item.raw_text.encode("utf-8", "replace"))
            yield item

    documents = admit(iter_documents(inputs, fields, exclude=exclude, max_doc_bytes=max_doc_bytes))
    if workers > 1:
        # Smaller batches keep every worker busy to the end (5 MB made 4 batches of 400k
        # characters: a worker finishing early idled while the other ran a whole batch); LAC
        # still gets thousands of sentences per call. Batching changes which part file holds a
        # document, not its rows.
        batch_chars = min(batch_chars, PARALLEL_BATCH_CHARS)
    all_batches = make_batches(documents, batch_size, batch_chars, stop, chunk_chars)

    def handle(batch_no: int, result: BatchResult, ingest_errors: list[IngestError]) -> None:
        rows = result.rows
        errors = rows.setdefault("errors", [])
        for err in ingest_errors:
            errors.append(
                error_row(
                    run_id, err.source_file, err.doc_id, err.stage, err.message, err.error_type
                )
            )
        errors = [safe_error_row(e) for e in errors]
        summary.n_errors += len(errors)
        fresh = [e for e in errors if error_key(e) not in known_errors]
        known_errors.update(error_key(e) for e in fresh)
        rows["errors"] = fresh
        isolated = writer.write_batch(batch_no, rows, homes)
        bad = {e["doc_id"] for e in isolated}
        summary.n_errors += len(isolated)
        for table, table_rows in rows.items():
            n = sum(1 for r in table_rows if table == "errors" or r.get("doc_id") not in bad)
            summary.rows_written[table] = summary.rows_written.get(table, 0) + n
        summary.rows_written["errors"] += len(isolated)
        written = [r["doc_id"] for r in rows.get("documents", []) if r["doc_id"] not in bad]
        summary.n_replaced += sum(1 for d in written if d in homes)
        summary.n_documents += len(written)
        summary.n_chars += result.n_chars
        summary.n_batches += 1
        for doc_id in [r["doc_id"] for r in rows.get("documents", [])] + [
            e["doc_id"] for e in errors + isolated
        ]:
            summary.n_bytes_done += in_flight_bytes.pop(doc_id, 0)
        checkpoint("batch.done")
        if on_progress:
            on_progress(summary.n_documents, summary.n_chars, summary.n_errors)
        if on_bytes:
            on_bytes(summary.n_bytes_done)

    def handle_huge(batch_no: int, doc: Document) -> None:
        """A huge document, chunk by chunk, in this process (never pickled to a worker), its
        rows streamed to the batch's part files; a failure drops them and is an errors row."""
        from pipeline.chunked import write_huge_document

        done = write_huge_document(
            doc,
            options,
            writer,
            batch_no,
            homes.get(doc.doc_id),
            load_models(options),
            should_stop=lambda: stop.requested,
        )
        if done.stopped:
            return
        if done.error is not None:
            result = BatchResult()
            result.add("errors", done.error)
            handle(batch_no, result, [])
            return
        summary.n_documents += 1
        summary.n_replaced += doc.doc_id in homes
        summary.n_chars += done.n_chars
        summary.n_batches += 1
        for table, n in done.counts.items():
            summary.rows_written[table] = summary.rows_written.get(table, 0) + n
        summary.n_bytes_done += in_flight_bytes.pop(doc.doc_id, 0)
        checkpoint("batch.done")
        if on_progress:
            on_progress(summary.n_documents, summary.n_chars, summary.n_errors)
        if on_bytes:
            on_bytes(summary.n_bytes_done)

    def small_batches() -> Iterator[tuple[int, list[Document], list[IngestError]]]:
        # Huge documents are handled here, in this process, as the schedulers pull batches.
        for batch_no, docs, errs in all_batches:
            if len(docs) == 1 and not errs and len(docs[0].raw_text) > chunk_chars:
                handle_huge(batch_no, docs[0])
            else:
                yield batch_no, docs, errs

    batches = small_batches()
    if workers <= 1:
        _run_serial(batches, options, handle, stop)
    else:
        _run_processes(batches, options, handle, workers, stop)
    return _finish_run(
            writer, summary, journals, options, stop, started, t0, workers, report,
            compact_above, compact_target_bytes,
        )  # fmt: skip


def _finish_run(
    writer: DatasetWriter,
    summary: RunSummary,
    journals: list[str],
    options: StageOptions,
    stop: StopOnSignal,
    started: datetime,
    t0: float,
    workers: int,
    report: bool,
    compact_above: int | None,
    compact_target_bytes: int,
) -> RunSummary:
    """After the batches: journals, compaction, derived tables, the runs row, views, report."""
    out = writer.store.root if writer.store.local else None
    if stop.requested:
        summary.interrupted = signal.Signals(stop.signum).name
        summary.seconds = time.perf_counter() - t0
        return summary
    for journal in journals:  # every document they named has been redone
        writer.store.remove(journal)
    checkpoint("aggregate.start")
    writer.ensure_tables()
    # Merge small part files before the derived tables and views are built over them (their
    # fingerprint then covers the merged files, so the next run does not rebuild them again).
    if should_compact(writer.store, compact_above, compact_target_bytes):
        summary.compaction = compact_locked(writer.store, compact_target_bytes, repair=False)
    from pipeline import derived_state

    current = None
    if out is not None:
        fingerprint = derived_state.inputs_fingerprint(out, options.lexicon)
        current = derived_state.up_to_date(out, fingerprint)
    if current is not None:  # nothing they are built from changed: the same tables again
        summary.derived_rows = current
    else:
        # Imported here: DuckDB and the person rules are not needed before the last batch.
        from pipeline.aggregate import rebuild_derived_tables

        summary.derived_rows = rebuild_derived_tables(writer.store, writer, options.lexicon)
        if out is not None:
            derived_state.record(out, fingerprint, summary.derived_rows)
    summary.seconds = time.perf_counter() - t0
    checkpoint("runs.start")
    _write_run_row(writer, summary, started, workers)
    if out is None:
        # tifa.duckdb and the report are local files (a DuckDB database cannot live in an
        # object store); the tables are read from the URL directly.
        summary.views_skipped = "the output is an object store"
        return summary
    unchanged = (
        current is not None
        and summary.n_documents == 0
        and summary.n_errors == 0
        and (out / "tifa.duckdb").exists()
    )
    if unchanged:
        # A rerun that wrote nothing: the views still point at the same tables and the last
        # report still tells the night's news (the runs table logs this run).
        summary.report_unchanged = True
    else:
        _write_views_and_report(out, summary, report)
    return summary


def _write_views_and_report(out: Path, summary: RunSummary, report: bool) -> None:
    """Dashboard views and the HTML report, after the runs row: they describe a complete run.
    The night's tables are already written, so a failing report is recorded in the summary (the
    CLI warns) instead of failing the run."""
    from pipeline.report import remove_temp_files, write_report
    from pipeline.views import write_views

    checkpoint("views.start")
    summary.views_path = write_views(out)
    remove_temp_files(out)
    if report:
        checkpoint("report.start")
        t0 = time.perf_counter()
        try:
            summary.report_path = write_report(out)
        except (OSError, MemoryError):
            raise  # the environment failed: the CLI says so and exits 1, like for the tables
        except Exception as exc:  # noqa: BLE001 - a report bug must not lose the night's run
            summary.report_error = f"{type(exc).__name__}: {exc}"
        summary.report_seconds = time.perf_counter() - t0


# Native thread pools a worker must not start: N workers on N cores each run single-threaded
# (ONNX Runtime's own threads are set by the LAC runner). Read when a library is imported, so
# they are set in the environment the workers are spawned with, not inside the worker.
_WORKER_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _run_serial(batches, options, handle, stop: StopOnSignal) -> None:  # noqa: ANN001
    """One process, batch after batch. The next batch is read and normalised before the
    current one is finished, and LAC analyses it in a background thread meanwhile
    (`LACTokenizer.analyse_ahead`): the CRF, the rules and the writing are single-threaded, so
    without this one core idled through them. Batches are written in order, as before; after
    a stop request the batch read ahead is dropped (never written: the next run does it)."""
    tokenizer = None
    pending: tuple[int, PreparedBatch | None, list] | None = None

    def finish(batch_no: int, prepared: PreparedBatch | None, errs: list) -> None:
        result = finish_batch(prepared, options) if prepared is not None else BatchResult()
        handle(batch_no, result, errs)

    try:
        for batch_no, docs, errs in batches:
            prepared = prepare_batch(docs, options) if docs else None
            if prepared is not None and prepared.ready:
                if tokenizer is None:  # loaded on the first batch: a rerun that skips all
                    tokenizer = load_models(options)[0].tokenizer  # never loads the models
                if options.lac_threads is None and hasattr(tokenizer, "analyse_ahead"):
                    tokenizer.analyse_ahead(prepared.texts)
            if pending is not None:
                finish(*pending)
            pending = (batch_no, prepared, errs)
            if stop.requested:
                return
        if pending is not None and not stop.requested:
            finish(*pending)
    finally:
        if tokenizer is not None and hasattr(tokenizer, "forget_ahead"):
            tokenizer.forget_ahead()


def _run_processes(batches, options, handle, workers: int, stop: StopOnSignal) -> None:  # noqa: ANN001
    saved = {var: os.environ.get(var) for var in _WORKER_THREAD_VARS}
    for var in _WORKER_THREAD_VARS:
        os.environ.setdefault(var, "1")
    try:
        _run_pool(batches, options, handle, workers, stop)
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _run_pool(batches, options, handle, workers: int, stop: StopOnSignal) -> None:  # noqa: ANN001
    # `spawn`: workers inherit neither the output lock nor a copy of the parent's memory.
    in_flight: dict[Future, tuple[int, list[Document], list[IngestError]]] = {}
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(options, os.getpid()),
    )
    try:
        for batch_no, docs, errs in batches:
            while len(in_flight) >= 2 * workers:
                _drain(in_flight, handle, options)
            in_flight[pool.submit(process_batch, docs, options)] = (batch_no, docs, errs)
        if stop.requested:  # finish the batches already running, drop the queued ones
            for fut in list(in_flight):
                if fut.cancel():
                    del in_flight[fut]
        while in_flight:
            _drain(in_flight, handle, options)
    except BaseException:
        for proc in list((pool._processes or {}).values()):  # noqa: SLF001 - no public API
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _drain(in_flight: dict, handle, options: StageOptions) -> None:  # noqa: ANN001
    done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
    for fut in sorted(done, key=lambda f: in_flight[f][0]):
        batch_no, docs, errs = in_flight.pop(fut)
        try:
            result = fut.result()
        except BrokenProcessPool:
            raise
        except Exception as exc:  # noqa: BLE001 - the batch's documents become errors rows
            result = _failed_batch(docs, exc, options)
        handle(batch_no, result, errs)


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

    writer.store.write_parquet(
        pa.Table.from_pylist([row], schema=RUNS), f"runs/part-{summary.run_id}.parquet"
    )
