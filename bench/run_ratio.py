"""Where the time of `tifa run` goes: the NER backend alone against the whole pipeline.

Usage: python bench/run_ratio.py [INPUT ...] [--repeats N] [--workers-mb MB] [--no-workers]

For one input (default: the dev corpora, ../shared/corpora/dev) and in one process it measures,
alternating so that both see the same machine load and keeping the best of `--repeats` rounds:

* the NER backend alone: LAC's analysis plus the trained CRF (`tifa_ner`) over the sentences of
  the normalised texts, exactly the calls the LAC tokenizer makes before it builds Docs;
* the full pipeline: `run_pipeline` into a fresh folder (ingest → normalise → nlp →
  formulations → relations → write → aggregate), models already loaded (start-up is measured
  separately below);
* per stage, the seconds of the best full run, from timers wrapped around the stage functions.

Then `--workers 2` against one process over ≥ `--workers-mb` MB (the input repeated with fresh
ids in a temporary folder, never in the repo), start-up (`tifa run` over an empty folder, time
until the first batch could start) and a rerun over unchanged input (wall, a new process).

The last line is ``ratio N.NN`` = full-pipeline chars/s ÷ NER-backend-alone chars/s.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run from a checkout without installing: the package beside bench/ (no module in bench/ is
# named like it; tests/test_architecture.py checks that every bench runs as documented).
sys.path.insert(0, str(ROOT))
DEV = ROOT.parent / "shared" / "corpora" / "dev"
TIFA = [sys.executable, "-m", "pipeline"]

STAGES = ("ingest", "normalise", "nlp", "formulations", "relations", "rows", "write", "aggregate")
# Parts of the nlp stage: the NER backend (LAC, CRF) and what is built around it.
NLP_PARTS = {
    "nlp.lac": "LAC analysis (background thread, overlaps the rest)",
    "nlp.crf": "CRF (tifa_ner)",
    "nlp.docs": "Doc building",
    "nlp.rules": "domain spans (POSITION/MEETING/DOCUMENT)",
}


class StageTimer:
    """Seconds per stage, from wrappers put around the functions each stage calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._undo: list[Callable[[], None]] = []
        # A stage called inside another is counted once, in the outer one; per thread, as LAC
        # runs in a background thread beside the main thread's stages (`analyse_ahead`).
        self._local = threading.local()

    def wrap(self, owner: Any, name: str, stage: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(self._local, "depth", 0)
            if depth:
                return original(*args, **kwargs)
            self._local.depth = 1
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - start
                self._local.depth = 0

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def wrap_iter(self, owner: Any, name: str, stage: str) -> None:
        """A generator: only the time spent producing items counts."""
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            it = iter(original(*args, **kwargs))
            while True:
                start = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    self.seconds[stage] += time.perf_counter() - start
                    return
                self.seconds[stage] += time.perf_counter() - start
                yield item

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def undo(self) -> None:
        for fn in reversed(self._undo):
            fn()
        self._undo.clear()


def _stage_timer() -> StageTimer:
    from pipeline.analyst import aggregate
    from pipeline.extract import rows
    from pipeline.io import write
    from pipeline.nlp import build as nlp_module
    from pipeline.run import batch as stages
    from pipeline.run import runner

    timer = StageTimer()
    timer.wrap_iter(runner, "iter_documents", "ingest")
    timer.wrap(stages, "normalise_document", "normalise")
    timer.wrap_iter(nlp_module, "annotate", "nlp")
    from pipeline.nlp.crf import CRFEntityTagger
    from pipeline.nlp.lac_runner import BatchedLAC

    timer.wrap(BatchedLAC, "run", "nlp.lac")
    timer.wrap(CRFEntityTagger, "predict", "nlp.crf")
    timer.wrap(nlp_module.LACTokenizer, "_build", "nlp.docs")
    timer.wrap(nlp_module.DomainSpans, "__call__", "nlp.rules")
    timer.wrap(rows, "_formulation_rows", "formulations")
    timer.wrap(rows, "_candidate_rows", "formulations")
    timer.wrap(rows, "_relation_rows", "relations")
    timer.wrap(rows, "_person_names", "relations")
    timer.wrap(rows, "_Spans", "rows")
    timer.wrap(rows, "_entity_rows", "rows")
    timer.wrap(rows, "document_row", "rows")
    timer.wrap(write.DatasetWriter, "write_batch", "write")
    timer.wrap(aggregate, "rebuild_derived_tables", "aggregate")
    return timer


def ner_alone(texts: Sequence[str], nlp: Any, ahead: bool = False) -> float:
    """Seconds for LAC + the CRF over the sentences of `texts`, as the tokenizer runs them
    (chunks of 64 texts), without building Docs. `ahead`: in the run's batches (about
    150k characters), LAC analysing the next batch in a background thread while the CRF tags
    the current one, the overlap a run uses (`LACTokenizer.analyse_ahead`): the backend alone
    at its best, so the ratio does not credit the overlap to the pipeline."""
    from concurrent.futures import ThreadPoolExecutor

    from pipeline.run.config import RunConfig

    tokenizer = nlp.tokenizer
    ner = nlp.get_pipe("tifa_ner")
    limit = RunConfig().batch_chars
    batches = list(tokenizer._chunks(texts, nlp.batch_size, limit)) if ahead else [list(texts)]
    start = time.perf_counter()
    cpu = time.process_time()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(_analyse_all, nlp, batches[0]) if ahead else None
        for i, batch in enumerate(batches):
            if ahead:
                analysed = pending.result()
                if i + 1 < len(batches):
                    pending = pool.submit(_analyse_all, nlp, batches[i + 1])
            else:
                analysed = _analyse_all(nlp, batch)
            for _, spans, flat, tagged in analysed:
                ner.predict(flat, tagged, [k for k, ds in enumerate(spans) for _ in ds])
    CPU_SECONDS["ner_ahead" if ahead else "ner"] = time.process_time() - cpu
    return time.perf_counter() - start


def _analyse_all(nlp: Any, texts: Sequence[str]) -> list[tuple]:
    tokenizer = nlp.tokenizer
    return [tokenizer._analyse(chunk) for chunk in tokenizer._chunks(texts, nlp.batch_size, None)]


# CPU seconds (all threads of this process) of the last NER-alone and full run: less sensitive
# than wall time to other users of a shared machine.
CPU_SECONDS: dict[str, float] = {}


def full_run(inputs: Sequence[Path], timer: StageTimer | None) -> tuple[int, float, dict]:
    from pipeline.run.runner import run_pipeline

    with tempfile.TemporaryDirectory(prefix="tifa_bench_") as tmp:
        if timer is not None:
            timer.seconds.clear()
        start = time.perf_counter()
        cpu = time.process_time()
        summary = run_pipeline(inputs, Path(tmp) / "out")
        seconds = time.perf_counter() - start
        CPU_SECONDS["full"] = time.process_time() - cpu
        stages = dict(timer.seconds) if timer is not None else {}
    return summary.n_chars, seconds, stages


def repeated_input(inputs: Sequence[Path], min_mb: float, dest: Path) -> float:
    """Copies of the inputs' documents with fresh ids until ≥ min_mb MB; returns the MB."""
    from pipeline.io.ingest import iter_documents

    docs = [d for d in iter_documents(list(inputs)) if hasattr(d, "raw_text")]
    size = 0
    copy = 0
    dest.mkdir(parents=True, exist_ok=True)
    while size < min_mb * 1e6:
        with open(dest / f"copy{copy:03d}.jsonl", "w", encoding="utf-8") as fh:
            for d in docs:
                line = json.dumps(
                    {"id": f"c{copy}-{d.doc_id}", "text": d.raw_text, "title": d.title},
                    ensure_ascii=False,
                )
                fh.write(line + "\n")
                size += len(line.encode("utf-8"))
        copy += 1
    return size / 1e6


# `tifa run` in a child whose first batch prints the time and exits: start-up to first batch
# (interpreter, imports, lock, scan of the output, ingest of the first batch), and the same with
# the models loaded (a single-process run loads them on its first batch).
_FIRST_BATCH = """
import os, sys, time
from pipeline.run import executors
from pipeline.run.config import RunConfig
def first_batch(docs, ctx):
    t = time.time()
    executors.load_models(RunConfig())
    print(t, time.time(), flush=True)
    os._exit(0)
executors.prepare_batch = first_batch
from pipeline.cli import app
sys.argv = ["tifa", "run", *sys.argv[1:]]
app()
"""


def time_to_first_batch(args: Sequence[str]) -> tuple[float, float]:
    """(seconds to the first batch, seconds to the first batch with the models loaded)."""
    start = time.time()
    out = subprocess.run(
        [sys.executable, "-c", _FIRST_BATCH, *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]) - start, float(out[1]) - start


def timed_cli(args: Sequence[str]) -> float:
    start = time.perf_counter()
    subprocess.run([*TIFA, *args], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="*", type=Path, help="default: ../shared/corpora/dev")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (best of each)")
    parser.add_argument("--workers-mb", type=float, default=5.0)
    parser.add_argument("--workers-repeats", type=int, default=1)
    parser.add_argument("--no-workers", action="store_true", help="skip the --workers 2 bench")
    parser.add_argument("--no-cli", action="store_true", help="skip start-up and rerun")
    args = parser.parse_args(argv)
    inputs = args.inputs or [DEV]
    if not all(p.exists() for p in inputs):
        parser.error(f"input not found: {inputs}")

    from pipeline.io.ingest import iter_documents
    from pipeline.run.batch import load_models, normalise_document
    from pipeline.run.config import RunConfig

    t0 = time.perf_counter()
    nlp = load_models(RunConfig())[0]
    print(f"models loaded in {time.perf_counter() - t0:.2f} s (not counted below)")
    texts = [
        normalise_document(d).text for d in iter_documents(list(inputs)) if hasattr(d, "raw_text")
    ]
    n_chars = sum(map(len, texts))
    ner_alone(texts[:2], nlp)  # warm
    timer = _stage_timer()
    best_ner = best_full = float("inf")
    best_stages: dict[str, float] = {}
    cpu_ner = cpu_full = float("inf")
    best_seq = cpu_seq = float("inf")
    for r in range(args.repeats):
        t_seq = ner_alone(texts, nlp)
        t_ahead = ner_alone(texts, nlp, ahead=True)
        n_full, t_full, stages = full_run(inputs, timer)
        print(
            f"round {r + 1}: NER alone {n_chars / t_seq:10,.0f} chars/s ({t_seq:.2f} s), with LAC"
            f" ahead {n_chars / t_ahead:10,.0f} chars/s ({t_ahead:.2f} s), pipeline "
            f"{n_full / t_full:10,.0f} chars/s ({t_full:.2f} s)",
            flush=True,
        )
        best_seq = min(best_seq, t_seq)
        cpu_seq = min(cpu_seq, CPU_SECONDS["ner"])
        # The backend alone at its best (the faster way), so the pipeline gets no credit for
        # an overlap the backend could use too.
        best_ner = min(best_ner, t_seq, t_ahead)
        cpu_ner = min(cpu_ner, CPU_SECONDS["ner"], CPU_SECONDS["ner_ahead"])
        cpu_full = min(cpu_full, CPU_SECONDS["full"])
        if t_full < best_full:
            best_full, best_stages = t_full, stages
    timer.undo()
    ner_rate, full_rate = n_chars / best_ner, n_full / best_full

    print(f"\n{len(texts)} documents, {n_chars:,} chars; best of {args.repeats}")
    print("| stage | seconds | chars/s | share of the run |")
    print("|---|---:|---:|---:|")
    for stage in STAGES:
        s = best_stages.get(stage, 0.0)
        rate = f"{n_chars / s:,.0f}" if s else "-"
        print(f"| {stage} | {s:.2f} | {rate} | {s / best_full:.0%} |")
        if stage == "nlp":
            for key, name in NLP_PARTS.items():
                s = best_stages.get(key, 0.0)
                print(f"| &nbsp;&nbsp;nlp: {name} | {s:.2f} | | {s / best_full:.0%} |")
    # LAC runs in a background thread (`analyse_ahead`): the main thread's stages and LAC
    # overlap, so "other" is what the main thread spent outside the timed stages, waiting for
    # LAC's first batch included.
    other = best_full - sum(best_stages.get(s, 0.0) for s in STAGES)
    print(f"| other (scheduling, skips, runs row) | {other:.2f} | | {other / best_full:.0%} |")
    print(f"| **full pipeline** | {best_full:.2f} | {full_rate:,.0f} | 100% |")
    print(f"| NER backend alone, sequential (LAC, then CRF) | {best_seq:.2f} | "
          f"{n_chars / best_seq:,.0f} | |")  # fmt: skip
    print(f"| NER backend alone, best (LAC + CRF) | {best_ner:.2f} | {ner_rate:,.0f} | |")
    print(
        f"CPU seconds (all threads, best of {args.repeats}): NER alone {cpu_ner:.2f}, full "
        f"pipeline {cpu_full:.2f}; CPU-time ratio {cpu_ner / cpu_full:.2f}"
    )

    if not args.no_workers:
        with tempfile.TemporaryDirectory(prefix="tifa_bench_big_") as tmp:
            big = Path(tmp) / "input"
            mb = repeated_input(inputs, args.workers_mb, big)
            for _ in range(args.workers_repeats):
                times = {}
                for workers in (1, 2):
                    out = Path(tmp) / f"out{workers}"
                    shutil.rmtree(out, ignore_errors=True)
                    cmd = ["run", str(big), "--out", str(out), "-q", "--workers", str(workers)]
                    times[workers] = timed_cli(cmd)
                print(
                    f"\n--workers 2 vs 1 process on {mb:.1f} MB: {times[1]:.1f} s vs "
                    f"{times[2]:.1f} s wall, {times[1] / times[2]:.2f}x",
                    flush=True,
                )

    if not args.no_cli:
        with tempfile.TemporaryDirectory(prefix="tifa_bench_cli_") as tmp:
            empty = Path(tmp) / "empty"
            empty.mkdir()
            out = Path(tmp) / "out"
            t_empty = min(timed_cli(["run", str(empty), "--out", str(out), "-q"]) for _ in range(3))
            t_help = min(timed_cli(["--help"]) for _ in range(3))
            first = [
                time_to_first_batch([*map(str, inputs), "--out", str(Path(tmp) / "o1"), "-q"])
                for _ in range(3)
            ]
            t_batch = min(f[0] for f in first)
            t_models = min(f[1] for f in first)
            t_first = timed_cli(["run", *map(str, inputs), "--out", str(out), "-q"])
            t_rerun = min(
                timed_cli(["run", *map(str, inputs), "--out", str(out), "-q"]) for _ in range(3)
            )
            print(
                f"\nstart-up: `tifa --help` {t_help:.2f} s, `tifa run` over nothing {t_empty:.2f} s"
                f" wall; to the first batch {t_batch:.2f} s ({t_models:.2f} s with the models "
                f"loaded); first run {t_first:.1f} s, rerun over unchanged input {t_rerun:.2f} s "
                "wall (best of 3 each)"
            )
    with contextlib.suppress(OSError):
        print(f"load average: {os.getloadavg()[0]:.2f} (1 min)")
    print(f"ratio {full_rate / ner_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
