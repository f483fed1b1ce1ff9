"""`tifa compact` and `tifa run --compact-above`: few large part files, not one row changed, each
document's rows still in one home per table, and crash-safe at every step (real SIGKILLs at
named points, then recovery by `tifa compact` or by the next `tifa run`).

The archive under test is the kill tests' corpus (bundled samples + 6 notices) written one
document per batch, so every table starts as many small part files.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from pipeline.io.compact import compact, parse_size, plan
from pipeline.io.lock import OutputLock
from pipeline.io.schema import BATCH_TABLES, DERIVED_TABLES
from pipeline.io.write import existing_documents, existing_error_keys, table_files
from pipeline.run.runner import run_pipeline

from .kill_support import ROOT, make_corpus, problems, snapshot
from .table_hashes import table_digests

# Small enough that the test archive (about 190 KB of documents files) makes several groups.
TARGET = "64K"


def full_digests(out: Path) -> dict[str, str]:
    """A hash of the sorted rows of every batch and derived table, every column included (the
    run ids too: compaction must not change which run wrote a row)."""
    found = {}
    for table in [*BATCH_TABLES, *DERIVED_TABLES]:
        rows = [
            json.dumps(r, default=str, ensure_ascii=False, sort_keys=True)
            for f in table_files(out, table)
            for r in pq.read_table(f).to_pylist()
        ]
        found[table] = hashlib.sha256("\n".join(sorted(rows)).encode()).hexdigest()
    return found


def homes_by_table(out: Path) -> dict[str, dict[str, set[str]]]:
    """table -> doc_id -> names (keys) of the files holding its rows."""
    found: dict[str, dict[str, set[str]]] = {}
    for table in BATCH_TABLES:
        where: dict[str, set[str]] = defaultdict(set)
        for f in table_files(out, table):
            for doc_id in pq.read_table(f, columns=["doc_id"])["doc_id"].to_pylist():
                where[doc_id].add(f.stem.removeprefix("part-"))
        found[table] = where
    return found


def assert_one_home(out: Path) -> None:
    """Every document's rows in every table lie in one file, named like its documents file."""
    homes = homes_by_table(out)
    for doc_id, keys in homes["documents"].items():
        assert len(keys) == 1, (doc_id, keys)
    doc_home = {d: next(iter(k)) for d, k in homes["documents"].items()}
    for table, where in homes.items():
        if table == "errors":
            continue
        for doc_id, keys in where.items():
            assert keys == {doc_home[doc_id]}, (table, doc_id, keys)


def n_part_files(out: Path) -> int:
    return sum(len(table_files(out, t)) for t in BATCH_TABLES)


def compact_cli(out: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "compact", str(out), "-q", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**_env(), **env},
        timeout=120,
    )


def _env() -> dict[str, str]:
    import os

    env = {**os.environ, "COLUMNS": "200"}
    env.pop("TIFA_CRASH_AT", None)
    return env


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("compact")
    corpus_a = make_corpus(root / "a")
    corpus_b = make_corpus(root / "b", variant="（修订）")
    base = root / "base"
    run_pipeline([corpus_a], base, batch_size=1, compact_above=0)
    clean_b = root / "clean_b"  # A then B, never compacted: the reference for replacements
    shutil.copytree(base, clean_b)
    run_pipeline([corpus_b], clean_b, batch_size=1, compact_above=0)
    return {
        "root": root,
        "a": corpus_a,
        "b": corpus_b,
        "base": base,
        "digests": full_digests(base),
        "ref_b": snapshot(clean_b),
    }


def fresh(world: dict, name: str) -> Path:
    out = world["root"] / name
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(world["base"], out)
    return out


def test_compact_merges_without_changing_a_row(world: dict) -> None:
    out = fresh(world, "merged")
    before = n_part_files(out)
    hashes = table_digests(out)
    summary = compact(out, parse_size(TARGET))
    assert summary.n_groups >= 2 and summary.n_keys_merged >= 10, summary
    assert summary.files_before == before
    assert summary.files_after == n_part_files(out) < before / 3
    assert full_digests(out) == world["digests"]
    assert table_digests(out) == hashes
    assert_one_home(out)
    assert problems(out) == []  # markers for every file, no journal, no temp file
    assert not list(out.rglob("*.compacting"))
    # What reads homes and errors afterwards sees the same documents in their new homes.
    docs, duplicates = existing_documents(out)
    assert len(docs) == 18 and not duplicates
    assert {d.home for d in docs.values()} <= {
        f.stem.removeprefix("part-") for f in table_files(out, "documents")
    }
    assert existing_error_keys(out) == existing_error_keys(world["base"])
    # Merged files are one row group per ~64 MB, not one per input file.
    assert all(pq.ParquetFile(f).num_row_groups == 1 for f in table_files(out, "sentences"))


