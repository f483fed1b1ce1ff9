"""Throughput of pipeline.normalise.normalise on the dev corpus (single process).

Usage: python bench/normalise.py [--repeat N] [--profile]

Prints MB/s (UTF-8 bytes of input per second) and the time share of the OpenCC step.
The dev corpus lives outside the repo in ../shared/corpora/dev.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import json
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import normalise as N  # noqa: E402

DEV = ROOT.parent / "shared" / "corpora" / "dev"


def load_dev() -> list[str]:
    docs: list[str] = []
    jl = DEV / "cpc_congress_reports.jsonl"
    if jl.exists():
        with jl.open(encoding="utf-8") as f:
            docs += [json.loads(line)["content"] for line in f if line.strip()]
    cs = DEV / "xi_speeches_2020.csv"
    if cs.exists():
        csv.field_size_limit(sys.maxsize)
        with cs.open(encoding="utf-8", newline="") as f:
            docs += [row["Text"] for row in csv.DictReader(f)]
    return docs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    docs = load_dev()
    if not docs:
        sys.exit(f"dev corpus not found under {DEV}")
    nbytes = sum(len(d.encode("utf-8")) for d in docs)

    # Warm-up builds the OpenCC converter and the trigger-character set (one-off costs).
    t0 = time.perf_counter()
    N.normalise("會議")
    print(f"one-off init (OpenCC + trigger set): {time.perf_counter() - t0:.3f}s")

    # Measure time spent inside the OpenCC step by wrapping it.
    t2s_time = 0.0
    orig = N._step_t2s

    def timed(text, offs):  # noqa: ANN001, ANN202
        nonlocal t2s_time
        t = time.perf_counter()
        try:
            return orig(text, offs)
        finally:
            t2s_time += time.perf_counter() - t

    N._step_t2s = timed
    best = float("inf")
    share = 0.0
    try:
        for _ in range(args.repeat):
            t2s_time = 0.0
            t = time.perf_counter()
            for d in docs:
                N.normalise(d)
            dt = time.perf_counter() - t
            if dt < best:
                best, share = dt, t2s_time / dt
    finally:
        N._step_t2s = orig

    print(f"docs={len(docs)} input={nbytes / 1e6:.2f} MB chars={sum(map(len, docs))}")
    print(f"normalise: {nbytes / 1e6 / best:.1f} MB/s (best of {args.repeat}, {best:.3f}s)")
    print(f"OpenCC step (incl. precheck) share of time: {share:.1%}")

    # Worst case for OpenCC: every document traditional (s2t'd corpus).
    import opencc

    s2t = opencc.OpenCC("s2t")
    trad = [s2t.convert(d) for d in docs]
    tb = sum(len(d.encode("utf-8")) for d in trad)
    t2s_time = 0.0
    N._step_t2s = timed
    try:
        t = time.perf_counter()
        for d in trad:
            N.normalise(d)
        dt = time.perf_counter() - t
    finally:
        N._step_t2s = orig
    print(f"all-traditional corpus: {tb / 1e6 / dt:.1f} MB/s, OpenCC share {t2s_time / dt:.1%}")

    if args.profile:
        pr = cProfile.Profile()
        pr.enable()
        for d in docs:
            N.normalise(d)
        pr.disable()
        pstats.Stats(pr).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
