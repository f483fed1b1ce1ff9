"""An archive nothing can quietly damage (issue 25): identity that survives the next night, no
input that stops a run, no path that breaks the outputs.

Real runs (`run_pipeline` in this process, the real models) over small inputs written here; the
tables are read back from the Parquet files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline.core.document import content_doc_id
from pipeline.io.ingest import FieldMap, IngestError, iter_documents
from pipeline.run.runner import run_pipeline

ARTICLES = {
    "A": "湖北省委书记张明主持召开省委常委会议，研究部署防汛工作。",
    "B": "国务院总理王建国出席全国统计工作会议并讲话，强调推进中国式现代化。",
    "C": "省政协召开新年茶话会，省政协主席李华致辞，坚决做到“两个维护”。",
    "D": "市人民政府召开常务会议，市长赵明主持会议，研究乡村振兴工作。",
}


def _jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )


def _docs(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "documents")


def _errors(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "errors")


# ---- 1. identity that survives the next night -----------------------------------------------


def test_two_nights_of_idless_jsonl_keep_every_distinct_article(tmp_path: Path) -> None:
    """news.jsonl is rewritten every night: [A, B, C], then [B, C, D]. Named by their line,
    night 2's B would have overwritten A; named by their text, all four stay."""
    night1, night2, out = tmp_path / "n1", tmp_path / "n2", tmp_path / "out"
    _jsonl(night1 / "news.jsonl", [{"text": ARTICLES[k]} for k in "ABC"])
    _jsonl(night2 / "news.jsonl", [{"text": ARTICLES[k]} for k in "BCD"])
    run_pipeline([night1], out)
    summary = run_pipeline([night2], out)
    docs = _docs(out)
    assert sorted(docs.doc_id) == sorted(content_doc_id("news", ARTICLES[k]) for k in "ABCD")
    assert (summary.n_documents, summary.n_skipped, summary.n_replaced) == (1, 2, 0)
    assert len(_errors(out)) == 0


def test_two_nights_of_a_reused_txt_name_keep_both_texts(tmp_path: Path) -> None:
    night1, night2, out = tmp_path / "n1", tmp_path / "n2", tmp_path / "out"
    for folder, key in ((night1, "A"), (night2, "B")):
        folder.mkdir()
        (folder / "index.txt").write_text(ARTICLES[key], encoding="utf-8")
    run_pipeline([night1], out)
    summary = run_pipeline([night2], out)
    docs = _docs(out).set_index("doc_id")
    assert sorted(docs.index) == sorted(content_doc_id("index", ARTICLES[k]) for k in "AB")
    assert summary.n_replaced == 0
    # The same text under the same name the night after: skipped, not a third document.
    summary = run_pipeline([night2], out)
    assert (summary.n_documents, summary.n_skipped) == (0, 1)


def test_id_from_path_keeps_the_place_as_the_identity(tmp_path: Path) -> None:
    """--id-from path: the user says the place is the identity, so night 2's line 1 replaces
    night 1's line 1 (and says so: it is counted as replaced)."""
    night1, night2, out = tmp_path / "n1", tmp_path / "n2", tmp_path / "out"
    _jsonl(night1 / "news.jsonl", [{"text": ARTICLES[k]} for k in "AB"])
    _jsonl(night2 / "news.jsonl", [{"text": ARTICLES[k]} for k in "CB"])
    fields = FieldMap(id_from="path")
    run_pipeline([night1], out, fields=fields)
    summary = run_pipeline([night2], out, fields=fields)
    docs = _docs(out).set_index("doc_id")
    assert sorted(docs.index) == ["news-1", "news-2"]
    assert (summary.n_replaced, summary.n_skipped) == (1, 1)


def test_id_from_field_refuses_a_record_without_an_id(tmp_path: Path) -> None:
    path = tmp_path / "in" / "news.jsonl"
    _jsonl(path, [{"id": "a1", "text": ARTICLES["A"]}, {"text": ARTICLES["B"]}])
    items = list(iter_documents([path], FieldMap(id_from="field")))
    assert [getattr(i, "doc_id", None) for i in items if not isinstance(i, IngestError)] == ["a1"]
    (err,) = [i for i in items if isinstance(i, IngestError)]
    assert err.error_type == "MissingIdField" and "line 2" in err.message


