"""Kill `tifa run` with SIGKILL in every phase, rerun, and check the archive equals a clean run's.

Small enough for CI (eleven kills, about a minute and a half on 2 cores); `python
bench/kill_harness.py` runs the full version (dozens of kills at random moments, 1 worker,
--workers 2 and Dask).
"""

from __future__ import annotations

import random
import shutil
import time
from collections import Counter

import pytest

from pipeline.run.runner import run_pipeline

from .kill_support import (
    Kill,
    kill_and_recover,
    make_corpus,
    make_rotated_corpus,
    problems,
    rerun_in_process,
    run_tifa,
    snapshot,
)

BATCH = ("--batch-size", "2")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Corpus A, its nightly update B, and clean archives: A from scratch, then A followed by B
    (made in this process: the killed runs are subprocesses, the clean ones need not be)."""
    root = tmp_path_factory.mktemp("kill")
    corpus_a = make_corpus(root / "a")
    corpus_b = make_corpus(root / "b", variant="（修订）")
    base_a = root / "clean_a"
    t0 = time.monotonic()
    done = run_tifa([corpus_a], base_a, *BATCH)  # one clean run through the CLI, timed
    seconds = time.monotonic() - t0
    assert done.returncode == 0, done.stderr
    clean_b = root / "clean_b"
    shutil.copytree(base_a, clean_b)
    summary = run_pipeline([corpus_b], clean_b, batch_size=2)
    assert summary.n_replaced == 3 and summary.n_documents == 5
    # The night after B, rotated: C holds one new notice and none of B's documents.
    corpus_c = make_rotated_corpus(root / "c")
    clean_bc = root / "clean_bc"
    shutil.copytree(clean_b, clean_bc)
    run_pipeline([corpus_c], clean_bc, batch_size=2)
    return {
        "c": corpus_c,
        "ref_bc": snapshot(clean_bc),
        "root": root,
        "a": corpus_a,
        "b": corpus_b,
        "base_a": base_a,
        "ref_a": snapshot(base_a),
        "ref_b": snapshot(clean_b),
        "seconds": seconds,
    }


def test_clean_runs_are_consistent(world: dict) -> None:
    assert problems(world["base_a"]) == []
    assert len(world["ref_a"]["documents"]) == 18  # 12 samples + 6 notices
    # B changed three notices and added two: the replaced rows differ from A's
    assert world["ref_b"]["documents"] != world["ref_a"]["documents"]
    assert len(world["ref_b"]["documents"]) == 20


# (label, start from A's archive?, corpus, args of the killed run, kill, args of the rerun)
POINT_KILLS = [
    ("ingest: before the first batch", False, "a", BATCH, "run.started:1", None),
    ("batches: between two tables of batch 2", False, "a", BATCH, "write.file:9", None),
    ("replacement: between two tables of a home", True, "b", BATCH, "replace.table:3", None),
    ("replacement: --force killed, resumed without --force", True, "a", ("--force", *BATCH),
     "replace.table:8", BATCH),
    ("aggregation: one derived table rebuilt", True, "b", BATCH, "aggregate.table:1", None),
    ("report: before the runs row", False, "a", BATCH, "runs.start:1", None),
    ("views: tifa.duckdb written, not yet renamed", False, "a", BATCH, "views.renaming:1", None),
    ("report: a page written, not yet renamed", False, "a", BATCH, "report.file:1", None),
]  # fmt: skip


@pytest.mark.parametrize("case", POINT_KILLS, ids=[c[0] for c in POINT_KILLS])
def test_kill_at_a_named_point_recovers(world: dict, case: tuple) -> None:
    label, from_a, corpus, args, point, rerun_args = case
    reference = world["ref_b"] if corpus == "b" else world["ref_a"]
    kill = Kill(label, args=args, crash_at=point, rerun_args=rerun_args)
    found = kill_and_recover(
        kill,
        [world[corpus]],
        world["root"] / "victim",
        reference,
        start_from=world["base_a"] if from_a else None,
        in_process=True,
    )
    assert kill.outcome["killed"], f"{label}: the run was not killed at {point}"
    assert found == [], f"{label}: {found}"


# The tables `snapshot` compares whose rows belong to one document.
DOC_TABLES = (
    "documents",
    "sentences",
    "entities",
    "formulations",
    "formulation_usage",
    "candidate_mentions",
    "relations",
)


def _rows_of(snap: dict, table: str, doc_id: str) -> Counter:
    key = ("doc_id", repr(doc_id))
    return Counter({row: n for row, n in snap[table].items() if key in row})


@pytest.mark.parametrize("point", ["replace.journal:1", "replace.table:3", "replace.table:6"])
def test_a_killed_replacement_then_a_rotated_input_recovers(world: dict, point: str) -> None:
    """B's replacements killed mid-way; the next night's input (C) no longer holds B's
    documents. Each document B was replacing is then wholly A's version or wholly B's in every
    table (the journal is finished from what B wrote, not from C), and B's input run again
    afterwards gives the archive of A, B and C run cleanly."""
    out = world["root"] / "victim"
    kill = Kill(f"rotated after {point}", args=BATCH, crash_at=point, rerun_inputs=[world["c"]])
    found = kill_and_recover(
        kill, [world["b"]], out, None, start_from=world["base_a"], in_process=True
    )
    assert kill.outcome["killed"], f"the run was not killed at {point}"
    assert found == [], found
    got = snapshot(out)
    finished = 0
    for doc_id in ("notice_000", "notice_002", "notice_004"):  # the notices B changed
        versions = {"a", "b"}
        for table in DOC_TABLES:
            rows = _rows_of(got, table, doc_id)
            versions &= {
                v for v in ("a", "b") if rows == _rows_of(world[f"ref_{v}"], table, doc_id)
            }
        assert versions, f"{doc_id} is mixed after the kill at {point}"
        finished += versions == {"b"}
    if point.startswith("replace.table"):
        assert finished >= 1  # the interrupted replacement was finished, not dropped
    assert _rows_of(got, "documents", "notice_rotated")
    rerun_in_process([world["b"]], out, *BATCH)
    # C's copy of a notice was judged against the notice as it stood when C ran (A's version
    # here, B's in the clean run): its `similarity` is the one field the order may change
    # (README, One story: the similarity is to the canonical copy when the copy was decided).
    assert problems(out, world["ref_bc"], drop=_without_similarity) == []


def _without_similarity(row: tuple) -> tuple:
    return tuple(kv for kv in row if kv[0] != "similarity")


@pytest.mark.parametrize(
    "mode",
    [(), ("--workers", "2"), ("--scheduler", "dask", "--workers", "2")],
    ids=["1-worker", "2-workers", "dask"],
)
def test_kill_at_a_random_moment_recovers(world: dict, mode: tuple) -> None:
    """A replacement run (A's archive, B's input) killed at a random moment, no orphans left."""
    rng = random.Random(f"tifa-{mode}")
    delay = rng.uniform(0.3, 1.0) * world["seconds"] * (1.8 if mode else 1.0)
    kill = Kill(f"random {delay:.1f}s {mode}", args=(*BATCH, *mode), delay=delay, rerun_args=BATCH)
    found = kill_and_recover(
        kill,
        [world["b"]],
        world["root"] / "victim",
        world["ref_b"],
        start_from=world["base_a"],
        in_process=True,
    )
    assert found == [], f"{kill.label}: {found}"
