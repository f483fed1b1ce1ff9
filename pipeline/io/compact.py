"""Compaction: merge the small part files of the batch tables into few large ones.

Every batch of every night adds one part file per table (`DIR/<table>/part-<run_id>-<batch>
.parquet`), so after months a table is thousands of small files, slow to open for DuckDB and
pandas. `compact` merges them, group by group, without changing a row.

Homes. All rows of one document in one table live in one file, its *home*, named by a key
(see write.py). A group of keys is therefore merged for every table at once into one new key:
`DIR/<table>/part-<new>.parquet` for each table that had files of the group, with the marker
`DIR/_done/<new>`. The new key is `<first>_<last>` (the group's first and last batch keys, which
sort by run), so names stay readable, sort by age and never collide with a batch's own key.

Grouping is deterministic: the committed keys (those with a marker) whose every file is smaller
than half the target are taken in name order and cut into consecutive groups whose merged file
of each table stays within the target size. Keys with a file of at least half the target are
left alone (a group merged earlier is not rewritten every night), and so is a group of one.

Crash safety. One group at a time, with a journal `DIR/_journal/<new>.compact` naming the new
key, the old keys and the tables:

1. the journal is written (atomically);
2. each table's merged file is written under a dot-name, `.part-<new>.parquet.compacting`,
   invisible to every reader, streamed one input row group at a time;
3. the marker `_done/<new>` is created: this is the commit point;
4. per table, the merged file is renamed to `part-<new>.parquet` and the old part files of that
   table are deleted; then the old markers; then the journal.

`recover` (run first by `tifa compact` and at the start of every `tifa run`, before anything
that reads homes) finishes or undoes a compaction a kill interrupted: with the new marker it
redoes step 4 (each rename and deletion is idempotent: a staged file still there is renamed,
old files still there are deleted); without it nothing outside the dot-names and the journal
was touched, so those are deleted and the old files stand as before. Between a rename and the
deletion of the old files of that table a *concurrent* reader can see the group's rows twice
(there is no atomic multi-file operation); `tifa run` and `tifa compact` hold the output lock,
so no tifa writer ever sees that state, and nor does any reader once the compaction finished.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.io.lock import output_lock
from pipeline.io.schema import BATCH_TABLES, SCHEMAS
from pipeline.io.storage import Store
from pipeline.io.write import (
    COMPACT_JOURNAL_SUFFIX,
    MARKERS,
    Location,
    checkpoint,
    done_keys,
    existing_documents,
    file_key,
    file_rows,
    file_size,
    has_marker,
    is_folder,
    journal_files,
    journal_path,
    merge_files,
    part_path,
    read_json,
    remove_duplicates,
    remove_interrupted_batches,
    remove_marker,
    staged_files,
    staged_key,
    staged_path,
    table_parts,
    write_json_atomic,
    write_marker,
)

DEFAULT_TARGET_BYTES = 128 * 1024**2
# `tifa run` compacts after its batches when a batch table has more small part files than this.
DEFAULT_COMPACT_ABOVE = 64
# A key with a file at least this fraction of the target is "large" and left alone.
LARGE_FRACTION = 0.5


class CompactionError(RuntimeError):
    """A user-facing problem: not a tifa output folder, or a journal that cannot be honoured."""


@dataclass
class Group:
    new: str
    old: list[str]
    tables: list[str]  # tables with at least one file of the group
    bytes: int  # size of the files being merged, all tables


@dataclass
class CompactSummary:
    out_dir: str
    target_bytes: int
    n_groups: int = 0
    n_keys_merged: int = 0  # batches (homes) merged into the new ones
    n_large_kept: int = 0  # batches left alone: already large
    files_before: int = 0  # part files of the batch tables
    files_after: int = 0
    bytes_merged: int = 0
    # "finished"/"rolled back" for each compaction a killed process had left unfinished.
    recovered: list[str] = field(default_factory=list)
    n_interrupted_parts_removed: int = 0
    n_duplicates_removed: int = 0
    seconds: float = 0.0


def parse_size(text: str) -> int:
    """'128M', '1.5G', '500k', '1000' -> bytes (K/M/G/T are powers of 1024; a trailing B or
    iB is allowed: 128MB = 128MiB = 128M)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", text)
    if not m:
        raise ValueError(f"not a size: {text!r} (examples: 128M, 1G, 500K, 1000000)")
    power = " KMGT".index(m.group(2).upper() or " ")
    value = int(float(m.group(1)) * 1024**power)
    if value <= 0:
        raise ValueError(f"size must be positive: {text!r}")
    return value