def test_identical_idless_records_are_one_document_and_one_error_row(tmp_path: Path) -> None:
    path = tmp_path / "in" / "news.jsonl"
    _jsonl(path, [{"text": ARTICLES["A"]}, {"text": ARTICLES["A"]}])
    out = tmp_path / "out"
    run_pipeline([path.parent], out)
    assert len(_docs(out)) == 1
    (err,) = _errors(out).itertuples()
    assert err.error_type == "DuplicateDocId"


# ---- 4. a malformed url never stops a run ----------------------------------------------------


def test_a_malformed_url_is_kept_and_the_run_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "in" / "news.jsonl"
    _jsonl(
        path,
        [
            {"id": "bad", "url": "http://[bad", "text": ARTICLES["A"]},
            {"id": "good", "url": "https://www.example.cn/a.html", "text": ARTICLES["B"]},
        ],
    )
    out = tmp_path / "out"
    summary = run_pipeline([path.parent], out)
    assert summary.n_documents == 2
    docs = _docs(out).set_index("doc_id")
    assert docs.loc["bad", "url"] == "http://[bad"  # kept as the input gave it
    # The same input again (the nightly case that failed every night): skipped, no error.
    summary = run_pipeline([path.parent], out)
    assert (summary.n_skipped, summary.n_errors) == (2, 0)


# ---- 5. metadata changes are changes --------------------------------------------------------


@pytest.mark.parametrize(
    "field,before,after",
    [
        ("date", "2024-03-12", "2024-03-21"),
        ("title", "关于防汛工作的通知", "关于防汛抗旱工作的通知"),
        ("source", "湖北日报", "长江日报"),
        ("url", "https://a.example.cn/1.html", "https://a.example.cn/2.html"),
    ],
)
def test_a_corrected_metadata_field_replaces_the_document(
    tmp_path: Path, field: str, before: str, after: str
) -> None:
    path, out = tmp_path / "in" / "news.jsonl", tmp_path / "out"
    _jsonl(path, [{"id": "n1", field: before, "text": ARTICLES["A"]}])
    run_pipeline([path.parent], out)
    _jsonl(path, [{"id": "n1", field: after, "text": ARTICLES["A"]}])
    summary = run_pipeline([path.parent], out)
    assert (summary.n_replaced, summary.n_skipped) == (1, 0)
    row = _docs(out).set_index("doc_id").loc["n1"]
    column = {"date": "published_at", "title": "title_raw"}.get(field, field)
    assert str(row[column]).startswith(after)
    assert len(_docs(out)) == 1


# ---- 2. a replacement killed, then a night without that document ----------------------------


@pytest.mark.parametrize(
    "point",
    [
        "replace.staged:2",  # its new rows partly staged, no journal yet: the old version stays
        "replace.journal:1",  # journalled, no home rewritten yet
        "replace.table:1",  # sentences rewritten, the rest not
        "replace.table:6",  # every table but documents rewritten
    ],
)
def test_a_killed_replacement_is_finished_without_its_document_in_the_input(
    tmp_path: Path, point: str
) -> None:
    """Night 2 replaces `x` and is killed half-way; night 3's input no longer has `x`. The
    replacement is finished (or, killed before its journal, never started) from what night 2
    wrote: every table equals that of the same three nights run without a kill."""
    from .kill_support import problems, run_tifa, snapshot

    nights = [tmp_path / f"n{i}" for i in (1, 2, 3)]
    old = ARTICLES["A"] + "会议强调，要压实责任。"
    new = ARTICLES["A"] + "会议要求，各级党委要加强领导，压实责任，确保安全度汛。"
    _jsonl(nights[0] / "x.jsonl", [{"id": "x", "text": old}, {"id": "y", "text": ARTICLES["B"]}])
    _jsonl(nights[1] / "x.jsonl", [{"id": "x", "text": new}, {"id": "y", "text": ARTICLES["B"]}])
    _jsonl(nights[2] / "z.jsonl", [{"id": "z", "text": ARTICLES["C"]}])

    clean = tmp_path / "clean"
    for night in nights:
        run_pipeline([night], clean)
    out = tmp_path / "out"
    run_pipeline([nights[0]], out)
    killed = run_tifa([nights[1]], out, TIFA_CRASH_AT=point)
    assert killed.returncode == -9, killed.stderr
    summary = run_pipeline([nights[2]], out)
    assert summary.n_documents == 1
    reference = snapshot(clean)
    if point.startswith("replace.staged"):
        # Killed before the journal: x keeps night 1's version whole; the rerun of night 2
        # then replaces it as a clean night 2 does.
        docs = _docs(out).set_index("doc_id")
        assert docs.loc["x", "n_raw_chars"] == len(old)
        assert not list((out / "_journal").glob("*"))
        run_pipeline([nights[1]], out)
    assert problems(out, reference) == []
    docs = _docs(out).set_index("doc_id")
    sentences = pd.read_parquet(out / "sentences")
    text = docs.loc["x", "text"]
    for row in sentences[sentences.doc_id == "x"].itertuples():
        assert text[row.start : row.end] == row.text


