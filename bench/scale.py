"""Whole-pipeline throughput and peak memory as the input grows (memory must stay flat).

Usage: python bench/scale.py [--copies 1,4] [--workers 1,2]

Builds a JSONL corpus of N copies of the dev corpus (each copy with its own doc ids, so nothing is
skipped), runs `tifa run` on it in a fresh subprocess per setting, and prints MB/s and the peak
RSS of the run (children included). The last line is `rss_ratio R.RR`: peak RSS at the largest
input ÷ at the smallest, with one worker; flat memory means a ratio near 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import load_dev_documents  # noqa: E402


def build_corpus(path: Path, copies: int) -> int:
    docs = load_dev_documents()
    n_bytes = 0
    with open(path, "w", encoding="utf-8") as fh:
        for c in range(copies):
            for doc_id, year, text in docs:
                line = json.dumps(
                    {"id": f"{doc_id}-copy{c}", "date": str(year), "content": text},
                    ensure_ascii=False,
                )
                fh.write(line + "\n")
                n_bytes += len(text.encode("utf-8"))
    return n_bytes


def run(corpus: Path, out: Path, workers: int) -> tuple[float, float]:
    """(seconds, peak RSS in MB of the run and its workers)."""
    code = (
        "import resource, sys\n"
        "from pipeline.runner import run_pipeline\n"
        f"run_pipeline([{str(corpus)!r}], {str(out)!r}, workers={workers})\n"
        "own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(max(own, kids))\n"
    )
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    seconds = time.perf_counter() - t0
    return seconds, int(done.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", default="1,4", help="corpus sizes, in copies of the dev corpus")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare")
    args = parser.parse_args()
    copies = [int(c) for c in args.copies.split(",")]
    workers = [int(w) for w in args.workers.split(",")]
    rss_one_worker: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="tifa-scale-") as tmp:
        for n in copies:
            corpus = Path(tmp) / f"corpus-{n}.jsonl"
            n_bytes = build_corpus(corpus, n)
            for w in workers:
                out = Path(tmp) / f"out-{n}-{w}"
                seconds, rss = run(corpus, out, w)
                if w == 1:
                    rss_one_worker[n] = rss
                print(
                    f"copies={n} input={n_bytes / 1e6:6.2f} MB workers={w}: "
                    f"{seconds:6.1f} s  {n_bytes / seconds / 1e6:5.2f} MB/s  "
                    f"peak RSS {rss:7.0f} MB"
                )
    if len(rss_one_worker) >= 2:
        small, large = min(rss_one_worker), max(rss_one_worker)
        print(f"rss_ratio {rss_one_worker[large] / rss_one_worker[small]:.2f}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
