"""Huge documents (issue 15): chunked processing gives the rows of an unchunked run, rows are
streamed to disk, documents past `--max-doc-bytes` are errors rows and the rest of their file
is read, and a kill while a huge document streams leaves nothing visible."""

from __future__ import annotations

import csv
import json
import signal
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.core.document import content_doc_id
from pipeline.normalise.chunks import chunk_bounds
from pipeline.run.runner import run_pipeline

from .conftest import DEV
from .kill_support import run_tifa

SPEECHES = DEV / "xi_speeches_2020.csv"
# Row fields that say which run wrote a row, not what the row is.
_RUN_FIELDS = {"run_id"}


def _speeches(n: int) -> list[str]:
    if not SPEECHES.is_file():
        pytest.skip("../shared/corpora/dev/xi_speeches_2020.csv not available")
    csv.field_size_limit(sys.maxsize)
    with SPEECHES.open(encoding="utf-8", newline="") as fh:
        return [row["Text"] for row in csv.DictReader(fh)][:n]


def _rows(out: Path, table: str) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k not in _RUN_FIELDS}
        for r in pq.read_table(out / table).to_pylist()
    ]


def _key_set(rows: list[dict]) -> set[tuple]:
    return {tuple(sorted((k, str(v)) for k, v in r.items())) for r in rows}


def test_chunk_bounds_cut_a_single_line_at_sentence_punctuation() -> None:
    text = "".join(f"第{i}句话说到这里就结束了。" for i in range(300))  # no newline at all
    bounds = chunk_bounds(text, 500)
    assert len(bounds) > 1
    assert bounds[0][0] == 0 and bounds[-1][1] == len(text)
    for (_, end), (start, _) in zip(bounds, bounds[1:], strict=False):
        assert end == start  # contiguous: nothing lost, nothing read twice
    for start, end in bounds:
        assert end - start <= 500
        assert text[end - 1] == "。" or end == len(text)


def test_chunk_bounds_prefer_paragraph_ends_and_cut_hard_without_a_boundary() -> None:
    text = "一段话，没有句号" * 40 + "。\n" + "另一段话。" * 40
    first_end = chunk_bounds(text, 400)[0][1]
    assert text[first_end - 2 : first_end] == "。\n"
    no_boundary = "字" * 2500
    bounds = chunk_bounds(no_boundary, 1000)
    assert [e - s for s, e in bounds] == [1000, 1000, 500]


