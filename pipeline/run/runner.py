"""Run the whole job: stream documents in, process batches (locally, in processes or on Dask),
write Parquet parts, rebuild the dashboard tables, record the run.

`run_pipeline` takes the output lock, repairs what a killed run left, makes the admission
decision, hands the admitted documents to the run loop under the chosen executor, and finishes
(run/finish.py). Memory stays flat: documents are read lazily and at most `2 × workers` batches
are in flight.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline.core.faults import checkpoint
from pipeline.extract.lexicon import user_lexicon_path
from pipeline.io.compact import recover as recover_compaction
from pipeline.io.ingest import iter_documents
from pipeline.io.lock import output_lock
from pipeline.io.storage import is_url
from pipeline.io.write import (
    DatasetWriter,
    existing_documents,
    existing_error_keys,
    finish_replacements,
    pending_replacements,
    remove_duplicates,
    remove_interrupted_batches,
)
from pipeline.normalise.boilerplate import Boilerplate, BoilerplateCounter
from pipeline.normalise.chunks import document_lines
from pipeline.run.accounting import Outcome, RunSummary, new_run_id
from pipeline.run.admission import Admission, admit
from pipeline.run.batch import RunContext
from pipeline.run.config import RunConfig
from pipeline.run.executors import in_pool, serially
from pipeline.run.finish import finish_run
from pipeline.run.loop import LocalSink, run_batches
from pipeline.run.stories import StoryPlanner, signature_of, story_planner, with_stories

# Called after each unit of work: (documents written, characters, errors) and bytes handled.
OnProgress = Callable[[int, int, int], None]
OnBytes = Callable[[int], None]


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


def run_pipeline(
    inputs: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    config: RunConfig | None = None,
    *,
    on_progress: OnProgress | None = None,
    on_bytes: OnBytes | None = None,
    **settings: Any,
) -> RunSummary:
    """Process every document under `inputs` into Parquet tables in `out_dir` (a path, or an
    fsspec URL such as s3://bucket/tifa: see storage.py), with the settings of `config`, or of
    `RunConfig.of(**settings)` (e.g. ``run_pipeline(["data/raw"], "out", workers=2)``).

    `on_progress(n_docs, n_chars, n_errors)` is called after each batch is written,
    `on_bytes(n)` with the UTF-8 size of the documents handled so far. Raises `ConfigError`
    before any work when a setting cannot work, `pipeline.io.lock.OutputLocked` when another run
    is writing to `out_dir`. SIGINT/SIGTERM stop the run after the batch in flight
    (`summary.interrupted` says so).
    """
    if config is None:
        config = RunConfig.of(**settings)
    elif settings:
        raise TypeError("pass either a RunConfig or settings, not both")
    out: Path | str = out_dir if is_url(out_dir) else Path(out_dir)  # type: ignore[assignment]
    config = with_user_lexicon(config, out)
    config.check()
    with output_lock(out) as lock, StopOnSignal() as stop:
        state = _Run(config, out, [Path(p) for p in inputs], stop, on_progress, on_bytes)
        summary = state.run()
        summary.stale_lock = lock.stale
        return summary


def with_user_lexicon(config: RunConfig, out: Path | str) -> RunConfig:
    """`config` with the output's user lexicon (tifa lexicon accept), where it has one."""
    if config.user_lexicon is not None or isinstance(out, str):
        return config
    path = user_lexicon_path(out)
    return replace(config, user_lexicon=str(path.resolve())) if path.is_file() else config


@dataclass
class _Run:
    """One run under the output lock."""

    config: RunConfig
    out: Path | str
    inputs: list[Path]
    stop: StopOnSignal
    on_progress: OnProgress | None
    on_bytes: OnBytes | None
    summary: RunSummary = field(init=False)
    writer: DatasetWriter = field(init=False)

    def run(self) -> RunSummary:
        t0 = time.perf_counter()
        run_id = new_run_id()
        self.summary = RunSummary(run_id=run_id, out_dir=self.out)
        self.writer = DatasetWriter(self.out, run_id)
        admission, journals, known_errors = self._repair_and_read()
        exclude = [self.out] if self.writer.store.local else []  # never read as input
        if self.config.scheduler == "dask":
            from pipeline.run.dask import run_on_dask, write_gathered_errors

            checkpoint("run.started")
            ctx = RunContext(run_id)
            run_on_dask(
                self.inputs, self.config, ctx, self.writer, admission, exclude,
                self.count, lambda: self.stop.requested,
            )  # fmt: skip
            write_gathered_errors(self.summary, self.writer, known_errors)
        else:
            self._run_local(admission, known_errors, exclude)
        return finish_run(self.writer, self.summary, journals, self.config, self.stop.signum, t0)

    def _repair_and_read(self) -> tuple[Admission, list[str], set[tuple[Any, ...]]]:
        """Finish what a killed run left, and read what the output already holds."""
        summary, out = self.summary, self.out
        # First of all: a compaction a kill interrupted leaves a group's rows in its old files
        # and (after its commit) in the merged one. Everything below reads homes or deletes
        # parts without a marker, so the compaction is finished or undone before anything else.
        summary.compactions_recovered = recover_compaction(self.writer.store)
        summary.n_interrupted_parts_removed = remove_interrupted_batches(out)
        # Replacements a kill interrupted are finished from their journalled parts before the
        # archive is read, whatever tonight's input holds (write.finish_replacements).
        summary.n_replacements_finished = finish_replacements(out)
        existing, duplicates = existing_documents(out)
        if duplicates:
            summary.n_duplicates_removed = remove_duplicates(out, duplicates)
        # Replacements a killed run left half done are redone whatever the content hash says.
        unfinished, journals = pending_replacements(out)
        summary.n_unfinished_replacements = len(unfinished)
        # The errors table lists each distinct failure once (with the run that first saw it),
        # so a nightly rerun over the same broken file does not grow it.
        known_errors = existing_error_keys(out)
        return Admission(existing, unfinished, self.config.force), journals, known_errors

    def _run_local(
        self, admission: Admission, known_errors: set[tuple[Any, ...]], exclude: list[Any]
    ) -> None:
        config, stop = self.config, self.stop

        def read() -> Iterable[Any]:
            return iter_documents(
                self.inputs, config.fields, exclude=exclude, max_doc_bytes=config.max_doc_bytes
            )

        planner = story_planner(config, self.writer)
        boilerplate = count_boilerplate(read, admission, stop, config, planner)
        ctx = RunContext(self.summary.run_id, boilerplate)
        decisions = planner.decisions if planner is not None else None
        checkpoint("run.started")
        should_stop = lambda: stop.requested  # noqa: E731
        if config.workers > 1:
            process = in_pool(config, ctx, config.workers, should_stop)
        else:
            process = serially(config, ctx, should_stop)
        sink = LocalSink(self.writer, config, ctx, admission.homes, known_errors)

        def count_batch(outcome: Outcome) -> None:
            self.count(outcome)
            if outcome.n_batches:
                checkpoint("batch.done")

        admitted = with_stories(admit(read(), admission, self.count), decisions)
        run_batches(admitted, config, sink, process, count_batch, should_stop)

    def count(self, outcome: Outcome) -> None:
        summary = self.summary
        summary.add(outcome)
        if self.on_progress and (outcome.n_batches or outcome.n_errors):
            self.on_progress(summary.n_documents, summary.n_chars, summary.n_errors)
        if self.on_bytes:
            self.on_bytes(summary.n_bytes_done)


def count_boilerplate(
    read: Callable[[], Iterable[Any]],
    admission: Admission,
    stop: StopOnSignal,
    config: RunConfig,
    planner: StoryPlanner | None = None,
) -> Boilerplate:
    """Lines repeated across the documents of each site or file of the run (page boilerplate).

    A streaming pass before the run: the decision for one document depends on the others of
    its group, and must not depend on how documents fall into batches or workers. ``read``
    opens the input anew; when no document needs processing (a rerun over unchanged input)
    nothing is counted. A document longer than ``chunk_chars`` is read a chunk at a time, as
    it is processed, so no whole-document copy is made here either. The same pass takes the
    story decisions (`planner`, run/stories.py), in input order.
    """
    from pipeline.core.document import Document

    if not any(isinstance(d, Document) and admission.needs_processing(d) for d in read()):
        return Boilerplate()
    counter = BoilerplateCounter()
    for item in read():
        if stop.requested:
            break
        if isinstance(item, Document):
            counter.add(item.group, document_lines(item.raw_text, config.chunk_chars))
            if planner is not None:
                needs = admission.needs_processing(item)
                sig = signature_of(item, config.chunk_chars) if needs else None
                planner.see(item.doc_id, sig, needs)
    return counter.result()
