"""One huge document against the same text as many documents, and a document past the limit.

    python bench/huge_document.py [--mb 50] [--chunk-chars N] [--keep DIR]

Builds `--mb` MB (UTF-8) of real text by repeating the dev speeches
(`../shared/corpora/dev/xi_speeches_2020.csv`), then runs `tifa run` in a fresh subprocess on:

* `single`: all of it as ONE document (one JSONL line, speeches joined by newlines);
* `many`: the same speeches as separate documents (one JSONL line each, fresh ids);
* `too_large`: a JSONL file and a CSV file each holding a small record, the single document's
  text and another small record, with `--max-doc-bytes` set below the document's size (half
  of it): the huge record must be an errors row within seconds and the small ones written.

For each it prints seconds, the peak RSS of the `tifa run` process (`ru_maxrss` from `wait4`,
which counts the process and the children it waited for) and, at the end, `time_ratio`
(single ÷ many; goal ≤ 1.5) and the single document's peak RSS (goal ≤ 1 GB).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
SPEECHES = ROOT.parent / "shared" / "corpora" / "dev" / "xi_speeches_2020.csv"


def speeches() -> list[str]:
    if not SPEECHES.is_file():
        sys.exit(f"{SPEECHES} not found (the dev corpora live in ../shared beside the checkout)")
    csv.field_size_limit(sys.maxsize)
    with SPEECHES.open(encoding="utf-8", newline="") as fh:
        return [row["Text"] for row in csv.DictReader(fh) if row["Text"].strip()]


def build(mb: float) -> list[str]:
    """Speeches repeated until their UTF-8 size reaches `mb` MB."""
    src = speeches()
    out: list[str] = []
    size = 0
    while size < mb * 1e6:
        text = src[len(out) % len(src)]
        out.append(text)
        size += len(text.encode("utf-8")) + 1
    return out


def run(inputs: list[Path], out: Path, *args: str) -> tuple[float, int, int]:
    """(seconds, peak RSS in bytes, exit code) of one `tifa run` in a fresh process."""
    cmd = [sys.executable, "-m", "pipeline", "run", *map(str, inputs), "--out", str(out)]
    cmd += ["-q", "--no-report", *args]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(proc.stderr.read().decode()[-2000:] if proc.stderr else "", file=sys.stderr)
    if proc.stderr:
        proc.stderr.close()
    return seconds, usage.ru_maxrss * 1024, proc.returncode  # ru_maxrss is in KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--mb", type=float, default=50.0, help="size of the document (MB of UTF-8)")
    ap.add_argument("--chunk-chars", type=int, default=None, help="passed to tifa run")
    ap.add_argument("--keep", type=Path, default=None, help="work here and keep the outputs")
    ap.add_argument(
        "--cases", default="single,many,too_large", help="comma-separated subset to run"
    )
    args = ap.parse_args()
    cases = set(args.cases.split(","))
    extra = ("--chunk-chars", str(args.chunk_chars)) if args.chunk_chars else ()
    work = args.keep or Path(tempfile.mkdtemp(prefix="tifa-huge-"))
    work.mkdir(parents=True, exist_ok=True)
    texts = build(args.mb)
    whole = "\n".join(texts)
    n_bytes = len(whole.encode("utf-8"))
    print(f"text: {len(texts)} speeches, {len(whole):,} characters, {n_bytes / 1e6:.1f} MB UTF-8")
    results: dict[str, tuple[float, int, int]] = {}

    if "single" in cases:
        single = work / "single.jsonl"
        single.write_text(
            json.dumps({"id": "huge", "date": "2020-12-31", "text": whole}, ensure_ascii=False)
            + "\n",
            encoding="utf-8",
        )
        # Past the default --max-doc-bytes (24 MiB) a document is refused: raise it here.
        limit = str(max(n_bytes * 2, 1 << 20))
        results["single"] = run([single], work / "out_single", *extra, "--max-doc-bytes", limit)
    if "many" in cases:
        many = work / "many.jsonl"
        with many.open("w", encoding="utf-8") as fh:
            for i, text in enumerate(texts):
                record = {"id": f"s{i:06d}", "date": "2020-12-31", "text": text}
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        results["many"] = run([many], work / "out_many", *extra)
    del texts
    for name, (seconds, rss, code) in results.items():
        print(
            f"{name:10s} seconds {seconds:8.1f}  peak_rss_mb {rss / 2**20:7.0f}  "
            f"chars/s {len(whole) / seconds:9,.0f}  exit {code}"
        )
    if "single" in results and "many" in results:
        ratio = results["single"][0] / results["many"][0]
        print(f"time_ratio {ratio:.2f} (single ÷ many; goal ≤ 1.5)")
        print(f"single_peak_rss_mb {results['single'][1] / 2**20:.0f} (goal ≤ 1024)")

    if "too_large" in cases:
        small = "湖北省人民政府召开常务会议。会议强调，要坚持稳中求进工作总基调。"
        folder = work / "too_large"
        folder.mkdir(exist_ok=True)
        with (folder / "records.jsonl").open("w", encoding="utf-8") as fh:
            for rid, text in (("a", small), ("huge", whole), ("b", small + "第二条。")):
                fh.write(json.dumps({"id": rid, "text": text}, ensure_ascii=False) + "\n")
        with (folder / "rows.csv").open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "text"])
            for rid, text in (("c", small), ("huge_csv", whole), ("d", small + "第三条。")):
                writer.writerow([rid, text])
        limit = n_bytes // 2
        out = work / "out_too_large"
        seconds, rss, code = run([folder], out, "--max-doc-bytes", str(limit))
        errors = pq.read_table(out / "errors").to_pylist()
        docs = sorted(pq.read_table(out / "documents", columns=["doc_id"])["doc_id"].to_pylist())
        kinds = sorted(e["error_type"] for e in errors)
        print(
            f"too_large  seconds {seconds:8.1f}  peak_rss_mb {rss / 2**20:7.0f}  exit {code}  "
            f"limit {limit:,} bytes"
        )
        print(f"  errors rows: {kinds}")
        print(f"  documents written: {docs}")
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
