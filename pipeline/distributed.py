"""Dask runs in which the workers do the I/O: each reads its own part of the input and writes
its own part files and markers straight into the output; the driver plans, decides, tracks and
aggregates, and never reads a document's text.

The input is cut into partitions: small files grouped up to a target size, large .jsonl and .csv
files cut into byte ranges (`ingest.read_jsonl_range`, `ingest.read_csv_range`). Then three maps
over the partitions:

1. *cuts*: each .jsonl byte range counts its newlines (bytes only), so every range knows its first
   line number and records without an id get the ids a local run gives them (`<stem>-<line>`);
   a large .csv file is parsed once without building documents to find record starts
   (`ingest.csv_cut_points`: a quoted field may hold newlines), which gives its ranges with their
   first line and record numbers;
2. *survey*: per document its id, content hash and size, and the partition's page-boilerplate
   line counts. From the surveys, in input order, the driver decides exactly what a local run
   decides (skip unchanged, refuse a doc_id read twice, replace changed) and merges the
   boilerplate counts;
3. *process*: each worker re-reads its partition, runs the stages batch by batch and writes each
   batch's part files and marker itself. Only counts, errors rows (the driver keeps the errors
   table free of repeats) and the rows of documents being *replaced* come back: a replacement
   rewrites the document's existing home file, which another worker's replacement may share, so
   the driver does those (a changed document is rare; one writer per home file).

Output may be a local or shared path, or an fsspec URL (`s3://…`, see storage.py). Input paths
must be readable by the workers under the same absolute name (a shared mount on a real cluster).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline.boilerplate import BoilerplateCounter
from pipeline.document import Document
from pipeline.ingest import (
    DEFAULT_MAX_DOC_BYTES,
    FieldMap,
    IngestError,
    csv_cut_points,
    iter_inputs,
    read_input_file,
)
from pipeline.stages import BatchResult, StageOptions, error_row, process_batch
from pipeline.write import DatasetWriter, build_tables, error_key, safe_error_row

# Bytes of input per partition: large enough that a partition is many batches of the model
# (start-up per task is small), small enough that two workers share a 20 MB night evenly and a
# stop request waits for little.
PARTITION_BYTES = 4 << 20


@dataclass(frozen=True)
class Partition:
    index: int
    # Input files as the run names them (what `source_file` records) and as workers open them.
    names: tuple[str, ...]
    paths: tuple[str, ...]
    n_bytes: int = 0
    # A byte range [start, end) of one large .jsonl or .csv file; None: the files whole.
    start: int | None = None
    end: int | None = None
    lines_before: int = 0
    records_before: int = 0  # .csv: the records before `start` (ids of records without one)
    # A large .csv file, still whole: cut into ranges of about this size once its record
    # starts are known (`_cut_ranges`).
    cut_bytes: int = 0

    @property
    def label(self) -> str:
        if self.start is None:
            return self.names[0] if len(self.names) == 1 else f"{len(self.names)} files"
        return f"{self.names[0]} bytes {self.start}–{self.end}"


def plan_partitions(
    inputs: Iterable[str | os.PathLike],
    exclude: Iterable[str | os.PathLike] = (),
    target_bytes: int | None = PARTITION_BYTES,
    n_workers: int = 1,
    follow_symlinks: bool = False,
) -> tuple[list[Partition], list[IngestError]]:
    """Partitions of the input files, in the order a local run reads them (file listing only),
    and the problems met while listing (unreadable folders, broken links…).

    `target_bytes` None sizes partitions for `n_workers`: about eight per worker (so that the
    last ones to finish leave no worker idle for long), between 256 KB and PARTITION_BYTES."""
    files: list[tuple[Path, int]] = []
    problems: list[IngestError] = []
    for item in iter_inputs(inputs, exclude, follow_symlinks):
        if isinstance(item, IngestError):
            problems.append(item)
            continue
        try:
            files.append((item, item.stat().st_size))
        except OSError:
            files.append((item, 0))  # the worker reading it reports why
    if target_bytes is None:
        total = sum(size for _, size in files)
        target_bytes = max(256 << 10, min(PARTITION_BYTES, total // (8 * max(n_workers, 1))))
    parts: list[Partition] = []
    names: list[str] = []
    size = 0

    def flush() -> None:
        nonlocal names, size
        if names:
            paths = tuple(os.path.abspath(n) for n in names)
            parts.append(Partition(len(parts), tuple(names), paths, size))
        names, size = [], 0

    for item, n_bytes in files:
        if item.suffix.lower() == ".jsonl" and n_bytes > target_bytes:
            flush()
            n = -(-n_bytes // target_bytes)
            for k in range(n):
                start, end = n_bytes * k // n, n_bytes * (k + 1) // n
                parts.append(
                    Partition(
                        len(parts),
                        (str(item),),
                        (os.path.abspath(item),),
                        end - start,
                        start,
                        end,
                    )
                )
            continue
        if item.suffix.lower() == ".csv" and n_bytes > target_bytes:
            flush()
            path = os.path.abspath(item)
            parts.append(
                Partition(len(parts), (str(item),), (path,), n_bytes, cut_bytes=target_bytes)
            )
            continue
        names.append(str(item))
        size += n_bytes
        if size >= target_bytes:
            flush()
    flush()
    return parts, problems


def read_partition(
    part: Partition, fields: FieldMap | None, max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES
) -> Iterator[Document | IngestError]:
    """The documents of a partition, named as the run names its files."""
    shown = dict(zip(part.paths, part.names, strict=True))
    for path in part.paths:
        byte_range = None
        if part.start is not None:
            byte_range = (part.start, part.end, part.lines_before, part.records_before)
        for item in read_input_file(Path(path), fields, byte_range, max_doc_bytes=max_doc_bytes):
            item.source_file = shown.get(item.source_file, item.source_file)
            yield item


# -- worker tasks ------------------------------------------------------------------------------


def count_newlines(part: Partition) -> int:
    """Line breaks in the partition's byte range as a whole-file read counts them: every LF,
    and every CR not followed by an LF (a lone CR ends a line too; a CRLF cut by the range's
    end is counted once, by its LF)."""
    return _line_breaks(part.paths[0], part.start or 0, part.end or 0)


def _line_breaks(path: str, start: int, end: int) -> int:
    n = 0
    with open(path, "rb") as fh:
        fh.seek(start)
        left = end - start
        while left > 0:
            block = fh.read(min(left, 1 << 22))
            if not block:
                break
            left -= len(block)
            n += block.count(b"\n") + block.count(b"\r") - block.count(b"\r\n")
            if block.endswith(b"\r"):
                here = fh.tell()
                if fh.read(1) == b"\n":
                    n -= 1  # a CRLF across the block's end: its LF counts
                fh.seek(here)
    return n


@dataclass
class Survey:
    # (doc_id, content hash, UTF-8 size) of each document, in reading order.
    docs: list[tuple[str, str, int]] = field(default_factory=list)
    boilerplate: BoilerplateCounter = field(default_factory=BoilerplateCounter)


def survey_partition(
    part: Partition, fields: FieldMap | None, max_doc_bytes: int, chunk_chars: int | None
) -> Survey:
    from pipeline.runner import document_lines

    survey = Survey()
    for item in read_partition(part, fields, max_doc_bytes):
        if isinstance(item, Document):
            size = len(item.raw_text.encode("utf-8", "replace"))
            survey.docs.append((item.doc_id, item.content_hash, size))
            survey.boilerplate.add(item.group, document_lines(item.raw_text, chunk_chars))
    return survey


@dataclass(frozen=True)
class Decision:
    """What the driver decided for a partition's documents (by their ordinal in it)."""

    skip: frozenset[int] = frozenset()
    duplicate: frozenset[int] = frozenset()
    homes: dict[str, str] = field(default_factory=dict)  # doc_id -> home, being replaced


