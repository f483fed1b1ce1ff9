"""Dask runs whose workers read and write for themselves (pipeline/run/dask.py), outputs in
an S3-compatible object store (moto's server, a real HTTP endpoint), and a real cluster started
with the `dask scheduler` / `dask worker` commands."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.io.ingest import FieldMap, iter_documents
from pipeline.io.partitions import csv_ranges, plan_partitions, read_partition
from pipeline.run.runner import run_pipeline
from tests.conftest import SAMPLES, SHARED
from tests.table_hashes import compare, table_digests

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
# Tables a run writes everywhere (the report folder and the runs log aside).
TABLES = (
    "documents",
    "sentences",
    "entities",
    "formulations",
    "formulation_usage",
    "candidate_mentions",
    "relations",
    "removed_lines",
    "errors",
    "formulation_counts",
    "formulation_candidates",
    "people",
    "persons",
)


def _digests(
    out: Path, input_root: Path | None = None, across_runs: bool = False
) -> dict[str, dict]:
    found = table_digests(out, input_root, across_runs)
    return {t: found.get(t) for t in TABLES}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Ids by place (`--id-from path`): a range must number its lines and records as a whole read
# does, which content ids (the default) would not show.
BY_PLACE = FieldMap(id_from="path")


def _items(stream) -> list[tuple]:  # noqa: ANN001
    return [
        (type(x).__name__, x.source_file, x.doc_id, getattr(x, "content_hash", None))
        if hasattr(x, "raw_text")
        else (type(x).__name__, x.source_file, x.error_type, x.message)
        for x in stream
    ]


# -- partitions ------------------------------------------------------------------------------


JSONL_CASES = {
    "crlf_blank_lines_no_final_newline": (
        '{"content":"第一条。"}\r\n\r\n{"id":"x","content":"第二条。"}\r\n'
        'not json\n{"content":"第三条，没有换行结尾。"}',
        "utf-8",
    ),
    "lone_cr_and_mixed_line_ends": (
        "".join(
            f'{{"content":"第{i}条。"}}' + ["\r", "\n", "\r\n", "\r\r\n"][i % 4] for i in range(30)
        ),
        "utf-8",
    ),
    "gb18030": ('{"content":"会议强调，要坚持稳中求进。"}\n' * 40, "gb18030"),
    "utf8_bom_and_bad_bytes": ('{"content":"甲。"}\n' * 30, "utf-8-sig"),
    "utf16_read_whole_by_first_range": ('{"content":"乙。"}\n' * 30, "utf-16"),
}


@pytest.mark.parametrize("case", sorted(JSONL_CASES))
@pytest.mark.parametrize("target", [7, 64, 1000])
def test_jsonl_byte_ranges_read_what_the_whole_file_gives(
    tmp_path: Path, case: str, target: int
) -> None:
    text, encoding = JSONL_CASES[case]
    path = tmp_path / f"{case}.jsonl"
    data = text.encode(encoding)
    if case == "utf8_bom_and_bad_bytes":
        data += b'{"content":"\xff\xfe"}\n' + '{"content":"丙。"}\n'.encode()
    path.write_bytes(data)
    whole = _items(iter_documents([path], BY_PLACE))
    parts, problems = plan_partitions([path], target_bytes=target)
    assert not problems
    assert len(parts) > 1 or len(data) <= target
    from pipeline.io.partitions import count_newlines

    before = 0
    got = []
    for part in parts:
        from dataclasses import replace

        got += _items(read_partition(replace(part, lines_before=before), BY_PLACE))
        before += count_newlines(part)
    assert got == whole


# Each case: rows after the header, and the file's encoding. Quoted fields across lines, stray
# quotes (the reader's recovery re-reads lines), quotes inside unquoted fields (taken literally,
# which defeats quote parity), lone CRs, blank lines, records without an id (ids by ordinal).
_ROW = "第{0}条，会议强调要坚持稳中求进。"


def _simple_csv(header: str, prefix: str, n: int, end: str = "\n") -> str:
    return header + end + "".join(f"{prefix}{i},{_ROW.format(i)}{end}" for i in range(n))


CSV_CASES = {
    "quoted_fields_over_lines": (
        "id,text\n"
        + "".join(f'r{i},"{_ROW.format(i)}\n第二段，""引号""。\n第三段。"\n' for i in range(12)),
        "utf-8",
    ),
    "no_ids_crlf_blank_lines": (
        "title,text\r\n"
        + "".join(f"标题{i},{_ROW.format(i)}\r\n" + ("\r\n" if i % 3 else "") for i in range(15)),
        "utf-8",
    ),
    "literal_quotes_then_quoted_newlines": (
        "title,text\n"
        + "".join(
            f'甲{i},他说"好{i}\n乙{i},"跨行\n的字段{i}"\n丙{i},她说"不"好\n' for i in range(8)
        ),
        "utf-8",
    ),
    "stray_quote_swallows_rows": (
        "id,text\n"
        + "".join(f"a{i},{_ROW.format(i)}\n" for i in range(5))
        + 'bad,"一个没有关上的引号\n'
        + "".join(f"b{i},{_ROW.format(i)}\n" for i in range(8)),
        "utf-8",
    ),
    "lone_cr_line_ends": (_simple_csv("id,text", "c", 10, "\r"), "utf-8"),
    "gb18030_bom_less": (_simple_csv("标题,正文", "标题", 20), "gb18030"),
    "utf8_bom_bad_bytes_and_a_too_large_row": (_simple_csv("id,text", "d", 10), "utf-8-sig"),
    "utf16_is_never_cut": (_simple_csv("id,text", "e", 10), "utf-16"),
}


def _csv_case(tmp_path: Path, case: str) -> Path:
    text, encoding = CSV_CASES[case]
    data = text.encode(encoding)
    if case == "utf8_bom_bad_bytes_and_a_too_large_row":
        data += b"bad,\xff\xfe\n" + ("big," + "长" * 400 + "\n").encode() + b"ok,\xe5\x90\x8e\n"
    path = tmp_path / f"{case}.csv"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", sorted(CSV_CASES))
@pytest.mark.parametrize("target", [7, 100, 1000])
def test_csv_cut_at_record_starts_reads_what_the_whole_file_gives(
    tmp_path: Path, case: str, target: int
) -> None:
    path = _csv_case(tmp_path, case)
    limit = 600  # the too-large row is over it
    whole = _items(iter_documents([path], BY_PLACE, max_doc_bytes=limit))
    assert any(x[0] == "Document" for x in whole)
    parts, problems = plan_partitions([path], target_bytes=target)
    assert not problems and len(parts) == 1
    ranges = csv_ranges(parts[0], limit)
    if case == "utf16_is_never_cut" or path.stat().st_size <= target:
        assert len(ranges) == 1 and ranges[0].start is None
    else:
        assert len(ranges) > 1
        assert ranges[0].start == 0 and ranges[-1].end == path.stat().st_size
        assert all(a.end == b.start for a, b in zip(ranges, ranges[1:], strict=False))
    got = []
    for part in ranges:
        got += _items(read_partition(part, BY_PLACE, limit))
    assert got == whole


def test_csv_recovery_cases_really_happen(tmp_path: Path) -> None:
    """The cases above exercise what they are named for."""
    found = {
        case: _items(iter_documents([_csv_case(tmp_path, case)], BY_PLACE, max_doc_bytes=600))
        for case in CSV_CASES
    }
    assert any(x[2] == "CSVQuoteError" for x in found["stray_quote_swallows_rows"])
    assert {x[2] for x in found["utf8_bom_bad_bytes_and_a_too_large_row"]} >= {
        "DecodeError",
        "DocumentTooLarge",
    }
    assert any(x[2] == "no_ids_crlf_blank_lines-7" for x in found["no_ids_crlf_blank_lines"])
    lit = [x for x in found["literal_quotes_then_quoted_newlines"] if x[0] == "Document"]
    assert len(lit) == 24  # three records per round, none swallowed


def test_partitions_keep_the_input_order_and_group_small_files(tmp_path: Path) -> None:
    parts, problems = plan_partitions([SAMPLES], target_bytes=3000)
    assert not problems
    names = [n for p in parts for n in p.names if p.start is None or p.start == 0]
    assert names == [str(p) for p in sorted(SAMPLES.iterdir())]
    assert any(len(p.names) > 1 for p in parts)  # small files travel together
    ranged = [p for p in parts if p.start is not None]
    assert ranged and ranged[0].names[0].endswith("speeches.jsonl")
    assert [(p.start, p.end) for p in ranged][0][0] == 0
    assert all(a.end == b.start for a, b in zip(ranged, ranged[1:], strict=False))


@pytest.mark.skipif(not (SHARED / "corpora" / "dev").is_dir(), reason="../shared not present")
def test_csv_ranges_of_a_real_corpus() -> None:
    src = SHARED / "corpora" / "dev" / "xi_speeches_2020.csv"
    whole = _items(iter_documents([src], BY_PLACE))
    for target in (40_000, 250_000):
        [part] = plan_partitions([src], target_bytes=target)[0]
        ranges = csv_ranges(part)
        assert len(ranges) > 1
        got = []
        for piece in ranges:
            got += _items(read_partition(piece, BY_PLACE))
        assert got == whole


@pytest.mark.skipif(not (SHARED / "corpora" / "dev").is_dir(), reason="../shared not present")
def test_byte_ranges_of_a_real_corpus(tmp_path: Path) -> None:
    src = SHARED / "corpora" / "dev" / "cpc_congress_reports.jsonl"
    whole = _items(iter_documents([src], BY_PLACE))
    from dataclasses import replace

    from pipeline.io.partitions import count_newlines

    for target in (50_000, 333_333):
        parts, _ = plan_partitions([src], target_bytes=target)
        assert len(parts) > 1
        got, before = [], 0
        for part in parts:
            got += _items(read_partition(replace(part, lines_before=before), BY_PLACE))
            before += count_newlines(part)
        assert got == whole


# -- runs on a LocalCluster ------------------------------------------------------------------


def test_dask_workers_write_the_tables_a_local_run_writes(
    tmp_path: Path, samples_out: Path
) -> None:
    out = tmp_path / "dask"
    # 700 bytes: the samples' .jsonl and .csv files are both cut into byte ranges.
    [csv_part] = [p for p in plan_partitions([SAMPLES], target_bytes=700)[0] if p.cut_bytes]
    assert len(csv_ranges(csv_part)) > 1
    summary = run_pipeline(
        [SAMPLES], out, workers=2, scheduler="dask", batch_size=2, partition_bytes=700
    )
    assert summary.n_documents == len(_items(iter_documents([SAMPLES]))) - summary.n_errors
    assert compare(_digests(out), _digests(samples_out)) == []
    # Parts come from the workers: one key per partition and batch, each with its marker.
    keys = {p.name.removesuffix(".parquet").removeprefix("part-") for p in out.glob("*/part-*")}
    done = {p.name for p in (out / "_done").iterdir()}
    assert {k for k in keys if "-p0" in k} <= done
    assert len({k.split("-p")[1][:5] for k in keys if "-p0" in k}) > 2


def test_dask_rerun_skips_unchanged_and_replaces_changed(tmp_path: Path) -> None:
    inputs = tmp_path / "raw"
    shutil.copytree(SAMPLES, inputs)
    out = tmp_path / "out"
    kw = {"workers": 2, "scheduler": "dask", "partition_bytes": 2000}
    first = run_pipeline([inputs], out, **kw)
    again = run_pipeline([inputs], out, **kw)
    assert again.n_documents == 0 and again.n_skipped == first.n_documents
    # A record that names itself (an id field) and changed: replaced. (A .txt file whose text
    # changed is another document: it is named by its text.)
    speeches = inputs / "speeches.jsonl"
    lines = speeches.read_text("utf-8").splitlines()
    record = json.loads(lines[0])
    record["content"] += "\n会议强调，要坚持稳中求进工作总基调。\n"
    lines[0] = json.dumps(record, ensure_ascii=False)
    speeches.write_text("\n".join(lines) + "\n", "utf-8")
    third = run_pipeline([inputs], out, **kw)
    assert (third.n_documents, third.n_replaced) == (1, 1)
    fresh = tmp_path / "fresh"
    run_pipeline([inputs], fresh)
    # Three runs against one: discovery's history columns differ by design (table_hashes).
    assert compare(_digests(out, inputs, True), _digests(fresh, inputs, True)) == []


def test_dask_address_without_dask_scheduler_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scheduler"):
        run_pipeline([SAMPLES], tmp_path / "o", dask_address="tcp://127.0.0.1:1")
    done = subprocess.run(
        [BIN / "tifa", "run", str(SAMPLES), "--out", str(tmp_path / "o"), "--scheduler",
         "processes", "--dask-address", "tcp://127.0.0.1:1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    said = done.stdout + done.stderr
    assert "--dask-address" in said and "Traceback" not in said


# -- a real cluster --------------------------------------------------------------------------


@pytest.fixture
def dask_cluster(tmp_path: Path):  # noqa: ANN201
    """`dask scheduler` and two `dask worker` processes, started in a folder of their own."""
    home = tmp_path / "cluster"
    home.mkdir()
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
             "--dashboard-address", ":0", "--no-show"],
            cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=open(home / "scheduler.log", "w"),
        )
    ]  # fmt: skip
    for i in range(2):
        procs.append(
            subprocess.Popen(
                [BIN / "dask", "worker", address, "--nthreads", "1", "--name", f"w{i}",
                 "--dashboard-address", ":0", "--local-directory", str(home / f"w{i}")],
                cwd=home, env=env, stdout=subprocess.DEVNULL,
                stderr=open(home / f"worker{i}.log", "w"),
            )
        )  # fmt: skip
    try:
        from distributed import Client

        deadline = time.monotonic() + 90
        while True:
            try:
                with Client(address, timeout=5) as client:
                    client.wait_for_workers(2, timeout=max(1, deadline - time.monotonic()))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        yield address, home
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_real_cluster_run_matches_a_local_run(
    tmp_path: Path, samples_out: Path, dask_cluster: tuple[str, Path]
) -> None:
    address, home = dask_cluster
    out = tmp_path / "out"
    rel_inputs = os.path.relpath(SAMPLES, ROOT)  # relative: workers run in another folder
    done = subprocess.run(
        [BIN / "tifa", "run", rel_inputs, "--out", str(out), "--dask-address", address, "-q",
         "--partition-mb", "0.002"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert compare(_digests(out, ROOT), _digests(samples_out, ROOT)) == []
    # Both worker processes of the cluster processed partitions.
    assert "processed by 2 Dask worker processes" in " ".join((done.stdout + done.stderr).split())


# -- an S3-compatible object store -----------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint():  # noqa: ANN201
    pytest.importorskip("moto")
    pytest.importorskip("s3fs")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "FSSPEC_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield env
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _s3(env: dict[str, str]):  # noqa: ANN202
    import s3fs

    return s3fs.S3FileSystem(
        key=env["AWS_ACCESS_KEY_ID"],
        secret=env["AWS_SECRET_ACCESS_KEY"],
        endpoint_url=env["FSSPEC_S3_ENDPOINT_URL"],
    )


@pytest.mark.parametrize("scheduler", ["processes", "dask"])
def test_s3_round_trip(
    tmp_path: Path, samples_out: Path, s3_endpoint: dict[str, str], scheduler: str
) -> None:
    fs = _s3(s3_endpoint)
    bucket = f"tifa-{scheduler}"
    fs.mkdir(bucket)
    url = f"s3://{bucket}/night"
    cmd = [BIN / "tifa", "run", str(SAMPLES), "--out", url, "-q", "--scheduler", scheduler]
    if scheduler == "dask":
        cmd += ["--workers", "2", "--partition-mb", "0.002"]
    env = {**os.environ, **s3_endpoint}
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "object store" in " ".join((first.stdout + first.stderr).split())
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 documents written" in " ".join((again.stdout + again.stderr).split())
    fs.invalidate_cache()
    assert not fs.exists(f"{bucket}/night/.tifa.lock")  # released
    local = tmp_path / "copy"
    fs.get(f"{bucket}/night", str(local), recursive=True)
    assert compare(_digests(local), _digests(samples_out)) == []
    runs = json.loads(json.dumps([p.name for p in (local / "runs").iterdir()]))
    assert len(runs) == 2


def test_s3_compaction_and_its_recovery(
    tmp_path: Path, samples_out: Path, s3_endpoint: dict[str, str]
) -> None:
    """`tifa compact s3://…` merges the part files in the object store without changing a row;
    one killed after the first merged file was moved into place is finished by the next run,
    which compacts itself (--compact-above) with the same code."""
    fs = _s3(s3_endpoint)
    fs.mkdir("tifa-compact")
    url = "s3://tifa-compact/night"
    env = {**os.environ, **s3_endpoint}

    def tifa(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [BIN / "tifa", *args], capture_output=True, text=True, env={**env, **extra}, timeout=600
        )

    def n_parts() -> int:
        fs.invalidate_cache()
        return len(fs.glob("tifa-compact/night/documents/part-*.parquet"))

    run = ["run", str(SAMPLES), "--out", url, "-q", "--batch-size", "1", "--compact-above", "0"]
    done = tifa(*run)
    assert done.returncode == 0, done.stdout + done.stderr
    before = n_parts()
    assert before > 3
    killed = tifa("compact", url, "-q", "--target-size", "1M", TIFA_CRASH_AT="compact.renamed:2")
    assert killed.returncode == -signal.SIGKILL
    fs.invalidate_cache()
    assert fs.glob("tifa-compact/night/_journal/*.compact")  # left mid-way
    again = tifa(*run[:-1], "1", "--compact-target-size", "1M")
    said = " ".join((again.stdout + again.stderr).split())
    assert again.returncode == 0, said
    assert "interrupted compaction: finished" in said and "0 documents written" in said
    assert n_parts() == 1
    fs.invalidate_cache()
    assert not fs.glob("tifa-compact/night/_journal/*") and not fs.glob(
        "tifa-compact/night/*/.part-*"
    )
    local = tmp_path / "copy"
    fs.get("tifa-compact/night", str(local), recursive=True)
    assert compare(_digests(local), _digests(samples_out)) == []
    assert tifa("compact", url, "-q").returncode == 0  # nothing left to merge


def test_huge_documents_on_dask_workers(tmp_path: Path) -> None:
    """Documents past --chunk-chars are chunked and streamed by the worker that reads them, and
    one past --max-doc-bytes is an errors row there; the tables equal a local run's."""
    kw = {"chunk_chars": 300, "max_doc_bytes": 1400}
    local, dask = tmp_path / "local", tmp_path / "dask"
    run_pipeline([SAMPLES], local, **kw)
    summary = run_pipeline([SAMPLES], dask, workers=2, scheduler="dask", partition_bytes=1500, **kw)
    assert summary.dask_workers
    assert compare(_digests(dask), _digests(local)) == []
    import pyarrow.parquet as pq

    errors = pq.read_table(dask / "errors").to_pylist()
    assert any(e["error_type"] == "DocumentTooLarge" for e in errors)
    docs = pq.read_table(dask / "documents", columns=["doc_id", "text"]).to_pylist()
    assert any(len(d["text"]) > 300 for d in docs)  # a chunked document, written whole


