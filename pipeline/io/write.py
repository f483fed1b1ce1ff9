"""Parquet output: one dataset folder per table, incremental, idempotent and crash-safe.

Layout of `--out DIR`:
    DIR/<table>/part-<run_id>-<batch>.parquet   one file per table per batch of documents
    DIR/_done/<run_id>-<batch>                  completion marker, written after the batch's parts
    DIR/_journal/<run_id>-<batch>.json          documents being replaced right now (see below)
    DIR/_journal/<key>~<home>~<table>.parquet   their new rows, until the replacement is done
    DIR/<derived table>/part-0.parquet          rebuilt whole at the end of every run
    DIR/.tifa.lock                              held by the one `tifa run` writing to DIR
    DIR/<table>/part-<first>_<last>.parquet     batches merged by `tifa compact` (compact.py)
    DIR/_journal/<first>_<last>.compact         a compaction in progress (compact.py)

Every file is written under a temporary dot-name and renamed into place, so readers never see a
half-written file (pyarrow, pandas and DuckDB's `*.parquet` ignore names starting with "."). A
batch whose marker is missing was interrupted: its part files are removed at the start of the
next run, and its documents, absent from `documents`, are processed again.

Replacement is atomic for readers and for crashes. All rows of one document in one table live in
one file: the part file of the batch that first wrote it (its *home*). A changed (or `--force`d)
document is replaced by rewriting its home file of each table, old rows out and new rows in, with
one atomic rename per table, documents last: a reader of `DIR/<table>/` sees the old version or
the new one, never both and never neither, and a kill between two tables leaves `documents`
with the old content hash. The journal names the documents of a replacement in progress and the
files holding their new rows, written before it: the next run finishes the replacement from
those files before it reads the archive, whatever its input holds (`finish_replacements`).

A huge document (`pipeline/run/huge.py`) is its own batch, written a chunk at a time
(`StreamedParts`): each table's rows go through a `ParquetWriter` into a temporary dot-file as
they are made, and only when the document is complete are the files renamed into place, documents
last, then the marker (or, for a document being replaced, merged into its home files, a row group
at a time, under the journal as above). A kill while streaming leaves only temporary files, which
the next run removes; a document that fails half-way has its temporary files removed at once.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.core.faults import checkpoint
from pipeline.core.vocabulary import RelationName
from pipeline.io.schema import BATCH_TABLES, SCHEMAS, empty_table
from pipeline.io.storage import Store

MARKERS = "_done"
JOURNAL = "_journal"
DERIVED_PART = "part-0.parquet"

# Tables whose rows belong to one document and move with it when it is replaced. Errors are a
# log of failures (each listed once), not a property of the current version of a document.
DOC_TABLES = [t for t in BATCH_TABLES if t != "errors"]


def write_table_atomic(table: pa.Table, path: Path) -> None:
    """Write one local Parquet file atomically (see `Store.write_parquet`)."""
    path = Path(path)
    Store(path.parent).write_parquet(table, path.name)


def rows_to_table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Build a table with the declared schema: a wrong type fails here, not in a dashboard."""
    if not rows:  # from_pylist([]) imports pandas
        return empty_table(SCHEMAS[name])
    if name == "relations":
        unknown = {r["relation"] for r in rows} - set(RelationName)
        if unknown:
            raise ValueError(f"unknown relation names {sorted(unknown)} (core/vocabulary.py)")
    return pa.Table.from_pylist(rows, schema=SCHEMAS[name])


def safe_text(text: str) -> str:
    """`text` as storable UTF-8: undecodable file-name bytes and unpaired surrogates escaped."""
    from pipeline.io.ingest import printable

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


Location = Path | str | Store


def batch_key(run_id: str, batch: int | str) -> str:
    """The key of a batch's part files and marker: `<run_id>-<batch>` (numbers zero-padded, so
    the files of a run sort in batch order; Dask partitions use keys like `p00003-000002`)."""
    return f"{run_id}-{batch:06d}" if isinstance(batch, int) else f"{run_id}-{batch}"


def part_name(table: str, key: str) -> str:
    return f"{table}/part-{key}.parquet"


