"""After the batches: journals dropped, small parts compacted, derived tables rebuilt, the runs
row written, then the dashboard views and the night's report."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline import __version__
from pipeline.core.faults import checkpoint
from pipeline.io.compact import compact_locked, should_compact
from pipeline.io.write import DatasetWriter
from pipeline.run.accounting import RunSummary
from pipeline.run.config import RunConfig


def finish_run(
    writer: DatasetWriter,
    summary: RunSummary,
    journals: list[str],
    config: RunConfig,
    stopped_by: int | None,
    t0: float,
) -> RunSummary:
    """Everything after the batches; a run stopped by a signal stops here, before any of it."""
    started = datetime.now(UTC) - timedelta(seconds=time.perf_counter() - t0)
    if stopped_by is not None:
        summary.interrupted = signal.Signals(stopped_by).name
        summary.seconds = time.perf_counter() - t0
        return summary
    for journal in journals:  # every document they named has been redone
        writer.store.remove(journal)
    checkpoint("aggregate.start")
    writer.ensure_tables()
    # Merge small part files before the derived tables and views are built over them (their
    # fingerprint then covers the merged files, so the next run does not rebuild them again).
    if should_compact(writer.store, config.compact_above, config.compact_target_bytes):
        summary.compaction = compact_locked(writer.store, config.compact_target_bytes, repair=False)
    current = _derived_tables(writer, summary, config)
    summary.seconds = time.perf_counter() - t0
    checkpoint("runs.start")
    _write_run_row(writer, summary, started, config.workers)
    out = writer.store.root if writer.store.local else None
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
        _write_views_and_report(out, summary, config.report)
    return summary


def _derived_tables(
    writer: DatasetWriter, summary: RunSummary, config: RunConfig
) -> dict[str, int] | None:
    """Rebuild the derived tables unless nothing they are built from changed; the row counts
    of the ones already there when nothing did (None when they were rebuilt)."""
    from pipeline.io import derived_state

    out = writer.store.root if writer.store.local else None
    current = None
    if out is not None:
        fingerprint = derived_state.inputs_fingerprint(out, config.lexicon, config.user_lexicon)
        current = derived_state.up_to_date(out, fingerprint)
    if current is not None:  # nothing they are built from changed: the same tables again
        summary.derived_rows = current
        return current
    # Imported here: DuckDB and the person rules are not needed before the last batch.
    from pipeline.analyst.aggregate import rebuild_derived_tables

    summary.derived_rows = rebuild_derived_tables(
        writer.store, writer, config.lexicon, config.user_lexicon
    )
    if out is not None:
        derived_state.record(out, fingerprint, summary.derived_rows)
    return None


def _write_views_and_report(out: Path, summary: RunSummary, report: bool) -> None:
    """Dashboard views and the HTML report, after the runs row: they describe a complete run.
    The night's tables are already written, so a failing report is recorded in the summary (the
    CLI warns) instead of failing the run."""
    from pipeline.analyst.report import remove_temp_files, write_report
    from pipeline.analyst.views import write_views

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


def _write_run_row(
    writer: DatasetWriter, summary: RunSummary, started: datetime, workers: int
) -> None:
    from pipeline.io.schema import RUNS

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
    writer.store.write_parquet(
        pa.Table.from_pylist([row], schema=RUNS), f"runs/part-{summary.run_id}.parquet"
    )
