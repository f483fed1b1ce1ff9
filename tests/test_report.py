"""The analyst's morning: DIR/tifa.duckdb views, the HTML report (parsed, and rendered in a real
headless browser when one is installed), `tifa kwic`, and `tifa run`'s report and summary.

Two nights over the bundled samples: night 1 without xianning_rural_work_conference.txt (through
`run_pipeline`), night 2 adds it (through `tifa run`, which writes the report), so "new tonight"
has a known answer: what that one document brought.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from pipeline.analyst.views import ANALYST_VIEWS, VIEWS_FILE
from pipeline.cli import app
from pipeline.run.runner import run_pipeline
from tests.conftest import SAMPLES, txt_doc_id

NEW_DOC = "xianning_rural_work_conference.txt"
NEW_DOC_ID = txt_doc_id(SAMPLES / NEW_DOC)


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory: pytest.TempPathFactory) -> dict:
    inputs = tmp_path_factory.mktemp("nightly_in")
    out = tmp_path_factory.mktemp("nightly_out")
    for path in SAMPLES.iterdir():
        if path.is_file() and path.name != NEW_DOC:
            shutil.copy(path, inputs / path.name)
    first = run_pipeline([inputs], out)
    shutil.copy(SAMPLES / NEW_DOC, inputs / NEW_DOC)
    result = CliRunner().invoke(app, ["run", str(inputs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    runs = sorted(p.stem for p in (out / "reports").glob("2*.html"))
    return {"out": out, "inputs": inputs, "first": first.run_id, "cli": result.output, "runs": runs}


def _con(out: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(out / VIEWS_FILE), read_only=True)


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


# --------------------------------------------------------------------------------------------
# DIR/tifa.duckdb


def test_every_view_returns_rows_from_another_directory(
    two_nights: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a dashboard opens the file from anywhere
    con = _con(two_nights["out"])
    names = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    expected = set(ANALYST_VIEWS) | {"documents", "entities", "errors", "runs"}
    assert expected <= names
    for view in sorted(names & (expected | {"sentences", "relations", "formulation_counts"})):
        n = con.execute(f"SELECT count(*) FROM {view}").fetchone()[0]
        assert n > 0, view
    assert len(con.execute("SELECT * FROM trends LIMIT 5").fetchall()) == 5


def test_new_tonight_is_what_the_second_night_brought(two_nights: dict) -> None:
    rows = _rows(_con(two_nights["out"]), "SELECT * FROM new_tonight")
    by_kind: dict[str, list[dict]] = {}
    for r in rows:
        by_kind.setdefault(r["kind"], []).append(r)
    candidates = {r["item"] for r in by_kind["candidate"]}
    assert {"一村一品", "两条底线", "五水共治", "五大振兴"} <= candidates
    appointments = {(r["item"], r["detail"]) for r in by_kind["appointment"]}
    assert ("黄志坚", "市长 @ 咸宁市人民政府") in appointments
    # Night 1's people (陈向东 in hubei_meeting_news) are not new.
    assert not any(r["item"] == "陈向东" for r in by_kind["appointment"])
    # Every example comes from the one new document, with a sentence holding the item.
    assert {r["doc_id"] for r in rows} == {NEW_DOC_ID}
    for r in by_kind["candidate"] + by_kind["appointment"]:
        assert r["item"] in r["sentence"], r
    # Formulations first seen tonight: none of them occurs in night 1's documents.
    con = _con(two_nights["out"])
    old = {
        r[0]
        for r in con.execute(
            "SELECT DISTINCT canonical FROM concordance WHERE doc_id <> ?", [NEW_DOC_ID]
        ).fetchall()
    }
    assert all(r["item"] not in old for r in by_kind.get("formulation", []))
    ranks = [r["rank"] for r in by_kind["candidate"]]
    assert ranks == sorted(ranks)


def test_concordance_contexts_surround_the_match(two_nights: dict) -> None:
    con = _con(two_nights["out"])
    texts = dict(con.execute("SELECT doc_id, text FROM documents").fetchall())
    rows = _rows(con, "SELECT * FROM concordance")
    assert len(rows) == con.execute("SELECT count(*) FROM formulations").fetchone()[0]
    for r in rows:
        text = texts[r["doc_id"]]
        assert text[r["start"] : r["end"]] == r["match"]
        assert r["left_context"] == " ".join(text[max(0, r["start"] - 30) : r["start"]].split())
        assert r["right_context"] == " ".join(text[r["end"] : r["end"] + 30].split())


def test_trends_keep_undated_documents(two_nights: dict) -> None:
    con = _con(two_nights["out"])
    total = con.execute("SELECT sum(n_mentions) FROM trends").fetchone()[0]
    assert total == con.execute("SELECT count(*) FROM formulations").fetchone()[0]
    undated = con.execute("SELECT count(*) FROM trends WHERE year IS NULL").fetchone()
    assert undated[0] > 0  # the samples include undated documents


def test_each_trends_view_has_one_grain(two_nights: dict) -> None:
    """Years in `trends`, months in `trends_monthly` (full dates only): a year-dated document
    never lands in a January."""
    con = _con(two_nights["out"])
    assert "period" not in [r[0] for r in con.execute("DESCRIBE trends").fetchall()]
    n_dated = con.execute(
        "SELECT count(*) FROM formulations JOIN documents USING (doc_id) "
        "WHERE published_at IS NOT NULL"
    ).fetchone()[0]
    assert con.execute("SELECT sum(n_mentions) FROM trends_monthly").fetchone()[0] == n_dated
    months = con.execute("SELECT DISTINCT day(month) FROM trends_monthly").fetchall()
    assert months == [(1,)]
    # A rate is the mentions over the characters of that period's documents.
    row = con.execute(
        "SELECT t.rate_per_10k, 10000.0 * t.n_mentions / (SELECT sum(n_chars) FROM documents d "
        "WHERE d.year = t.year) FROM trends t WHERE year IS NOT NULL LIMIT 1"
    ).fetchone()
    assert row[0] == pytest.approx(row[1])


def test_views_file_is_rewritten_atomically_and_leaves_no_temp(two_nights: dict) -> None:
    out = two_nights["out"]
    assert not list(out.glob(f".{VIEWS_FILE}*"))
    assert not list((out / "reports").glob(".*"))


# --------------------------------------------------------------------------------------------
# The report, parsed


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.tags: list[tuple[str, dict]] = []
        self.svg_text: list[str] = []
        self.kwic_rows = 0
        self._in = {"svg_text": False, "kwic": False}

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "text":
            self._in["svg_text"] = True
        if tag == "table" and a.get("id") == "kwic":
            self._in["kwic"] = True
        if tag == "tr" and self._in["kwic"] and "data-f" in a:
            self.kwic_rows += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "text":
            self._in["svg_text"] = False
        if tag == "table":
            self._in["kwic"] = False

    def handle_data(self, data: str) -> None:
        if self._in["svg_text"]:
            self.svg_text.append(data)


def _remote(page: _Page, html: str) -> list[str]:
    """Every reference that a browser would fetch from elsewhere."""
    found = []
    for tag, attrs in page.tags:
        for key in ("src", "href", "data", "poster", "srcset", "action"):
            value = (attrs.get(key) or "").strip()
            if re.match(r"^(https?:)?//", value):
                found.append(f"<{tag} {key}={value}>")
        if tag == "link" or (tag == "script" and attrs.get("src")):
            found.append(f"<{tag} {attrs}>")
    found += re.findall(r"url\(\s*['\"]?(?:https?:)?//[^)]*\)|@import[^;]*", html)
    return found


def _report_path(out: Path) -> Path:
    (path,) = sorted((out / "reports").glob("2*.html"))
    return path


def test_report_has_every_section_chart_and_concordance(two_nights: dict) -> None:
    out = two_nights["out"]
    html = _report_path(out).read_text("utf-8")
    page = _Page()
    page.feed(html)
    assert {"run", "new", "trends", "context", "kwic", "kwic-formulation"} <= page.ids
    assert {"new-formulation", "new-candidate", "new-appointment"} <= page.ids
    svgs = [a for t, a in page.tags if t == "svg"]
    assert len(svgs) >= 3  # top formulations, categories, risers/fallers at least
    assert any(re.search(r"[\u4e00-\u9fff]", t) for t in page.svg_text)  # Chinese stays text
    n_mentions = _con(out).execute("SELECT count(*) FROM formulations").fetchone()[0]
    assert 0 < page.kwic_rows <= n_mentions
    # The run section: the broken sample is night 1's error, so tonight's table is empty, and
    # night 2 shows the counts of its runs row.
    assert "五水共治" in html and "黄志坚" in html
    assert _remote(page, html) == []


def test_report_lists_the_errors_of_its_night(tmp_path: Path) -> None:
    from pipeline.analyst.report import write_report

    out = tmp_path / "out"
    run_pipeline([SAMPLES / "broken_truncated_scrape.jsonl", SAMPLES / NEW_DOC], out)
    html = write_report(out).read_text("utf-8")
    section = html[html.index('id="run"') : html.index('id="new"')]
    assert "JSONDecodeError" in section and "broken_truncated_scrape.jsonl" in section


def test_index_links_every_report(two_nights: dict) -> None:
    out = two_nights["out"]
    index = (out / "reports" / "index.html").read_text("utf-8")
    report = _report_path(out)
    assert f'href="{report.name}"' in index
    assert two_nights["first"] in index  # night 1 is listed (it wrote no report: no link)
    assert f'href="{two_nights["first"]}.html"' not in index


def test_report_needs_a_completed_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "no completed tifa run" in " ".join(result.output.split())


# --------------------------------------------------------------------------------------------
# The report in a real browser

_BROWSERS = ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome")


def _browser() -> str | None:
    for name in _BROWSERS:
        if path := shutil.which(name):
            return path
    return None


def _chromium(browser: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


@pytest.mark.skipif(
    _browser() is None,
    reason="no headless Chromium on PATH (Debian: apt-get install chromium-headless-shell); "
    "the parsed-HTML tests above still run",
)
def test_report_renders_in_headless_chromium_without_remote_requests(
    two_nights: dict, tmp_path: Path
) -> None:
    browser = _browser()
    report = _report_path(two_nights["out"])

    def load(uri: str, name: str) -> tuple[str, set[str]]:
        netlog = tmp_path / f"{name}.json"
        done = _chromium(
            browser,
            f"--log-net-log={netlog}",
            "--net-log-capture-mode=Everything",
            "--virtual-time-budget=3000",
            "--dump-dom",
            uri,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        log = netlog.read_text("utf-8")
        json.loads(log)  # a complete log
        return done.stdout, set(re.findall(r'"url":\s*"([^"]+)"', log))

    # Control: the net log does record a page's remote request (loopback, port 9: nothing
    # answers, nothing leaves the machine). file:// loads are not network requests.
    control = tmp_path / "control.html"
    control.write_text('<img src="http://127.0.0.1:9/tifa-probe.png">', "utf-8")
    _, urls = load(control.as_uri(), "control")
    assert any("127.0.0.1:9/tifa-probe.png" in u for u in urls), urls

    dom, urls = load(report.as_uri(), "report")
    page = _Page()
    page.feed(dom)
    # The inline script ran (it marks the page) and the DOM holds every part.
    assert 'data-kwic-ready="1"' in dom
    assert {"run", "new", "trends", "context", "kwic"} <= page.ids
    assert sum(1 for t, _ in page.tags if t == "svg") >= 3
    assert page.kwic_rows > 0
    # Nothing was requested over the network.
    assert {u for u in urls if not u.startswith("file:")} == set()
    shot = tmp_path / "report.png"
    done = _chromium(
        browser, "--window-size=1280,2000", f"--screenshot={shot}", report.as_uri(), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


# --------------------------------------------------------------------------------------------
# The command line


def test_run_summary_lists_every_table_and_the_outputs(two_nights: dict) -> None:
    out = two_nights["cli"]
    for table in ("documents", "errors", "runs", "formulation_candidates", "people"):
        assert re.search(rf"\b{table}\b", out), table
    assert "tifa.duckdb" in out and "index.html" in out


def test_no_report_skips_the_page_but_writes_the_views(two_nights: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    one = tmp_path / "in"
    one.mkdir()
    shutil.copy(SAMPLES / NEW_DOC, one / NEW_DOC)
    result = CliRunner().invoke(app, ["run", str(one), "--out", str(out), "--no-report", "-q"])
    assert result.exit_code == 0, result.output
    assert (out / VIEWS_FILE).is_file()
    assert not (out / "reports").exists()
    result = CliRunner().invoke(app, ["report", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.strip()).is_file()


def test_kwic_prints_a_formulation_and_a_string(two_nights: dict) -> None:
    out = str(two_nights["out"])
    env = {"COLUMNS": "160"}
    result = CliRunner().invoke(app, ["kwic", "中国式现代化", "--out", out, "-n", "3"], env=env)
    assert result.exit_code == 0, result.output
    assert "formulation 中国式现代化" in result.output
    assert result.output.count("中国式现代化") >= 4  # title + 3 rows
    result = CliRunner().invoke(app, ["kwic", "五水共治", "--out", out, "--width", "6"], env=env)
    assert result.exit_code == 0, result.output
    assert "打好“" in result.output and "咸宁市召开全市" in result.output
    result = CliRunner().invoke(app, ["kwic", "不存在的字符串", "--out", out], env=env)
    assert result.exit_code == 1


def test_kwic_function_finds_every_occurrence(two_nights: dict) -> None:
    from pipeline.analyst.kwic import kwic

    out = two_nights["out"]
    texts = dict(_con(out).execute("SELECT doc_id, text FROM documents").fetchall())
    expected = sum(t.count("工作") for t in texts.values())
    result = kwic(out, "工作", width=5, limit=None)
    assert result.kind == "string" and result.n_total == expected == len(result.rows)
    assert all(len(r["left_context"]) <= 5 for r in result.rows)
    assert os.path.commonprefix([r["match"] for r in result.rows]) == "工作"


def _duckdb_cli() -> str | None:
    # The `duckdb-cli` wheel (dev extra) puts the CLI beside this interpreter.
    beside = Path(sys.executable).with_name("duckdb")
    return str(beside) if beside.is_file() else shutil.which("duckdb")


@pytest.mark.skipif(_duckdb_cli() is None, reason="no duckdb CLI (pip install duckdb-cli)")
def test_duckdb_cli_reads_every_view(two_nights: dict, tmp_path: Path) -> None:
    """The README's `duckdb DIR/tifa.duckdb -c "select * from trends limit 5"`, with the CLI's own
    DuckDB release (a 1.x CLI reads the file: it is written in the 1.0 storage format)."""
    db = str(two_nights["out"] / VIEWS_FILE)
    done = subprocess.run(
        [_duckdb_cli(), db, "-c", "select * from trends limit 5"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "formulation_id" in done.stdout and "rate_per_10k" in done.stdout
    for view in ANALYST_VIEWS:
        done = subprocess.run(
            [
                _duckdb_cli(),
                "-readonly",
                "-csv",
                "-noheader",
                db,
                "-c",
                f"select count(*) from {view}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert done.returncode == 0, (view, done.stderr)
        assert int(done.stdout.strip()) > 0, view


def test_progress_counts_bytes_up_to_the_input_size(tmp_path: Path) -> None:
    """The bar of `tifa run` is the input's size in bytes; a UTF-8 .txt counts exactly its size,
    whether it is processed or skipped as unchanged."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(SAMPLES / NEW_DOC, inputs / NEW_DOC)
    shutil.copy(SAMPLES / "hubei_meeting_news.txt", inputs / "hubei_meeting_news.txt")
    total = sum(p.stat().st_size for p in inputs.iterdir())
    seen: list[int] = []
    run_pipeline([inputs], tmp_path / "out", on_bytes=seen.append, batch_size=1)
    assert len(seen) >= 2 and seen == sorted(seen) and seen[-1] == total
    seen.clear()
    again = run_pipeline([inputs], tmp_path / "out", on_bytes=seen.append)
    assert again.n_skipped == 2 and seen[-1] == total