@dataclass
class PartitionResult:
    index: int
    n_documents: int = 0  # new documents written by the worker
    n_chars: int = 0
    n_batches: int = 0
    rows_written: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    # Rows of documents being replaced, per batch, for the driver to swap into their homes.
    replaced: list[dict[str, Any]] = field(default_factory=list)
    stopped: bool = False
    # Huge documents replaced by the worker itself (their rows are never sent back).
    n_replaced_here: int = 0
    worker: str = ""  # host:pid of the process that ran it


def process_partition(
    part: Partition,
    fields: FieldMap | None,
    decision: Decision,
    options: StageOptions,
    out: str,
    batch_size: int,
    batch_chars: int,
    stop_event: str | None = None,
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
) -> PartitionResult:
    """Read, process and write one partition on a worker (see the module doc). A huge document
    is processed here in chunks and streamed to its part files (`chunked.write_huge_document`),
    a replacement of one under the cluster-wide lock of its home file."""
    from pipeline.chunked import write_huge_document
    from pipeline.runner import duplicate_doc_error, make_batches
    from pipeline.stages import load_models

    writer = DatasetWriter(out, options.run_id)
    result = PartitionResult(part.index, worker=f"{socket.gethostname()}:{os.getpid()}")
    homes = decision.homes

    def admitted() -> Iterator[Document | IngestError]:
        ordinal = -1
        for item in read_partition(part, fields, max_doc_bytes):
            if isinstance(item, Document):
                ordinal += 1
                if ordinal in decision.skip:
                    continue
                if ordinal in decision.duplicate:
                    item = duplicate_doc_error(item)
            yield item

    event = _stop_event(stop_event)
    chunk_chars = options.chunk_chars
    batches = make_batches(admitted(), batch_size, batch_chars, None, chunk_chars)
    for j, docs, errs in batches:
        if event is not None and event.is_set():
            result.stopped = True  # the batches not started are done by the next run
            break
        key = f"p{part.index:05d}-{j:06d}"
        if len(docs) == 1 and not errs and len(docs[0].raw_text) > chunk_chars:
            done = write_huge_document(
                docs[0],
                options,
                writer,
                key,
                homes.get(docs[0].doc_id),
                load_models(options),
                should_stop=lambda: event is not None and event.is_set(),
                home_lock=home_lock,
            )
            if done.error is not None:
                result.errors.append(safe_error_row(done.error))
            elif not done.stopped:
                for table, n in done.counts.items():
                    result.rows_written[table] = result.rows_written.get(table, 0) + n
                if docs[0].doc_id in homes:
                    result.n_replaced_here += 1
                else:
                    result.n_documents += 1
                result.n_chars += done.n_chars
                result.n_batches += 1
            continue
        batch = process_batch(docs, options) if docs else BatchResult()
        rows = batch.rows
        errors = rows.pop("errors", [])
        errors += [
            error_row(options.run_id, e.source_file, e.doc_id, e.stage, e.message, e.error_type)
            for e in errs
        ]
        moving = {t: [r for r in rs if r.get("doc_id") in homes] for t, rs in rows.items()}
        if any(moving.values()):
            rows = {t: [r for r in rs if r.get("doc_id") not in homes] for t, rs in rows.items()}
            tables, isolated = build_tables(moving, options.run_id)
            tables.pop("errors", None)
            errors += isolated
            result.replaced.append(tables)
        tables, isolated = build_tables(rows, options.run_id)
        tables.pop("errors", None)
        errors += isolated
        writer.write_tables(key, tables)
        for table, data in tables.items():
            result.rows_written[table] = result.rows_written.get(table, 0) + data.num_rows
        if "documents" in tables:
            result.n_documents += tables["documents"].num_rows
        result.errors += [safe_error_row(e) for e in errors]
        result.n_chars += batch.n_chars
        result.n_batches += 1
    return result


