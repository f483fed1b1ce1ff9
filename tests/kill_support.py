"""Crash-safety harness shared by tests/test_kill.py (small, CI) and bench/kill_harness.py (full):
real `tifa run` subprocesses killed with SIGKILL, then rerun, then every table compared with a
clean run's. No mocks: kills are real signals, tables are read back from real Parquet files.

Kills come two ways: at a random moment (`delay`), and at a named point in the writer
(`crash_at`, via TIFA_CRASH_AT, see pipeline/io/write.py::checkpoint) so that short windows such as
"between two tables of a replacement" are hit on every run, not by luck.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pyarrow.parquet as pq

from .table_hashes import without_history

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "raw"

# Tables compared between a recovered archive and a clean one (the runs table logs each run, so
# it differs by design); `run_id` columns say which run wrote a row, not what the row is.
COMPARED = (
    "documents",
    "sentences",
    "entities",
    "formulations",
    "formulation_usage",
    "candidate_mentions",
    "relations",
    "errors",
    "formulation_counts",
    "formulation_candidates",
    "people",
)


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **extra}
    env.pop("TIFA_CRASH_AT", None)
    env.update(extra)
    return env


def tifa_run_command(inputs: list[Path], out: Path, *args: str) -> list[str]:
    """`python -m pipeline run INPUTS --out OUT -q ARGS`, with the default NER backend, as the
    in-process reference and reruns use."""
    cmd = [sys.executable, "-m", "pipeline", "run", *map(str, inputs), "--out", str(out), "-q"]
    return cmd + list(args)


def run_tifa(
    inputs: list[Path], out: Path, *args: str, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        tifa_run_command(inputs, out, *args),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(**env),
        timeout=timeout,
    )


def start_tifa(inputs: list[Path], out: Path, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        tifa_run_command(inputs, out, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=_env(**env),
    )


# --------------------------------------------------------------------------------------------
# Corpora


def _doc(i: int, variant: str = "") -> str:
    return (
        f"第{i}号通知{variant}：3月{i % 28 + 1}日，湖北省委书记张明主持召开省委常委会会议，"
        f"强调坚决做到“两个维护”，推进中国式现代化湖北实践。省委常委、秘书长吴海涛出席会议。"
        f"会议指出，要深入贯彻落实“六稳”“六保”要求，统筹发展和安全{variant}。"
    )


def make_rotated_corpus(folder: Path) -> Path:
    """The night after an update, rotated: one new notice and none of the documents before it
    (the rerun of a killed replacement that no longer sees what it was replacing)."""
    folder.mkdir(parents=True, exist_ok=True)
    record = {"id": "notice_rotated", "text": _doc(99, "（次日）")}
    (folder / "notice_rotated.jsonl").write_text(
        json.dumps(record, ensure_ascii=False) + "\n", "utf-8"
    )
    return folder


def make_corpus(folder: Path, n_extra: int = 6, variant: str = "") -> Path:
    """The bundled samples plus `n_extra` short generated notices; `variant` changes the text of
    every other generated notice (a nightly update) and adds two new ones."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in SAMPLES.iterdir():
        if path.is_file():
            shutil.copy(path, folder / path.name)
    n = n_extra + (2 if variant else 0)
    for i in range(n):
        text = _doc(i, variant if (variant and i % 2 == 0) else "")
        # One record with its id per file: the update keeps each notice's identity, so its
        # changed text is a replacement (a .txt file is named by its text: a new document).
        record = {"id": f"notice_{i:03d}", "text": text}
        (folder / f"notice_{i:03d}.jsonl").write_text(
            json.dumps(record, ensure_ascii=False) + "\n", "utf-8"
        )
    return folder


# --------------------------------------------------------------------------------------------
# Reading an archive back


def table_rows(out: Path, table: str) -> Counter:
    """The multiset of a table's rows (run_id left out)."""
    folder = out / table
    files = sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []
    rows: Counter = Counter()
    for f in files:
        data = pq.read_table(f)
        cols = [c for c in data.column_names if c != "run_id"]
        for r in data.select(cols).to_pylist():
            # A recovered archive was written over more runs than its clean reference.
            if (kept := without_history(table, r)) is not None:
                rows[tuple((k, repr(v)) for k, v in kept.items())] += 1
    return rows


def snapshot(out: Path) -> dict[str, Counter]:
    return {t: table_rows(out, t) for t in COMPARED}