def test_compaction_is_deterministic_and_leaves_large_files_alone(world: dict) -> None:
    one, two = fresh(world, "det1"), fresh(world, "det2")
    compact(one, parse_size(TARGET))
    compact(two, parse_size(TARGET))
    for table in BATCH_TABLES:
        names = [f.name for f in table_files(one, table)]
        assert names == [f.name for f in table_files(two, table)]
        for f in names:
            assert pq.read_table(one / table / f).equals(pq.read_table(two / table / f))
    # Every batch is "large" against a tiny target: nothing to merge, nothing touched.
    groups, n_large = plan(two, target_bytes=1000)
    assert groups == [] and n_large == len(table_files(two, "documents"))
    three = fresh(world, "det3")
    summary = compact(three, 1000)
    assert summary.n_groups == 0 and n_part_files(three) == n_part_files(world["base"])
    # min_files: fewer small batches than asked for is nothing to do.
    assert compact(three, parse_size(TARGET), min_files=1000).n_groups == 0


def test_runs_after_compaction_skip_and_replace_in_the_new_home(world: dict) -> None:
    out = fresh(world, "rerun")
    compact(out, parse_size(TARGET))
    again = run_pipeline([world["a"]], out, batch_size=1)
    assert again.n_documents == 0 and again.n_skipped == 18
    assert full_digests(out) == world["digests"]
    homes = {d: i.home for d, i in existing_documents(out)[0].items()}
    update = run_pipeline([world["b"]], out, batch_size=1)
    assert update.n_replaced == 3 and update.n_documents == 5
    assert problems(out, world["ref_b"]) == []
    assert_one_home(out)
    # The changed notices were rewritten in their compacted homes (old rows out, new rows in).
    changed = existing_documents(out)[0]
    for doc_id in ("notice_000", "notice_002", "notice_004"):
        assert changed[doc_id].home == homes[doc_id] and "_" in homes[doc_id]


def test_views_kwic_and_report_see_every_row_after_compaction(world: dict) -> None:
    from pipeline.analyst.kwic import kwic
    from pipeline.analyst.views import write_views

    out = fresh(world, "views")
    old_views = write_views(out)  # as the last run left it, over this folder
    compact(out, parse_size(TARGET))
    hits_before = kwic(world["base"], "两个维护", limit=None)
    hits_after = kwic(out, "两个维护", limit=None)
    assert hits_after.n_total == hits_before.n_total > 0
    for views in (old_views, write_views(out)):  # the file of the run before, and a new one
        con = duckdb.connect(str(views), read_only=True)
        try:
            for table in BATCH_TABLES:
                n = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                assert n == pq.read_table(out / table).num_rows, table
            assert con.execute("SELECT count(DISTINCT doc_id) FROM documents").fetchone() == (18,)
        finally:
            con.close()


