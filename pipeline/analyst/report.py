"""The nightly HTML report: `DIR/reports/<run_id>.html` for the last completed run, plus
`DIR/reports/index.html` listing every run.

Each page is self-contained and opens offline from disk: CSS and a few lines of vanilla
JavaScript are inline, charts are inline SVG drawn here (`charts.py`), and nothing is
loaded from anywhere else. Five sections:

* **the run** — documents, characters, time, skipped/replaced, errors by type with examples;
* **new tonight** — formulations first seen in the archive tonight, new discovery candidates
  (ranked), new person–post pairs, each with its sentence and document (the `new_tonight` view);
* **trends** — mentions per 10,000 characters by year (by month when the archive spans three
  years or less; counts on hover, a period without documents a gap) of the top formulations,
  of every category and (collapsed) of the top formulations within each category, and the
  biggest risers and fallers of tonight's documents against the archive (on the first night,
  the latest period against the earlier ones);
* **usage** — the verbs and modifiers governing the top formulations, year by year
  (formulation_usage), and the formulations analysts accepted (`tifa lexicon accept`);
* **in context** — a keyword-in-context concordance: tonight's mentions first (a limit and a
  count), the archive's collapsed, filterable in the page.

"Tonight" is the `last_run` view's run (views.py): the last run that wrote something.

Every query runs in DuckDB over the Parquet files through the views of `views.py`, so
memory does not grow with the archive; only what the page shows is fetched.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from html import escape
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from pipeline import __version__
from pipeline.analyst.charts import bar_chart, line_chart
from pipeline.analyst.views import connect_views, short_title
from pipeline.core.faults import checkpoint
from pipeline.io.write import table_files, table_parts

REPORTS = "reports"
# runs with its timestamps as naive UTC: fetching TIMESTAMPTZ into Python needs pytz.
_RUNS = (
    "(SELECT * REPLACE (make_timestamp(epoch_us(started_at)) AS started_at, "
    "make_timestamp(epoch_us(finished_at)) AS finished_at) FROM runs)"
)
INDEX = "index.html"


class ReportError(RuntimeError):
    """The output folder has nothing to report on (no completed run)."""


@dataclass
class ReportSettings:
    top: int = 8  # formulations per trend chart
    per_category: int = 5  # formulations per category chart
    kwic_width: int = 30  # characters of context either side
    # Concordance rows of tonight's documents shown: one line each, so the page stays a page
    # (the dev corpora's second night: 21,000 px with 200 rows of wrapped titles).
    kwic_tonight: int = 100
    kwic_per_formulation: int = 10  # archive-wide rows per formulation (newest first), collapsed
    kwic_archive_rows: int = 1000  # archive-wide rows at most
    # Rows per kind in "new tonight": past the first twenty, discovery candidates are mostly
    # noise, and the rest are one query away (the page says which).
    new_per_kind: int = 20
    error_examples: int = 3
    usage_governors: int = 4  # governors shown per formulation and year


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> Any:
    row = con.execute(sql, params or []).fetchone()
    return row[0] if row else None


def _e(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return escape(value.strftime("%Y-%m-%d %H:%M UTC"))
    if isinstance(value, date):
        return escape(value.isoformat())
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return escape(str(value))


def _mark(sentence: str | None, *terms: str | None, around: int = 45) -> str:
    """The sentence, escaped, with `terms` highlighted; a long sentence is cut to `around`
    characters either side of the highlighted stretch (from the first highlight to the last: a
    person and their post are evidence together), or to its start when no term is in it. The
    first term is found first; each other term where it occurs nearest to it (in
    "局长刘志强、局长余晓梅", 余晓梅's 局长 is the second)."""
    text = (sentence or "").strip()
    spans: list[tuple[int, int]] = []
    anchor = None
    for term in dict.fromkeys(t for t in terms if t):
        hits = []
        at = text.find(term)
        while at >= 0:
            if not any(a < at + len(term) and at < b for a, b in spans):
                hits.append(at)
            at = text.find(term, at + 1)
        if not hits:
            continue
        best = hits[0] if anchor is None else min(hits, key=lambda h: abs(h - anchor))
        anchor = best if anchor is None else anchor
        spans.append((best, best + len(term)))
    if not spans:
        return escape(text[: 2 * around]) + ("…" if len(text) > 2 * around else "")
    spans.sort()
    lo, hi = max(0, spans[0][0] - around), min(len(text), spans[-1][1] + around)
    html, pos = ["…" if lo else ""], lo
    for a, b in spans:
        html += [escape(text[pos:a]), f"<mark>{escape(text[a:b])}</mark>"]
        pos = b
    html += [escape(text[pos:hi]), "…" if hi < len(text) else ""]
    return "".join(html)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _when(row: dict) -> str:
    """A row's date, its year alone (never as a number with a thousands comma), or undated."""
    if row.get("published_at"):
        return _e(row["published_at"])
    return str(row["year"]) if row.get("year") else "undated"


def _table(headers: list[str], rows: list[list[str]], num: set[int] | None = None) -> str:
    num = num or set()
    head = "".join(f"<th{' class=num' if i in num else ''}>{h}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if i in num else ''}>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _doc_ref(row: dict) -> str:
    when = _when(row)
    if not row.get("title"):  # the id is the only name it has: once, not twice
        return f'{_e(row.get("doc_id"))}<br><span class="muted">{when}</span>'
    return f'{_e(row["title"])}<br><span class="muted">{_e(row.get("doc_id"))} · {when}</span>'


# --------------------------------------------------------------------------------------------
# Sections


def _usage_section(con: duckdb.DuckDBPyConnection, s: ReportSettings) -> str:
    """How the top formulations are used, period by period (the formulation_usage table), and
    the formulations analysts accepted (their user lexicon) with their mentions."""
    html = ['<section id="usage"><h2>Usage</h2>']
    html.append(
        '<p class="muted">The verb or modifier governing each mention (formulation_usage: '
        "LAC tags of the words before it in its clause), most frequent first, by year.</p>"
    )
    top = _rows(
        con,
        """
        SELECT canonical, year, governor, n_mentions AS n FROM usage_trends
        WHERE formulation_id IN (SELECT formulation_id FROM formulation_usage
                                 GROUP BY formulation_id ORDER BY count(*) DESC, formulation_id
                                 LIMIT ?)
        ORDER BY canonical, year DESC NULLS LAST, n DESC, governor
        """,
        [s.top],
    )
    cells: dict[str, dict[Any, list[str]]] = {}
    for r in top:
        cell = cells.setdefault(r["canonical"], {}).setdefault(r["year"], [])
        if len(cell) < s.usage_governors:
            cell.append(f"{_e(r['governor'])} <span class=muted>{r['n']}</span>")

    def period(years: dict[Any, list[str]], k: int) -> str:
        order = list(years)  # newest first, undated last
        if k >= len(order):
            return ""
        label = str(order[k]) if order[k] else "undated"
        return f"<b>{label}</b>: " + " · ".join(years[order[k]])

    # One line per formulation (its latest year beside the one before: how usage moved); every
    # year in the collapsed table below.
    latest = [[f"<b>{_e(c)}</b>", period(y, 0), period(y, 1)] for c, y in cells.items()]
    every = [
        [f"<b>{_e(c)}</b>", str(year) if year else "undated", " · ".join(govs)]
        for c, y in cells.items()
        for year, govs in y.items()
    ]
    if latest:
        html.append(_table(["formulation", "latest year", "the year before"], latest))
        html.append(
            f'<details id="usage-by-year"><summary>Every year ({len(every)} rows; all of them '
            "in the <code>usage_trends</code> view)</summary>"
            + _table(["formulation", "year", "governed by"], every)
            + "</details>"
        )
    else:
        html.append('<p class="muted">No usage rows.</p>')
    accepted = _rows(
        con,
        """
        SELECT f.canonical, any_value(f.category) AS category, count(*) AS n_mentions,
               count(DISTINCT f.doc_id) AS n_docs, min(d.published_at) AS first_seen
        FROM formulations f JOIN documents d USING (doc_id)
        WHERE f.formulation_id LIKE 'user\\_%' ESCAPE '\\'
        GROUP BY f.canonical ORDER BY n_mentions DESC, f.canonical
        """,
    )
    html.append(
        f'<h3 id="usage-accepted">Accepted by analysts <span class="pill">{len(accepted)}</span>'
        "</h3>"
    )
    if accepted:
        html.append(
            _table(
                ["formulation", "category", "mentions", "docs", "first seen"],
                [
                    [
                        f"<b>{_e(r['canonical'])}</b>",
                        _e(r["category"]),
                        _e(r["n_mentions"]),
                        _e(r["n_docs"]),
                        _e(r["first_seen"]),
                    ]
                    for r in accepted
                ],
                {2, 3},
            )
        )
    else:
        html.append('<p class="muted">None (tifa lexicon accept TERM).</p>')
    html.append("</section>")
    return "".join(html)


def _run_section(
    con: duckdb.DuckDBPyConnection, run: dict, s: ReportSettings, out: Path | None = None
) -> str:
    seconds = (run["finished_at"] - run["started_at"]).total_seconds()
    n_archive = _one(con, "SELECT count(*) FROM documents")
    stats = [
        (run["n_documents"], "documents written"),
        (run["n_chars"], "characters"),
        (f"{seconds:,.1f} s", "run time"),
        (run["n_skipped"], "unchanged, skipped"),
        (run["n_replaced"], "changed, replaced"),
        (run["n_errors"], "errors"),
        (n_archive, "documents in the archive"),
    ]
    html = ['<section id="run"><h2>The run</h2><div class="stats">']
    html += [f'<div class="stat"><b>{_e(v)}</b><span>{label}</span></div>' for v, label in stats]
    html.append("</div>")
    html.append(
        f'<p class="muted">run {_e(run["run_id"])} · started {_e(run["started_at"])} · '
        f"finished {_e(run['finished_at'])} · {_e(run['workers'])} worker(s) · "
        f"tifa {_e(run['version'])}</p>"
    )
    errors = _rows(
        con,
        """
        SELECT error_type, count(*) AS n,
               list(struct_pack(source_file := source_file, doc_id := doc_id,
                                message := message)
                    ORDER BY source_file, doc_id, message)[1:?] AS examples
        FROM errors WHERE run_id = ?
        GROUP BY error_type ORDER BY n DESC, error_type
        """,
        [s.error_examples, run["run_id"]],
    )
    html.append("<h3>Errors by type</h3>")
    if errors:
        rows = []
        for e in errors:
            ex = "".join(
                f"<div><code>{_e(x['source_file'])}</code>"
                f"{' · ' + _e(x['doc_id']) if x['doc_id'] else ''}: {_e(x['message'])}</div>"
                for x in e["examples"]
            )
            rows.append([f'<span class="pill">{_e(e["error_type"])}</span>', _e(e["n"]), ex])
        html.append(_table(["error type", "rows", "examples (file: message)"], rows, {1}))
        stored = sum(e["n"] for e in errors)
        if stored < run["n_errors"]:
            html.append(
                f'<p class="muted">{run["n_errors"] - stored} more failures tonight were already '
                "known from earlier runs (each failure is stored once, with the run that first "
                "saw it).</p>"
            )
    elif run["n_errors"]:
        html.append(
            f'<p class="muted">{run["n_errors"]} failures tonight, all already known from earlier '
            "runs (see their reports or the errors table).</p>"
        )
    else:
        html.append('<p class="muted">No errors tonight.</p>')
    if out is not None:
        html.append(_alarm_html(out, run["run_id"]))
    html.append("</section>")
    return "".join(html)


# --------------------------------------------------------------------------------------------
# The loss alarm: documents whose cleaning removed more than PROSE_LOSS_ALARM of their prose.
_ALARM_COLUMNS = ["doc_id", "title", "prose_chars", "prose_removed_share", "prose_removed_reasons"]


def loss_alarms(out: Path | str, run_id: str, limit: int = 50) -> tuple[int, list[dict]]:
    """(how many documents written by run ``run_id`` lost more than the threshold share of
    their prose characters to cleaning, the worst ``limit`` of them with their reasons).
    Parts written before the alarm existed have no such column and are skipped."""
    from pipeline.io.storage import Store
    from pipeline.normalise.chrome import PROSE_LOSS_ALARM

    store = Store(out)
    flagged: list[dict] = []
    for name in table_parts(store, "documents"):
        try:
            with store.open_parquet(name) as fh:
                if "prose_removed_share" not in fh.schema_arrow.names:
                    continue
                # Two small columns first: the titles and reasons of a large archive are
                # read only from the files that hold a flagged document of this run.
                keys = fh.read(columns=["run_id", "prose_removed_share"]).to_pylist()
                hits = [
                    k
                    for k, r in enumerate(keys)
                    if r["run_id"] == run_id and r["prose_removed_share"] > PROSE_LOSS_ALARM
                ]
                if hits:
                    rows = fh.read(columns=_ALARM_COLUMNS).to_pylist()
                    flagged += [rows[k] for k in hits]
        except OSError:
            continue  # replaced by a concurrent writer between listing and reading
    flagged.sort(key=lambda r: (-r["prose_removed_share"], r["doc_id"]))
    return len(flagged), flagged[:limit]


def _alarm_html(out: Path, run_id: str) -> str:
    from pipeline.normalise.chrome import PROSE_LOSS_ALARM

    n, rows = loss_alarms(out, run_id)
    html = [f"<h3>Loss alarm: prose removed by cleaning (over {PROSE_LOSS_ALARM:.0%})</h3>"]
    if not n:
        html.append(
            f'<p class="muted">No document lost more than {PROSE_LOSS_ALARM:.0%} of its prose '
            "characters to cleaning tonight.</p>"
        )
        return "".join(html)
    html.append(
        f'<p class="alarm">{n} document(s) lost more than {PROSE_LOSS_ALARM:.0%} of their prose '
        "to cleaning; every removed line is in <code>removed_lines</code>.</p>"
    )
    table = [
        [
            _doc_ref(r),
            f"{r['prose_removed_share']:.1%}",
            _e(r["prose_chars"]),
            _e(r["prose_removed_reasons"]),
        ]
        for r in rows
    ]
    html.append(
        _table(["document", "prose removed", "prose chars", "reasons (characters)"], table, {1, 2})
    )
    if n > len(rows):
        html.append(f'<p class="muted">… and {n - len(rows)} more.</p>')
    return "".join(html)


_NEW_KINDS = [
    ("formulation", "Formulations seen for the first time", "formulation", "category"),
    ("candidate", "New discovery candidates (not in the lexicon), ranked", "candidate", "pattern"),
    ("appointment", "New person–post pairs", "person", "post @ organisation"),
]


def _stories_section(con: duckdb.DuckDBPyConnection, s: ReportSettings) -> str:
    """Tonight's largest stories: one item reprinted by many sites is one story (counted once
    everywhere in this report), its copies beside it."""
    rows = _rows(
        con, "SELECT * FROM stories_tonight WHERE copies_tonight >= 2 LIMIT ?", [s.new_per_kind]
    )
    totals = _rows(
        con,
        "SELECT count(*) AS docs, count(DISTINCT cluster_id) AS stories, "
        "count(*) FILTER (WHERE rows_from <> doc_id) AS derived "
        "FROM story_documents d, last_run l WHERE d.run_id > l.since",
    )[0]
    html = ['<section id="stories"><h2>Stories</h2>']
    html.append(
        f'<p class="muted">{_e(totals["docs"])} documents tonight are {_e(totals["stories"])} '
        f"stories; {_e(totals['derived'])} near-exact copies were not run through the NLP "
        "(their story's canonical copy's rows serve). Counts in this report are per story; "
        "<i>copies</i> is the reach.</p>"
    )
    if not rows:
        html.append('<p class="muted">No story was published more than once tonight.</p>')
    else:
        html.append(
            _table(
                ["story", "title", "copies tonight", "all copies", "not analysed", "sources"],
                [
                    [
                        _e(r["cluster_id"]),
                        _e(r["title"]),
                        _e(r["copies_tonight"]),
                        _e(r["copies_all"]),
                        _e(r["n_derived"]),
                        _e("、".join(r["sources"] or [])),
                    ]  # fmt: skip
                    for r in rows
                ],
                {2, 3, 4},
            )
        )
    html.append("</section>")
    return "".join(html)


def _new_section(con: duckdb.DuckDBPyConnection, s: ReportSettings) -> str:
    items = _rows(con, "SELECT * FROM new_tonight")
    html = ['<section id="new"><h2>New tonight</h2>']
    html.append(
        '<p class="muted">First seen in the archive: no document written by an earlier run '
        "mentions it.</p>"
    )
    for kind, heading, label, detail in _NEW_KINDS:
        rows = [r for r in items if r["kind"] == kind]
        html.append(f'<h3 id="new-{kind}">{heading} <span class="pill">{len(rows)}</span></h3>')
        if not rows:
            html.append('<p class="muted">None tonight.</p>')
            continue
        table_rows = [
            [
                _e(r["rank"]),
                f"<b>{_e(r['item'])}</b>",
                _e(r["detail"]),
                _e(r["n_docs"]),
                _e(r["n_mentions"]),
                _e(r["reach_docs"]),
                _mark(r["sentence"], r["item"], *_post_terms(r) if kind == "appointment" else ()),
                _doc_ref(r),
            ]
            for r in rows[: s.new_per_kind]
        ]
        html.append(
            _table(
                ["#", label, detail, "stories", "mentions", "copies", "sentence", "document"],
                table_rows,
                {0, 3, 4, 5},
            )
        )
        if len(rows) > s.new_per_kind:
            html.append(
                f'<p class="muted">… and {len(rows) - s.new_per_kind} more '
                f"(<code>SELECT * FROM new_tonight WHERE kind = '{kind}'</code>).</p>"
            )
    html.append("</section>")
    return "".join(html)


def _post_terms(row: dict) -> tuple[str, ...]:
    """The role and organisation of an appointment's detail ("市长 @ 咸宁市人民政府")."""
    return tuple(t.strip() for t in (row.get("detail") or "").split(" @ ") if t.strip())


def _periods(con: duckdb.DuckDBPyConnection) -> tuple[str, list[str]]:
    """'month' when the dated documents span at most three years, else 'year'; and the labels
    of every period from the first to the last (every period is on the axis; one without
    documents is a gap in the lines, see `_series`)."""
    lo, hi, n_month = con.execute(
        "SELECT min(year), max(year), count(*) FILTER (WHERE published_at IS NOT NULL) "
        "FROM t_docs WHERE year IS NOT NULL"
    ).fetchone()
    if lo is None:
        return "year", []
    if hi - lo <= 2 and n_month:
        lo_m, hi_m = con.execute(
            "SELECT min(date_trunc('month', published_at)), max(date_trunc('month', "
            "published_at)) FROM t_docs"
        ).fetchone()
        labels = []
        y, m = lo_m.year, lo_m.month
        while (y, m) <= (hi_m.year, hi_m.month):
            labels.append(f"{y}-{m:02d}")
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return "month", labels
    return "year", [str(y) for y in range(lo, hi + 1)]


def _period_cells(con: duckdb.DuckDBPyConnection, grain: str) -> list[dict]:
    """Mentions per (formulation, category, period label), fetched once for every chart."""
    if grain == "month":
        sql = (
            "SELECT canonical, category, strftime(month, '%Y-%m') AS label, n_mentions "
            "FROM t_trends_m"
        )
    else:
        sql = "SELECT canonical, category, year::VARCHAR AS label, n_mentions FROM t_trends"
    return _rows(
        con,
        f"SELECT canonical, category, label, sum(n_mentions) AS n FROM ({sql}) "
        "WHERE label IS NOT NULL GROUP BY ALL",
    )


def _period_chars(con: duckdb.DuckDBPyConnection, grain: str) -> dict[str, int]:
    """Characters of the documents of each period label (the rates' denominator), counted over
    the same documents as `_period_cells`."""
    if grain == "month":
        sql = (
            "SELECT strftime(published_at, '%Y-%m') AS label, sum(n_chars) FROM t_docs "
            "WHERE published_at IS NOT NULL GROUP BY ALL"
        )
    else:
        sql = "SELECT year::VARCHAR, sum(n_chars) FROM t_docs WHERE year IS NOT NULL GROUP BY ALL"
    return {label: int(n or 0) for label, n in con.execute(sql).fetchall()}


def _series(
    cells: list[dict],
    key: str,
    names: list[str],
    labels: list[str],
    chars: dict[str, int],
) -> tuple[list[tuple[str, list[float | None]]], list[list[str]]]:
    """Mentions per 10,000 characters of each name in each period, None for a period with no
    documents (a gap, not a zero: nothing was read there), and the hover text of each point
    with the counts behind the rate. Raw counts would follow the archive's size, not the
    formulation's weight: a year with ten times the documents would look like a surge."""
    index: dict[tuple[str, str], float] = {}
    for c in cells:
        index[(c[key], c["label"])] = index.get((c[key], c["label"]), 0) + c["n"]
    series, hover = [], []
    for name in names:
        rates: list[float | None] = []
        tips = []
        for lab in labels:
            n, size = int(index.get((name, lab), 0)), chars.get(lab, 0)
            rates.append(10_000 * n / size if size else None)
            tips.append(
                f"{10_000 * n / size:.2f} per 10k characters ({_plural(n, 'mention')} in "
                f"{size:,} characters)"
                if size
                else "no documents"
            )
        series.append((name, rates))
        hover.append(tips)
    return series, hover


def _movers(con: duckdb.DuckDBPyConnection, since: str, grain: str) -> tuple[str, list[dict]]:
    """Formulations whose rate (mentions per 10,000 characters) changed most: tonight's
    documents against the rest of the archive; on the first night (no archive yet), the latest
    period against the earlier ones."""
    n_before = _one(con, "SELECT count(*) FROM t_docs WHERE run_id <= ?", [since])
    if n_before and _one(con, "SELECT count(*) FROM t_docs WHERE run_id > ?", [since]):
        now_cond, before_cond = "d.run_id > $since", "d.run_id <= $since"
        what = "tonight's documents against the archive before tonight"
    else:
        if grain == "month":
            latest = _one(con, "SELECT max(date_trunc('month', published_at)) FROM t_docs")
            if latest is None:
                return "", []
            now_cond = "date_trunc('month', d.published_at) = $latest"
            before_cond = "date_trunc('month', d.published_at) < $latest"
            what = f"{latest:%Y-%m} against the earlier months (first night: no archive yet)"
        else:
            latest = _one(con, "SELECT max(year) FROM t_docs")
            if latest is None:
                return "", []
            now_cond, before_cond = "d.year = $latest", "d.year < $latest"
            what = f"{latest} against the earlier years (first night: no archive yet)"
        since = latest
    params = {"since": since} if "$since" in now_cond else {"latest": since}
    chars = con.execute(
        f"SELECT sum(n_chars) FILTER (WHERE {now_cond}), sum(n_chars) FILTER (WHERE "
        f"{before_cond}) FROM t_docs d",
        params,
    ).fetchone()
    if not chars[0] or not chars[1]:
        return what, []
    params |= {"now_chars": chars[0], "before_chars": chars[1]}
    rows = _rows(
        con,
        f"""
        SELECT any_value(f.canonical) AS canonical,
               count(*) FILTER (WHERE {now_cond}) AS n_now,
               count(*) FILTER (WHERE {before_cond}) AS n_before,
               10000.0 * n_now / $now_chars AS rate_now,
               10000.0 * n_before / $before_chars AS rate_before,
               rate_now - rate_before AS change
        FROM t_forms f JOIN t_docs d USING (doc_id)
        GROUP BY f.formulation_id
        HAVING n_now + n_before >= 3
        ORDER BY change DESC, canonical
        """,
        params,
    )
    return what, rows


def _trends_section(con: duckdb.DuckDBPyConnection, since: str, s: ReportSettings) -> str:
    # The section asks a few dozen small questions: read the Parquet files once into temporary
    # tables of the columns it needs (no document text), not once per question.
    con.execute("CREATE OR REPLACE TEMP TABLE t_trends AS SELECT * FROM trends")
    con.execute("CREATE OR REPLACE TEMP TABLE t_trends_m AS SELECT * FROM trends_monthly")
    # Risers and fallers count stories: the canonical copy of each (run/stories.py).
    con.execute(
        "CREATE OR REPLACE TEMP TABLE t_docs AS "
        "SELECT doc_id, run_id, year, published_at, n_chars FROM story_documents "
        "WHERE is_canonical"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE t_forms AS SELECT doc_id, formulation_id, canonical "
        "FROM formulations"
    )
    grain, labels = _periods(con)
    html = ['<section id="trends"><h2>Trends</h2>']
    undated = _one(con, "SELECT coalesce(sum(n_mentions), 0) FROM t_trends WHERE year IS NULL")
    off_chart = _one(
        con,
        "SELECT (SELECT coalesce(sum(n_mentions), 0) FROM t_trends WHERE year IS NOT NULL) - "
        "(SELECT coalesce(sum(n_mentions), 0) FROM t_trends_m)",
    )
    note = (
        f"Mentions per 10,000 characters of the {grain}'s documents (hover a point for the "
        f"counts); a break in a line is a {grain} with no documents."
    )
    if undated:
        note += f" {undated:,} mentions are in undated documents and are not on these charts."
    if grain == "month" and off_chart:
        note += f" {off_chart:,} mentions in documents dated by year only are left out too."
    html.append(f'<p class="muted">{note}</p>')
    top = _rows(
        con,
        "SELECT canonical, category, sum(n_mentions) AS n, "
        "sum(n_mentions) FILTER (WHERE year IS NULL) AS n_undated "
        "FROM t_trends GROUP BY ALL ORDER BY n DESC, canonical LIMIT ?",
        [s.top],
    )
    if labels and top:
        cells = _period_cells(con, grain)
        chars = _period_chars(con, grain)
        rate = "per 10k characters"
        series, hover = _series(cells, "canonical", [r["canonical"] for r in top], labels, chars)
        html.append(
            line_chart(
                labels,
                series,
                title=f"Top {len(top)} formulations, mentions per 10,000 characters by {grain}",
                y_label=rate,
                hover=hover,
            )
        )
        cats = [
            r["category"]
            for r in _rows(
                con,
                "SELECT category, sum(n_mentions) AS n FROM t_trends GROUP BY ALL "
                "ORDER BY n DESC, category",
            )
        ]
        series, hover = _series(cells, "category", cats, labels, chars)
        html.append(
            line_chart(
                labels,
                series,
                title=f"Every category, mentions per 10,000 characters by {grain}",
                y_label=rate,
                hover=hover,
            )
        )
        # Collapsed: ten more charts are the archive's detail, not tonight's news, and made
        # the page 1,500 px longer.
        html.append(
            f'<details id="trends-by-category"><summary>By category: the top '
            f"{s.per_category} formulations of each of {len(cats)} categories</summary>"
            "<div class='grid'>"
        )
        by_category: dict[str, list[str]] = {}
        for r in _rows(
            con,
            "SELECT category, canonical, sum(n_mentions) AS n FROM t_trends GROUP BY ALL "
            "ORDER BY category, n DESC, canonical",
        ):
            by_category.setdefault(r["category"], []).append(r["canonical"])
        for cat in cats:
            names = by_category[cat][: s.per_category]
            series, hover = _series(cells, "canonical", names, labels, chars)
            html.append(
                line_chart(
                    labels,
                    series,
                    title=f"{cat}: top {len(names)}",
                    y_label=rate,
                    width=560,
                    height=240,
                    hover=hover,
                )
            )
        html.append("</div></details>")
    elif not top:
        html.append('<p class="muted">No formulation mentions in the archive.</p>')
    else:
        html.append('<p class="muted">No dated documents: nothing to place on a time axis.</p>')
    if top:
        html.append(
            _table(
                ["formulation", "category", "mentions", "of which undated"],
                [
                    [_e(r["canonical"]), _e(r["category"]), _e(r["n"]), _e(r["n_undated"] or 0)]
                    for r in top
                ],
                {2, 3},
            )
        )
    what, movers = _movers(con, since, grain)
    html.append("<h3>Risers and fallers</h3>")
    # A riser needs two mentions in the recent period: one mention in a thin month is noise.
    risers = [r for r in movers if r["change"] > 0 and r["n_now"] >= 2][: s.top]
    fallers = [r for r in reversed(movers) if r["change"] < 0][: s.top]
    if risers or fallers:
        html.append(
            f'<p class="muted">Change in mentions per 10,000 characters: {escape(what)}. '
            "Formulations with at least 3 mentions.</p>"
        )
        bars = [(r["canonical"], r["change"]) for r in risers] + [
            (r["canonical"], r["change"]) for r in reversed(fallers)
        ]
        html.append(bar_chart(bars, title="Biggest risers (green) and fallers (red)"))
        html.append(
            _table(
                ["formulation", "mentions now", "before", "rate now", "rate before", "change"],
                [
                    [
                        _e(r["canonical"]),
                        _e(r["n_now"]),
                        _e(r["n_before"]),
                        f"{r['rate_now']:.2f}",
                        f"{r['rate_before']:.2f}",
                        f"{r['change']:+.2f}",
                    ]
                    for r in risers + fallers
                ],
                {1, 2, 3, 4, 5},
            )
        )
    else:
        html.append(
            '<p class="muted">Nothing to compare yet: risers and fallers need tonight\'s '
            "documents and an archive (or, on the first night, two dated periods).</p>"
        )
    html.append("</section>")
    return "".join(html)


def _add_contexts(out: Path, rows: list[dict], width: int) -> None:
    """Left and right context of each row, sliced in Python from the documents' text, read in
    record batches of only the documents needed. (DuckDB's substring walks a UTF-8 string from
    its start to find a character offset, which costs more than the rest of the report on long
    documents; a Python slice of the decoded text is immediate.)"""
    by_doc: dict[str, list[dict]] = {}
    for r in rows:
        by_doc.setdefault(r["doc_id"], []).append(r)
    if not by_doc:
        return
    dataset = ds.dataset(table_files(out, "documents"), format="parquet")
    wanted = ds.field("doc_id").isin(pa.array(sorted(by_doc), pa.string()))
    for batch in dataset.to_batches(columns=["doc_id", "text"], filter=wanted):
        for doc_id, text in zip(
            batch.column("doc_id").to_pylist(), batch.column("text").to_pylist(), strict=True
        ):
            for r in by_doc.get(doc_id, []):
                r["left_context"] = " ".join(text[max(0, r["start"] - width) : r["start"]].split())
                r["right_context"] = " ".join(text[r["end"] : r["end"] + width].split())


def _kwic_rows(
    con: duckdb.DuckDBPyConnection, tonight: bool, since: str, per_formulation: int, limit: int
) -> tuple[list[dict], int]:
    """Concordance rows (newest first within each formulation, most mentioned formulation
    first) of tonight's documents or of the whole archive, and how many mentions there are."""
    where = "WHERE d.run_id > $since" if tonight else ""
    base = f"""
        FROM formulations f
        JOIN (SELECT doc_id, run_id, {short_title("title")} AS title, published_at, year
              FROM documents) d USING (doc_id)
        {where}
    """
    params = {"since": since} if tonight else {}
    n_all = _one(con, f"SELECT count(*) {base}", params)
    rows = _rows(
        con,
        f"""
        SELECT f.formulation_id, f.canonical, f.doc_id, f.start, f."end", f.text AS match,
               d.title, d.published_at, d.year,
               count(*) OVER (PARTITION BY f.formulation_id) AS n_total
        {base}
        QUALIFY row_number() OVER (PARTITION BY f.formulation_id
                                   ORDER BY d.published_at DESC NULLS LAST, f.doc_id, f.start)
                <= $per
        ORDER BY n_total DESC, f.canonical, d.published_at DESC NULLS LAST, f.doc_id, f.start
        LIMIT $limit
        """,
        params | {"per": per_formulation, "limit": limit},
    )
    return rows, n_all


def _kwic_table(rows: list[dict], table_id: str) -> str:
    # The left context is clipped on its left (the cell is right-to-left, so overflow leaves by
    # the start of the line) while its text runs left to right inside an isolated span: the
    # characters touching the match stay visible. (`unicode-bidi: plaintext` on the cell undid
    # the right-to-left and clipped the characters beside the match instead.)
    body = "".join(
        f'<tr data-f="{escape(r["formulation_id"])}">'
        f'<td class="left"><span dir="ltr">{_e(r["left_context"])}</span></td>'
        f'<td class="match">{_e(r["match"])}</td>'
        f'<td class="right">{_e(r["right_context"])}</td>'
        f'<td class="doc" title="{_e(r["doc_id"])}">{_e(r["title"]) or _e(r["doc_id"])}</td>'
        f'<td class="doc">{_when(r)}</td></tr>'
        for r in rows
    )
    return (
        f'<table id="{table_id}" class="kwic"><colgroup><col style="width:33%">'
        '<col style="width:13%"><col style="width:33%"><col style="width:13%">'
        '<col style="width:8%"></colgroup>'
        '<thead><tr><th class="num">left context</th><th>match</th>'
        "<th>right context</th><th>document</th><th>date</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _kwic_section(con: duckdb.DuckDBPyConnection, out: Path, since: str, s: ReportSettings) -> str:
    """Tonight's mentions first (up to `kwic_tonight`, with how many there are), then the
    archive's, collapsed: the archive-wide concordance made a page 180,000 px tall."""
    tonight, n_tonight = _kwic_rows(con, True, since, s.kwic_tonight, s.kwic_tonight)
    archive, n_archive = _kwic_rows(con, False, since, s.kwic_per_formulation, s.kwic_archive_rows)
    _add_contexts(out, tonight + archive, s.kwic_width)
    html = ['<section id="context"><h2>In context</h2>']
    if not archive:
        html.append('<p class="muted">No formulation mentions.</p></section>')
        return "".join(html)
    options: dict[str, tuple[str, int]] = {}
    for r in tonight + archive:
        options.setdefault(r["formulation_id"], (r["canonical"], r["n_total"]))
    opts = "".join(
        f'<option value="{escape(fid)}">{escape(name)}</option>'
        for fid, (name, _) in sorted(options.items(), key=lambda kv: kv[1][0])
    )
    html.append(
        f'<p class="muted">{s.kwic_width} characters each side; every mention is in the '
        "<code>concordance</code> view of <code>tifa.duckdb</code>, and "
        "<code>tifa kwic TERM</code> prints them in a terminal.</p>"
        '<div class="filters"><label>formulation <select id="kwic-formulation">'
        f'<option value="">all</option>{opts}</select></label>'
        '<label>text <input id="kwic-text" type="search" placeholder="filter rows"></label>'
        f'<span class="muted"><span id="kwic-shown">{len(tonight)}</span> of tonight\'s rows '
        "shown</span></div>"
    )
    html.append(
        f'<h3 id="kwic-tonight">Tonight <span class="pill">{_plural(n_tonight, "mention")}'
        "</span></h3>"
    )
    if tonight:
        if n_tonight > len(tonight):
            html.append(
                f'<p class="muted">The first {len(tonight):,} of {n_tonight:,}, most mentioned '
                "formulation first.</p>"
            )
        html.append(_kwic_table(tonight, "kwic"))
    else:
        html.append('<p class="muted">No formulation mentions in tonight\'s documents.</p>')
        html.append(_kwic_table([], "kwic"))
    html.append(
        f'<details id="kwic-archive-all"><summary>The whole archive: '
        f"{_plural(n_archive, 'mention')} (each formulation's {s.kwic_per_formulation} newest"
        f"{', first ' + format(len(archive), ',') + ' rows' if len(archive) < n_archive else ''}"
        f")</summary>{_kwic_table(archive, 'kwic-archive')}</details>"
    )
    html.append("</section>")
    return "".join(html)


# --------------------------------------------------------------------------------------------
# Pages


def _page(title: str, subtitle: str, nav: str, body: str) -> str:
    template = Template(
        resources.files("pipeline").joinpath("resources/report_template.html").read_text("utf-8")
    )
    return template.substitute(
        title=escape(title), subtitle=subtitle, nav=nav, body=body, version=__version__
    )


def remove_temp_files(out_dir: Path | str) -> None:
    """Remove pages a killed run left half-written (every run calls this, report or not)."""
    folder = Path(out_dir) / REPORTS
    if folder.is_dir():
        for stale in folder.glob(".*.tmp"):
            stale.unlink(missing_ok=True)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, "utf-8")
        checkpoint("report.file")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _index(con: duckdb.DuckDBPyConnection, folder: Path) -> str:
    runs = _rows(con, f"SELECT * FROM {_RUNS} ORDER BY run_id DESC")
    rows = []
    for r in runs:
        name = f"{r['run_id']}.html"
        link = (
            f'<a href="{escape(name)}">{_e(r["run_id"])}</a>'
            if (folder / name).exists()
            else _e(r["run_id"])
        )
        seconds = (r["finished_at"] - r["started_at"]).total_seconds()
        rows.append(
            [
                link,
                _e(r["started_at"]),
                _e(r["n_documents"]),
                _e(r["n_chars"]),
                _e(r["n_skipped"]),
                _e(r["n_replaced"]),
                _e(r["n_errors"]),
                f"{seconds:,.1f}",
            ]
        )
    body = '<section id="runs"><h2>Runs</h2>' + _table(
        ["run", "started", "documents", "characters", "skipped", "replaced", "errors", "s"],
        rows,
        {2, 3, 4, 5, 6, 7},
    )
    return _page("tifa — reports", _plural(len(runs), "run"), "", body + "</section>")


def write_report(out_dir: Path | str, settings: ReportSettings | None = None) -> Path:
    """Write the report of the last completed run in `out_dir` and rewrite the index; returns
    the report's path. Raises ReportError when `out_dir` holds no completed run."""
    out = Path(out_dir)
    s = settings or ReportSettings()
    if not list((out / "runs").glob("part-*.parquet")):
        raise ReportError(f"{out} holds no completed tifa run (no {out / 'runs'}); run tifa first")
    folder = out / REPORTS
    folder.mkdir(parents=True, exist_ok=True)
    remove_temp_files(out)
    t0 = time.perf_counter()
    con = connect_views(out)
    try:
        run = _rows(con, f"SELECT r.*, l.since FROM {_RUNS} r JOIN last_run l USING (run_id)")[0]
        sections = [
            _run_section(con, run, s, out),
            _new_section(con, s),
            _stories_section(con, s),
            _trends_section(con, run["since"], s),
            _usage_section(con, s),
            _kwic_section(con, out, run["since"], s),
        ]
        nav = (
            '<nav><a href="#run">The run</a><a href="#new">New tonight</a>'
            '<a href="#stories">Stories</a><a href="#trends">Trends</a><a href="#usage">Usage</a>'
            '<a href="#context">In context</a>'
            f'<a href="{INDEX}">All runs</a></nav>'
        )
        took = time.perf_counter() - t0
        subtitle = (
            f"{_e(out.resolve())} · run {_e(run['run_id'])} · finished "
            f"{_e(run['finished_at'])} · report built in {took:.2f} s"
        )
        path = folder / f"{run['run_id']}.html"
        # A dated title: what a browser tab, a bookmark and a mail subject show (the run id is
        # in the subtitle and the file name).
        title = f"tifa nightly report — {run['finished_at']:%Y-%m-%d %H:%M} UTC"
        _write_atomic(path, _page(title, subtitle, nav, "".join(sections)))
        _write_atomic(folder / INDEX, _index(con, folder))
    finally:
        con.close()
    return path