def test_report_of_a_night_where_every_input_failed(tmp_path: Path) -> None:
    from pipeline.analyst.report import write_report

    out = tmp_path / "out"
    run_pipeline([SAMPLES / "broken_truncated_scrape.jsonl"], out)
    html = write_report(out).read_text("utf-8")
    assert "JSONDecodeError" in html and "No formulation mentions" in html
    con = _con(out)
    assert con.execute("SELECT count(*) FROM new_tonight").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM errors").fetchone()[0] == 1


def _every_view(out: Path) -> dict[str, list]:
    con = _con(out)
    sql = "SELECT view_name FROM duckdb_views() WHERE NOT internal"
    names = [r[0] for r in con.execute(sql).fetchall()]
    # `runs` is the log of runs: a rerun is one more row there, by design.
    return {
        n: sorted(map(repr, con.execute(f"SELECT * FROM {n}").fetchall()))
        for n in names
        if n != "runs"
    }


def test_a_rerun_that_writes_nothing_keeps_views_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run_pipeline([SAMPLES / NEW_DOC], out, report=True)
    assert first.report_path is not None and not first.report_unchanged
    views_mtime = (out / VIEWS_FILE).stat().st_mtime_ns
    before = _every_view(out)
    assert before["new_tonight"]  # something to lose
    again = run_pipeline([SAMPLES / NEW_DOC], out, report=True)
    assert again.n_skipped == 1 and again.report_unchanged and again.report_path is None
    assert (out / VIEWS_FILE).stat().st_mtime_ns == views_mtime
    assert sorted(p.name for p in (out / "reports").glob("2*.html")) == [first.report_path.name]
    # The views read the tables when queried: their rows must not move with the runs log.
    assert _every_view(out) == before
    tonight = _con(out).execute("SELECT DISTINCT run_id FROM new_tonight").fetchall()
    assert tonight == [(first.run_id,)]
    # `tifa report` after the rerun tells the same night.
    result = CliRunner().invoke(app, ["report", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert _every_view(out) == before


def test_a_night_whose_only_news_is_an_error_gets_its_report(tmp_path: Path) -> None:
    out, night = tmp_path / "out", tmp_path / "in"
    night.mkdir()
    shutil.copy(SAMPLES / NEW_DOC, night / NEW_DOC)
    first = run_pipeline([night], out, report=True)
    (night / "broken.jsonl").write_text('{"id": "b", "text": \n', "utf-8")
    second = run_pipeline([night], out, report=True)
    assert second.n_documents == 0 and second.n_errors == 1
    assert second.report_path.name == f"{second.run_id}.html" != f"{first.run_id}.html"
    html = second.report_path.read_text("utf-8")
    assert "broken.jsonl" in html[html.index('id="run"') : html.index('id="new"')]
    con = _con(out)
    assert con.execute("SELECT run_id FROM last_run").fetchall() == [(second.run_id,)]
    assert con.execute("SELECT count(*) FROM new_tonight").fetchone()[0] == 0


def test_every_parquet_table_is_a_view_of_its_own_name(two_nights: dict) -> None:
    from pipeline.io.schema import SCHEMAS

    con = _con(two_nights["out"])
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    assert not {v for v in views if v.endswith("_table")}
    for table, schema in SCHEMAS.items():
        assert table in views
        columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        assert columns[: len(schema.names)] == schema.names, table


def test_run_ids_sort_by_start_even_within_one_second() -> None:
    from pipeline.run.accounting import new_run_id

    ids = [new_run_id() for _ in range(500)]
    assert ids == sorted(ids) and len(set(ids)) == 500