class DatasetWriter:
    """Writes batches into an output folder (a local path or an fsspec URL, see storage.py).
    Any process can hold one: a Dask worker writes its own batches straight into the output."""

    def __init__(self, out_dir: Location, run_id: str):
        self.store = Store(out_dir)
        self.out = self.store.root if self.store.local else self.store.location
        self.run_id = run_id
        self.store.makedirs()

    def part_path(self, table: str, batch: int | str) -> Path:
        return self.store.path(part_name(table, batch_key(self.run_id, batch)))

    def write_batch(
        self,
        batch: int | str,
        rows: dict[str, list[dict[str, Any]]],
        homes: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Write a batch: documents new to DIR into the batch's own part files (documents last,
        then the marker), documents already in DIR into their home files (see the module doc).
        `homes` maps doc_id -> home of every document being replaced. Returns the errors rows of
        documents that could not be stored (already written to `errors`)."""
        tables, isolated = build_tables(rows, self.run_id)
        self.write_tables(batch, tables, homes)
        return isolated

    def write_tables(
        self, batch: int | str, tables: dict[str, pa.Table], homes: dict[str, str] | None = None
    ) -> None:
        homes = homes or {}
        key = batch_key(self.run_id, batch)
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
                self.store.write_parquet(data, part_name(table, key))
        self.store.touch(f"{MARKERS}/{key}")
        checkpoint("write.marker")
        if moving:
            self._replace(key, tables, moving)

    def _replace(self, key: str, tables: dict[str, pa.Table], moving: dict[str, list[str]]) -> None:
        staged: dict[str, dict[str, str]] = {}
        for home, doc_ids in sorted(moving.items()):
            ids = pa.array(sorted(doc_ids), pa.string())
            for table in DOC_TABLES:
                new = tables.get(table)
                if new is not None:
                    new = new.filter(pc.is_in(new["doc_id"], value_set=ids))
                if new is not None and new.num_rows:
                    name = staged_replacement(key, home, table)
                    self.store.write_parquet(new, name)
                    staged.setdefault(home, {})[table] = name
                    checkpoint("replace.staged")
        apply_replacement(self.store, key, moving, staged)

    def stream_batch(self, batch: int | str) -> StreamedParts:
        """A batch written a piece at a time (a huge document): see `StreamedParts`."""
        return StreamedParts(self.store, self.run_id, batch)

    def ensure_tables(self) -> None:
        """Give every batch table at least an empty file, so each `DIR/<table>` can be read whole
        (an empty errors table is the good news, not a missing folder)."""
        for table in BATCH_TABLES:
            if not table_parts(self.store, table):
                key = f"{self.run_id}-empty"
                self.store.write_parquet(empty_table(SCHEMAS[table]), part_name(table, key))
                self.store.touch(f"{MARKERS}/{key}")

    def write_whole(self, table: str, data: pa.Table) -> None:
        """Replace a derived table in one atomic rename (a reader sees the old table or the new
        one, never both), then drop files of older layouts."""
        new = f"{table}/{DERIVED_PART}"
        self.store.write_parquet(data.cast(SCHEMAS[table]), new)
        for old in self.store.list(table, "part-", ".parquet"):
            if old != new:
                self.store.remove(old)
        checkpoint("aggregate.table")


class StreamedParts:
    """The part files of one batch written a piece at a time: the rows of a huge document, chunk
    by chunk, so that they never sit in memory together. Every file is a temporary dot-file
    until `commit`; `abort` removes them."""

    def __init__(self, out: Location, run_id: str, batch: int | str):
        self.store = Store(out)
        self.run_id = run_id
        self.batch = batch
        self.key = batch_key(run_id, batch)
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._tmp: dict[str, Path] = {}
        # On an object store the pieces are staged in a local temporary folder and uploaded
        # whole at commit (an upload is atomic there; a kill leaves nothing in the store).
        self._staging: str | None = None
        if self.store.local:
            self.out = self.store.root
        else:
            import tempfile

            self._staging = tempfile.mkdtemp(prefix="tifa-stream-")
            self.out = Path(self._staging)

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
            if self._staging:
                import shutil

                shutil.rmtree(self._staging, ignore_errors=True)

    def commit(self, doc_ids: list[str], home: str | None = None) -> None:
        """Put the batch in place: its own part files renamed in, documents last, then the
        marker; or, when its documents are being replaced (`home`), merged into their home
        files as `DatasetWriter._replace` does."""
        try:
            self._close()
            store = self.store
            if home is None:
                for table in BATCH_TABLES:  # documents last
                    if table in self._tmp:
                        checkpoint("write.renaming")
                        tmp = self._tmp.pop(table)
                        if store.local:
                            os.replace(tmp, self._part(table))
                        else:
                            store.put_file(tmp, part_name(table, self.key))
                        checkpoint("write.file")
                store.touch(f"{MARKERS}/{self.key}")
                checkpoint("write.marker")
                return
            # The new rows leave their temporary files for the journal's folder first: the
            # journal then names every part a recovery needs (see `apply_replacement`).
            staged: dict[str, str] = {}
            for table in DOC_TABLES:
                tmp = self._tmp.pop(table, None)
                if tmp is None:
                    continue
                name = staged_replacement(self.key, home, table)
                if store.local:
                    store.path(name).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, store.path(name))
                else:
                    store.put_file(tmp, name)
                staged[table] = name
            apply_replacement(store, self.key, {home: doc_ids}, {home: staged})
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
    if new is None:
        # Nothing to add: leave a home that holds none of the documents untouched (a compacted
        # home is large, and a document has no rows in some tables).
        held = pq.read_table(path, columns=["doc_id"])["doc_id"]
        if not pc.any(pc.fill_null(pc.is_in(held, value_set=doc_ids), False)).as_py():
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


def rewrite_home(
    out: Location, table: str, home: str, doc_ids: pa.Array, new: pa.Table | None
) -> None:
    """Swap the rows of `doc_ids` in one home file for `new` (None: remove them), atomically."""
    store = Store(out)
    name = part_name(table, home)
    if store.exists(name):
        old = store.read_parquet(name).cast(SCHEMAS[table])
        hit = pc.fill_null(pc.is_in(old["doc_id"], value_set=doc_ids), False)
        if not pc.any(hit).as_py() and (new is None or new.num_rows == 0):
            return
        kept = old.filter(pc.invert(hit))
    elif new is None or new.num_rows == 0:
        return
    else:
        kept = empty_table(SCHEMAS[table])
    merged = pa.concat_tables([kept, new]) if new is not None and new.num_rows else kept
    store.write_parquet(merged, name)


def table_files(out_dir: Location, table: str) -> list[Path]:
    """The part files of a table in a local output folder, sorted."""
    store = Store(out_dir)
    return [store.path(n) for n in store.list(table, "part-", ".parquet")]


def table_parts(out_dir: Location, table: str) -> list[str]:
    """The part files of a table as names relative to the output folder (any store)."""
    return Store(out_dir).list(table, "part-", ".parquet")


def read_file(path: Path, columns: list[str] | None = None) -> pa.Table:
    """One local Parquet file (see `Store.read_parquet`)."""
    path = Path(path)
    return Store(path.parent).read_parquet(path.name, columns)


def read_table(out_dir: Location, table: str, columns: list[str] | None = None) -> pa.Table:
    """The whole table (or an empty one with the declared schema)."""
    store = Store(out_dir)
    files = table_parts(store, table)
    schema = SCHEMAS[table]
    if columns:
        schema = pa.schema([schema.field(c) for c in columns])
    if not files:
        return empty_table(schema)
    parts = [store.read_parquet(f, columns) for f in files]
    if all(p.schema.names == schema.names for p in parts):
        return pa.concat_tables([p.cast(schema) for p in parts])
    # Files of another schema version: let a dataset fill in and cast what differs.
    import pyarrow.dataset as ds

    urls = [store.url(f) for f in files]
    return ds.dataset(
        urls, schema=SCHEMAS[table], format="parquet", filesystem=_arrow_fs(store)
    ).to_table(columns=columns)


def _arrow_fs(store: Store) -> Any:
    if store.local:
        return None
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    return PyFileSystem(FSSpecHandler(store.fs))


def _key(name: str | Path) -> str:
    stem = os.path.basename(str(name)).removesuffix(".parquet")
    return stem.removeprefix("part-")


def existing_documents(out_dir: Location) -> tuple[dict[str, DocInfo], dict[str, list[str]]]:
    """doc_id -> DocInfo of every document already written, and doc_id -> the other homes of a
    document found in more than one (an archive damaged by an earlier tifa version)."""
    store = Store(out_dir)
    found: dict[str, DocInfo] = {}
    extra: dict[str, list[str]] = defaultdict(list)
    for name in table_parts(store, "documents"):
        part = store.read_parquet(name, columns=["doc_id", "content_hash", "run_id"])
        home = _key(name)
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


def remove_duplicates(out_dir: Location, extra: dict[str, list[str]]) -> int:
    """Remove the older copies of documents stored twice (each from its own home files)."""
    store = Store(out_dir)
    by_home: dict[str, list[str]] = defaultdict(list)
    for doc_id, homes in extra.items():
        for home in homes:
            by_home[home].append(doc_id)
    for home, doc_ids in sorted(by_home.items()):
        ids = pa.array(sorted(set(doc_ids)), pa.string())
        for table in DOC_TABLES:
            rewrite_home(store, table, home, ids, None)
    return sum(len(v) for v in extra.values())


def error_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["source_file"], row["doc_id"], row["stage"], row["error_type"], row["message"])


def existing_error_keys(out_dir: Location) -> set[tuple[Any, ...]]:
    cols = ["source_file", "doc_id", "stage", "error_type", "message"]
    return {error_key(r) for r in read_table(out_dir, "errors", columns=cols).to_pylist()}


# A replacement is journalled with its own parts, so that a kill anywhere in it is finished by
# the next run from what was written, whatever that run's input holds (a document absent
# tonight must not keep new sentences beside its old text):
#   1. the new rows of each (home, table) are written to `_journal/<key>~<home>~<table>.parquet`;
#   2. the journal `_journal/<key>.json` names the homes, their documents and those files: it is
#      the commit point (a kill before it leaves the old version whole, and the staged files,
#      which no journal names, are removed);
#   3. each home file is rewritten from its staged rows (old rows of the documents out, the
#      staged ones in: doing it twice gives the same file), documents last;
#   4. the journal is removed, then the staged files.
# Journals of older versions name only the documents (their new rows lived in memory): those are
# redone from tonight's input, as before (`pending_replacements`).
_STAGED_SEP = "~"


def staged_replacement(key: str, home: str, table: str) -> str:
    """Where a replacement's new rows of one home and table wait (see above): no part file,
    dot-name or `*.parquet` under a table's folder, so no reader sees them."""
    return f"{JOURNAL}/{key}{_STAGED_SEP}{home}{_STAGED_SEP}{table}.parquet"


