"""Dask runs in which the workers do the I/O: each reads its own part of the input and writes
its own part files and markers straight into the output; the driver plans, decides, tracks and
adds up, and never reads a document's text.

The input is cut into partitions (`io/partitions.py`). Then three maps over the partitions:

1. *cuts*: each .jsonl byte range counts its newlines (bytes only), so every range knows its first
   line number and records without an id get the ids a local run gives them (`<stem>-<line>`);
   a large .csv file is parsed once without building documents to find record starts, which
   gives its ranges with their first line and record numbers;
2. *survey*: per document its id, content hash and size, and the partition's page-boilerplate
   line counts. From the surveys, in input order, the driver makes the run's admission decision
   (`admission.Admission`: skip unchanged, refuse a doc_id read twice, replace changed) and
   merges the boilerplate counts;
3. *process*: each worker re-reads its partition and runs the run loop over it (`loop.py`, with
   a `WorkerSink`): batches processed, part files and markers written by the worker. Only an
   `Outcome` comes back: counts, errors rows (the driver keeps the errors table free of repeats)
   and the rows of documents being *replaced* (a replacement rewrites the document's existing
   home file, which another worker's replacement may share, so the driver does those).

Output may be a local or shared path, or an fsspec URL (`s3://…`, see storage.py). Input paths
must be readable by the workers under the same absolute name (a shared mount on a real cluster).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline.core.document import Document
from pipeline.io.ingest import IngestError
from pipeline.io.partitions import (
    Partition,
    count_newlines,
    csv_ranges,
    plan_partitions,
    read_partition,
)
from pipeline.io.write import DatasetWriter, safe_error_row
from pipeline.normalise.boilerplate import BoilerplateCounter
from pipeline.normalise.chunks import document_lines
from pipeline.run.accounting import Outcome, RunSummary
from pipeline.run.admission import Admission, Verdict, duplicate_doc_error
from pipeline.run.batch import RunContext, error_row
from pipeline.run.config import RunConfig
from pipeline.run.executors import serially
from pipeline.run.loop import WorkerSink, run_batches
from pipeline.run.stories import StoryDecision, StoryPlanner, signature_of, story_planner


@dataclass
class Survey:
    # (doc_id, content hash, UTF-8 size) of each document, in reading order.
    docs: list[tuple[str, str, int]] = field(default_factory=list)
    boilerplate: BoilerplateCounter = field(default_factory=BoilerplateCounter)
    # What could not be read: counted by the driver when the partition is not sent (all its
    # documents unchanged), as a local run counts it again every night.
    problems: list[IngestError] = field(default_factory=list)
    # Story signature of each document (run/stories.py), None where none is needed (unchanged
    # since the run that wrote it, a huge document, deduplication off).
    signatures: list[Any] = field(default_factory=list)


def survey_partition(
    part: Partition, config: RunConfig, known: frozenset[tuple[str, str]] = frozenset()
) -> Survey:
    """`known`: (doc_id, content hash) of the documents the archive holds and the run will
    skip, whose signatures the story index already has."""
    survey = Survey()
    for item in read_partition(part, config.fields, config.max_doc_bytes):
        if isinstance(item, IngestError):
            survey.problems.append(item)
        elif isinstance(item, Document):
            size = len(item.raw_text.encode("utf-8", "replace"))
            digest = item.content_hash
            survey.docs.append((item.doc_id, digest, size))
            survey.boilerplate.add(item.group, document_lines(item.raw_text, config.chunk_chars))
            wanted = config.dedup and (item.doc_id, digest) not in known
            survey.signatures.append(signature_of(item, config.chunk_chars) if wanted else None)
    return survey


@dataclass(frozen=True)
class Decision:
    """What the driver decided for a partition's documents (by their ordinal in it)."""

    skip: frozenset[int] = frozenset()
    duplicate: frozenset[int] = frozenset()
    homes: dict[str, str] = field(default_factory=dict)  # doc_id -> home, being replaced
    stories: dict[int, StoryDecision] = field(default_factory=dict)  # ordinal -> its story


# -- worker ---------------------------------------------------------------------------------------


