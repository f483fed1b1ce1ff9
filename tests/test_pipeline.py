"""End-to-end: raw files in, Parquet tables out, with real LAC, spaCy, OpenCC and pyarrow."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import opencc
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.io.ingest import FieldMap
from pipeline.io.schema import BATCH_TABLES, SCHEMAS
from pipeline.normalise import fullwidth_to_halfwidth, remove_pinyin_annotations
from pipeline.run.runner import run_pipeline

from .conftest import ROOT, SAMPLES, seed_path, txt_doc_id

T2S = opencc.OpenCC("t2s")
SPAN_TABLES = ("sentences", "entities", "formulations")


def _read(out: Path, table: str) -> pd.DataFrame:
    return pd.read_parquet(out / table)


def _seed_doc_id(prefix: str) -> str:
    return txt_doc_id(seed_path(prefix))


# --------------------------------------------------------------------------------------------
# Seeds


def test_seed_000_text_is_clean_simplified(seeds_out: Path) -> None:
    docs = _read(seeds_out, "documents").set_index("doc_id")
    text = docs.loc[_seed_doc_id("000"), "text"]
    assert "(" not in text or not any(c in text for c in "āáǎàēéěèīíǐìōóǒòūúǔù")
    assert remove_pinyin_annotations(text) == text
    assert T2S.convert(text) == text, "traditional characters left"
    assert "湖北省委党史研究室主任何光耀" in text
    assert docs.loc[_seed_doc_id("000"), "converted_from_traditional"]
    assert docs.loc[_seed_doc_id("000"), "had_pinyin_annotations"]


def test_seed_000_entities(seeds_out: Path) -> None:
    ents = _read(seeds_out, "entities")
    ents = ents[ents.doc_id == _seed_doc_id("000")]
    people = set(ents[ents.label == "PERSON"].text)
    assert {"何光耀", "王洲洋", "吴海涛"} <= people
    assert "湖北省委党史研究室" in set(ents[ents.label == "ORG"].text)


def test_seed_000_formulation_counts(seeds_out: Path) -> None:
    forms = _read(seeds_out, "formulations")
    counts = forms[forms.doc_id == _seed_doc_id("000")].canonical.value_counts()
    assert counts["两个确立"] == 1
    assert counts["两个维护"] == 1
    assert counts["六个必须坚持"] == 2
    assert counts["两个结合"] == 1


def test_seed_000_holds_position(seeds_out: Path) -> None:
    rel = _read(seeds_out, "relations")
    rows = rel[(rel.relation == "holds_position") & (rel["head"] == "何光耀")]
    assert ("主任", "湖北省委党史研究室") in set(zip(rows["role"], rows["tail"], strict=True))


def test_offsets_match_text_in_every_span_table(seeds_out: Path, samples_out: Path) -> None:
    for out in (seeds_out, samples_out):
        docs = _read(out, "documents").set_index("doc_id")
        for table in SPAN_TABLES:
            df = _read(out, table)
            assert len(df) > 0, table
            for row in df.itertuples():
                text = docs.loc[row.doc_id, "text"]
                assert text[row.start : row.end] == row.text, (table, row)


def test_raw_offsets_trace_back_to_the_raw_text(samples_out: Path) -> None:
    """raw_start/raw_end cut the mention out of the file as the user has it (after undoing only
    the pinyin annotations and traditional characters that normalise removed)."""
    docs = _read(samples_out, "documents").set_index("doc_id")
    ents = _read(samples_out, "entities")
    checked = 0
    for doc_id, group in ents.groupby("doc_id"):
        source = Path(docs.loc[doc_id, "source_file"])
        if source.suffix != ".txt":
            continue
        raw = source.read_bytes().decode(docs.loc[doc_id, "encoding"])
        for row in group.itertuples():
            piece = raw[row.raw_start : row.raw_end]
            repaired = T2S.convert(remove_pinyin_annotations(fullwidth_to_halfwidth(piece)))
            if row.text.isascii() or "　" in piece or " " in piece:
                continue  # full-width/spacing repairs are checked in test_normalise
            assert repaired == row.text, (doc_id, row.text, piece)
            checked += 1
    assert checked > 50


# --------------------------------------------------------------------------------------------
# Output contract


def test_every_table_has_its_declared_schema(samples_out: Path) -> None:
    for table, schema in SCHEMAS.items():
        files = sorted((samples_out / table).glob("part-*.parquet"))
        assert files, f"{table} has no files"
        for f in files:
            assert pq.read_schema(f).remove_metadata().equals(schema), (table, f.name)


def test_documents_columns_and_metadata(samples_out: Path) -> None:
    docs = _read(samples_out, "documents").set_index("doc_id")
    for col in ("source_file", "title", "published_at", "year", "source", "url", "text", "n_chars"):
        assert col in docs.columns
    assert docs.loc[txt_doc_id(SAMPLES / "gb18030_work_report.txt"), "encoding"] == "gb18030"
    assert docs.loc[txt_doc_id(SAMPLES / "big5_notice.txt"), "encoding"] == "big5"
    news = txt_doc_id(SAMPLES / "hubei_meeting_news.txt")
    assert docs.loc[news, "published_at"].isoformat() == "2025-06-18"
    assert docs.loc[news, "source"] == "湖北日报"
    assert (docs.n_chars == docs.text.str.len()).all()
    # The one errors row is the deliberately broken sample (a scrape cut off mid-record).
    errors = _read(samples_out, "errors")
    assert [
        (Path(f).name, t) for f, t in zip(errors.source_file, errors.error_type, strict=True)
    ] == [("broken_truncated_scrape.jsonl", "JSONDecodeError")]


def test_samples_cover_every_stage(samples_out: Path) -> None:
    assert len(_read(samples_out, "documents")) >= 7
    labels = set(_read(samples_out, "entities").label)
    assert {"PERSON", "ORG", "DATE", "POSITION", "MEETING", "DOCUMENT"} <= labels
    assert set(_read(samples_out, "relations").relation) >= {"holds_position", "issues"}
    assert len(_read(samples_out, "formulation_counts")) > 0
    # Discovery and people with posts show on the samples (xianning_rural_work_conference.txt).
    candidates = set(_read(samples_out, "formulation_candidates").text)
    assert {"一村一品", "两条底线", "五水共治", "五大振兴"} <= candidates
    people = _read(samples_out, "people")
    assert {("黄志坚", "市长", "咸宁市人民政府"), ("程文涛", "市委书记", "咸宁市委")} <= set(
        zip(people.person, people.role, people.organisation, strict=True)
    )


def test_duckdb_reads_the_tables(samples_out: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    n = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{samples_out.as_posix()}/entities/*.parquet')"
    ).fetchall()[0][0]
    assert n == len(_read(samples_out, "entities"))


# --------------------------------------------------------------------------------------------
# Bad input, idempotence, interruption


def _bad_inputs(folder: Path) -> None:
    (folder / "good.txt").write_text(
        "3月8日，湖北省委书记张明主持召开会议，强调坚决做到“两个维护”。", "utf-8"
    )
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (folder / "bad.jsonl").write_text(
        json.dumps(
            {"id": "j1", "content": "国务院总理王建国主持召开国务院常务会议。"}, ensure_ascii=False
        )
        + "\n{not json\n"
        + json.dumps({"id": "j3", "title": "无正文"}, ensure_ascii=False)
        + "\n",
        "utf-8",
    )
    (folder / "notes.docx").write_bytes(b"PK\x03\x04")


def test_bad_files_become_error_rows_and_good_ones_are_written(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    _bad_inputs(inputs)
    summary = run_pipeline([inputs], tmp_path / "out")
    docs = _read(tmp_path / "out", "documents")
    errors = _read(tmp_path / "out", "errors")
    assert set(docs.doc_id) == {txt_doc_id(inputs / "good.txt"), "j1"}
    by_file = {Path(f).name: t for f, t in zip(errors.source_file, errors.error_type, strict=True)}
    assert by_file["empty.txt"] == "EmptyDocument"
    assert by_file["binary.txt"] == "DecodeError"
    assert by_file["notes.docx"] == "UnsupportedFormat"
    assert set(errors[errors.source_file.str.endswith("bad.jsonl")].error_type) == {
        "JSONDecodeError",
        "MissingTextField",
    }
    assert summary.n_errors == len(errors) == 5
    # A nightly rerun over the same broken files reports them again but adds no rows.
    again = run_pipeline([inputs], tmp_path / "out")
    assert again.n_errors == 5 and again.n_skipped == 2
    assert len(_read(tmp_path / "out", "errors")) == 5


def test_rerun_is_idempotent(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run_pipeline([SAMPLES], out)
    counts = {t: len(_read(out, t)) for t in BATCH_TABLES}
    second = run_pipeline([SAMPLES], out)
    assert {t: len(_read(out, t)) for t in BATCH_TABLES} == counts
    assert second.n_documents == 0 and second.n_skipped == first.n_documents
    runs = _read(out, "runs")
    assert list(runs.sort_values("started_at").n_skipped) == [0, first.n_documents]


def test_force_reprocesses_without_duplicating(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run_pipeline([SAMPLES], out)
    counts = {t: len(_read(out, t)) for t in BATCH_TABLES}
    forced = run_pipeline([SAMPLES], out, force=True)
    assert forced.n_documents == first.n_documents == forced.n_replaced
    assert {t: len(_read(out, t)) for t in BATCH_TABLES} == counts


def test_changed_document_replaces_its_rows(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    doc = inputs / "notice.txt"
    doc.write_text("省委书记张明出席会议并讲话，强调增强“四个意识”。", "utf-8")
    out = tmp_path / "out"
    # The file name is the document's identity only when the user says so (--id-from path);
    # by default a changed .txt is another document (tests/test_archive.py).
    fields = FieldMap(id_from="path")
    run_pipeline([inputs], out, fields=fields)
    doc.write_text("省委书记张明出席会议并讲话，强调坚定“四个自信”。", "utf-8")
    summary = run_pipeline([inputs], out, fields=fields)
    assert summary.n_replaced == 1
    docs = _read(out, "documents")
    assert len(docs) == 1 and "四个自信" in docs.text.iloc[0]
    assert list(_read(out, "formulations").canonical) == ["四个自信"]


def test_interrupted_batch_is_cleaned_up_and_redone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_pipeline([SAMPLES], out)
    n_entities = len(_read(out, "entities"))
    # Simulate a run killed after writing one table of a batch: a part without its marker.
    victim = next((out / "entities").glob("part-*.parquet"))
    shutil.copy(victim, out / "entities" / "part-killedrun-000000.parquet")
    run_pipeline([SAMPLES], out)
    assert len(_read(out, "entities")) == n_entities
    assert not (out / "entities" / "part-killedrun-000000.parquet").exists()


# --------------------------------------------------------------------------------------------
# Scale-out: the same stage code in a process pool and on a real Dask LocalCluster


def _table_rows(out: Path, table: str) -> list[tuple]:
    df = _read(out, table).drop(columns=[c for c in ("run_id",) if c in _read(out, table)])
    return sorted(map(tuple, df.astype(str).values.tolist()))


@pytest.mark.parametrize("scheduler", ["processes", "dask"])
def test_workers_produce_the_same_rows(tmp_path: Path, samples_out: Path, scheduler: str) -> None:
    out = tmp_path / scheduler
    run_pipeline([SAMPLES], out, workers=2, scheduler=scheduler, batch_size=2)
    for table in ("documents", "entities", "formulations", "relations", "sentences"):
        assert _table_rows(out, table) == _table_rows(samples_out, table), table


# --------------------------------------------------------------------------------------------
# Command line


def test_cli_help_and_run(tmp_path: Path) -> None:
    for args in (
        ["--help"],
        ["run", "--help"],
        ["evaluate", "--help"],
        ["evaluate-relations", "--help"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, cwd=ROOT
        )
        assert done.returncode == 0, done.stderr
        assert "Usage" in done.stdout
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.txt").write_text("国务院总理王建国主持召开国务院常务会议。", "utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(inputs), "--out", str(tmp_path / "o"), "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert len(_read(tmp_path / "o", "documents")) == 1


def test_cli_reports_a_missing_input_without_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(tmp_path / "nope"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert "no such file or folder" in done.stderr
    assert "Traceback" not in done.stderr
