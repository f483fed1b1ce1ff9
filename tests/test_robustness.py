"""Bad input of every kind is a row in `errors`, never a crash or a silent loss.

`build_fuzz_corpus` writes one file (or link, or folder) per kind of bad input, most of them mixed
with good records, plus good documents on their own; `tifa run` over it must exit 0 with no
traceback, write every good document intact, and give every bad input exactly one errors row
that says what is wrong and where.
"""

from __future__ import annotations

import codecs
import json
import os
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.core.document import content_doc_id, content_hash
from pipeline.io.ingest import iter_documents, printable
from pipeline.io.write import DatasetWriter

from .kill_support import run_tifa

ROOT_USER = os.geteuid() == 0


@dataclass
class Expect:
    kind: str
    source: str  # source_file of the one errors row, as stored (printable)
    error_type: str
    fragment: str = ""  # must appear in the message (a line number, a field name)


@dataclass
class FuzzCorpus:
    root: Path
    good: dict[str, str] = field(default_factory=dict)  # doc_id -> raw text
    bad: list[Expect] = field(default_factory=list)
    _n: int = 0

    def text(self) -> tuple[str, str]:
        """A fresh good document: (doc_id, text)."""
        self._n += 1
        n = self._n
        doc_id = f"good-{n:03d}"
        text = (
            f"第{n}份通知：湖北省委书记张明主持召开会议，强调推进中国式现代化，"
            f"坚决做到“两个维护”。国务院总理王建国出席第{n}次常务会议并讲话。"
        )
        self.good[doc_id] = text
        return doc_id, text

    def txt(self, folder: Path) -> None:
        """A fresh good document as a .txt file: named by its file name and its text."""
        doc_id, text = self.text()
        (folder / f"{doc_id}.txt").write_text(text, "utf-8")
        self.good[content_doc_id(doc_id, text)] = self.good.pop(doc_id)

    def line(self) -> str:
        doc_id, text = self.text()
        return json.dumps({"id": doc_id, "text": text}, ensure_ascii=False)

    def expect(self, kind: str, path: Path | str, error_type: str, fragment: str = "") -> None:
        self.bad.append(Expect(kind, printable(str(path)), error_type, fragment))

    def jsonl(self, kind: str, bad_line: str, error_type: str, fragment: str = "line 2") -> None:
        """A JSONL file: a good record, the bad line, a good record."""
        path = self.root / "jsonl" / f"{kind}.jsonl"
        path.parent.mkdir(exist_ok=True)
        path.write_text("\n".join([self.line(), bad_line, self.line()]) + "\n", "utf-8")
        self.expect(kind, path, error_type, fragment)

    def record(self, kind: str, record: dict, error_type: str, fragment: str = "") -> None:
        # ASCII escapes, so a lone surrogate is written as the text "\ud800", as scrapers do
        self.jsonl(kind, json.dumps(record), error_type, fragment or "line 2")

    def csv(self, kind: str, body: str, error_type: str | None, fragment: str = "") -> Path:
        path = self.root / "csv" / f"{kind}.csv"
        path.parent.mkdir(exist_ok=True)
        path.write_text(body, "utf-8")
        if error_type:
            self.expect(kind, path, error_type, fragment)
        return path

    def csv_row(self) -> str:
        doc_id, text = self.text()
        return f"{doc_id},{text}\n"

    def file(
        self, kind: str, name: str | bytes, data: bytes, error_type: str, frag: str = ""
    ) -> None:
        folder = self.root / "files"
        folder.mkdir(exist_ok=True)
        if isinstance(name, bytes):
            path = Path(os.fsdecode(os.fsencode(folder) + b"/" + name))
        else:
            path = folder / name
        path.write_bytes(data)
        self.expect(kind, path, error_type, frag)


KINDS: list[Callable[[FuzzCorpus], None]] = []


def kind(fn: Callable[[FuzzCorpus], None]) -> Callable[[FuzzCorpus], None]:
    KINDS.append(fn)
    return fn


# ---- whole files -------------------------------------------------------------------------------

TEXT = "湖北省委书记张明主持召开会议。"


