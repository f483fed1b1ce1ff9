"""What the nightly report adds to a run's wall time, on the dev corpora (74 documents).

Usage: python bench/report.py [--dev ../shared/corpora/dev] [--pairs 2]

In one process (models loaded once, by a warm-up run that is not counted), runs the whole
pipeline over the dev corpora into fresh output folders, alternating `report=False` and
`report=True` (what `tifa run --no-report` and `tifa run` do), and prints each run's wall time
and the time the report step took inside the runs that wrote it. Two figures close the output:

* `report_share S.SSS`: report seconds ÷ (run seconds without the report step), measured
  inside the same runs, so the machine's noise between runs does not enter it (goal ≤ 0.10);
* `ab_ratio R.RRR`: mean wall time with the report ÷ mean wall time without, across runs (on a
  shared machine run-to-run noise of a few percent shows up here).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", type=Path, default=ROOT.parent / "shared" / "corpora" / "dev")
    parser.add_argument("--pairs", type=int, default=2, help="runs with and without the report")
    args = parser.parse_args()
    if not args.dev.is_dir():
        raise SystemExit(f"dev corpora not found at {args.dev}")
    from pipeline.run.runner import run_pipeline

    tmp = Path(tempfile.mkdtemp(prefix="tifa_bench_report_"))
    try:
        warm = run_pipeline([ROOT / "data" / "raw"], tmp / "warm")  # loads the models
        print(f"warm-up on the samples: {warm.seconds:.1f}s (not counted)")
        plain, with_report, shares = [], [], []
        for i in range(args.pairs):
            # ABBA order: a machine whose load drifts does not favour one side.
            for report in (False, True) if i % 2 == 0 else (True, False):
                out = tmp / f"run{i}-{'report' if report else 'plain'}"
                t0 = time.perf_counter()
                summary = run_pipeline([args.dev], out, report=report)
                wall = time.perf_counter() - t0
                assert summary.n_documents == 74, summary.n_documents
                if report:
                    assert summary.report_path and summary.report_path.is_file()
                    with_report.append(wall)
                    shares.append(summary.report_seconds / (wall - summary.report_seconds))
                    size = summary.report_path.stat().st_size / 1e6
                    print(
                        f"pair {i + 1}: with report    {wall:6.1f}s  (report step "
                        f"{summary.report_seconds:.2f}s, page {size:.2f} MB)"
                    )
                else:
                    plain.append(wall)
                    print(f"pair {i + 1}: without report {wall:6.1f}s")
                shutil.rmtree(out)
        print(f"report_share {statistics.mean(shares):.3f}")
        print(f"ab_ratio {statistics.mean(with_report) / statistics.mean(plain):.3f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