def check_output_folder(out: Store) -> None:
    """Raise CompactionError unless `out` looks like a `tifa run --out` folder."""
    if not is_folder(out):
        raise CompactionError(f"no such folder: {out}")
    if not is_folder(out, MARKERS) and not is_folder(out, "documents"):
        raise CompactionError(
            f"{out} is not a tifa output folder (no documents/ or {MARKERS}/ in it); "
            "give the --out folder of `tifa run`"
        )


def compact(
    out_dir: Location,
    target_bytes: int = DEFAULT_TARGET_BYTES,
    min_files: int = 2,
    on_progress: Callable[[int, int], None] | None = None,
) -> CompactSummary:
    """Merge the small part files of every batch table of `out_dir` (see the module doc).

    `min_files`: do nothing unless at least this many small batches could be merged.
    `on_progress(bytes_done, bytes_total)` follows the merge. Holds the output lock: raises
    `pipeline.io.lock.OutputLocked` at once when a `tifa run` (or another compaction) holds it,
    `CompactionError` when `out_dir` is not a tifa output folder.
    """
    out = Store(out_dir)
    check_output_folder(out)
    with output_lock(out.location):
        return compact_locked(out, target_bytes, min_files, on_progress, repair=True)


def compact_locked(
    out_dir: Location,
    target_bytes: int = DEFAULT_TARGET_BYTES,
    min_files: int = 2,
    on_progress: Callable[[int, int], None] | None = None,
    *,
    repair: bool = True,
) -> CompactSummary:
    """`compact` for a caller already holding the lock (`tifa run` after its batches).
    `repair` first does what a run does at its start: finish or undo an interrupted compaction,
    remove the parts of interrupted batches and older copies of documents stored twice (merging
    two copies into one file would leave no way to tell which is newer)."""
    t0 = time.perf_counter()
    out = Store(out_dir)
    summary = CompactSummary(out.location, target_bytes)
    if repair:
        summary.recovered = recover(out)
        summary.n_interrupted_parts_removed = remove_interrupted_batches(out)
        _, duplicates = existing_documents(out)
        if duplicates:
            summary.n_duplicates_removed = remove_duplicates(out, duplicates)
    summary.files_before = _count_files(out)
    groups, n_large = plan(out, target_bytes, min_files)
    summary.n_large_kept = n_large
    total = sum(g.bytes for g in groups)
    done = 0
    for group in groups:
        _compact_group(out, group)
        done += group.bytes
        summary.n_groups += 1
        summary.n_keys_merged += len(group.old)
        if on_progress:
            on_progress(done, total)
    summary.bytes_merged = total
    summary.files_after = _count_files(out)
    summary.seconds = time.perf_counter() - t0
    return summary


def _count_files(out: Store) -> int:
    return sum(len(table_parts(out, t)) for t in BATCH_TABLES)


def _key_sizes(out: Store) -> dict[str, dict[str, int]]:
    """key -> {table: file size} for every committed key with a batch part file."""
    done = done_keys(out)
    sizes: dict[str, dict[str, int]] = defaultdict(dict)
    for table in BATCH_TABLES:
        for name in table_parts(out, table):
            key = file_key(name)
            size = file_size(out, name)
            if key in done and size is not None:
                sizes[key][table] = size
    return dict(sizes)


def small_part_counts(out: Location, target_bytes: int = DEFAULT_TARGET_BYTES) -> dict[str, int]:
    """table -> number of its part files that compaction would consider merging."""
    counts: dict[str, int] = defaultdict(int)
    for by_table in _key_sizes(Store(out)).values():
        if max(by_table.values()) < target_bytes * LARGE_FRACTION:
            for table in by_table:
                counts[table] += 1
    return dict(counts)


def _span(key: str) -> tuple[str, str]:
    """First and last batch key of a key: itself, or those a compacted key `<first>_<last>`
    (`_<n>` after it only if that name was taken) names."""
    parts = key.split("_")
    return parts[0], parts[1] if len(parts) > 1 else parts[0]