def _counts(summary) -> dict:  # noqa: ANN001 - a RunSummary
    return {
        "documents": summary.n_documents,
        "skipped": summary.n_skipped,
        "replaced": summary.n_replaced,
        "errors": summary.n_errors,
        "chars": summary.n_chars,
        "rows": {t: n for t, n in summary.rows_written.items() if n},
    }


def test_every_executor_counts_the_same(tmp_path: Path) -> None:
    """One run loop, one admission decision and one accounting (`RunSummary.add`) whichever
    executor runs the batches: this process, a process pool or Dask workers give the same
    counts on a first night and on a second night with a skip, a replacement and a new record."""
    executors = {
        "serial": {},
        "pool": {"workers": 2},
        "dask": {"workers": 2, "scheduler": "dask", "partition_bytes": 1500},
    }
    nights: dict[str, list[dict]] = {}
    for name, kw in executors.items():
        inputs = tmp_path / name / "raw"
        shutil.copytree(SAMPLES, inputs)
        out = tmp_path / name / "out"
        first = run_pipeline([inputs], out, batch_size=3, **kw)
        speeches = inputs / "speeches.jsonl"
        lines = speeches.read_text("utf-8").splitlines()
        changed = json.loads(lines[0])
        changed["content"] += "\n会议强调，要坚持稳中求进工作总基调。\n"
        added = {**changed, "id": "added-tonight", "content": "新华社北京电 国务院常务会议召开。"}
        lines[0] = json.dumps(changed, ensure_ascii=False)
        lines.append(json.dumps(added, ensure_ascii=False))
        speeches.write_text("\n".join(lines) + "\n", "utf-8")
        second = run_pipeline([inputs], out, batch_size=3, **kw)
        nights[name] = [_counts(first), _counts(second)]
    assert nights["serial"][1]["replaced"] == 1 and nights["serial"][1]["skipped"] > 0
    assert nights["pool"] == nights["serial"]
    assert nights["dask"] == nights["serial"]