def apply_replacement(
    store: Store, key: str, moving: dict[str, list[str]], staged: dict[str, dict[str, str]]
) -> None:
    """Steps 2 to 4 above: journal, rewrite every home from the staged rows, clean up."""
    journal = f"{JOURNAL}/{key}.json"
    store.write_text(
        journal, json.dumps({"replacing": moving, "staged": staged}, ensure_ascii=False)
    )
    checkpoint("replace.journal")
    _rewrite_homes(store, _steps(moving, staged))
    store.remove(journal)
    for files in staged.values():
        for name in files.values():
            store.remove(name)
    checkpoint("replace.done")


# One home's part of a replacement: (home key, its documents, table -> staged file).
_HomeStep = tuple[str, list[str], dict[str, str]]


def _steps(moving: dict[str, list[str]], staged: dict[str, dict[str, str]]) -> list[_HomeStep]:
    return [(home, ids, staged.get(home, {})) for home, ids in sorted(moving.items())]


def _rewrite_homes(store: Store, steps: list[_HomeStep]) -> None:
    for home, doc_ids, files in steps:
        ids = pa.array(sorted(doc_ids), pa.string())
        for table in DOC_TABLES:  # documents last
            name = files.get(table)
            if store.local:
                new = store.path(name) if name else None
                rewrite_home_streamed(store.root, table, home, ids, new)
            else:
                rows = store.read_parquet(name) if name else None
                rewrite_home(store, table, home, ids, rows)
            checkpoint("replace.table")


