"""Parquet output: one dataset folder per table, incremental and idempotent.

Layout of `--out DIR`:
    DIR/<table>/part-<run_id>-<batch>.parquet   one file per table per batch of documents
    DIR/_done/<run_id>-<batch>                  completion marker, written after the batch's parts
    DIR/<derived table>/part-0.parquet          rebuilt whole at the end of every run

Every file is written under a temporary dot-name and renamed into place, so readers never see a
half-written file (pyarrow and pandas ignore names starting with "." or "_"). A batch whose marker
is missing was interrupted: its part files are removed at the start of the next run, and its
documents, absent from `documents`, are processed again.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.schema import BATCH_TABLES, SCHEMAS

MARKERS = "_done"


def write_table_atomic(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def rows_to_table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Build a table with the declared schema: a wrong type fails here, not in a dashboard."""
    return pa.Table.from_pylist(rows, schema=SCHEMAS[name])


class DatasetWriter:
    def __init__(self, out_dir: Path | str, run_id: str):
        self.out = Path(out_dir)
        self.run_id = run_id
        self.out.mkdir(parents=True, exist_ok=True)

    def part_path(self, table: str, batch: int) -> Path:
        return self.out / table / f"part-{self.run_id}-{batch:06d}.parquet"

    def write_batch(self, batch: int, rows: dict[str, list[dict[str, Any]]]) -> None:
        # documents last among the tables, then the marker: a batch counts only when complete.
        for table in BATCH_TABLES:
            table_rows = rows.get(table)
            if table_rows:
                write_table_atomic(rows_to_table(table, table_rows), self.part_path(table, batch))
        marker = self.out / MARKERS / f"{self.run_id}-{batch:06d}"
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()

    def ensure_tables(self) -> None:
        """Give every batch table at least an empty file, so each `DIR/<table>` can be read whole
        (an empty errors table is the good news, not a missing folder)."""
        for table in BATCH_TABLES:
            if not table_files(self.out, table):
                key = f"{self.run_id}-empty"
                write_table_atomic(
                    SCHEMAS[table].empty_table(), self.out / table / f"part-{key}.parquet"
                )
                (self.out / MARKERS).mkdir(parents=True, exist_ok=True)
                (self.out / MARKERS / key).touch()

    def write_whole(self, table: str, data: pa.Table) -> None:
        """Replace a derived table: write the new file, then drop the old ones."""
        folder = self.out / table
        new = folder / f"part-{self.run_id}.parquet"
        write_table_atomic(data.cast(SCHEMAS[table]), new)
        for old in folder.glob("part-*.parquet"):
            if old != new:
                old.unlink()


def table_files(out_dir: Path, table: str) -> list[Path]:
    folder = Path(out_dir) / table
    return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []


def read_table(out_dir: Path | str, table: str, columns: list[str] | None = None) -> pa.Table:
    """The whole table (or an empty one with the declared schema)."""
    files = table_files(Path(out_dir), table)
    if not files:
        schema = SCHEMAS[table]
        if columns:
            schema = pa.schema([schema.field(c) for c in columns])
        return schema.empty_table()
    return ds.dataset(files, schema=SCHEMAS[table], format="parquet").to_table(columns=columns)


def existing_documents(out_dir: Path | str) -> dict[str, str]:
    """doc_id -> content_hash of every document already written (two small columns only)."""
    table = read_table(out_dir, "documents", columns=["doc_id", "content_hash"])
    return dict(zip(table["doc_id"].to_pylist(), table["content_hash"].to_pylist(), strict=True))


def error_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["source_file"], row["doc_id"], row["stage"], row["error_type"], row["message"])


def existing_error_keys(out_dir: Path | str) -> set[tuple[Any, ...]]:
    cols = ["source_file", "doc_id", "stage", "error_type", "message"]
    return {error_key(r) for r in read_table(out_dir, "errors", columns=cols).to_pylist()}


def remove_interrupted_batches(out_dir: Path | str) -> int:
    """Delete part files of batches that never got their completion marker."""
    out = Path(out_dir)
    done = {p.name for p in (out / MARKERS).glob("*")} if (out / MARKERS).is_dir() else set()
    removed = 0
    for table in BATCH_TABLES:
        for path in table_files(out, table):
            key = path.stem.removeprefix("part-")
            if key not in done:
                path.unlink()
                removed += 1
    for folder in [out / t for t in SCHEMAS] + [out / MARKERS]:
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink()
    return removed


def remove_documents(out_dir: Path | str, doc_ids: Iterable[str], keep_run_id: str) -> int:
    """Drop rows of replaced documents from earlier runs' part files (rewriting those files)."""
    ids = pa.array(sorted(set(doc_ids)), type=pa.string())
    if len(ids) == 0:
        return 0
    n_removed = 0
    for table in BATCH_TABLES:
        for path in table_files(Path(out_dir), table):
            if path.stem.startswith(f"part-{keep_run_id}-"):
                continue
            data = pq.read_table(path, schema=SCHEMAS[table])
            doc_col = data["doc_id"]
            hit = pc.fill_null(pc.is_in(doc_col, value_set=ids), False)
            n_hit = pc.sum(hit).as_py() or 0
            if n_hit:
                n_removed += n_hit
                kept = data.filter(pc.invert(hit))
                if kept.num_rows:
                    write_table_atomic(kept, path)
                else:
                    path.unlink()
    return n_removed
