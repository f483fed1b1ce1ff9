"""What a run did, added up in one place.

Every unit of work (a batch, a huge document, a Dask partition, a skipped document) ends as an
`Outcome`; `RunSummary.add` is the only code that counts them, whichever executor ran the work.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


@dataclass
class Outcome:
    """What became of one unit of work."""

    n_documents: int = 0  # documents written (new or replacing an older version)
    n_replaced: int = 0  # of which replaced an older version
    n_skipped: int = 0  # unchanged since an earlier run: not processed
    n_errors: int = 0
    n_chars: int = 0  # clean characters of the documents written
    n_batches: int = 0
    n_bytes: int = 0  # UTF-8 size of the input documents handled (for progress)
    rows_written: dict[str, int] = field(default_factory=dict)
    # Errors rows not written yet: a Dask worker sends them to the driver, which writes each
    # distinct failure once (`RunSummary.errors_to_write`).
    errors: list[dict[str, Any]] = field(default_factory=list)
    # Tables of documents being replaced, for the driver to swap into their homes (Dask).
    replaced: list[dict[str, Any]] = field(default_factory=list)
    worker: str | None = None  # host:pid of the Dask worker that did it
    stopped: bool = False  # a stop request cut it short

    def count_rows(self, table: str, n: int) -> None:
        self.rows_written[table] = self.rows_written.get(table, 0) + n

    def merge(self, other: Outcome) -> None:
        """Add `other` to this one (a worker adding up its partition's batches)."""
        for name in ("n_documents", "n_replaced", "n_skipped", "n_errors", "n_chars"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.n_batches += other.n_batches
        self.n_bytes += other.n_bytes
        for table, n in other.rows_written.items():
            self.count_rows(table, n)
        self.errors += other.errors
        self.replaced += other.replaced
        self.stopped = self.stopped or other.stopped


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
    # Errors rows gathered from Dask workers, written once at the end of the run.
    errors_to_write: list[dict[str, Any]] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        """Count one unit of work: the run's only accounting."""
        self.n_documents += outcome.n_documents
        self.n_replaced += outcome.n_replaced
        self.n_skipped += outcome.n_skipped
        self.n_errors += outcome.n_errors
        self.n_chars += outcome.n_chars
        self.n_batches += outcome.n_batches
        self.n_bytes_done += outcome.n_bytes
        for table, n in outcome.rows_written.items():
            self.rows_written[table] = self.rows_written.get(table, 0) + n
        self.errors_to_write += outcome.errors
        if outcome.worker:
            self.dask_workers.add(outcome.worker)


def new_run_id() -> str:
    # Run ids sort by start time (the views find "tonight" and first-seen items by comparing
    # them), so they carry microseconds: two runs can start within one second (a rerun that
    # skips everything takes less). Ids of the older format (seconds only) still sort first.
    global _last_run_start
    now = max(datetime.now(UTC), _last_run_start + timedelta(microseconds=1))
    _last_run_start = now
    return now.strftime("%Y%m%dT%H%M%S%f") + "-" + uuid.uuid4().hex[:6]


_last_run_start = datetime.min.replace(tzinfo=UTC)
