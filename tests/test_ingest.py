"""Ingest: encodings, formats, field mapping and ids, on real files written here."""

from __future__ import annotations

import codecs
import csv
import json
from datetime import date
from pathlib import Path

import pytest

from pipeline.core.dates import parse_date
from pipeline.core.document import content_doc_id
from pipeline.io.ingest import FieldMap, IngestError, detect_encoding, iter_documents

TEXT = "湖北省委书记张明主持召开会议，强调坚决做到“两个维护”。２０２５年３月８日。"
TRADITIONAL = "湖北省委書記張明主持召開會議，強調堅決做到「兩個維護」。"


@pytest.mark.parametrize(
    "encoding, text, expected",
    [
        ("utf-8", TEXT, "utf-8"),
        ("utf-8-sig", TEXT, "utf-8-sig"),
        ("gb18030", TEXT, "gb18030"),
        ("big5", TRADITIONAL, "big5"),
        ("utf-16", TEXT, "utf-16"),  # with BOM
        ("utf-16-le", TEXT, "utf_16_le"),  # no BOM
        ("utf-16-be", TEXT, "utf_16_be"),  # no BOM
    ],
)
def test_encodings_round_trip(tmp_path: Path, encoding: str, text: str, expected: str) -> None:
    path = tmp_path / "doc.txt"
    path.write_bytes(text.encode(encoding))
    (doc,) = list(iter_documents([path]))
    assert doc.raw_text.lstrip("\ufeff") == text
    assert codecs.lookup(doc.encoding).name == codecs.lookup(expected).name


def test_undecodable_bytes_are_an_error_not_a_crash() -> None:
    with pytest.raises(ValueError):
        detect_encoding(b"\x81\x20\xff\xfe\x00\x81\x00" * 50)


def test_jsonl_fields_are_auto_detected_and_ids_are_stable(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    rows = [
        {"doc_id": "x1", "headline": "无", "content": TEXT, "publish_date": "2024年3月12日"},
        {"Text": "国务院常务会议召开。", "year": 2020, "source_url": "http://example.org/1"},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), "utf-8")
    first, second = list(iter_documents([path]))
    assert first.doc_id == "x1" and first.published_at == date(2024, 3, 12) and first.year == 2024
    # file stem + a hash of the text: stable whatever the record's place in tomorrow's file
    assert second.doc_id == content_doc_id("a", "国务院常务会议召开。")
    assert second.year == 2020 and second.published_at is None
    assert second.url == "http://example.org/1"
    again = list(iter_documents([path]))[1]
    assert again.doc_id == second.doc_id


def test_csv_with_huge_multiline_fields_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    body = "第一段。\n" + "很长的正文。" * 50_000
    with open(path, "w", encoding="gb18030", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["编号", "标题", "正文", "日期"])
        writer.writerow(["c1", "标题一", body, "2023/1/5"])
    fields = FieldMap(id="编号", title="标题", text="正文", date="日期")
    (doc,) = list(iter_documents([path], fields))
    assert doc.doc_id == "c1" and doc.title == "标题一" and doc.raw_text == body
    assert doc.published_at == date(2023, 1, 5) and doc.encoding == "gb18030"


def test_folders_are_recursive_and_dotfiles_ignored(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text(TEXT, "utf-8")
    (tmp_path / "a.txt").write_text(TEXT, "utf-8")
    (tmp_path / ".hidden.txt").write_text(TEXT, "utf-8")
    items = list(iter_documents([tmp_path]))
    assert sorted(d.source_file.rsplit("/", 1)[1] for d in items) == ["a.txt", "b.txt"]
    assert sorted(d.doc_id for d in items) == [content_doc_id(n, TEXT) for n in "ab"]


def test_missing_text_field_names_what_was_there(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"id": "1", "words": "x"}), "utf-8")
    (err,) = list(iter_documents([path]))
    assert isinstance(err, IngestError) and err.error_type == "MissingTextField"
    assert "words" in err.message and "content" in err.message


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2024-03-12", (date(2024, 3, 12), 2024)),
        ("2024年3月12日", (date(2024, 3, 12), 2024)),
        ("２０２４年３月１２日", (date(2024, 3, 12), 2024)),
        ("2024/3/12 08:00", (date(2024, 3, 12), 2024)),
        ("2020", (None, 2020)),
        (2021, (None, 2021)),
        ("2024-02-30", (None, 2024)),
        ("unknown", (None, None)),
        (None, (None, None)),
    ],
)
def test_parse_date(value: object, expected: tuple) -> None:
    parsed = parse_date(value)
    assert (parsed.published_at, parsed.year) == expected


@pytest.mark.parametrize(
    "value, problem",
    [
        ("2024-02-30", "no such date 2024-02-30"),
        ("2023年13月1日", "no month 13"),
        ("2023-02-28", None),
        ("二〇二三年二月二十九日", "no such date 2023-02-29"),
    ],
)
def test_impossible_dates_are_flags_not_values(value: str, problem: str | None) -> None:
    parsed = parse_date(value)
    if problem is None:
        assert parsed.problem is None and parsed.published_at is not None
    else:
        assert problem in parsed.problem and parsed.published_at is None


def test_csv_without_ids_or_titles_gets_readable_ids_and_keeps_every_field(tmp_path: Path) -> None:
    path = tmp_path / "notices.csv"
    path.write_text(
        "date,text,congress,type\n"
        "2024-02-30,国务院常务会议召开。,,notice\n"
        ",党的第九次全国代表大会召开。,9,cpc_congress_report\n",
        "utf-8",
    )
    first, second = list(iter_documents([path]))
    assert (first.doc_id, second.doc_id) == (
        content_doc_id("notices", "国务院常务会议召开。"),
        content_doc_id("notices", "党的第九次全国代表大会召开。"),
    )
    by_place = list(iter_documents([path], FieldMap(id_from="path")))
    assert [d.doc_id for d in by_place] == ["notices-1", "notices-2"]
    assert first.published_at is None and first.year == 2024
    assert "2024-02-30" in first.date_problem
    assert first.metadata == {"type": "notice"}
    assert second.year == 1969  # the 9th congress met in 1969
    assert second.metadata == {"congress": "9", "type": "cpc_congress_report"}


def test_congress_number_in_title_gives_the_year(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"title": "論聯合政府 (七大)", "content": "正文。"}), "utf-8")
    (doc,) = list(iter_documents([path]))
    assert doc.year == 1945 and doc.title_raw == "論聯合政府 (七大)"