def plan(out_dir: Location, target_bytes: int, min_files: int = 2) -> tuple[list[Group], int]:
    """The groups to merge, in order, and the number of large keys left alone."""
    out = Store(out_dir)
    sizes = _key_sizes(out)
    large = [k for k, s in sizes.items() if max(s.values()) >= target_bytes * LARGE_FRACTION]
    small = sorted(k for k in sizes if k not in large)
    if len(small) < max(min_files, 2):
        return [], len(large)
    runs: list[list[str]] = []
    current: list[str] = []
    totals: dict[str, int] = defaultdict(int)
    for key in small:
        if current and any(totals[t] + n > target_bytes for t, n in sizes[key].items()):
            runs.append(current)
            current, totals = [], defaultdict(int)
        current.append(key)
        for t, n in sizes[key].items():
            totals[t] += n
    runs.append(current)
    taken = set(sizes) | done_keys(out)
    groups = []
    for keys in runs:
        if len(keys) < 2:
            continue
        new = f"{_span(keys[0])[0]}_{_span(keys[-1])[1]}"
        n = 1
        while new in taken:  # never reuse a name in use (cannot happen with run-id keys)
            n += 1
            new = f"{_span(keys[0])[0]}_{_span(keys[-1])[1]}_{n}"
        taken.add(new)
        tables = [t for t in BATCH_TABLES if any(t in sizes[k] for k in keys)]
        groups.append(Group(new, keys, tables, sum(sum(sizes[k].values()) for k in keys)))
    return groups, len(large)


def _compact_group(out: Store, group: Group) -> None:
    journal = journal_path(group.new + COMPACT_JOURNAL_SUFFIX)
    write_json_atomic(out, journal, {"new": group.new, "old": group.old, "tables": group.tables})
    checkpoint("compact.journal")
    try:
        for table in group.tables:
            sources = [n for k in group.old if file_size(out, n := part_path(table, k)) is not None]
            expected = sum(file_rows(out, n) for n in sources)
            staged = staged_path(table, group.new)
            written = merge_files(out, sources, staged, SCHEMAS[table])
            if written != expected or file_rows(out, staged) != expected:
                raise CompactionError(
                    f"merging {len(sources)} files of {table} gave {written} rows, not "
                    f"{expected}; nothing was changed"
                )
            checkpoint("compact.merged")
    except BaseException:
        _roll_back(out, group.new, journal)  # nothing outside dot-names was touched yet
        raise
    write_marker(out, group.new)  # the commit point: from here on, recovery rolls forward
    checkpoint("compact.marker")
    _roll_forward(out, group.new, group.old, group.tables, journal)


def _roll_forward(out: Store, new: str, old: list[str], tables: list[str], journal: str) -> None:
    for table in tables:
        staged, final = staged_path(table, new), part_path(table, new)
        if file_size(out, staged) is not None:
            # On an object store a move is a copy then a deletion: a crash in between leaves
            # the staged file beside its copy, and this step is simply done again.
            out.move(staged, final)
            checkpoint("compact.renamed")
        elif file_size(out, final) is None:
            # Only possible if someone removed files by hand: keep the old files and say so.
            raise CompactionError(
                f"cannot finish the compaction in {out.url(journal)}: neither {staged} nor "
                f"{final} exists in {out}; restore them, or remove the journal and the marker "
                f"{out.url(f'{MARKERS}/{new}')} to keep the old files"
            )
        for key in old:
            out.remove(part_path(table, key))
        checkpoint("compact.table")
    for key in old:
        remove_marker(out, key)
    checkpoint("compact.markers")
    out.remove(journal)
    checkpoint("compact.done")


def _roll_back(out: Store, new: str, journal: str) -> None:
    for table in BATCH_TABLES:
        out.remove(staged_path(table, new))
        out.remove(part_path(table, new))  # never exists before the marker; for safety
    out.remove(journal)


def recover(out_dir: Location) -> list[str]:
    """Finish (marker written) or undo (not yet) every compaction a killed process left; also
    remove staged files no journal names. Returns one line per compaction found. Must run
    before anything reads homes or removes parts without a marker."""
    out = Store(out_dir)
    found = []
    live: set[str] = set()
    for journal in journal_files(out, COMPACT_JOURNAL_SUFFIX):
        try:
            entry = read_json(out, journal)
            new, old, tables = entry["new"], list(entry["old"]), list(entry["tables"])
        except (ValueError, KeyError, TypeError) as exc:
            raise CompactionError(
                f"unreadable compaction journal {out.url(journal)} ({exc}); it is written "
                "atomically, "
                "so it was changed by hand: restore it or move it away"
            ) from None
        if has_marker(out, new):
            _roll_forward(out, new, old, tables, journal)
            found.append(f"finished merging {len(old)} batches into {new}")
        else:
            _roll_back(out, new, journal)
            found.append(f"rolled back an unfinished merge of {len(old)} batches")
        live.add(new)
    for table in BATCH_TABLES:
        for name in staged_files(out, table):
            if staged_key(name) not in live:
                out.remove(name)
    return found


def should_compact(out: Location, compact_above: int | None, target_bytes: int) -> bool:
    """Whether `tifa run --compact-above N` compacts now: some batch table has more than N small
    part files (0 or None: never)."""
    if not compact_above:
        return False
    counts = small_part_counts(out, target_bytes)
    return max(counts.values(), default=0) > compact_above