def problems(
    out: Path,
    reference: dict[str, Counter] | None = None,
    drop: Callable[[tuple], tuple] | None = None,
) -> list[str]:
    """Everything wrong with an archive after a (re)run; empty when it is consistent and, given
    a reference snapshot, equal to it table by table (`drop`: a field left out of both sides'
    rows where the two runs' orders may rightly differ)."""
    found = []
    docs = pq.read_table(out / "documents").column("doc_id").to_pylist()
    dup = [d for d, n in Counter(docs).items() if n > 1]
    if dup:
        found.append(f"{len(dup)} duplicated doc_ids, e.g. {dup[:3]}")
    for path in out.rglob("*"):
        if path.name.endswith(".tmp"):
            found.append(f"temp file left: {path.relative_to(out)}")
    journal = out / "_journal"
    if journal.is_dir() and any(journal.iterdir()):
        found.append(f"journal left: {sorted(p.name for p in journal.iterdir())}")
    if (out / ".tifa.lock").exists():
        found.append("lock file left after a finished run")
    done = {p.name for p in (out / "_done").iterdir()}
    for table in ("documents", "sentences", "entities", "errors"):
        for f in (out / table).glob("part-*.parquet"):
            if f.stem.removeprefix("part-") not in done:
                found.append(f"{table}/{f.name} has no completion marker")
    if reference is not None:
        got = snapshot(out)
        if drop is not None:
            got = {t: Counter({drop(r): n for r, n in c.items()}) for t, c in got.items()}
            reference = {
                t: Counter({drop(r): n for r, n in c.items()}) for t, c in reference.items()
            }
        for table in COMPARED:
            if got[table] != reference[table]:
                missing = sum((reference[table] - got[table]).values())
                extra = sum((got[table] - reference[table]).values())
                found.append(f"{table}: {missing} rows missing, {extra} rows extra")
    return found


# --------------------------------------------------------------------------------------------
# Killing


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def wait_gone(procs: list[psutil.Process], timeout: float = 20) -> list[psutil.Process]:
    """The processes still alive after `timeout` seconds (orphans)."""
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return alive


@dataclass
class Kill:
    """One kill: the args of the killed run, and where it was killed."""

    label: str
    args: tuple[str, ...] = ()
    delay: float | None = None  # seconds after start
    crash_at: str | None = None  # a TIFA_CRASH_AT point "name:n"
    rerun_args: tuple[str, ...] | None = None  # default: the same args
    # The next night's input, when it is not the killed run's (a rotated input that no longer
    # holds the documents the killed run was replacing); default: the same inputs.
    rerun_inputs: list[Path] | None = None
    outcome: dict = field(default_factory=dict)


def kill_and_recover(
    kill: Kill,
    inputs: list[Path],
    out: Path,
    reference: dict[str, Counter] | None,
    start_from: Path | None = None,
    in_process: bool = False,
    inspect: Callable[[Path], str] | None = None,
) -> list[str]:
    """Run `tifa run` on a copy of `start_from` (or an empty folder), kill it, rerun it to the
    end, and return the problems found (empty: recovered)."""
    if out.exists():
        shutil.rmtree(out)
    if start_from is not None:
        shutil.copytree(start_from, out)
    env = {"TIFA_CRASH_AT": kill.crash_at} if kill.crash_at else {}
    proc = start_tifa(inputs, out, *kill.args, **env)
    # Watch the run's worker processes while it runs, to check none outlives it.
    children: dict[int, psutil.Process] = {}
    deadline = time.monotonic() + kill.delay if kill.delay is not None else None
    while proc.poll() is None:
        if deadline is not None and time.monotonic() >= deadline:
            os.kill(proc.pid, signal.SIGKILL)
            break
        for child in descendants(proc.pid):
            children.setdefault(child.pid, child)
        time.sleep(0.05)
    _, stderr = proc.communicate(timeout=300)
    killed = proc.returncode == -signal.SIGKILL
    kill.outcome = {"killed": killed, "returncode": proc.returncode}
    found = []
    if not killed and proc.returncode != 0:
        found.append(f"run exited {proc.returncode} before the kill: {stderr[-800:]}")
    if killed and "Traceback" in stderr:
        found.append("traceback before the kill: " + stderr[-800:])
    orphans = wait_gone(list(children.values()))
    if orphans:
        found.append(f"{len(orphans)} worker processes outlived the killed run")
        for p in orphans:
            p.kill()
    if inspect is not None:  # what the killed run left, before the rerun repairs it
        kill.outcome["inspected"] = inspect(out)
    rerun_args = kill.rerun_args if kill.rerun_args is not None else kill.args
    rerun_inputs = kill.rerun_inputs if kill.rerun_inputs is not None else inputs
    if in_process:
        rerun_in_process(rerun_inputs, out, *rerun_args)
    else:
        rerun = run_tifa(rerun_inputs, out, *rerun_args)
        if rerun.returncode != 0:
            found.append(f"rerun exited {rerun.returncode}: {rerun.stderr[-800:]}")
        if "Traceback" in rerun.stderr:
            found.append("traceback in rerun")
    return found + problems(out, reference)


def rerun_in_process(inputs: list[Path], out: Path, *args: str) -> None:
    """The rerun in this process (models stay loaded between tests: faster in CI). Only the
    options the kill tests use are understood."""
    from pipeline.run.runner import run_pipeline

    kwargs: dict = {}
    it = iter(args)
    for arg in it:
        if arg == "--force":
            kwargs["force"] = True
        elif arg == "--batch-size":
            kwargs["batch_size"] = int(next(it))
        elif arg == "--workers":
            kwargs["workers"] = int(next(it))
        elif arg == "--scheduler":
            kwargs["scheduler"] = next(it)
        else:
            raise ValueError(f"rerun_in_process does not know {arg}")
    run_pipeline(inputs, out, **kwargs)