# ---- 3. paths are data, never patterns ------------------------------------------------------


@pytest.mark.parametrize("name", ["arch[x]", "star*dir", "out[1]", "sq'uote [/]"])
def test_an_output_path_with_pattern_characters_reads_only_itself(
    tmp_path: Path, name: str
) -> None:
    """`--out 'arch[x]'` beside an archive `archx` (which the pattern arch[x] matches): the
    views, the report, kwic and the derived tables read arch[x]'s own files only."""
    import duckdb

    from pipeline.analyst.kwic import kwic
    from pipeline.analyst.report import write_report

    from .kill_support import run_tifa

    own, sibling = tmp_path / "own", tmp_path / "sibling"
    _jsonl(own / "a.jsonl", [{"id": "own", "text": ARTICLES["A"]}])
    _jsonl(sibling / "b.jsonl", [{"id": "sibling", "text": ARTICLES["B"]}])
    # Every name the pattern could match, so that a glob would find them.
    for other in ("archx", "starXdir", "star-dir", "qXmark", "out1", "sq'uote /"):
        run_pipeline([sibling], tmp_path / other)
    out = tmp_path / name
    done = run_tifa([own], out)  # the CLI: its summary prints the path
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert str(out) in done.stderr.replace("\n", "")  # printed as it is, markup and all
    con = duckdb.connect(str(out / "tifa.duckdb"), read_only=True)
    assert con.execute("SELECT doc_id FROM documents").fetchall() == [("own",)]
    assert con.execute("SELECT count(*) FROM sentences").fetchone()[0] >= 1
    assert {r[0] for r in con.execute("SELECT doc_id FROM sentences").fetchall()} == {"own"}
    con.close()
    counts = pd.read_parquet(out / "formulation_counts")
    assert set(counts.n_docs) <= {1}
    assert kwic(out, "张明").n_total == 1
    assert "sibling" not in write_report(out).read_text("utf-8")
    again = run_tifa([own], out)  # the next night works too
    assert again.returncode == 0, again.stderr


def test_an_output_path_duckdb_cannot_name_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    from .kill_support import run_tifa

    _jsonl(tmp_path / "in" / "a.jsonl", [{"id": "own", "text": ARTICLES["A"]}])
    for name, said in (("back\\slash", "backslash"), ("q?mark", "'?'")):
        out = tmp_path / name
        done = run_tifa([tmp_path / "in"], out)
        assert done.returncode == 2
        assert "Traceback" not in done.stdout + done.stderr
        assert said in done.stderr and not out.exists()


# ---- 6. repeated field names -----------------------------------------------------------------


def test_a_repeated_field_keeps_its_first_value_and_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jsonl").write_text(
        '{"id": "j1", "text": "第一个正文。", "title": "甲", "text": "第二个正文。"}\n', "utf-8"
    )
    (folder / "b.csv").write_text(
        "id,title,text,text,title\nc1,标题一,正文一。,正文二。,标题二\n", "utf-8"
    )
    out = tmp_path / "out"
    run_pipeline([folder], out)
    docs = _docs(out).set_index("doc_id")
    assert docs.loc["j1", "n_raw_chars"] == len("第一个正文。")
    assert json.loads(docs.loc["j1", "metadata"]) == {"text#2": "第二个正文。"}
    assert (docs.loc["c1", "title_raw"], docs.loc["c1", "n_raw_chars"]) == ("标题一", 4)
    assert json.loads(docs.loc["c1", "metadata"]) == {"text#2": "正文二。", "title#2": "标题二"}
    errors = _errors(out).sort_values("source_file")
    assert list(errors.error_type) == ["DuplicateField", "DuplicateField"]
    jsonl, csv = errors.itertuples()
    assert jsonl.doc_id == "j1" and "line 1" in jsonl.message and "'text' 2 times" in jsonl.message
    assert "header at line 1" in csv.message and "'title' 2 times" in csv.message
    # The next night over the same files: nothing new, no second errors row.
    summary = run_pipeline([folder], out)
    assert summary.n_skipped == 2 and len(_errors(out)) == 2


