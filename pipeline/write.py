"""Parquet output: one dataset folder per table, incremental, idempotent and crash-safe.

Layout of `--out DIR`:
    DIR/<table>/part-<run_id>-<batch>.parquet   one file per table per batch of documents
    DIR/_done/<run_id>-<batch>                  completion marker, written after the batch's parts
    DIR/_journal/<run_id>-<batch>.json          documents being replaced right now (see below)
    DIR/<derived table>/part-0.parquet          rebuilt whole at the end of every run
    DIR/.tifa.lock                              held by the one `tifa run` writing to DIR

Every file is written under a temporary dot-name and renamed into place, so readers never see a
half-written file (pyarrow, pandas and DuckDB's `*.parquet` ignore names starting with "."). A
batch whose marker is missing was interrupted: its part files are removed at the start of the
next run, and its documents, absent from `documents`, are processed again.

Replacement is atomic for readers and for crashes. All rows of one document in one table live in
one file: the part file of the batch that first wrote it (its *home*). A changed (or `--force`d)
document is replaced by rewriting its home file of each table, old rows out and new rows in, with
one atomic rename per table, documents last: a reader of `DIR/<table>/` sees the old version or
the new one, never both and never neither, and a kill between two tables leaves `documents`
with the old content hash, so the next run replaces the document again. The journal lists the
documents of a replacement in progress so that the next run redoes them even when their content
did not change (`--force` after a rule update).

A huge document (`pipeline/chunked.py`) is its own batch, written a chunk at a time
(`StreamedParts`): each table's rows go through a `ParquetWriter` into a temporary dot-file as
they are made, and only when the document is complete are the files renamed into place, documents
last, then the marker (or, for a document being replaced, merged into its home files, a row group
at a time, under the journal as above). A kill while streaming leaves only temporary files, which
the next run removes; a document that fails half-way has its temporary files removed at once.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.schema import BATCH_TABLES, SCHEMAS

MARKERS = "_done"
JOURNAL = "_journal"
DERIVED_PART = "part-0.parquet"

# Tables whose rows belong to one document and move with it when it is replaced. Errors are a
# log of failures (each listed once), not a property of the current version of a document.
DOC_TABLES = [t for t in BATCH_TABLES if t != "errors"]


# Fault injection for the kill tests: TIFA_CRASH_AT=<point>:<n> SIGKILLs this process the n-th
# time it reaches the named point (see `checkpoint` calls); unset, it costs one dict lookup.
_CRASH_AT = os.environ.get("TIFA_CRASH_AT", "")
_hits: dict[str, int] = defaultdict(int)


def checkpoint(point: str) -> None:
    if not _CRASH_AT:
        return
    name, _, nth = _CRASH_AT.partition(":")
    if name == point:
        _hits[point] += 1
        if _hits[point] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)


def write_table_atomic(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        checkpoint("write.renaming")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    checkpoint("write.file")


def rows_to_table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Build a table with the declared schema: a wrong type fails here, not in a dashboard."""
    return pa.Table.from_pylist(rows, schema=SCHEMAS[name])


def safe_text(text: str) -> str:
    """`text` as storable UTF-8: undecodable file-name bytes and unpaired surrogates escaped."""
    from pipeline.ingest import printable

    return printable(text)


def safe_error_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: safe_text(v) if isinstance(v, str) else v for k, v in row.items()}


@dataclass
class DocInfo:
    content_hash: str
    home: str  # key of the part files holding the document's rows: "<run_id>-<batch>"
    run_id: str


