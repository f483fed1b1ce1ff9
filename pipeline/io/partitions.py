"""The input cut into partitions for a Dask run: small files grouped, large `.jsonl` and `.csv`
files cut into byte ranges, each read by the worker it is sent to exactly as a whole read would
read those records (ids of records without one included).

The driver only lists files (`plan_partitions`); the workers count the line breaks of `.jsonl`
ranges (`count_newlines`) and find the record starts of large `.csv` files (`csv_ranges`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.core.document import Document
from pipeline.io.ingest import (
    DEFAULT_MAX_DOC_BYTES,
    FieldMap,
    IngestError,
    csv_cut_points,
    iter_inputs,
    read_input_file,
)

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