# ---- 7. short GB18030 / Big5 files ----------------------------------------------------------

SHORT_SIMPLIFIED = ["会议强调", "防汛抗旱", "国务院常务会议召开", "张明主持会议。", "中国式现代化"]
SHORT_TRADITIONAL = ["會議強調", "防汛抗旱", "國務院常務會議召開", "張明主持會議。", "中國式現代化"]


@pytest.mark.parametrize(
    "text,encoding",
    [(t, "gb18030") for t in SHORT_SIMPLIFIED] + [(t, "big5") for t in SHORT_TRADITIONAL],
)
def test_a_short_legacy_file_is_decoded_as_chinese(
    tmp_path: Path, text: str, encoding: str
) -> None:
    path = tmp_path / "notice.txt"
    path.write_bytes(text.encode(encoding))
    items = list(iter_documents([path]))
    (doc,) = [i for i in items if not isinstance(i, IngestError)]
    assert (doc.raw_text, doc.encoding) == (text, encoding)


def test_gb18030_bytes_that_are_valid_utf8_are_read_as_chinese_and_reported(
    tmp_path: Path,
) -> None:
    """通知 in GB18030 (CD A8 D6 AA) is also valid UTF-8: a combining mark and a Hebrew accent."""
    path = tmp_path / "notice.txt"
    path.write_bytes("通知".encode("gb18030"))
    err, doc = list(iter_documents([path]))
    assert (doc.raw_text, doc.encoding) == ("通知", "gb18030")
    assert err.error_type == "AmbiguousEncoding" and "UTF-8" in err.message
    # A real UTF-8 text with accents or a Greek word stays UTF-8.
    for word in ("Café au lait", "Ωμέγα", "通知：国务院"):
        path.write_bytes(word.encode("utf-8"))
        (doc,) = list(iter_documents([path]))
        assert (doc.raw_text, doc.encoding) == (word, "utf-8")


# ---- 12. a date of the wrong type --------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [[2024], {"y": 2024}, True, -5, 1e30, 2024.5, "0000-00-00", "下周"]
)
def test_a_date_tifa_cannot_read_is_flagged_and_kept(tmp_path: Path, value: object) -> None:
    path = tmp_path / "in" / "a.jsonl"
    _jsonl(path, [{"id": "d1", "date": value, "text": ARTICLES["A"]}])
    (doc,) = list(iter_documents([path]))
    assert doc.published_at is None and doc.year is None
    assert doc.date_problem.startswith("field 'date': ") and "not a date" in doc.date_problem
    assert doc.metadata == {"date": value}  # nothing lost


# ---- 13. a CSV without a header; files joined together ---------------------------------------


def test_a_csv_whose_first_row_is_data_says_so(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f"n1,{ARTICLES['A']}\nn2,{ARTICLES['B']}\n", "utf-8")  # no header line
    items = list(iter_documents([path]))
    kinds = [i.error_type for i in items if isinstance(i, IngestError)]
    assert kinds[0] == "CSVHeaderError" and "line 1" in items[0].message
    assert not [i for i in items if not isinstance(i, IngestError)]  # nothing read as a document
    assert len(kinds) == 2  # and the second row says why it is no document (no text column)