def build_tables(
    rows: dict[str, list[dict[str, Any]]], run_id: str
) -> tuple[dict[str, pa.Table], list[dict[str, Any]]]:
    """Arrow tables of a batch's rows. A document whose rows do not fit the schema (a string no
    UTF-8 file can hold, a number out of range) is left out of every table and becomes an errors
    row, so one bad document does not lose its batch. Returns (tables, new error rows)."""
    try:
        return {t: rows_to_table(t, r) for t, r in rows.items() if r}, []
    except Exception:  # noqa: BLE001 - find the document(s) responsible below
        pass
    bad: dict[str, dict[str, Any]] = {}
    source_of = {r["doc_id"]: r.get("source_file") for r in rows.get("documents", [])}
    for table, table_rows in rows.items():
        if table == "errors":
            continue
        by_doc: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in table_rows:
            by_doc[r.get("doc_id")].append(r)
        for doc_id, doc_rows in by_doc.items():
            if doc_id in bad:
                continue
            try:
                rows_to_table(table, doc_rows)
            except Exception as exc:  # noqa: BLE001
                bad[doc_id] = safe_error_row(
                    {
                        "run_id": run_id,
                        "source_file": source_of.get(doc_id) or "?",
                        "doc_id": doc_id if isinstance(doc_id, str) else None,
                        "stage": "write",
                        "error_type": type(exc).__name__,
                        "message": f"its {table} rows cannot be stored: {exc}; "
                        "the document is not written",
                    }
                )
    kept = {
        t: [r for r in table_rows if r.get("doc_id") not in bad]
        for t, table_rows in rows.items()
        if t != "errors"
    }
    kept["errors"] = [safe_error_row(r) for r in rows.get("errors", [])] + list(bad.values())
    return {t: rows_to_table(t, r) for t, r in kept.items() if r}, list(bad.values())


class DatasetWriter:
    def __init__(self, out_dir: Path | str, run_id: str):
        self.out = Path(out_dir)
        self.run_id = run_id
        self.out.mkdir(parents=True, exist_ok=True)

    def part_path(self, table: str, batch: int) -> Path:
        return self.out / table / f"part-{self.run_id}-{batch:06d}.parquet"

    def write_batch(
        self,
        batch: int,
        rows: dict[str, list[dict[str, Any]]],
        homes: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Write a batch: documents new to DIR into the batch's own part files (documents last,
        then the marker), documents already in DIR into their home files (see the module doc).
        `homes` maps doc_id -> home of every document being replaced. Returns the errors rows of
        documents that could not be stored (already written to `errors`)."""
        tables, isolated = build_tables(rows, self.run_id)
        homes = homes or {}
        moving: dict[str, list[str]] = defaultdict(list)
        if homes and "documents" in tables:
            for doc_id in tables["documents"]["doc_id"].to_pylist():
                if doc_id in homes:
                    moving[homes[doc_id]].append(doc_id)
        moved = pa.array(sorted({d for ids in moving.values() for d in ids}), pa.string())
        # documents last among the tables, then the marker: a batch counts only when complete.
        for table in BATCH_TABLES:
            data = tables.get(table)
            if data is not None and len(moved) and table != "errors":
                data = data.filter(pc.invert(pc.is_in(data["doc_id"], value_set=moved)))
            if data is not None and data.num_rows:
                write_table_atomic(data, self.part_path(table, batch))
        marker = self.out / MARKERS / f"{self.run_id}-{batch:06d}"
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        checkpoint("write.marker")
        if moving:
            self._replace(batch, tables, moving)
        return isolated

    def _replace(
        self, batch: int, tables: dict[str, pa.Table], moving: dict[str, list[str]]
    ) -> None:
        journal = self.out / JOURNAL / f"{self.run_id}-{batch:06d}.json"
        journal.parent.mkdir(parents=True, exist_ok=True)
        tmp = journal.with_name(f".{journal.name}.tmp")
        tmp.write_text(json.dumps({"replacing": moving}, ensure_ascii=False), "utf-8")
        os.replace(tmp, journal)
        for home, doc_ids in sorted(moving.items()):
            ids = pa.array(sorted(doc_ids), pa.string())
            for table in DOC_TABLES:  # documents last
                new = tables.get(table)
                if new is not None:
                    new = new.filter(pc.is_in(new["doc_id"], value_set=ids))
                rewrite_home(self.out, table, home, ids, new)
                checkpoint("replace.table")
        journal.unlink()
        checkpoint("replace.done")

    def stream_batch(self, batch: int) -> StreamedParts:
        """A batch written a piece at a time (a huge document): see `StreamedParts`."""
        return StreamedParts(self.out, self.run_id, batch)

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
        """Replace a derived table in one atomic rename (a reader sees the old table or the new
        one, never both), then drop files of older layouts."""
        folder = self.out / table
        new = folder / DERIVED_PART
        write_table_atomic(data.cast(SCHEMAS[table]), new)
        for old in folder.glob("part-*.parquet"):
            if old != new:
                old.unlink()
        checkpoint("aggregate.table")


class StreamedParts:
    """The part files of one batch written a piece at a time: the rows of a huge document, chunk
    by chunk, so that they never sit in memory together. Every file is a temporary dot-file
    until `commit`; `abort` removes them."""

    def __init__(self, out: Path, run_id: str, batch: int):
        self.out = out
        self.run_id = run_id
        self.batch = batch
        self.key = f"{run_id}-{batch:06d}"
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._tmp: dict[str, Path] = {}

    def write(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Append rows to the table's temporary file (a row group per call). Rows that do not
        fit the schema raise here, before anything of them is written."""
        if not rows:
            return
        data = rows_to_table(table, rows)
        writer = self._writers.get(table)
        if writer is None:
            folder = self.out / table
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".part-{self.key}.parquet.{uuid.uuid4().hex[:8]}.tmp"
            self._tmp[table] = tmp
            writer = self._writers[table] = pq.ParquetWriter(
                tmp, SCHEMAS[table], compression="zstd"
            )
        writer.write_table(data)
        checkpoint("write.stream")

    def _close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def abort(self) -> None:
        """Remove every temporary file (a document written whole or not at all)."""
        try:
            self._close()
        finally:
            for tmp in self._tmp.values():
                tmp.unlink(missing_ok=True)
            self._tmp.clear()

    def commit(self, doc_ids: list[str], home: str | None = None) -> None:
        """Put the batch in place: its own part files renamed in, documents last, then the
        marker; or, when its documents are being replaced (`home`), merged into their home
        files as `DatasetWriter._replace` does."""
        try:
            self._close()
            if home is None:
                for table in BATCH_TABLES:  # documents last
                    if table in self._tmp:
                        checkpoint("write.renaming")
                        os.replace(self._tmp.pop(table), self._part(table))
                        checkpoint("write.file")
                marker = self.out / MARKERS / self.key
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch()
                checkpoint("write.marker")
                return
            journal = self.out / JOURNAL / f"{self.key}.json"
            journal.parent.mkdir(parents=True, exist_ok=True)
            tmp = journal.with_name(f".{journal.name}.tmp")
            tmp.write_text(json.dumps({"replacing": {home: doc_ids}}, ensure_ascii=False), "utf-8")
            os.replace(tmp, journal)
            ids = pa.array(sorted(doc_ids), pa.string())
            for table in DOC_TABLES:  # documents last
                rewrite_home_streamed(self.out, table, home, ids, self._tmp.get(table))
                checkpoint("replace.table")
            journal.unlink()
            checkpoint("replace.done")
        finally:
            self.abort()  # what was not renamed into place

    def _part(self, table: str) -> Path:
        return self.out / table / f"part-{self.key}.parquet"