def test_run_compacts_above_the_threshold(world: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = run_pipeline([world["a"]], out, batch_size=1, compact_above=4)
    assert summary.compaction is not None and summary.compaction.n_groups == 1
    assert n_part_files(out) == len(BATCH_TABLES)  # one group: one file per table
    assert problems(out, snapshot(world["base"])) == []
    assert_one_home(out)
    # The derived tables were built over the merged files: a rerun that writes nothing
    # rebuilds nothing and compacts nothing.
    derived = {f: f.stat().st_mtime_ns for t in DERIVED_TABLES for f in table_files(out, t)}
    again = run_pipeline([world["a"]], out, batch_size=1, compact_above=4)
    assert again.compaction is None and again.n_documents == 0
    assert {f: f.stat().st_mtime_ns for f in derived} == derived
    con = duckdb.connect(str(out / "tifa.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM documents").fetchone() == (18,)
    finally:
        con.close()


def test_cli_messages(world: dict, tmp_path: Path) -> None:
    done = compact_cli(tmp_path / "missing")
    assert done.returncode == 2 and "no such folder" in done.stderr
    (tmp_path / "notes").mkdir()
    done = compact_cli(tmp_path / "notes")
    assert done.returncode == 2 and "not a tifa output folder" in done.stderr
    out = fresh(world, "cli")
    done = compact_cli(out, "--target-size", "lots")
    assert done.returncode == 2 and "not a size" in done.stderr
    with OutputLock(out):
        done = compact_cli(out, "--target-size", TARGET)
    assert done.returncode == 3 and ".tifa.lock" in done.stderr.replace("\n", "")
    assert n_part_files(out) == n_part_files(world["base"])
    done = compact_cli(out, "--target-size", TARGET)
    assert done.returncode == 0, done.stderr
    assert "part files" in done.stderr and "batches merged" in done.stderr
    assert "Traceback" not in done.stderr
    assert full_digests(out) == world["digests"]


def test_parse_size() -> None:
    assert parse_size("128M") == parse_size("128MB") == 128 * 1024**2
    assert parse_size("1.5g") == int(1.5 * 1024**3)
    assert parse_size("1000") == 1000
    for bad in ("", "-1", "0", "12 parsecs"):
        with pytest.raises(ValueError):
            parse_size(bad)


# (kill point "name:n", how the archive is recovered). The first group's points are all hit,
# and a few of the second group's; the first group has 7 tables, documents last.
# `compact.row_group` fires when a merged file's row group is written (:2 is the second table,
# before its file is complete).
KILLS = [
    ("compact.journal:1", "compact"),
    ("compact.row_group:2", "run"),
    ("compact.merged:3", "compact"),
    ("compact.marker:1", "run"),
    ("compact.marker:1", "compact"),
    ("compact.renamed:2", "run"),
    ("compact.renamed:7", "run"),  # documents merged, its old files not yet deleted
    ("compact.renamed:7", "compact"),
    ("compact.table:3", "compact"),
    ("compact.table:5", "run"),
    ("compact.markers:1", "run"),
    ("compact.done:1", "compact"),
    ("compact.merged:9", "run"),
    ("compact.renamed:9", "compact"),
]


@pytest.mark.parametrize("point,recovery", KILLS, ids=[f"{p}-{r}" for p, r in KILLS])
def test_kill_during_compaction_recovers(world: dict, point: str, recovery: str) -> None:
    out = fresh(world, "victim")
    killed = compact_cli(out, "--target-size", TARGET, TIFA_CRASH_AT=point)
    assert killed.returncode == -signal.SIGKILL, f"not killed at {point}: {killed.stderr}"
    assert "Traceback" not in killed.stderr
    if recovery == "compact":
        compact(out, parse_size(TARGET))  # finishes or undoes the group, then merges the rest
    else:
        # The next nightly run over the same input: recovery before it reads any home, and
        # nothing is processed again.
        summary = run_pipeline([world["a"]], out, batch_size=1)
        assert summary.compactions_recovered, summary
        assert summary.n_documents == 0 and summary.n_skipped == 18
    assert full_digests(out) == world["digests"]
    assert problems(out) == []
    assert not list(out.rglob("*.compacting"))
    assert_one_home(out)
    # A changed document is still replaced correctly afterwards.
    update = run_pipeline([world["b"]], out, batch_size=1)
    assert update.n_replaced == 3 and update.n_documents == 5
    assert problems(out, world["ref_b"]) == []
    assert_one_home(out)


def test_compaction_of_an_unfinished_replacement(world: dict) -> None:
    """A nightly update killed between two tables of a replacement, then compacted: the
    replacement's journal still names the documents, and the next run redoes them in their
    new (merged) homes."""
    from .kill_support import run_tifa

    out = fresh(world, "half_replaced")
    done = run_tifa([world["b"]], out, "--batch-size", "1", TIFA_CRASH_AT="replace.table:3")
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert list((out / "_journal").glob("*.json"))
    summary = compact(out, parse_size(TARGET))
    assert summary.n_groups >= 2 and list((out / "_journal").glob("*.json"))
    assert_one_home(out)
    run_pipeline([world["b"]], out, batch_size=1)
    assert problems(out, world["ref_b"]) == []
    assert_one_home(out)


def test_kill_during_a_runs_compaction_recovers(world: dict, tmp_path: Path) -> None:
    """`tifa run --compact-above` killed between two tables of its compaction: the rerun
    finishes it, processes nothing again, and the archive equals a clean run's."""
    from .kill_support import run_tifa

    out = tmp_path / "out"
    done = run_tifa(
        [world["a"]],
        out,
        "--batch-size",
        "1",
        "--compact-above",
        "4",
        TIFA_CRASH_AT="compact.renamed:3",
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    # Killed mid-compaction: some tables already merged, some not.
    assert len(table_files(out, "documents")) > 1 and any(out.rglob("*.compacting"))
    summary = run_pipeline([world["a"]], out, batch_size=1, compact_above=4)
    assert summary.compactions_recovered and summary.n_documents == 0
    assert problems(out, snapshot(world["base"])) == []
    assert_one_home(out)
    assert {len(table_files(out, t)) for t in BATCH_TABLES} == {1}