@kind
def txt_kinds(c: FuzzCorpus) -> None:
    c.file("empty_txt", "empty.txt", b"", "EmptyDocument")
    c.file("whitespace_txt", "blank.txt", b"  \n\t \r\n", "EmptyDocument")
    c.file("bom_only_txt", "bom_only.txt", codecs.BOM_UTF8, "EmptyDocument")
    c.file("binary_nul", "binary.txt", bytes(range(256)) * 4, "DecodeError", "binary")
    c.file("random_bytes", "noise.txt", b"\x81\x20\xff\xfe\x00\x81\x00" * 50, "DecodeError")
    c.file("bad_utf8_tail", "tail.txt", TEXT.encode() + b"\xff\xfe\xfd" * 3, "DecodeError")
    utf16 = codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le")
    c.file("truncated_utf16", "utf16_cut.txt", utf16[:-1], "DecodeError")
    c.file("bad_utf32", "utf32.txt", codecs.BOM_UTF32_LE + b"\xff\xff\xff\xff", "DecodeError")
    c.file("only_chrome", "chrome.txt", "【打印本页】\n【关闭窗口】\n".encode(), "Error", "nothing")
    c.file("only_zero_width", "zw.txt", "\u200b\u200c\u200b".encode(), "Error", "nothing")
    c.file("only_controls", "ctl.txt", b"\x01\x02\x03\x04", "Error", "nothing")
    c.file("docx", "notes.docx", b"PK\x03\x04", "UnsupportedFormat", ".docx")
    c.file("pdf", "report.pdf", b"%PDF-1.4", "UnsupportedFormat", ".pdf")
    c.file("no_suffix", "README", TEXT.encode(), "UnsupportedFormat", "README")
    c.file("parquet_input", "table.parquet", b"PAR1\x00PAR1", "UnsupportedFormat", ".parquet")
    c.file("non_utf8_name", b"bad\xff\xfe.txt", TEXT.encode(), "FileNameError", "UTF-8")
    c.file("gbk_name", "政府".encode("gbk") + b".txt", TEXT.encode(), "FileNameError", "convmv")


@kind
def bad_folder_name(c: FuzzCorpus) -> None:
    folder = Path(os.fsdecode(os.fsencode(c.root) + b"/dir\xff"))
    folder.mkdir()
    (folder / "inside.txt").write_text(TEXT, "utf-8")
    c.expect("non_utf8_folder", folder / "inside.txt", "FileNameError")


@kind
def links(c: FuzzCorpus) -> None:
    folder = c.root / "links"
    folder.mkdir()
    (folder / "self.txt").symlink_to("self.txt")
    c.expect("symlink_to_itself", folder / "self.txt", "SymlinkLoop")
    (folder / "ping.txt").symlink_to("pong.txt")
    (folder / "pong.txt").symlink_to("ping.txt")
    c.expect("symlink_pair_loop_a", folder / "ping.txt", "SymlinkLoop")
    c.expect("symlink_pair_loop_b", folder / "pong.txt", "SymlinkLoop")
    (folder / "broken.txt").symlink_to("nowhere/missing.txt")
    c.expect("broken_symlink", folder / "broken.txt", "BrokenLink", "nowhere/missing.txt")
    (folder / "cycle").mkdir()
    (folder / "cycle" / "up").symlink_to("..")
    c.expect("folder_link_loop", folder / "cycle" / "up", "SymlinkLoop", "contains it")
    (folder / "null.txt").symlink_to("/dev/null")
    c.expect("link_to_device", folder / "null.txt", "NotAFile", "character device")
    c.txt(folder)  # a good file beside them


@kind
def special_files(c: FuzzCorpus) -> None:
    folder = c.root / "special"
    folder.mkdir()
    os.mkfifo(folder / "pipe.txt")
    c.expect("fifo", folder / "pipe.txt", "NotAFile", "FIFO")
    sock_path = folder / "s.txt"
    if len(os.fsencode(sock_path)) < 100:
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(sock_path))
        c.expect("socket", sock_path, "NotAFile", "socket")


@kind
def permissions(c: FuzzCorpus) -> None:
    if ROOT_USER:
        return  # root reads everything: these two kinds are checked where tests run as a user
    folder = c.root / "locked"
    folder.mkdir()
    (folder / "x.txt").write_text(TEXT, "utf-8")
    folder.chmod(0)
    c.expect("unreadable_folder", folder, "PermissionError", "cannot be read")
    path = c.root / "secret.txt"
    path.write_text(TEXT, "utf-8")
    path.chmod(0)
    c.expect("unreadable_file", path, "PermissionError", "cannot be read")


# ---- JSON Lines ------------------------------------------------------------------------------