def test_csv_files_joined_together_give_no_header_document_and_no_bom_in_an_id(
    tmp_path: Path,
) -> None:
    one = f"id,text\na1,{ARTICLES['A']}\n".encode("utf-8-sig")
    two = f"id,text\nb1,{ARTICLES['B']}\n".encode("utf-8-sig")
    path = tmp_path / "joined.csv"
    path.write_bytes(one + two)  # `cat one.csv two.csv`: a BOM and a header mid-file
    items = list(iter_documents([path]))
    docs = [i for i in items if not isinstance(i, IngestError)]
    assert [d.doc_id for d in docs] == ["a1", "b1"]
    errors = sorted((i.error_type, i.message.split(":")[0]) for i in items if i not in docs)
    assert errors == [("BOMInsideFile", "row at line 3"), ("RepeatedHeader", "row at line 3")]


# ---- 9. bounded cost per document --------------------------------------------------------------


def test_long_runs_of_redaction_characters_take_linear_time() -> None:
    """A run of *, X or _ that no Han character follows: each pattern is tried from the run's
    start only. Before, 20,000 characters took 3.5 s (quadratic: a megabyte, hours)."""
    import time

    from pipeline.normalise import has_redactions

    t0 = time.perf_counter()
    for ch in "*X_＊Ｘ":
        assert not has_redactions(ch * 1_000_000)
    assert time.perf_counter() - t0 < 10
    for gap in ("抓住___一百年", "XX同志", "同志***", "ＸＸ县"):
        assert has_redactions(gap), gap


# ---- 8. a 1 MB title ----------------------------------------------------------------------------


def test_a_one_megabyte_title_leaves_the_report_small(tmp_path: Path) -> None:
    from pipeline.analyst.views import TITLE_CHARS

    title = "关于推进中国式现代化的通知" * 80_000  # 1.04 M characters, 3 MB of UTF-8
    text = "。".join(ARTICLES.values()) + "坚持中国式现代化，坚决做到“两个维护”。" * 30
    path = tmp_path / "in" / "a.jsonl"
    _jsonl(path, [{"id": "t1", "title": title, "text": text}])
    out = tmp_path / "out"
    summary = run_pipeline([path.parent], out, report=True)
    assert summary.report_path.stat().st_size < 5_000_000
    assert len(_docs(out).title_raw.iloc[0]) == len(title)  # the table keeps it whole
    import duckdb

    con = duckdb.connect(str(out / "tifa.duckdb"), read_only=True)
    titles = {r[0] for r in con.execute("SELECT title FROM concordance").fetchall()}
    assert titles and all(len(t) == TITLE_CHARS and t.endswith("…") for t in titles)


# ---- 10. links out of the input ----------------------------------------------------------------


def test_a_link_out_of_the_input_is_refused_unless_asked(tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "env.txt").write_text("AWS_SECRET_ACCESS_KEY=abc123", "utf-8")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.txt").write_text(ARTICLES["A"], "utf-8")
    (folder / "env.txt").symlink_to(outside / "env.txt")
    (folder / "secrets").symlink_to(outside)
    (folder / "inner.txt").symlink_to(folder / "good.txt")  # inside the input: read as usual
    items = list(iter_documents([folder]))
    errors = sorted(
        (Path(i.source_file).name, i.error_type) for i in items if isinstance(i, IngestError)
    )
    assert errors == [("env.txt", "SymlinkOutsideInput"), ("secrets", "SymlinkOutsideInput")]
    texts = [i.raw_text for i in items if not isinstance(i, IngestError)]
    assert texts == [ARTICLES["A"], ARTICLES["A"]]  # good.txt and the link to it
    followed = list(iter_documents([folder], FieldMap(follow_symlinks=True)))
    assert sum("AWS_SECRET" in getattr(i, "raw_text", "") for i in followed) == 2
    # Named on the command line, a link is what the user asked for.
    (named,) = list(iter_documents([folder / "env.txt"]))
    assert "AWS_SECRET" in named.raw_text


# ---- 11. a very deep folder tree ----------------------------------------------------------------


def test_a_folder_tree_1200_deep_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    chain = []
    deep = folder
    for _ in range(1200):  # one level at a time: mkdir(parents=True) recurses too
        deep = deep / "d"
        deep.mkdir()
        chain.append(deep)
    try:
        (deep / "bottom.txt").write_text(ARTICLES["A"], "utf-8")
        (folder / "top.txt").write_text(ARTICLES["B"], "utf-8")
        items = list(iter_documents([folder]))
        assert [getattr(i, "raw_text", None) for i in items] == [ARTICLES["A"], ARTICLES["B"]]
        summary = run_pipeline([folder], tmp_path / "out")
        assert (summary.n_documents, summary.n_errors) == (2, 0)
    finally:
        # Bottom up, here: pytest's own clean-up (shutil.rmtree) recurses once per level.
        (deep / "bottom.txt").unlink(missing_ok=True)
        for level in reversed(chain):
            level.rmdir()


