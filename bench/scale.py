"""Scale past one process: a real Dask cluster, N workers vs 1, and memory as the input grows.

Usage:
    python bench/scale.py                       # 20 MB, 1 then 2 Dask workers
    python bench/scale.py --mb 20 --grow 200    # also 200 MB on 2 workers (RSS must stay flat)
    python bench/scale.py --mb 2                # a quick look

The input is a JSONL file of the dev corpus repeated with fresh ids (nothing is skipped). For
each setting a cluster is started the way an operator starts one (`dask scheduler`, then one
`dask worker --nthreads 1` process per worker), and `tifa run --dask-address` runs in its own
process. Figures: wall seconds and MB/s; CPU seconds of the driver (from its rusage) and of the
workers (asked from each worker before and after the run); peak RSS of the driver and of each
worker. Last lines: `ratio R.RR` (1-worker seconds ÷ 2-worker seconds, goal ≥ 1.8 on 2 cores),
`driver_cpu_share S.SS` (driver CPU ÷ workers' CPU in the 2-worker run, goal ≤ 0.10) and, with
--grow, `rss_ratio` (largest peak RSS of any process at the largest input ÷ at the smallest).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import load_dev_documents  # noqa: E402


def build_corpus(path: Path, mb: float) -> int:
    """A JSONL corpus of at least `mb` MB of text; returns the UTF-8 size of its texts."""
    docs = load_dev_documents()
    n_bytes, copy = 0, 0
    with open(path, "w", encoding="utf-8") as fh:
        while n_bytes < mb * 1e6:
            for doc_id, year, text in docs:
                rec = {"id": f"{doc_id}-copy{copy}", "date": str(year), "content": text}
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                n_bytes += len(text.encode("utf-8"))
            copy += 1
    return n_bytes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _usage() -> dict:
    import resource as r

    u = r.getrusage(r.RUSAGE_SELF)
    return {"cpu": u.ru_utime + u.ru_stime, "rss_mb": u.ru_maxrss / 1024}


class Cluster:
    """`dask scheduler` + `workers` × `dask worker --nthreads 1`, as separate processes."""

    def __init__(self, workers: int, home: Path):
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        log = open(home / "cluster.log", "a")  # noqa: SIM115
        common = {"cwd": home, "stdout": subprocess.DEVNULL, "stderr": log}
        self.procs = [
            subprocess.Popen(
                [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                 "--dashboard-address", ":0", "--no-show"],
                **common,
            )
        ]  # fmt: skip
        for i in range(workers):
            self.procs.append(
                subprocess.Popen(
                    [BIN / "dask", "worker", self.address, "--nthreads", "1",
                     "--dashboard-address", ":0", "--local-directory", str(home / f"w{i}")],
                    **common,
                )
            )  # fmt: skip
        from distributed import Client

        deadline = time.monotonic() + 120
        while True:
            try:
                self.client = Client(self.address, timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        self.client.wait_for_workers(workers, timeout=120)

    def usage(self) -> dict[str, dict]:
        return self.client.run(_usage)

    def close(self) -> None:
        self.client.close()
        for p in reversed(self.procs):
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def run_once(corpus: Path, out: Path, workers: int, tmp: Path) -> dict:
    home = tmp / f"cluster-{workers}-{corpus.stem}"
    home.mkdir()
    cluster = Cluster(workers, home)
    try:
        before = cluster.usage()
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [BIN / "tifa", "run", str(corpus), "--out", str(out), "--dask-address",
             cluster.address, "-q", "--no-report"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        _, status, driver = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        output = proc.stdout.read().decode() if proc.stdout else ""
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"tifa run failed:\n{output}")
        after = cluster.usage()
    finally:
        cluster.close()
    worker_cpu = sum(after[w]["cpu"] - before[w]["cpu"] for w in after)
    return {
        "seconds": seconds,
        "driver_cpu": driver.ru_utime + driver.ru_stime,
        "driver_rss_mb": driver.ru_maxrss / 1024,
        "worker_cpu": worker_cpu,
        "worker_rss_mb": sorted(u["rss_mb"] for u in after.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20.0, help="input size for the 1-vs-2 test")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare")
    parser.add_argument(
        "--grow", type=float, default=None, help="also run this many MB on the most workers"
    )
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    results: dict[tuple[float, int], dict] = {}
    with tempfile.TemporaryDirectory(prefix="tifa-scale-") as name:
        tmp = Path(name)
        sizes = [args.mb] + ([args.grow] if args.grow else [])
        for mb in sizes:
            corpus = tmp / f"corpus-{mb:g}mb.jsonl"
            n_bytes = build_corpus(corpus, mb)
            for w in counts if mb == args.mb else [max(counts)]:
                r = run_once(corpus, tmp / f"out-{mb:g}-{w}", w, tmp)
                results[(mb, w)] = r
                workers_rss = ", ".join(f"{x:.0f}" for x in r["worker_rss_mb"])
                print(
                    f"input {n_bytes / 1e6:7.1f} MB  workers {w}: {r['seconds']:7.1f} s  "
                    f"{n_bytes / r['seconds'] / 1e6:5.3f} MB/s  CPU driver {r['driver_cpu']:6.1f} s"
                    f" workers {r['worker_cpu']:7.1f} s  peak RSS driver {r['driver_rss_mb']:.0f}"
                    f" MB, workers {workers_rss} MB",
                    flush=True,
                )
    lo, hi = min(counts), max(counts)
    base, best = results[(args.mb, lo)], results[(args.mb, hi)]
    print(f"ratio {base['seconds'] / best['seconds']:.2f}")
    print(f"driver_cpu_share {best['driver_cpu'] / max(best['worker_cpu'], 1e-9):.3f}")
    if args.grow:
        small, large = results[(args.mb, hi)], results[(args.grow, hi)]

        def peak(r: dict) -> float:
            return max([r["driver_rss_mb"], *r["worker_rss_mb"]])

        print(f"peak_rss_mb {peak(small):.0f} -> {peak(large):.0f}")
        print(f"rss_ratio {peak(large) / peak(small):.2f}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
