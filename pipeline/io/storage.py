"""Where an output folder lives: a local (or shared, mounted) path, or an fsspec URL (s3://…).

Every file of an output folder is read and written through a `Store`, so the same writer runs
in the driver, in a local worker process and on a Dask worker on another machine. Paths given
to a Store are relative to the folder, with "/" separators ("documents/part-x.parquet").

A local Store keeps what `write.py` promises readers: a file appears whole, by a rename from a
dot-name that pyarrow, pandas and DuckDB skip. On an object store an object appears only when
its upload completes (S3, GCS and Azure never show a partial object), so files are written under
their final name; other fsspec file systems get a temporary name and a move.

Object stores are configured the fsspec way (credentials from the usual AWS/GCP variables;
other options as ``FSSPEC_S3_ENDPOINT_URL=http://…`` and the like), which Dask workers inherit.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.faults import checkpoint

# Object stores on which an upload is atomic: the object is visible whole or not at all.
_ATOMIC_PUT = {"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az"}


# Characters DuckDB reads as a pattern in any path it is given (a list of files too): `[x]` is a
# class, `*` and `?` wildcards. Each is written as a one-character class, which matches itself
# (`arch[x]` -> `arch[[]x[]]`). A backslash is a folder separator to DuckDB's glob, and a class
# cannot hold it, so a path with both can only be named literally when it has no pattern at all.
_DUCKDB_PATTERN = re.compile(r"([\[\]*?])")


class UnreadablePath(ValueError):
    """An output path DuckDB cannot be told to read literally (a clear message, never a
    traceback: the CLI says so and exits 2 before anything is written)."""


def duckdb_path(path: str) -> str:
    """`path` as DuckDB must be given it to read that one path, never a pattern: the output
    folder `arch[x]` must not read `archx` beside it, nor `star*dir` every folder it matches."""
    if "\\" in path and _DUCKDB_PATTERN.search(path):
        raise UnreadablePath(
            f"DuckDB cannot read {path!r}: it holds a backslash, which DuckDB takes for a "
            "folder separator in a pattern, and one of [ ] * ?, which it takes for a pattern; "
            "rename the folder"
        )
    return _DUCKDB_PATTERN.sub(r"[\1]", path)


def check_duckdb_folder(path: str) -> None:
    """Raise UnreadablePath for an output folder DuckDB cannot hold `tifa.duckdb` in or read
    from: a `?` starts the options of a database path (`q?mark/tifa.duckdb` is opened as
    `q` with options `mark/…`), and a backslash is a folder separator to it."""
    if "\\" in path:
        raise UnreadablePath(
            f"DuckDB cannot open a database under {path!r}: it reads a backslash in a path as a "
            "folder separator; rename the folder"
        )
    if "?" in path:
        raise UnreadablePath(
            f"DuckDB cannot open a database under {path!r}: it reads '?' in a database path as "
            "the start of its options, so neither tifa nor a dashboard could open tifa.duckdb "
            "there; rename the folder"
        )


def duckdb_glob(folder: str, pattern: str) -> str:
    """A DuckDB glob for the files matching `pattern` in `folder` (a path, not a pattern)."""
    return f"{duckdb_path(folder)}/{pattern}"


def is_url(location: str | os.PathLike) -> bool:
    text = os.fspath(location)
    return "://" in text and not text.startswith("file://")


class Store:
    """An output folder: `Store("data/processed")` or `Store("s3://bucket/tifa")`."""

    def __init__(self, location: str | os.PathLike | Store):
        if isinstance(location, Store):
            location = location.location
        text = os.fspath(location)
        if text.startswith("file://"):
            text = text.removeprefix("file://")
        self.location = text
        self.local = not is_url(text)
        if self.local:
            self.root = Path(text)
            self.fs: Any = None
            self.protocol = "file"
        else:
            import fsspec

            self.fs, self._root = fsspec.core.url_to_fs(text)
            self._root = self._root.rstrip("/")
            protocol = self.fs.protocol
            self.protocol = protocol if isinstance(protocol, str) else protocol[0]

    def __repr__(self) -> str:
        return f"Store({self.location!r})"

    def __str__(self) -> str:
        return self.location

    # -- names ---------------------------------------------------------------------------
    def path(self, rel: str = "") -> Path:
        """The local path of `rel` (local stores only)."""
        return self.root / rel if rel else self.root

    def _fs_path(self, rel: str) -> str:
        return f"{self._root}/{rel}" if rel else self._root

    def url(self, rel: str = "") -> str:
        """A name of `rel` that pyarrow, DuckDB (with the fsspec file system registered) and
        messages understand: the local path, or protocol://bucket/…"""
        if self.local:
            return str(self.path(rel))
        return f"{self.protocol}://{self._fs_path(rel)}"

    # -- listing -------------------------------------------------------------------------
    def list(self, folder: str, prefix: str = "", suffix: str = "") -> list[str]:
        """Names (relative to the store) of the files directly in `folder` whose names start
        with `prefix` and end with `suffix`, sorted."""
        if self.local:
            base = self.path(folder)
            if not base.is_dir():
                return []
            names = [
                e.name
                for e in os.scandir(base)
                if e.name.startswith(prefix) and e.name.endswith(suffix) and e.is_file()
            ]
        else:
            target = self._fs_path(folder)
            # Another process (a Dask worker) may have written here since the last listing.
            self.fs.invalidate_cache(target)
            try:
                entries = self.fs.ls(target, detail=True)
            except FileNotFoundError:
                return []
            names = [
                e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e.get("type") == "file"
            ]
            names = [n for n in names if n.startswith(prefix) and n.endswith(suffix)]
        return [f"{folder}/{n}" for n in sorted(names)]

    def exists(self, rel: str) -> bool:
        if self.local:
            return self.path(rel).exists()
        self.fs.invalidate_cache(self._fs_path(rel).rsplit("/", 1)[0])
        return self.fs.exists(self._fs_path(rel))

    def info(self, rel: str) -> tuple[int, int] | None:
        """(size, modification time in ns) of a file, None when it is gone."""
        try:
            if self.local:
                st = self.path(rel).stat()
                return st.st_size, st.st_mtime_ns
            info = self.fs.info(self._fs_path(rel))
        except (FileNotFoundError, OSError):
            return None
        mtime = info.get("LastModified") or info.get("mtime") or info.get("created") or 0
        if hasattr(mtime, "timestamp"):
            mtime = int(mtime.timestamp() * 1e9)
        return int(info.get("size") or 0), int(mtime)

    # -- reading -------------------------------------------------------------------------
    def open_parquet(self, rel: str) -> pq.ParquetFile:
        if self.local:
            return pq.ParquetFile(self.path(rel))
        return pq.ParquetFile(self.fs.open(self._fs_path(rel), "rb"))

    def read_parquet(self, rel: str, columns: list[str] | None = None) -> pa.Table:
        # `pq.ParquetFile` rather than `pq.read_table`: the latter goes through
        # `pyarrow.dataset`, whose import pulls in pandas (~0.6 s of every run's start-up).
        with self.open_parquet(rel) as fh:
            return fh.read(columns=columns)

    def read_text(self, rel: str) -> str:
        if self.local:
            return self.path(rel).read_text(encoding="utf-8")
        with self.fs.open(self._fs_path(rel), "rb") as fh:
            return fh.read().decode("utf-8")

    # -- writing -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _atomic(self, rel: str) -> Iterator[Any]:
        """Where to write `rel` (a local temporary path, or a binary file object): its content
        appears under `rel` only when the block ends without an exception. pyarrow writes a
        local path natively, faster than through a Python file object."""

        if self.local:
            path = self.path(rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
            try:
                yield str(tmp)
                checkpoint("write.renaming")
                os.replace(tmp, path)
            finally:
                if tmp.exists():
                    tmp.unlink()
            return
        target = self._fs_path(rel)
        if self.protocol in _ATOMIC_PUT:
            with self.fs.open(target, "wb") as fh:
                yield fh
                checkpoint("write.renaming")
            return
        folder, _, name = target.rpartition("/")
        tmp = f"{folder}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            with self.fs.open(tmp, "wb") as fh:
                yield fh
            checkpoint("write.renaming")
            self.fs.mv(tmp, target)
        finally:
            if self.fs.exists(tmp):
                self.fs.rm(tmp)

    def write_parquet(self, table: pa.Table, rel: str) -> None:
        """Write `table` to `rel` so that readers see the old file or the new one, never half."""

        with self._atomic(rel) as fh:
            pq.write_table(table, fh, compression="zstd")
        checkpoint("write.file")

    @contextlib.contextmanager
    def parquet_writer(self, rel: str, schema: pa.Schema) -> Iterator[pq.ParquetWriter]:
        """Stream row groups into `rel`; the file appears whole when the block ends."""
        with self._atomic(rel) as fh:
            writer = pq.ParquetWriter(fh, schema, compression="zstd")
            try:
                yield writer
            finally:
                writer.close()

    def put_file(self, local: str | os.PathLike, rel: str) -> None:
        """Upload a finished local file to `rel` (atomic on an object store), then delete it."""
        target = self._fs_path(rel)
        if self.protocol in _ATOMIC_PUT:
            self.fs.put_file(os.fspath(local), target)
        else:
            folder, _, name = target.rpartition("/")
            tmp = f"{folder}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
            self.fs.put_file(os.fspath(local), tmp)
            self.fs.mv(tmp, target)
        os.unlink(local)

    def write_text(self, rel: str, text: str) -> None:
        with self._atomic(rel) as target:
            if isinstance(target, str):
                Path(target).write_bytes(text.encode("utf-8"))
            else:
                target.write(text.encode("utf-8"))

    def touch(self, rel: str) -> None:
        if self.local:
            path = self.path(rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        else:
            self.fs.pipe_file(self._fs_path(rel), b"")

    def move(self, src: str, dest: str) -> None:
        """Rename `src` to `dest`, replacing it: atomic locally; on an object store a
        server-side copy (the new object appears whole) then the deletion of `src`, so a
        crash in between leaves both, which callers must handle (compact.py's journal does)."""
        if self.local:
            os.replace(self.path(src), self.path(dest))
        else:
            self.fs.copy(self._fs_path(src), self._fs_path(dest))
            self.remove(src)

    def remove(self, rel: str) -> None:
        """Delete a file; a file already gone is not an error."""
        if self.local:
            self.path(rel).unlink(missing_ok=True)
            return
        try:
            self.fs.rm_file(self._fs_path(rel))
        except FileNotFoundError:
            pass

    def remove_temp_files(self, folder: str) -> None:
        """Temporary dot-files a killed writer left in `folder` (local stores: object stores
        never show an unfinished upload)."""
        if self.local and self.path(folder).is_dir():
            for tmp in self.path(folder).glob(".*.tmp"):
                tmp.unlink(missing_ok=True)

    def makedirs(self) -> None:
        if self.local:
            self.root.mkdir(parents=True, exist_ok=True)
        else:
            self.fs.makedirs(self._root, exist_ok=True)

    def register(self, con: Any) -> None:
        """Let a DuckDB connection read this store's URLs (DuckDB's own httpfs extension is
        downloaded at run time, which the nightly machines cannot do; fsspec is installed)."""
        if not self.local:
            con.register_filesystem(self.fs)