def rewrite_home_streamed(
    out: Path, table: str, home: str, doc_ids: pa.Array, new: Path | None
) -> None:
    """`rewrite_home` for new rows in a Parquet file (a huge document's), copied a row group at
    a time: the old rows of `doc_ids` out, the file's rows in, one atomic rename."""
    path = out / table / f"part-{home}.parquet"
    if not path.exists() and new is None:
        return
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with pq.ParquetWriter(tmp, SCHEMAS[table], compression="zstd") as writer:
            if path.exists():
                with pq.ParquetFile(path) as old:
                    for i in range(old.num_row_groups):
                        group = old.read_row_group(i).cast(SCHEMAS[table])
                        hit = pc.fill_null(pc.is_in(group["doc_id"], value_set=doc_ids), False)
                        writer.write_table(group.filter(pc.invert(hit)))
            if new is not None:
                with pq.ParquetFile(new) as fresh:
                    for i in range(fresh.num_row_groups):
                        writer.write_table(fresh.read_row_group(i))
        checkpoint("write.renaming")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    checkpoint("write.file")


def rewrite_home(out: Path, table: str, home: str, doc_ids: pa.Array, new: pa.Table | None) -> None:
    """Swap the rows of `doc_ids` in one home file for `new` (None: remove them), atomically."""
    path = out / table / f"part-{home}.parquet"
    if path.exists():
        old = pq.read_table(path, schema=SCHEMAS[table])
        hit = pc.fill_null(pc.is_in(old["doc_id"], value_set=doc_ids), False)
        if not pc.any(hit).as_py() and (new is None or new.num_rows == 0):
            return
        kept = old.filter(pc.invert(hit))
    elif new is None or new.num_rows == 0:
        return
    else:
        kept = SCHEMAS[table].empty_table()
    merged = pa.concat_tables([kept, new]) if new is not None and new.num_rows else kept
    write_table_atomic(merged, path)