def _current_homes(store: Store, steps: list[_HomeStep]) -> list[_HomeStep]:
    """The journal's homes as they are now: `tifa compact` may have merged a home named in the
    journal (its marker is gone) into a new one since the kill. A home's documents move
    together, so the documents row of any of them says where its rows live now (the
    documents table is rewritten last, so that row is there, old or new). Two old homes
    merged into one stay two steps, each rewriting only its own documents."""
    done = finished_batches(store)
    if all(home in done for home, _, _ in steps):
        return steps
    where: dict[str, str] = {}
    for part in table_parts(store, "documents"):
        for doc_id in store.read_parquet(part, columns=["doc_id"])["doc_id"].to_pylist():
            where[doc_id] = _key(part)
    current = []
    for home, doc_ids, files in steps:
        now = home if home in done else next((where[d] for d in doc_ids if d in where), None)
        if now is None:
            raise FileNotFoundError(
                f"cannot finish a replacement journalled in {store.url(JOURNAL)}: home {home} "
                f"is gone and none of its documents ({', '.join(doc_ids[:3])}) is stored; "
                "remove the journal and rerun with --force"
            )
        current.append((now, doc_ids, files))
    return current


def finish_replacements(out_dir: Location) -> int:
    """Finish every replacement a killed run left journalled with its parts (steps 3 and 4
    above), from those parts alone; remove staged files that no journal names. Returns the
    number of documents whose replacement was finished. Journals of older versions (no staged
    parts) are left for `pending_replacements`."""
    store = Store(out_dir)
    if not is_folder(store, JOURNAL):
        return 0
    named: set[str] = set()
    finished = 0
    for name in journal_files(store, ".json"):
        try:
            journal = json.loads(store.read_text(name))
            moving, staged = journal["replacing"], journal.get("staged")
        except (ValueError, KeyError, OSError, TypeError):
            continue
        if staged is None:
            continue
        for files in staged.values():
            named.update(files.values())
        for home, files in staged.items():
            for table, part in files.items():
                if not store.exists(part):
                    # Written before the journal and removed only after it: a missing part
                    # means the folder was changed by hand. Stop rather than drop rows.
                    raise FileNotFoundError(
                        f"cannot finish the replacement journalled in {store.url(name)}: "
                        f"{store.url(part)} ({table} rows for {home}) is missing; restore it, "
                        "or remove the journal and rerun with --force"
                    )
        _rewrite_homes(store, _current_homes(store, _steps(moving, staged)))
        store.remove(name)
        for files in staged.values():
            for part in files.values():
                store.remove(part)
        finished += sum(len(ids) for ids in moving.values())
    for part in store.list(JOURNAL, suffix=".parquet"):
        if part not in named and not os.path.basename(part).startswith("."):
            store.remove(part)  # staged before a kill that came before its journal
    return finished