# ---- 14. the environment fails ------------------------------------------------------------------


def test_tifa_duckdb_that_cannot_be_written_is_a_one_line_message(tmp_path: Path) -> None:
    """Files may grow to 150 kB (RLIMIT_FSIZE): every Parquet file of a small run fits, the
    DuckDB views file (about 270 kB) does not, and DuckDB raises its own IOException."""
    import resource
    import subprocess

    from .kill_support import ROOT, run_tifa, tifa_run_command

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))

    _jsonl(tmp_path / "in" / "a.jsonl", [{"id": "a", "text": ARTICLES["A"]}])
    out = tmp_path / "out"
    done = subprocess.run(
        tifa_run_command([tmp_path / "in"], out),
        capture_output=True,
        text=True,
        cwd=ROOT,
        preexec_fn=small_files,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    # (rich wraps at the terminal's width: the words are compared, not the lines)
    assert "rerun the same command" in " ".join(done.stderr.split())
    assert len(done.stderr.splitlines()) <= 6
    assert run_tifa([tmp_path / "in"], out).returncode == 0
    assert (out / "tifa.duckdb").exists()


def test_a_deleted_lock_file_does_not_let_a_second_writer_in(tmp_path: Path) -> None:
    from pipeline.io.lock import LOCK_NAME, OutputLock, OutputLocked

    with OutputLock(tmp_path):
        (tmp_path / LOCK_NAME).unlink()  # someone cleans up "stale" files mid-run
        with pytest.raises(OutputLocked):
            OutputLock(tmp_path).acquire()
    with OutputLock(tmp_path):  # released with the run: the next one gets it
        pass


def test_a_dead_pool_worker_is_an_environment_failure() -> None:
    from concurrent.futures.process import BrokenProcessPool

    import duckdb

    from pipeline.cli.app import environment_failure

    assert "worker process died" in environment_failure(BrokenProcessPool("gone"))
    assert "DuckDB" in environment_failure(duckdb.IOException("IO Error: File too large"))
    oom = duckdb.OutOfMemoryException("Out of Memory Error: Allocation failure")
    assert "out of memory" in environment_failure(oom)  # seen under ulimit -v 1200000
    mapped = ImportError("_duckdb.so: failed to map segment from shared object")
    assert "out of memory" in environment_failure(mapped)  # under ulimit -v 600000
    assert environment_failure(ValueError("a bug")) is None
    assert environment_failure(ImportError("No module named 'x'")) is None


def test_a_killed_replacement_of_a_huge_document_is_finished_from_its_parts(
    tmp_path: Path,
) -> None:
    """The same for a document processed in chunks (`--chunk-chars`): its rows stream to
    temporary files, which become the replacement's staged parts."""
    from .kill_support import problems, run_tifa, snapshot

    body = "".join(f"第{i}条：" + ARTICLES["ABCD"[i % 4]] + "\n" for i in range(120))
    nights = [tmp_path / f"n{i}" for i in (1, 2, 3)]
    _jsonl(nights[0] / "x.jsonl", [{"id": "x", "text": body}])
    _jsonl(nights[1] / "x.jsonl", [{"id": "x", "text": body + "会议要求，压实责任。\n" * 40}])
    _jsonl(nights[2] / "z.jsonl", [{"id": "z", "text": ARTICLES["C"]}])
    args = ("--chunk-chars", "2000", "--no-report")
    clean = tmp_path / "clean"
    for night in nights:
        assert run_tifa([night], clean, *args).returncode == 0
    out = tmp_path / "out"
    assert run_tifa([nights[0]], out, *args).returncode == 0
    killed = run_tifa([nights[1]], out, *args, TIFA_CRASH_AT="replace.table:3")
    assert killed.returncode == -9, killed.stderr
    assert run_tifa([nights[2]], out, *args).returncode == 0
    assert problems(out, snapshot(clean)) == []