def process_partition(
    part: Partition,
    decision: Decision,
    config: RunConfig,
    ctx: RunContext,
    out: str,
    stop_event: str | None = None,
) -> Outcome:
    """Read, process and write one partition on a worker: the run loop over its admitted
    documents (see the module doc)."""
    event = _stop_event(stop_event)

    def should_stop() -> bool:
        return event is not None and event.is_set()

    def admitted() -> Iterator[Document | IngestError]:
        ordinal = -1
        for item in read_partition(part, config.fields, config.max_doc_bytes):
            if isinstance(item, Document):
                ordinal += 1
                if ordinal in decision.skip:
                    continue
                if ordinal in decision.duplicate:
                    item = duplicate_doc_error(item)
                else:
                    item.story = decision.stories.get(ordinal)
            yield item

    outcome = Outcome(worker=f"{socket.gethostname()}:{os.getpid()}")
    sink = WorkerSink(DatasetWriter(out, ctx.run_id), config, ctx, decision.homes, home_lock)
    run_batches(
        admitted(),
        config,
        sink,
        serially(config, ctx, should_stop),
        outcome.merge,
        should_stop,
        key=lambda j: f"p{part.index:05d}-{j:06d}",
    )
    outcome.stopped = outcome.stopped or should_stop()
    return outcome


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


def run_on_dask(
    inputs: list[Path],
    config: RunConfig,
    ctx: RunContext,
    writer: DatasetWriter,
    admission: Admission,
    exclude: list[str | os.PathLike],
    count: Callable[[Outcome], None],
    should_stop: Callable[[], bool],
) -> None:
    """Plan, survey, decide, then process every partition that has work on the cluster (the
    one at `config.dask_address`, else a LocalCluster of `config.workers` processes)."""
    from dask.distributed import Client, LocalCluster

    cluster = None
    if config.dask_address:
        client = Client(config.dask_address)
    else:
        cluster = LocalCluster(
            n_workers=max(config.workers, 1),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
        client = Client(cluster)
    try:
        n_threads = sum(client.nthreads().values()) or 1
        follow = bool(config.fields and config.fields.follow_symlinks)
        parts, problems = plan_partitions(
            inputs, exclude, config.partition_bytes, n_threads, follow
        )
        for p in problems:
            row = error_row(ctx.run_id, p.source_file, p.doc_id, p.stage, p.message, p.error_type)
            count(Outcome(n_errors=1, errors=[safe_error_row(row)]))
        parts = _cut_ranges(client, parts, config.max_doc_bytes)
        [known] = client.scatter([_known(admission)], broadcast=True)
        surveys = client.gather(
            client.map(survey_partition, parts, config=config, known=known, pure=False)
        )
        planner = story_planner(config, writer)
        decisions, boilerplate = _decide(parts, surveys, admission, count, ctx.run_id, planner)
        del surveys
        ctx = replace(ctx, boilerplate=boilerplate.result())
        _process(client, parts, decisions, config, ctx, writer, admission, count, should_stop)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _process(
    client: Any,
    parts: list[Partition],
    decisions: dict[int, Decision],
    config: RunConfig,
    ctx: RunContext,
    writer: DatasetWriter,
    admission: Admission,
    count: Callable[[Outcome], None],
    should_stop: Callable[[], bool],
) -> None:
    from dask.distributed import Event, as_completed

    stop_name = f"tifa-stop-{ctx.run_id}"
    [config_f, ctx_f] = client.scatter([config, ctx], broadcast=True)
    futures = {
        client.submit(
            process_partition,
            part,
            decisions[part.index],
            config_f,
            ctx_f,
            str(writer.out) if isinstance(writer.out, str) else os.path.abspath(writer.out),
            stop_name,
            pure=False,
            key=f"tifa-partition-{ctx.run_id}-{part.index}",
        ): part
        for part in parts
        if part.index in decisions
    }
    pending = as_completed(list(futures))
    for fut in pending:
        try:
            count(_swap_replaced(fut.result(), writer, admission, futures[fut]))
        except Exception as exc:  # noqa: BLE001 - the partition is redone by the next run
            if not should_stop():
                count(_failed_partition(ctx, futures[fut], exc))
            continue
        if should_stop():
            # Workers finish the batch in hand (written whole, with its marker) and stop;
            # the driver waits for that so nothing is written after it lets go of the lock.
            Event(stop_name, client=client).set()
            for rest in pending:
                with contextlib.suppress(Exception):  # redone by the next run
                    count(_swap_replaced(rest.result(), writer, admission, futures[rest]))
            break


def _known(admission: Admission) -> frozenset[tuple[str, str]]:
    """(doc_id, content hash) of the documents the run will skip as unchanged."""
    if admission.force:
        return frozenset()
    return frozenset(
        (doc_id, info.content_hash)
        for doc_id, info in admission.existing.items()
        if doc_id not in admission.unfinished
    )


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
    admission: Admission,
    count: Callable[[Outcome], None],
    run_id: str,
    planner: StoryPlanner | None = None,
) -> tuple[dict[int, Decision], BoilerplateCounter]:
    """Per partition with work what to skip, refuse and replace: the run's admission decision
    over the surveys in input order, and each document's story (`planner`, as a local run)."""
    decisions: dict[int, Decision] = {}
    counter = BoilerplateCounter()
    for part, survey in zip(parts, surveys, strict=True):
        counter.merge(survey.boilerplate)
        skip, duplicate, homes = set(), set(), {}
        stories: dict[int, StoryDecision] = {}
        for ordinal, (doc_id, digest, n_bytes) in enumerate(survey.docs):
            verdict = admission.decide(doc_id, digest)
            if planner is not None and verdict is not Verdict.DUPLICATE:
                planner.see(doc_id, survey.signatures[ordinal], verdict is Verdict.PROCESS)
                if doc_id in planner.decisions:
                    stories[ordinal] = planner.decisions.pop(doc_id)
            if verdict is Verdict.DUPLICATE:
                duplicate.add(ordinal)
            elif verdict is Verdict.SKIP:
                skip.add(ordinal)
                count(Outcome(n_skipped=1, n_bytes=n_bytes))
            elif doc_id in admission.homes:
                homes[doc_id] = admission.homes[doc_id]
        # A partition whose every document is unchanged is not sent (a file that yields no
        # document at all is: its worker reports why).
        if len(skip) < len(survey.docs) or not survey.docs:
            decisions[part.index] = Decision(frozenset(skip), frozenset(duplicate), homes, stories)
        elif survey.problems:  # not sent: its unreadable records are counted here
            rows = [
                safe_error_row(
                    error_row(run_id, p.source_file, p.doc_id, p.stage, p.message, p.error_type)
                )
                for p in survey.problems
            ]
            count(Outcome(n_errors=len(rows), errors=rows))
    return decisions, counter