@kind
def json_syntax(c: FuzzCorpus) -> None:
    c.jsonl("broken_syntax", "{not json", "JSONDecodeError")
    c.jsonl("truncated_object", '{"id": "t1", "text": "国务院', "JSONDecodeError")
    c.jsonl("trailing_garbage", '{"text": "国务院常务会议"} xyz', "JSONDecodeError", "Extra data")
    c.jsonl("single_quotes", "{'text': '国务院常务会议'}", "JSONDecodeError")
    c.jsonl("bom_mid_file", '\ufeff{"text": "国务院常务会议"}', "JSONDecodeError", "BOM")
    c.jsonl("array_record", "[1, 2, 3]", "InvalidRecord", "a list")
    c.jsonl("string_record", '"just text"', "InvalidRecord")
    c.jsonl("null_record", "null", "InvalidRecord")
    c.jsonl("number_record", "42", "InvalidRecord")
    c.jsonl("nested_100k", "[" * 100_000, "JSONDecodeError", "nested too deeply")
    deep = '{"text": "国务院常务会议", "x": ' + "[" * 50_000 + "]" * 50_000 + "}"
    c.jsonl("nested_field", deep, "JSONDecodeError", "nested too deeply")
    c.jsonl("nan_date", '{"text": "国务院常务会议", "date": NaN}', "JSONDecodeError", "NaN")
    c.jsonl("inf_date", '{"text": "国务院常务会议", "date": Infinity}', "JSONDecodeError")
    c.jsonl("neg_inf", '{"text": "国务院常务会议", "year": -Infinity}', "JSONDecodeError")
    c.jsonl("float_overflow", '{"text": "国务院常务会议", "date": 1e400}', "JSONDecodeError")
    big = "9" * 5001
    c.jsonl("huge_int", '{"text": "国务院常务会议", "date": ' + big + "}", "JSONDecodeError")
    c.jsonl("huge_int_id", '{"text": "国务院常务会议", "id": ' + big + "}", "JSONDecodeError")


@kind
def json_fields(c: FuzzCorpus) -> None:
    c.record("missing_text", {"id": "m1", "title": "无正文"}, "MissingTextField", "title")
    c.record("empty_text", {"id": "m2", "text": ""}, "MissingTextField")
    c.record("blank_text", {"id": "m3", "text": "  \n "}, "EmptyDocument")
    c.record("null_text", {"id": "m4", "text": None}, "MissingTextField")
    c.record("number_text", {"id": "m5", "text": 12345}, "InvalidField", "int")
    c.record("list_text", {"id": "m6", "text": ["国务院"]}, "InvalidField", "a list")
    c.record("dict_text", {"id": "m7", "text": {"zh": "国务院"}}, "InvalidField", "an object")
    c.record("bool_text", {"id": "m8", "text": True}, "InvalidField", "a boolean")
    c.record("dict_id", {"id": {"a": 1}, "text": TEXT}, "InvalidField", "id")
    c.record("list_id", {"id": [1], "text": TEXT}, "InvalidField", "id")
    c.record("bool_id", {"id": False, "text": TEXT}, "InvalidField", "id")
    c.record("dict_title", {"id": "m9", "title": {"a": 1}, "text": TEXT}, "InvalidField", "title")
    c.record("list_source", {"id": "m10", "source": ["x"], "text": TEXT}, "InvalidField", "source")
    c.record("only_zero_width_json", {"id": "m11", "text": "\u200b\u200b"}, "Error", "nothing")


@kind
def surrogates(c: FuzzCorpus) -> None:
    # json.dumps writes "\ud800" as the 6-character escape, exactly as broken scrapers do
    c.record(
        "surrogate_text", {"id": "s1", "text": "国务院\ud800会议"}, "InvalidUnicode", "\\ud800"
    )
    c.record("surrogate_title", {"id": "s2", "title": "\ud800", "text": TEXT}, "InvalidUnicode")
    c.record("surrogate_id", {"id": "s3\udc00", "text": TEXT}, "InvalidUnicode", "'id'")
    c.record("low_surrogate", {"id": "s4", "text": "\udfff" + TEXT}, "InvalidUnicode")
    c.record(
        "surrogate_url", {"id": "s5", "url": "http://x/\udbff", "text": TEXT}, "InvalidUnicode"
    )


