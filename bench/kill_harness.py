"""Kill `tifa run` with SIGKILL at random moments and at named points, rerun, compare.

    python bench/kill_harness.py                       # samples + 30 generated notices
    python bench/kill_harness.py --corpus ../shared/corpora/dev --kills 8

For each mode (1 worker, --workers 2, --scheduler dask) and each scenario (a fresh archive; a
nightly update replacing changed documents; --force over everything; with named points only, an
update killed mid-replacement whose next night's input no longer holds its documents) it starts
`tifa run` as a subprocess, SIGKILLs it after a random delay (uniform over the clean run's
duration), checks no worker outlived it, reruns the same command to the end and checks every
table equals the clean run's (same multiset of rows), no duplicated doc_id, no temp or journal
file left. Then the same with kills at named points in the writer (TIFA_CRASH_AT). Prints one
line per kill and the totals.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.kill_support import (  # noqa: E402
    Kill,
    kill_and_recover,
    make_corpus,
    make_rotated_corpus,
    problems,
    run_tifa,
    snapshot,
)

MODES = {
    "1 worker": (),
    "--workers 2": ("--workers", "2"),
    "dask": ("--scheduler", "dask", "--workers", "2"),
}
SCENARIOS = ("fresh", "update", "force")
POINTS = [
    ("fresh", "run.started:1"),
    ("fresh", "write.renaming:3"),
    ("fresh", "write.file:5"),
    ("fresh", "write.marker:2"),
    ("update", "replace.table:1"),
    ("update", "replace.table:4"),
    ("update", "replace.done:1"),
    ("force", "write.renaming:7"),
    ("force", "replace.table:9"),
    ("update", "aggregate.start:1"),
    ("update", "aggregate.table:2"),
    ("fresh", "runs.start:1"),
    # The update killed mid-replacement, then the next night's input holds none of its
    # documents: the journal is finished from what the killed run wrote.
    ("rotated", "replace.journal:1"),
    ("rotated", "replace.table:2"),
]


def phase_of(out: Path, started: float, markers_before: int) -> str:
    """Where the killed run was, judged from what it left on disk."""
    journal = out / "_journal"
    if journal.is_dir() and any(journal.glob("*.json")):
        return "replacement"
    derived = out / "formulation_counts" / "part-0.parquet"
    if derived.exists() and derived.stat().st_mtime >= started:
        return "aggregation/report"
    done = out / "_done"
    if done.is_dir() and len(list(done.iterdir())) > markers_before:
        return "batches"
    return "start/ingest"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="input folder (default: generated)")
    parser.add_argument("--kills", type=int, default=8, help="random kills per mode")
    parser.add_argument("--batch-size", default="4")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--no-points", action="store_true", help="random kills only")
    opts = parser.parse_args()
    rng = random.Random(opts.seed)
    work = Path(tempfile.mkdtemp(prefix="tifa-kill-"))
    batch = ("--batch-size", opts.batch_size)
    try:
        if opts.corpus:
            corpus_a = work / "a"
            shutil.copytree(opts.corpus, corpus_a)
            corpus_b = work / "b"
            shutil.copytree(opts.corpus, corpus_b)
            make_corpus(corpus_b / "update", n_extra=6, variant="（修订）")
        else:
            corpus_a = make_corpus(work / "a", n_extra=30)
            corpus_b = make_corpus(work / "b", n_extra=30, variant="（修订）")
        # Clean archives: A; A then B; A then --force A (equal to A by design).
        base_a, clean_b = work / "clean_a", work / "clean_b"
        durations = {}
        t0 = time.monotonic()
        assert run_tifa([corpus_a], base_a, *batch).returncode == 0
        durations["fresh"] = time.monotonic() - t0
        shutil.copytree(base_a, clean_b)
        t0 = time.monotonic()
        assert run_tifa([corpus_b], clean_b, *batch).returncode == 0
        durations["update"] = time.monotonic() - t0
        durations["force"] = durations["fresh"]
        corpus_c = make_rotated_corpus(work / "c")
        clean_bc = work / "clean_bc"
        shutil.copytree(clean_b, clean_bc)
        assert run_tifa([corpus_c], clean_bc, *batch).returncode == 0
        refs = {"fresh": snapshot(base_a), "update": snapshot(clean_b)}
        refs["force"] = refs["fresh"]
        refs["rotated"] = snapshot(clean_bc)
        setup = {
            "fresh": (corpus_a, None, ()),
            "update": (corpus_b, base_a, ()),
            "force": (corpus_a, base_a, ("--force",)),
            "rotated": (corpus_b, base_a, ()),
        }
        print(f"clean runs: fresh {durations['fresh']:.1f}s, update {durations['update']:.1f}s")
        print(f"{'mode':12} {'scenario':8} {'kill':>22} {'phase':20} result")
        tried = recovered = 0
        by_phase: dict[str, list[int]] = {}
        plan = []
        for mode in MODES:
            for i in range(opts.kills):
                plan.append((mode, SCENARIOS[i % len(SCENARIOS)], None))
        if not opts.no_points:
            plan += [("1 worker", scenario, point) for scenario, point in POINTS]
        for mode, scenario, point in plan:
            corpus, start_from, extra = setup[scenario]
            args = (*batch, *MODES[mode], *extra)
            scale = 2.0 if MODES[mode] else 1.0  # workers start slower than one process
            if point:
                kill = Kill(point, args=args, crash_at=point)
                if scenario == "rotated":
                    kill.rerun_inputs = [corpus_c]
                label = point
            else:
                delay = rng.uniform(0.0, 1.05) * durations[scenario] * scale
                kill = Kill(f"{delay:.2f}s", args=args, delay=delay)
                label = f"random at {delay:.2f}s"
            out = work / "victim"
            started = time.time()
            markers_before = len(list((start_from / "_done").iterdir())) if start_from else 0
            rotated = scenario == "rotated"
            found = kill_and_recover(
                kill,
                [corpus],
                out,
                None if rotated else refs[scenario],
                start_from=start_from,
                inspect=lambda o, s=started, m=markers_before: phase_of(o, s, m),
            )
            if rotated and not found:
                # Night C ran on the killed night's archive; B's input again then catches up
                # with what the kill left undone: A, B, C run cleanly is the reference.
                catch_up = run_tifa([corpus], out, *batch)
                if catch_up.returncode != 0:
                    found.append(f"catch-up run exited {catch_up.returncode}")
                found += problems(out, refs["rotated"])
            if not kill.outcome.get("killed"):
                print(f"{mode:12} {scenario:8} {label:>22} {'(finished first)':20} not counted")
                continue
            phase = kill.outcome["inspected"]
            tried += 1
            ok = not found
            recovered += ok
            by_phase.setdefault(phase, [0, 0])
            by_phase[phase][0] += 1
            by_phase[phase][1] += ok
            print(f"{mode:12} {scenario:8} {label:>22} {phase:20} {'ok' if ok else found}")
        print(f"\nkills tried {tried}, recovered {recovered}")
        for phase, (n, ok) in sorted(by_phase.items()):
            print(f"  {phase:20} {ok}/{n}")
        return 0 if tried == recovered else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