@pytest.fixture(scope="module")
def huge_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Twelve real speeches as two documents of one JSONL file: one with the speeches on lines
    of their own, one with them on a single line (no newline at all). Run unchunked and with
    a tiny chunk size."""
    speeches = _speeches(12)
    inputs = tmp_path_factory.mktemp("huge_in")
    records = [
        {"id": "lines", "title": "讲话汇编", "date": "2020-12-31", "text": "\n".join(speeches)},
        {"id": "one_line", "date": "2020-12-31", "text": "".join(speeches)},
    ]
    path = inputs / "collection.jsonl"
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    whole = tmp_path_factory.mktemp("huge_whole")
    chunked = tmp_path_factory.mktemp("huge_chunked")
    # Story detection off: a huge document is by design its own story (run/stories.py), so
    # two copies of one text would be linked in the whole run and not in the chunked one.
    run_pipeline([path], whole, dedup=False)
    summary = run_pipeline([path], chunked, chunk_chars=2_000, dedup=False)
    return {"whole": whole, "chunked": chunked, "records": records, "summary": summary}


def test_chunked_run_streams_each_huge_document_as_its_own_batch(huge_runs: dict) -> None:
    summary = huge_runs["summary"]
    assert summary.n_documents == 2 and summary.n_errors == 0
    assert summary.n_batches == 2
    for table in ("documents", "entities", "sentences"):
        files = sorted((huge_runs["chunked"] / table).glob("part-*.parquet"))
        assert len(files) == 2  # one part per huge document
        assert not list((huge_runs["chunked"] / table).glob(".*"))  # no temporary file left
    # Rows went to disk a chunk at a time: one row group per chunk (more than one each).
    with pq.ParquetFile(files[0]) as fh:
        assert fh.num_row_groups > 5


@pytest.mark.parametrize(
    "table",
    [
        "documents",
        "sentences",
        "entities",
        "formulations",
        "formulation_usage",
        "candidate_mentions",
        "removed_lines",
    ],
)
def test_chunked_rows_equal_unchunked_rows(huge_runs: dict, table: str) -> None:
    whole = _rows(huge_runs["whole"], table)
    chunked = _rows(huge_runs["chunked"], table)
    assert whole, table
    assert len(chunked) == len(whole)
    assert _key_set(chunked) == _key_set(whole)


def test_chunked_relations_match_unchunked(huge_runs: dict) -> None:
    """Relations read a running context (locality, the meeting reported) that is carried from
    chunk to chunk; a rule that looks at the sentence before a chunk's first one may differ."""
    whole = _key_set(_rows(huge_runs["whole"], "relations"))
    chunked = _key_set(_rows(huge_runs["chunked"], "relations"))
    assert len(whole) >= 5
    assert len(whole ^ chunked) <= max(1, len(whole) // 20), sorted(whole ^ chunked)


def test_chunked_offsets_slice_the_whole_document(huge_runs: dict) -> None:
    out = huge_runs["chunked"]
    docs = {r["doc_id"]: r for r in _rows(out, "documents")}
    raw = {r["id"]: r["text"] for r in huge_runs["records"]}
    for r in docs.values():
        assert r["n_chars"] == len(r["text"]) and r["n_raw_chars"] == len(raw[r["doc_id"]])
    n_raw_equal = n = 0
    for table in ("sentences", "entities", "formulations"):
        for r in _rows(out, table):
            text = docs[r["doc_id"]]["text"]
            assert text[r["start"] : r["end"]] == r["text"], (table, r)
            # The speeches are simplified text without pinyin: raw and clean agree where the
            # raw text had no full-width digits or spaces inside the span.
            n += 1
            n_raw_equal += raw[r["doc_id"]][r["raw_start"] : r["raw_end"]] == r["text"]
    assert n_raw_equal >= 0.95 * n
    sent_ids = sorted(r["sent_id"] for r in _rows(out, "sentences") if r["doc_id"] == "lines")
    assert sent_ids == list(range(len(sent_ids)))  # numbered across the whole document
    for r in _rows(out, "relations"):
        assert 0 <= r["start"] < r["end"] <= len(docs[r["doc_id"]]["text"])


# ---------------------------------------------------------------------------------------------
# The hard limit


SMALL = "湖北省人民政府召开常务会议。会议强调，要坚持稳中求进工作总基调。"


def _write_inputs(folder: Path, big: str) -> None:
    folder.mkdir()
    small = SMALL
    (folder / "big.txt").write_text(big, encoding="utf-8")
    (folder / "small.txt").write_text(small, encoding="utf-8")
    lines = [
        {"id": "j1", "text": small},
        {"id": "j_big", "text": big},
        {"id": "j2", "text": small + "第二条。"},
    ]
    (folder / "items.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines), encoding="utf-8"
    )
    # A huge quoted field over many lines with doubled quotes in it, then a huge unquoted one:
    # the rows after each are read as rows.
    quoted = big.replace("。", '。\n“”""引""', 50)
    with (folder / "rows.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "text"])
        writer.writerow(["c1", small])
        writer.writerow(["c_big", quoted])
        writer.writerow(["c2", small + '，"引号"里的话。'])
        writer.writerow(["c_big2", big])
        writer.writerow(["c3", small + "第三条。"])


def test_documents_over_the_limit_are_errors_rows_and_the_rest_is_written(
    tmp_path: Path,
) -> None:
    big = "会议强调，要坚持稳中求进工作总基调。" * 400  # ~21 KB in UTF-8
    _write_inputs(tmp_path / "in", big)
    out = tmp_path / "out"
    summary = run_pipeline([tmp_path / "in"], out, max_doc_bytes=10_000)
    errors = _rows(out, "errors")
    too_large = [e for e in errors if e["error_type"] == "DocumentTooLarge"]
    assert len(too_large) == 4, errors
    by_file = {Path(e["source_file"]).name: e for e in too_large}
    assert set(by_file) == {"big.txt", "items.jsonl", "rows.csv"}
    assert by_file["big.txt"]["doc_id"] == "big"
    assert "line 2" in by_file["items.jsonl"]["message"]
    assert "--max-doc-bytes" in by_file["items.jsonl"]["message"]
    assert "10,000" in by_file["big.txt"]["message"]
    csv_lines = sorted(
        e["message"].split(":")[0] for e in too_large if "rows.csv" in e["source_file"]
    )
    assert csv_lines == ["row at line 3", "row at line 55"]
    docs = {r["doc_id"]: r["text"] for r in _rows(out, "documents")}
    assert set(docs) == {content_doc_id("small", SMALL), "j1", "j2", "c1", "c2", "c3"}
    assert '"引号"' in docs["c2"] or "“引号”" in docs["c2"]
    assert len(errors) == 4 and summary.n_documents == 6


def test_limit_is_in_bytes_for_jsonl_and_a_document_under_it_is_read(tmp_path: Path) -> None:
    text = "改革开放。" * 1000  # 5,000 characters, 15,000 bytes
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"id": "x", "text": text}, ensure_ascii=False) + "\n", "utf-8")
    from pipeline.io.ingest import iter_documents

    (err,) = list(iter_documents([path], max_doc_bytes=14_000))
    assert err.error_type == "DocumentTooLarge"
    (doc,) = list(iter_documents([path], max_doc_bytes=16_000))
    assert doc.raw_text == text