@kind
def json_files(c: FuzzCorpus) -> None:
    folder = c.root / "jsonl"
    folder.mkdir(exist_ok=True)
    (folder / "empty.jsonl").write_bytes(b"")
    c.expect("empty_jsonl", folder / "empty.jsonl", "EmptyDocument")
    (folder / "blank_lines.jsonl").write_text("\n\n   \n", "utf-8")
    c.expect("blank_jsonl", folder / "blank_lines.jsonl", "EmptyDocument")
    # a bad byte on line 2 of a UTF-8 file: that line is reported, the others are read
    early = folder / "bad_byte_early.jsonl"
    early.write_bytes(
        (c.line() + "\n").encode() + b'{"text": "\xff\xfe"}\n' + (c.line() + "\n").encode()
    )
    c.expect("bad_bytes_first_mb", early, "DecodeError", "line 2")
    # a bad byte after the first MB (the encoding was decided on the first MB): line number
    # reported, the good records after it kept
    late = folder / "bad_byte_late.jsonl"
    pad = "填" * 120_000  # 360 kB of UTF-8 in a field no one reads
    lines = [
        json.dumps({"id": f"pad-{i}", "text": "国务院常务会议。", "pad": pad}) for i in range(3)
    ]
    for i in range(3):
        c.good[f"pad-{i}"] = "国务院常务会议。"
    head = ("\n".join(lines) + "\n").encode()
    assert len(head) > 1 << 20
    after = "\n".join(c.line() for _ in range(3)) + "\n"
    late.write_bytes(head + b'{"text": "bad \xc3\x28 byte"}\n' + after.encode())
    c.expect("bad_bytes_after_1mb", late, "DecodeError", "line 4")
    nul = folder / "nul_in_line.jsonl"
    nul.write_text(
        c.line() + "\n" + json.dumps({"pad": "x" * 5000}) + "\n" + '{"text": "a\x00b"}\n',
        "utf-8",
    )
    c.expect("nul_in_json_string", nul, "JSONDecodeError", "line 3")
    c.expect("record_without_text_beside_nul", nul, "MissingTextField", "line 2")
    # duplicate doc_id: the later copy (in a file read later) is an error
    first_id = next(iter(c.good))
    dup = c.root / "zz_duplicate.jsonl"
    dup.write_text(
        json.dumps({"id": first_id, "text": "另一份正文。"}, ensure_ascii=False), "utf-8"
    )
    c.expect("duplicate_doc_id", dup, "DuplicateDocId", first_id)


# ---- CSV -------------------------------------------------------------------------------------


@kind
def csv_kinds(c: FuzzCorpus) -> None:
    # a quote opened on row 4 (line 5) and never closed: it would swallow every row after it
    rows = [c.csv_row() for _ in range(3)] + ['x4,"这一行的引号没有闭合\n']
    rows += [c.csv_row() for _ in range(8)]
    c.csv("unclosed_quote", "id,text\n" + "".join(rows), "CSVQuoteError", "line 5")
    # a quote that closes on a later row's quote: it swallows the rows in between
    rows = [c.csv_row(), 'y2,"开了引号\n', c.csv_row()]
    doc_id, text = c.text()
    rows += [f'{doc_id},"{text}"\n', c.csv_row()]
    c.csv("late_closing_quote", "id,text\n" + "".join(rows), "CSVQuoteError", "line 3")
    body = "id,text\n" + c.csv_row() + "z3,正文,多余,的单元格\n" + c.csv_row()
    c.csv("more_cells", body, "InvalidRecord", "line 3")
    c.csv("empty_cell", "id,text\n" + c.csv_row() + "z4,\n", "MissingTextField", "line 3")
    c.csv("fewer_cells", "id,text\n" + c.csv_row() + "z5\n", "MissingTextField", "line 3")
    c.csv("header_only", "id,text\n", "EmptyDocument")
    c.csv("empty_csv", "", "EmptyDocument")
    c.csv("no_text_column", "id,title\nz6,标题\n", "MissingTextField", "title")
    path = c.root / "csv" / "bad_byte_row.csv"
    path.write_bytes(("id,text\n" + c.csv_row()).encode() + b"z7,\xff\xfe\n" + c.csv_row().encode())
    c.expect("csv_bad_bytes", path, "DecodeError", "line 3")
    # a legitimate multi-line quoted field with commas and quotes is *not* an error
    doc_id, text = c.text()
    multi = f'"{text}\n第二段，有逗号, 和 ""引号""。\n第三段"'
    c.good[doc_id] = f'{text}\n第二段，有逗号, 和 "引号"。\n第三段'
    c.csv("good_multiline", f"id,text\n{doc_id},{multi}\n" + c.csv_row(), None)