def pending_replacements(out_dir: Location) -> tuple[set[str], list[str]]:
    """Documents of replacements a killed run of an older tifa left unfinished (journals
    without staged parts, redone from tonight's input), and their journal files (names
    relative to the output folder: remove them with `Store(out).remove`). Replacements
    journalled with their parts are finished here first, from those parts."""
    finish_replacements(out_dir)
    store = Store(out_dir)
    files = store.list(JOURNAL, suffix=".json")
    doc_ids: set[str] = set()
    for name in files:
        if os.path.basename(name).startswith("."):
            continue
        try:
            moving = json.loads(store.read_text(name))["replacing"]
        except (ValueError, KeyError, OSError):
            continue
        doc_ids.update(d for ids in moving.values() for d in ids)
    return doc_ids, [f for f in files if not os.path.basename(f).startswith(".")]


def finished_batches(out_dir: Location) -> set[str]:
    """Keys of the batches whose completion marker is written."""
    return {_key(n) for n in Store(out_dir).list(MARKERS)}


def remove_interrupted_batches(out_dir: Location) -> int:
    """Delete part files of batches that never got their completion marker, and temp files."""
    store = Store(out_dir)
    done = finished_batches(store)
    removed = 0
    for table in BATCH_TABLES:
        for name in table_parts(store, table):
            if _key(name) not in done:
                store.remove(name)
                removed += 1
    for folder in [*SCHEMAS, MARKERS, JOURNAL]:
        store.remove_temp_files(folder)
    return removed


# --------------------------------------------------------------------------------------------
# Small file operations for compaction (pipeline/io/compact.py), kept here with the rest of tifa's
# file I/O so that one place decides how a path is listed, written, renamed and removed.