@contextlib.contextmanager
def home_lock(home: str) -> Iterator[None]:
    """Held while a home file is rewritten, by the driver and by workers alike: two
    replacements into one file must not interleave. A cluster-wide Dask lock on a worker or a
    driver with a client; nothing to share with when called outside Dask."""
    from distributed import Lock

    try:
        lock = Lock(f"tifa-home-{home}")
    except (ValueError, RuntimeError):
        yield
        return
    with lock:
        yield


def _stop_event(name: str | None) -> Any:
    if not name:
        return None
    from distributed import Event, get_client

    try:
        return Event(name, client=get_client())
    except (ValueError, RuntimeError):  # not on a Dask worker (called directly)
        return None


# -- driver ---------------------------------------------------------------------------------------


@dataclass
class RunState:
    """What the driver knows of the output folder before the run (see runner._run_locked)."""

    existing: dict[str, Any]  # doc_id -> write.DocInfo
    unfinished: set[str]
    known_errors: set[tuple[Any, ...]]
    force: bool


def run_on_dask(
    inputs: list[Path],
    out: str,
    writer: DatasetWriter,
    options: StageOptions,
    state: RunState,
    summary: Any,  # runner.RunSummary
    *,
    fields: FieldMap | None,
    workers: int,
    address: str | None,
    batch_size: int,
    batch_chars: int,
    stop: Any,  # runner.StopOnSignal
    exclude: list[str | os.PathLike],
    on_progress: Callable[[int, int, int], None] | None,
    on_bytes: Callable[[int], None] | None,
    partition_bytes: int | None = None,
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
) -> None:
    from dask.distributed import Client, Event, LocalCluster, as_completed

    errors: list[dict[str, Any]] = []
    cluster = None
    if address:
        client = Client(address)
    else:
        cluster = LocalCluster(
            n_workers=max(workers, 1), threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    stop_name = f"tifa-stop-{options.run_id}"
    try:
        n_threads = sum(client.nthreads().values()) or 1
        # Issue 25 hook: --follow-symlinks travels in the FieldMap (how the input is read).
        follow = bool(fields and fields.follow_symlinks)
        parts, problems = plan_partitions(inputs, exclude, partition_bytes, n_threads, follow)
        errors: list[dict[str, Any]] = [
            safe_error_row(
                error_row(options.run_id, p.source_file, p.doc_id, p.stage, p.message, p.error_type)
            )
            for p in problems
        ]
        summary.n_errors += len(errors)
        parts = _cut_ranges(client, parts, max_doc_bytes)
        surveys = client.gather(
            client.map(
                survey_partition,
                parts,
                fields=fields,
                max_doc_bytes=max_doc_bytes,
                chunk_chars=options.chunk_chars,
                pure=False,
            )
        )
        decisions, todo_bytes, boilerplate = _decide(parts, surveys, state, summary, on_bytes)
        del surveys
        options = replace(options, boilerplate=boilerplate.result())
        [options_f] = client.scatter([options], broadcast=True)
        futures = {
            client.submit(
                process_partition,
                part,
                fields,
                decisions[part.index],
                options_f,
                out,
                batch_size,
                batch_chars,
                stop_name,
                max_doc_bytes,
                pure=False,
                key=f"tifa-partition-{options.run_id}-{part.index}",
            ): part
            for part in parts
            if part.index in todo_bytes
        }
        pending = as_completed(list(futures))
        for fut in pending:
            part = futures[fut]
            try:
                result = fut.result()
            except Exception as exc:  # noqa: BLE001 - the partition is redone by the next run
                if stop.requested:
                    continue
                errors.append(_failed_partition(options, part, exc))
                summary.n_errors += 1
                continue
            _account(result, writer, state, summary, errors)
            summary.n_bytes_done += todo_bytes[part.index]
            if on_progress:
                on_progress(summary.n_documents, summary.n_chars, summary.n_errors)
            if on_bytes:
                on_bytes(summary.n_bytes_done)
            if stop.requested:
                # Workers finish the batch in hand (written whole, with its marker) and stop;
                # the driver waits for that so nothing is written after it lets go of the lock.
                Event(stop_name, client=client).set()
                for rest in pending:
                    try:
                        _account(rest.result(), writer, state, summary, errors)
                    except Exception:  # noqa: BLE001, S112 - redone by the next run
                        continue
                break
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    fresh = []
    for e in errors:
        if error_key(e) not in state.known_errors:
            state.known_errors.add(error_key(e))
            fresh.append(e)
    if fresh:
        writer.write_batch("errors", {"errors": fresh})
        summary.rows_written["errors"] = summary.rows_written.get("errors", 0) + len(fresh)


def csv_ranges(part: Partition, max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES) -> list[Partition]:
    """A large .csv file's partition cut at record starts into ranges of about `cut_bytes`
    (indexes to be renumbered); the partition itself when it cannot be cut."""
    if not part.cut_bytes:
        return [part]
    cuts = csv_cut_points(Path(part.paths[0]), part.cut_bytes, max_doc_bytes)
    if len(cuts) < 2:
        return [replace(part, cut_bytes=0)]
    ends = [c[0] for c in cuts[1:]] + [part.n_bytes]
    return [
        replace(
            part,
            start=start,
            end=end,
            n_bytes=end - start,
            lines_before=n_lines,
            records_before=n_records,
            cut_bytes=0,
        )
        for (start, n_lines, n_records), end in zip(cuts, ends, strict=True)
    ]


def _cut_ranges(client: Any, parts: list[Partition], max_doc_bytes: int) -> list[Partition]:
    """Ranges of large .jsonl files numbered by their lines, large .csv files cut at record
    starts; partitions renumbered in input order."""
    ranged = [p for p in parts if p.start is not None]
    to_cut = [p for p in parts if p.cut_bytes]
    counts = client.gather(client.map(count_newlines, ranged, pure=False)) if ranged else []
    cut = (
        client.gather(client.map(csv_ranges, to_cut, max_doc_bytes=max_doc_bytes, pure=False))
        if to_cut
        else []
    )
    before: dict[str, int] = {}
    new: dict[int, list[Partition]] = {}
    for part, n in zip(ranged, counts, strict=True):
        new[part.index] = [replace(part, lines_before=before.get(part.paths[0], 0))]
        before[part.paths[0]] = before.get(part.paths[0], 0) + n
    for part, pieces in zip(to_cut, cut, strict=True):
        new[part.index] = pieces
    out = [q for p in parts for q in new.get(p.index, [p])]
    return [replace(p, index=i) for i, p in enumerate(out)]


def _decide(
    parts: list[Partition],
    surveys: list[Survey],
    state: RunState,
    summary: Any,
    on_bytes: Callable[[int], None] | None,
) -> tuple[dict[int, Decision], dict[int, int], BoilerplateCounter]:
    """Per partition what to skip, refuse and replace, as a local run's `admit` decides."""
    seen: set[str] = set()
    decisions: dict[int, Decision] = {}
    todo_bytes: dict[int, int] = {}
    counter = BoilerplateCounter()
    for part, survey in zip(parts, surveys, strict=True):
        counter.merge(survey.boilerplate)
        skip, duplicate, homes, size = set(), set(), {}, 0
        for ordinal, (doc_id, digest, n_bytes) in enumerate(survey.docs):
            if doc_id in seen:
                duplicate.add(ordinal)
                continue
            seen.add(doc_id)
            previous = state.existing.get(doc_id)
            if previous is not None:
                redo = state.force or doc_id in state.unfinished
                if previous.content_hash == digest and not redo:
                    skip.add(ordinal)
                    summary.n_skipped += 1
                    summary.n_bytes_done += n_bytes
                    continue
                homes[doc_id] = previous.home
            size += n_bytes
        decisions[part.index] = Decision(frozenset(skip), frozenset(duplicate), homes)
        # A partition whose every document is unchanged is not sent (a file that yields no
        # document at all is: its worker reports why).
        if len(skip) < len(survey.docs) or not survey.docs:
            todo_bytes[part.index] = size
    if on_bytes:
        on_bytes(summary.n_bytes_done)
    return decisions, todo_bytes, counter


def _account(
    result: PartitionResult,
    writer: DatasetWriter,
    state: RunState,
    summary: Any,
    errors: list[dict[str, Any]],
) -> None:
    for j, tables in enumerate(result.replaced):
        ids = tables["documents"]["doc_id"].to_pylist() if "documents" in tables else []
        homes = {d: state.existing[d].home for d in ids if d in state.existing}
        with contextlib.ExitStack() as held:
            for home in sorted(set(homes.values())):  # sorted: no two holders wait on each other
                held.enter_context(home_lock(home))
            writer.write_tables(f"p{result.index:05d}-r{j:04d}", tables, homes)
        summary.n_replaced += len(ids)
        summary.n_documents += len(ids)
        for table, data in tables.items():
            summary.rows_written[table] = summary.rows_written.get(table, 0) + data.num_rows
    for table, n in result.rows_written.items():
        summary.rows_written[table] = summary.rows_written.get(table, 0) + n
    summary.n_documents += result.n_documents + result.n_replaced_here
    summary.n_replaced += result.n_replaced_here
    summary.n_chars += result.n_chars
    summary.n_batches += result.n_batches
    summary.dask_workers.add(result.worker)
    errors.extend(result.errors)
    summary.n_errors += len(result.errors)


def _failed_partition(options: StageOptions, part: Partition, exc: BaseException) -> dict:
    row = error_row(options.run_id, part.names[0], None, "process", exc)
    row["message"] = (
        f"the worker processing {part.label} failed ({row['message']}); the documents of its "
        "unfinished batches are not written and are processed again by the next run"
    )
    return safe_error_row(row)