@kind
def repeated_fields(c: FuzzCorpus) -> None:
    # A repeated key or column: one errors row, the first value used, the later ones kept in
    # metadata; the record itself is a good document.
    doc_id, text = c.text()
    line = json.dumps({"id": doc_id, "text": text}, ensure_ascii=False)
    c.jsonl("json_repeated_text_key", line[:-1] + ', "text": "后一个正文。"}', "DuplicateField")
    rows = []
    for _ in range(2):
        doc_id, text = c.text()
        rows.append(f"{doc_id},{text},另一列的正文。,另一个标题\n")
    c.csv("csv_repeated_columns", "id,text,text,text\n" + "".join(rows), "DuplicateField", "line 1")


@kind
def issue25_kinds(c: FuzzCorpus) -> None:
    """Bad input found by the adversarial review of issue 25."""
    folder = c.root / "issue25"
    folder.mkdir()
    outside = c.root.parent / "outside_the_input"
    outside.mkdir(exist_ok=True)
    (outside / "secret.txt").write_text("AWS_SECRET_ACCESS_KEY=abc", "utf-8")
    (folder / "env.txt").symlink_to(outside / "secret.txt")
    c.expect("symlink_file_outside_input", folder / "env.txt", "SymlinkOutsideInput")
    (folder / "elsewhere").symlink_to(outside)
    c.expect("symlink_folder_outside_input", folder / "elsewhere", "SymlinkOutsideInput")
    # A CSV without its header line: the first record is read as column names, and said so;
    # the second has no text column, and says so too.
    c.csv(
        "csv_without_header",
        "n1,湖北省委书记张明主持召开会议，研究部署防汛工作。\nn2,市长赵明主持会议。\n",
        "CSVHeaderError",
        "line 1",
    )
    c.expect("csv_without_header_second_row", c.root / "csv" / "csv_without_header.csv",
             "MissingTextField", "line 2")  # fmt: skip
    # Two CSV files joined with cat: a BOM and the header again mid-file.
    rows = [c.csv_row(), c.csv_row()]
    joined = ("id,text\n" + rows[0]).encode("utf-8-sig") + ("id,text\n" + rows[1]).encode(
        "utf-8-sig"
    )
    path = c.root / "csv" / "joined.csv"
    path.write_bytes(joined)
    c.expect("csv_bom_inside_file", path, "BOMInsideFile", "line 3")
    c.expect("csv_repeated_header", path, "RepeatedHeader", "line 3")
    # Short GB18030 text whose bytes are also valid UTF-8: read as Chinese, and said so.
    (folder / "tongzhi.txt").write_bytes("通知".encode("gb18030"))
    c.good[content_doc_id("tongzhi", "通知")] = "通知"
    c.expect("gb18030_that_is_valid_utf8", folder / "tongzhi.txt", "AmbiguousEncoding")
    # Four GB18030 characters Big5 also reads as common ones: decoded, and said to be a close call.
    (folder / "weihu.txt").write_bytes("两个维护".encode("gb18030"))
    c.good[content_doc_id("weihu", "两个维护")] = "两个维护"
    c.expect("gb18030_or_big5_close_call", folder / "weihu.txt", "AmbiguousEncoding", "gb18030")
    # A link to a link that leads outside.
    (folder / "hop.txt").symlink_to(folder / "env.txt")
    c.expect("symlink_chain_outside_input", folder / "hop.txt", "SymlinkOutsideInput")
    # More repeated names: the id and the title, in JSON and in a CSV header.
    doc_id, text = c.text()
    line = json.dumps({"id": doc_id, "text": text}, ensure_ascii=False)
    c.jsonl("json_repeated_id_key", line[:-1] + ', "id": "另一个编号"}', "DuplicateField", "'id'")
    doc_id, text = c.text()
    line = json.dumps({"id": doc_id, "tags": "会议", "text": text}, ensure_ascii=False)
    c.jsonl("json_repeated_other_key", line[:-1] + ', "tags": "通知"}', "DuplicateField", "tags")
    doc_id, text = c.text()
    c.csv("csv_repeated_id_column", f"id,text,id\n{doc_id},{text},x9\n", "DuplicateField", "'id'")


def build_fuzz_corpus(root: Path) -> FuzzCorpus:
    corpus = FuzzCorpus(root)
    root.mkdir(parents=True, exist_ok=True)
    for build in KINDS:
        build(corpus)
    for _ in range(4):  # good documents on their own
        corpus.txt(root)
    return corpus


# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> tuple[FuzzCorpus, Path, object]:
    root = tmp_path_factory.mktemp("fuzz")
    corpus = build_fuzz_corpus(root / "in")
    out = root / "in" / "processed"  # --out inside the input folder: must not be read
    corpus.expect("output_inside_input", out, "OutputInsideInput", "--out")
    done = run_tifa([root / "in"], out, "--batch-size", "8")
    yield corpus, out, done
    for path in (root / "in").rglob("*"):  # let pytest clean up
        if not path.is_symlink():
            path.chmod(0o755)


def test_fuzz_corpus_has_sixty_kinds(fuzz: tuple) -> None:
    corpus, _, _ = fuzz
    kinds = {e.kind for e in corpus.bad}
    assert len(kinds) >= 60, len(kinds)


def test_fuzz_run_exits_zero_without_traceback(fuzz: tuple) -> None:
    _, _, done = fuzz
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_every_good_document_is_written_intact(fuzz: tuple) -> None:
    corpus, out, _ = fuzz
    docs = pd.read_parquet(out / "documents")
    assert sorted(docs.doc_id) == sorted(corpus.good)
    for row in docs.itertuples():
        assert row.content_hash == content_hash(corpus.good[row.doc_id]), row.doc_id
        assert row.n_raw_chars == len(corpus.good[row.doc_id])


def test_every_bad_input_has_exactly_one_clear_error_row(fuzz: tuple) -> None:
    corpus, out, _ = fuzz
    errors = pd.read_parquet(out / "errors")
    expected = Counter(e.source for e in corpus.bad)
    got = Counter(errors.source_file)
    assert got == expected, {
        "missing": expected - got,
        "unexpected": errors[~errors.source_file.isin(expected)].to_dict("records"),
    }
    by_source = {s: g for s, g in errors.groupby("source_file")}
    for exp in corpus.bad:
        rows = by_source[exp.source]
        matching = rows[rows.error_type == exp.error_type]
        assert len(matching) >= 1, (exp, rows.to_dict("records"))
        if exp.fragment:
            assert matching.message.str.contains(exp.fragment, regex=False).any(), (
                exp,
                list(matching.message),
            )
    assert not errors.message.str.contains("Traceback").any()
    assert (errors.message.str.len() > 10).all()


def test_rerun_over_the_fuzz_corpus_adds_nothing(fuzz: tuple, tmp_path: Path) -> None:
    corpus, out, _ = fuzz
    n_errors = len(pd.read_parquet(out / "errors"))
    done = run_tifa([out.parent], out)
    assert done.returncode == 0, done.stderr
    assert len(pd.read_parquet(out / "errors")) == n_errors
    assert len(pd.read_parquet(out / "documents")) == len(corpus.good)


# ---- unit-level checks of the same guarantees ---------------------------------------------------


def test_csv_quote_recovery_keeps_the_rows_it_swallowed(tmp_path: Path) -> None:
    rows = "".join(f"{i},第{i}条正文。\n" for i in range(1, 4))
    rows += '4,"没有闭合\n' + "".join(f"{i},第{i}条正文。\n" for i in range(5, 101))
    path = tmp_path / "a.csv"
    path.write_text("id,text\n" + rows, "utf-8")
    items = list(iter_documents([path]))
    docs = [i for i in items if hasattr(i, "raw_text")]
    errors = [i for i in items if not hasattr(i, "raw_text")]
    assert [d.doc_id for d in docs] == [str(i) for i in range(1, 101) if i != 4]
    (err,) = errors
    assert err.error_type == "CSVQuoteError" and "line 5" in err.message


def test_a_document_that_cannot_be_stored_is_isolated(tmp_path: Path) -> None:
    """A failure while writing a batch loses only the document that caused it."""
    writer = DatasetWriter(tmp_path, "run1")
    good = {"doc_id": "ok", "sent_id": 0, "start": 0, "end": 2, "raw_start": 0, "raw_end": 2}
    bad = {**good, "doc_id": "broken", "text": "坏\ud800"}
    rows = {"sentences": [{**good, "text": "好的"}, bad], "documents": []}
    isolated = writer.write_batch(0, rows)
    assert [e["doc_id"] for e in isolated] == ["broken"]
    assert "sentences rows cannot be stored" in isolated[0]["message"]
    sentences = pq.read_table(tmp_path / "sentences").to_pylist()
    assert [r["doc_id"] for r in sentences] == ["ok"]
    errors = pq.read_table(tmp_path / "errors").to_pylist()
    assert [(e["doc_id"], e["stage"]) for e in errors] == [("broken", "write")]