def table_files(out_dir: Path, table: str) -> list[Path]:
    folder = Path(out_dir) / table
    return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []


def read_file(path: Path, columns: list[str] | None = None) -> pa.Table:
    """One Parquet file. `pq.ParquetFile` rather than `pq.read_table`: the latter goes through
    `pyarrow.dataset`, whose import pulls in pandas (~0.6 s of every run's start-up)."""
    with pq.ParquetFile(path) as fh:
        return fh.read(columns=columns)


def read_table(out_dir: Path | str, table: str, columns: list[str] | None = None) -> pa.Table:
    """The whole table (or an empty one with the declared schema)."""
    files = table_files(Path(out_dir), table)
    schema = SCHEMAS[table]
    if columns:
        schema = pa.schema([schema.field(c) for c in columns])
    if not files:
        return schema.empty_table()
    parts = [read_file(f, columns) for f in files]
    if all(p.schema.names == schema.names for p in parts):
        return pa.concat_tables([p.cast(schema) for p in parts])
    # Files of another schema version: let a dataset fill in and cast what differs.
    import pyarrow.dataset as ds

    return ds.dataset(files, schema=SCHEMAS[table], format="parquet").to_table(columns=columns)


def _key(path: Path) -> str:
    return path.stem.removeprefix("part-")


def existing_documents(out_dir: Path | str) -> tuple[dict[str, DocInfo], dict[str, list[str]]]:
    """doc_id -> DocInfo of every document already written, and doc_id -> the other homes of a
    document found in more than one (an archive damaged by an earlier tifa version)."""
    found: dict[str, DocInfo] = {}
    extra: dict[str, list[str]] = defaultdict(list)
    for path in table_files(Path(out_dir), "documents"):
        part = read_file(path, columns=["doc_id", "content_hash", "run_id"])
        home = _key(path)
        for doc_id, digest, run_id in zip(
            part["doc_id"].to_pylist(),
            part["content_hash"].to_pylist(),
            part["run_id"].to_pylist(),
            strict=True,
        ):
            if doc_id in found:  # files are sorted by run, so the later copy wins
                extra[doc_id].append(found[doc_id].home)
            found[doc_id] = DocInfo(digest, home, run_id)
    return found, dict(extra)


def remove_duplicates(out_dir: Path | str, extra: dict[str, list[str]]) -> int:
    """Remove the older copies of documents stored twice (each from its own home files)."""
    by_home: dict[str, list[str]] = defaultdict(list)
    for doc_id, homes in extra.items():
        for home in homes:
            by_home[home].append(doc_id)
    for home, doc_ids in sorted(by_home.items()):
        ids = pa.array(sorted(set(doc_ids)), pa.string())
        for table in DOC_TABLES:
            rewrite_home(Path(out_dir), table, home, ids, None)
    return sum(len(v) for v in extra.values())


def error_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["source_file"], row["doc_id"], row["stage"], row["error_type"], row["message"])


def existing_error_keys(out_dir: Path | str) -> set[tuple[Any, ...]]:
    cols = ["source_file", "doc_id", "stage", "error_type", "message"]
    return {error_key(r) for r in read_table(out_dir, "errors", columns=cols).to_pylist()}


def pending_replacements(out_dir: Path | str) -> tuple[set[str], list[Path]]:
    """Documents of replacements a killed run left unfinished, and their journal files."""
    folder = Path(out_dir) / JOURNAL
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    doc_ids: set[str] = set()
    for path in files:
        try:
            moving = json.loads(path.read_text("utf-8"))["replacing"]
        except (ValueError, KeyError, OSError):
            continue
        doc_ids.update(d for ids in moving.values() for d in ids)
    return doc_ids, files


def remove_interrupted_batches(out_dir: Path | str) -> int:
    """Delete part files of batches that never got their completion marker, and temp files."""
    out = Path(out_dir)
    done = {p.name for p in (out / MARKERS).glob("*")} if (out / MARKERS).is_dir() else set()
    removed = 0
    for table in BATCH_TABLES:
        for path in table_files(out, table):
            if _key(path) not in done:
                path.unlink()
                removed += 1
    for folder in [out / t for t in SCHEMAS] + [out / MARKERS, out / JOURNAL]:
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink()
    return removed