# ---------------------------------------------------------------------------------------------
# Crash safety of the streamed writer


@pytest.mark.parametrize(
    "point",
    [
        "write.stream:4",  # while the chunks stream into temporary files
        "write.file:2",  # two tables renamed into place, documents and the marker not yet
    ],
)
def test_kill_while_a_huge_document_is_written_recovers(tmp_path: Path, point: str) -> None:
    speeches = _speeches(6)
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "small.txt").write_text(speeches[0][:300], encoding="utf-8")
    (inputs / "huge.txt").write_text("\n".join(speeches[1:]), encoding="utf-8")
    out = tmp_path / "out"
    args = ("--chunk-chars", "2000", "--no-report")
    killed = run_tifa([inputs], out, *args, TIFA_CRASH_AT=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    temps = list(out.glob("*/.part-*.tmp"))
    # The documents table (what says a document exists) never shows the huge one; while it
    # streams, no table does: its rows so far are under temporary dot-names only.
    assert temps
    for table in (
        ("documents",) if point.startswith("write.file") else ("documents", "entities", "sentences")
    ):
        # What a reader sees: the visible part files (pyarrow and DuckDB skip dot-files).
        for part in (out / table).glob("part-*.parquet"):
            ids = pq.read_table(part).column("doc_id").to_pylist()
            assert not [d for d in ids if d.startswith("huge-")]
    again = run_tifa([inputs], out, *args)
    assert again.returncode == 0, again.stderr
    assert not list(out.glob("*/.*.tmp"))
    clean = tmp_path / "clean"
    assert run_tifa([inputs], clean, *args).returncode == 0
    for table in ("documents", "sentences", "entities", "formulations", "relations", "errors"):
        assert _key_set(_rows(out, table)) == _key_set(_rows(clean, table)), table


def test_chunked_document_keeps_its_speaker_and_bylines(tmp_path: Path) -> None:
    """Issue 24: a huge work report's speaker line is data in a chunked run as in one piece."""
    body = "".join(
        f"第{i}项工作取得新进展，全省上下团结奋斗，经济社会发展稳中有进。" for i in range(400)
    )
    text = (
        "政府工作报告\n——2026年1月20日在浙江省第十四届人民代表大会第四次会议上\n浙江省省长 刘捷\n"
        + body
    )
    path = tmp_path / "report.jsonl"
    path.write_text(json.dumps({"id": "r", "text": text}, ensure_ascii=False) + "\n", "utf-8")
    whole, chunked = tmp_path / "whole", tmp_path / "chunked"
    run_pipeline([path], whole)
    run_pipeline([path], chunked, chunk_chars=2_000)
    (w,) = pq.read_table(whole / "documents").to_pylist()
    (c,) = pq.read_table(chunked / "documents").to_pylist()
    assert w["speaker"] == "刘捷" and w["speaker_post"]
    assert (c["speaker"], c["speaker_post"], c["bylines"]) == (
        w["speaker"],
        w["speaker_post"],
        w["bylines"],
    )