COMPACT_JOURNAL_SUFFIX = ".compact"  # _journal/<new key>.compact; replacements use *.json
STAGED_SUFFIX = ".compacting"  # DIR/<table>/.part-<new key>.parquet.compacting


def part_path(table: str, key: str) -> str:
    return part_name(table, key)


def staged_path(table: str, key: str) -> str:
    """Where a merged file waits for its compaction to commit: a dot-name that no reader, no
    `table_parts` and no `*.parquet` glob sees."""
    return f"{table}/.part-{key}.parquet{STAGED_SUFFIX}"


def staged_files(store: Store, table: str) -> list[str]:
    return store.list(table, ".part-", f".parquet{STAGED_SUFFIX}")


def staged_key(name: str) -> str:
    return os.path.basename(name).removeprefix(".part-").removesuffix(f".parquet{STAGED_SUFFIX}")


def file_key(name: str | Path) -> str:
    """The key ("<run_id>-<batch>", or a compacted one) of a part file."""
    return _key(name)


def is_folder(store: Store, rel: str = "") -> bool:
    """Whether `rel` is a folder (local), or any object lies under it (object store)."""
    if store.local:
        return store.path(rel).is_dir()
    try:
        return bool(store.fs.ls(store._fs_path(rel)))
    except FileNotFoundError:
        return False


def file_size(store: Store, name: str) -> int | None:
    info = store.info(name)
    return None if info is None else info[0]


def file_rows(store: Store, name: str) -> int:
    """Rows of a Parquet file, from its footer."""
    with store.open_parquet(name) as fh:
        return fh.metadata.num_rows


def done_keys(store: Store) -> set[str]:
    return {
        os.path.basename(n) for n in store.list(MARKERS) if not os.path.basename(n).startswith(".")
    }


def has_marker(store: Store, key: str) -> bool:
    return store.exists(f"{MARKERS}/{key}")


def write_marker(store: Store, key: str) -> None:
    store.touch(f"{MARKERS}/{key}")


def remove_marker(store: Store, key: str) -> None:
    store.remove(f"{MARKERS}/{key}")


def journal_path(name: str) -> str:
    return f"{JOURNAL}/{name}"


def journal_files(store: Store, suffix: str) -> list[str]:
    return [
        n for n in store.list(JOURNAL, suffix=suffix) if not os.path.basename(n).startswith(".")
    ]


def write_json_atomic(store: Store, name: str, data: Any) -> None:
    store.write_text(name, json.dumps(data, ensure_ascii=False))


def read_json(store: Store, name: str) -> Any:
    return json.loads(store.read_text(name))


def merge_files(
    store: Store,
    sources: list[str],
    dest: str,
    schema: pa.Schema,
    row_group_bytes: int = 64 * 1024**2,
) -> int:
    """Stream the rows of `sources` (in order, unchanged) into one Parquet file `dest`; returns
    the number of rows written. Memory stays bounded: one input row group at a time, buffered
    into output row groups of about `row_group_bytes` of Arrow data (a row group per tiny input
    file would keep the merged file as slow to scan as the small files were). On an object
    store the file is uploaded as it is written and appears whole when it is closed."""
    buffered: list[pa.Table] = []
    size = rows = 0
    with store.parquet_writer(dest, schema) as writer:

        def flush() -> None:
            nonlocal size
            if buffered:
                data = pa.concat_tables(buffered)
                writer.write_table(data, row_group_size=max(data.num_rows, 1))
                buffered.clear()
                size = 0
                checkpoint("compact.row_group")

        for src in sources:
            for part in _conformed_row_groups(store, src, schema):
                buffered.append(part)
                size += part.nbytes
                rows += part.num_rows
                if size >= row_group_bytes:
                    flush()
        flush()
    return rows


def _conformed_row_groups(store: Store, name: str, schema: pa.Schema) -> Any:
    with store.open_parquet(name) as fh:
        if fh.schema_arrow.names == schema.names:
            for i in range(fh.num_row_groups):
                yield fh.read_row_group(i).cast(schema)
            return
    # A file of an older schema version: let a dataset fill in and cast what differs (as
    # `read_table` does); such files are small, so reading one whole is fine.
    import pyarrow.dataset as ds

    yield ds.dataset(
        [store.url(name)], schema=schema, format="parquet", filesystem=_arrow_fs(store)
    ).to_table()