def _swap_replaced(
    outcome: Outcome, writer: DatasetWriter, admission: Admission, part: Partition
) -> Outcome:
    """Write the rows of the documents a worker replaced into their home files (the driver is
    the one writer of a home file); they count as documents written and replaced."""
    for j, tables in enumerate(outcome.replaced):
        ids = tables["documents"]["doc_id"].to_pylist() if "documents" in tables else []
        homes = {d: admission.existing[d].home for d in ids if d in admission.existing}
        with contextlib.ExitStack() as held:
            for home in sorted(set(homes.values())):  # sorted: no two holders wait on each other
                held.enter_context(home_lock(home))
            writer.write_tables(f"p{part.index:05d}-r{j:04d}", tables, homes)
        outcome.n_replaced += len(ids)
        outcome.n_documents += len(ids)
        for table, data in tables.items():
            outcome.count_rows(table, data.num_rows)
    outcome.replaced = []
    return outcome


def _failed_partition(ctx: RunContext, part: Partition, exc: BaseException) -> Outcome:
    row = error_row(ctx.run_id, part.names[0], None, "process", exc)
    row["message"] = (
        f"the worker processing {part.label} failed ({row['message']}); the documents of its "
        "unfinished batches are not written and are processed again by the next run"
    )
    return Outcome(n_errors=1, errors=[safe_error_row(row)])


def write_gathered_errors(
    summary: RunSummary, writer: DatasetWriter, known_errors: set[tuple[Any, ...]]
) -> None:
    """The errors rows the workers sent, each distinct failure once (the errors table lists a
    failure with the run that first saw it)."""
    from pipeline.io.write import error_key

    fresh = []
    for e in summary.errors_to_write:
        if error_key(e) not in known_errors:
            known_errors.add(error_key(e))
            fresh.append(e)
    summary.errors_to_write = []
    if fresh:
        writer.write_batch("errors", {"errors": fresh})
        summary.rows_written["errors"] = summary.rows_written.get("errors", 0) + len(fresh)
