"""`tifa report`, `tifa views` and `tifa kwic`, and the end-of-run summary of `tifa run`.

Registered on the typer app (`cli/app.py`) when `pipeline.cli` imports this module. Commands only
parse arguments and call plain functions (`pipeline.analyst.report`, `.views`, `.kwic`).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from pipeline.cli.app import (
    app,
    check_out_path,
    console,
    environment_failure,
    fail,
)
from pipeline.io.schema import SCHEMAS
from pipeline.io.storage import Store
from pipeline.io.write import table_files, table_parts

_OUT_HELP = "Output folder of `tifa run`."


def _under_lock(out: Path, write: Callable[[], Path]) -> Path:
    """``write()`` holding OUT's lock; exit 3 while a run holds it, 2 when OUT has no run."""
    from pipeline.analyst.report import ReportError
    from pipeline.io.lock import OutputLock, OutputLocked

    check_out_path(out)
    if not out.is_dir():
        # Before the lock, which would create the folder: a mistyped --out leaves nothing.
        console.print(
            f"[red]error:[/red] no such folder {escape(str(out))}: "
            "give the --out folder of `tifa run`"
        )
        raise typer.Exit(2)
    try:
        with OutputLock(out):
            return write()
    except OutputLocked as exc:
        fail(str(exc), 3)
    except ReportError as exc:
        fail(str(exc), 2)
    except Exception as exc:
        what = environment_failure(exc)
        if what is None:
            raise
        fail(what, 1)


def _rows_in(out: Path, table: str) -> int:
    # Parquet footers only: no data is read.

    store = Store(out)
    total = 0
    for name in table_parts(store, table):
        try:
            with store.open_parquet(name) as fh:
                total += fh.metadata.num_rows
        except OSError:
            pass  # replaced by a concurrent writer between listing and reading
    return total


def summary_table(out: Path, summary) -> Table:  # noqa: ANN001 - a runner.RunSummary
    """Every table of OUT: rows written by this run and rows in the archive."""
    table = Table(title=f"tables in {out}", title_justify="left")
    table.add_column("table")
    table.add_column("rows this run", justify="right")
    table.add_column("rows in archive", justify="right")
    for name in SCHEMAS:
        if name in summary.derived_rows:
            this = f"{summary.derived_rows[name]:,} (rebuilt whole)"
        elif name == "runs":
            this = "0" if summary.interrupted else "1"
        else:
            this = f"{summary.rows_written.get(name, 0):,}"
        table.add_row(name, this, f"{_rows_in(out, name):,}")
    return table


def print_outputs(con: Console, summary) -> None:  # noqa: ANN001 - a runner.RunSummary
    """Where the dashboard file and the report are, or why the report is missing."""
    if summary.views_skipped:
        con.print(
            f"no tifa.duckdb or report ({summary.views_skipped}): read the Parquet tables under "
            f"{escape(str(summary.out_dir))} directly"
        )
    if summary.report_unchanged:
        con.print(
            f"nothing new: dashboard views and reports unchanged "
            f"({escape(str(summary.out_dir / 'reports' / 'index.html'))})"
        )
    if summary.views_path:
        con.print(f"dashboard views: {escape(str(summary.views_path))}")
    if summary.report_path:
        con.print(
            f"report: {escape(str(summary.report_path))} ({summary.report_seconds:.1f}s; all runs: "
            f"{escape(str(summary.report_path.parent / 'index.html'))})"
        )
    if summary.report_error:
        con.print(
            "[yellow]warning:[/yellow] the report could not be written "
            f"({escape(str(summary.report_error))}); the tables are complete. Try "
            f"`tifa report --out {escape(str(summary.out_dir))}`."
        )


def print_errors(
    con: Console, out: Path | str, run_id: str, n_errors: int, out_name: str, limit: int = 5
) -> None:
    """This run's errors by type, then the first ``limit`` with their file and message, so the
    morning's reader sees what failed without opening the errors table."""
    from collections import Counter

    store = Store(out)
    rows: list[dict] = []
    for name in table_parts(store, "errors"):
        try:
            with store.open_parquet(name) as fh:
                table = fh.read(columns=["run_id", "source_file", "error_type", "message"])
        except OSError:
            continue  # replaced by a concurrent writer between listing and reading
        rows += [r for r in table.to_pylist() if r["run_id"] == run_id]
    where = f"{out_name}/errors"
    if not rows:
        # Every failure was already listed by an earlier run (errors rows are not repeated).
        con.print(f"{n_errors} errors, listed by earlier runs: see {escape(where)}")
        return
    rows.sort(key=lambda r: (r["error_type"], r["source_file"], r["message"]))
    by_type = Counter(r["error_type"] for r in rows)
    kinds = ", ".join(f"{kind} {n}" for kind, n in by_type.most_common())
    con.print(f"[yellow]{len(rows)} errors[/yellow] ({escape(kinds)}):")
    for r in rows[:limit]:
        con.print(
            f"  {r['error_type']}  {r['source_file']}: {_short(r['message'], 160)}",
            markup=False,
            highlight=False,
        )
    if len(rows) > limit:
        con.print(f"  {len(rows) - limit} more in {escape(where)}")
    else:
        con.print(f"  (all in {escape(where)})")
    if n_errors > len(rows):
        con.print(f"  and {n_errors - len(rows)} failures already listed by earlier runs")


def print_loss_alarm(con: Console, out: Path | str, run_id: str, limit: int = 20) -> None:
    """The loss alarm of run ``run_id``: each document that lost more than the threshold share
    of its prose characters to cleaning, with the reasons (removed_lines holds the lines)."""
    from pipeline.analyst.report import loss_alarms
    from pipeline.normalise.chrome import PROSE_LOSS_ALARM

    n, rows = loss_alarms(out, run_id, limit)
    if not n:
        return
    con.print(
        f"[yellow]loss alarm:[/yellow] {n} documents lost more than {PROSE_LOSS_ALARM:.0%} of "
        f"their prose to cleaning (see removed_lines):"
    )
    for r in rows:
        con.print(
            f"  {r['doc_id']}: {r['prose_removed_share']:.1%} of {r['prose_chars']:,} prose "
            f"characters ({r['prose_removed_reasons']})",
            markup=False,
            highlight=False,
        )
    if n > len(rows):
        con.print(f"  … and {n - len(rows)} more")


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


@app.command()
def report(
    out: Path = typer.Option(Path("data/processed"), "--out", "-o", help=_OUT_HELP),
) -> None:
    """Write the HTML report of the last completed run (OUT/reports/).

    OUT/reports/<run_id>.html and the index of all runs OUT/reports/index.html, each one
    self-contained file that opens offline.

    Sections: the run (documents, characters, time, skipped/replaced, errors by type with
    examples), new tonight (formulations, discovery candidates and person–post pairs first seen
    in the archive), trends (charts of the top formulations and of every category, risers and
    fallers) and in context (a filterable concordance). `tifa run` writes it too, unless
    --no-report. Also rewrites OUT/tifa.duckdb. Waits for no one: exits 3 while a run holds OUT.
    """
    from pipeline.analyst.report import write_report
    from pipeline.analyst.views import write_views

    def write() -> Path:
        path = write_report(out)  # first: it says so when OUT holds no run
        write_views(out)
        return path

    print(_under_lock(out, write))


@app.command()
def views(
    out: Path = typer.Option(Path("data/processed"), "--out", "-o", help=_OUT_HELP),
) -> None:
    """(Re)write OUT/tifa.duckdb, the views dashboards connect to.

    Views over every Parquet table plus trends, new_tonight, people and concordance, for
    Superset, Metabase, Grafana or Evidence.

    The views name the Parquet folders by absolute path: run this again after moving OUT or
    when OUT is mounted at another path (e.g. inside a dashboard's container). `tifa run`
    rewrites the file after every run.
    """
    from pipeline.analyst.views import write_views

    if not table_files(out, "documents"):
        console.print(
            f"[red]error:[/red] {escape(str(out))} holds no tifa tables; run `tifa run` first"
        )
        raise typer.Exit(2)
    print(_under_lock(out, lambda: write_views(out)))


@app.command()
def dedup(
    out: Path = typer.Option(Path("data/processed"), "--out", "-o", help=_OUT_HELP),
    limit: int = typer.Option(20, min=1, help="How many stories to list."),
    min_copies: int = typer.Option(2, min=1, help="Least copies tonight for a story to show."),
) -> None:
    """Tonight's largest stories: syndicated copies of one item found and linked by the run.

    One line per story (cluster): copies written tonight and in the whole archive, how many
    were not run through the NLP (the canonical copy's rows serve), sources, the lowest
    similarity of a copy to the canonical one. The `stories` and `stories_tonight` views hold
    the same for a dashboard.
    """
    from pipeline.analyst.stories import largest_stories, story_totals

    if not table_files(out, "documents"):
        console.print(
            f"[red]error:[/red] {escape(str(out))} holds no tifa tables; run `tifa run` first"
        )
        raise typer.Exit(2)
    totals = story_totals(out)
    console.print(
        f"tonight: {totals['docs_tonight']} documents, {totals['stories_tonight']} stories, "
        f"{totals['derived_tonight']} copies not run through the NLP; archive: "
        f"{totals['docs']} documents, {totals['stories']} stories"
    )
    table = Table("story", "title", "tonight", "all", "derived", "sources", "min sim")
    for r in largest_stories(out, limit, min_copies):
        sim = "" if r["min_similarity"] is None else f"{r['min_similarity']:.2f}"
        table.add_row(
            escape(r["cluster_id"]), escape(r["title"] or ""), str(r["copies_tonight"]),
            str(r["copies_all"]), str(r["n_derived"]), escape("、".join(r["sources"] or [])), sim,
        )  # fmt: skip
    console.print(table)


class KwicFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


_KWIC_COLUMNS = (
    "doc_id",
    "title",
    "published_at",
    "year",
    "left_context",
    "match",
    "right_context",
)


def _print_kwic_rows(rows: list[dict], format: KwicFormat) -> None:  # noqa: A002
    """Rows on stdout, unclipped: a pipe gets every character of context, whatever the width
    of a terminal it has not got."""
    import csv
    import json
    import sys

    if format == KwicFormat.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=_KWIC_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    else:
        for r in rows:
            print(json.dumps({k: r.get(k) for k in _KWIC_COLUMNS}, ensure_ascii=False))


@app.command()
def kwic(
    term: str = typer.Argument(
        ..., help="A formulation (canonical form, id or variant) or any string."
    ),
    out: Path = typer.Option(Path("data/processed"), "--out", "-o", help=_OUT_HELP),
    # No -w: it is --workers in `tifa run`, and one letter means one thing across commands.
    width: int = typer.Option(30, "--width", min=1, help="Characters of context each side."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="Rows to print (newest first)."),
    format: KwicFormat = typer.Option(  # noqa: A002, B008
        KwicFormat.table,
        "--format",
        "-f",
        help="'table' (for the terminal), or 'csv' / 'json' (one object a line) on stdout, "
        "with the whole --width of context, for a spreadsheet or jq.",
    ),
) -> None:
    """Keyword in context: a formulation or any string, with the text either side.

    Each occurrence of TERM with its document and date, newest first. A formulation lists its
    mentions (variants included) from the formulations table; any other string is searched in
    the documents' text.
    """
    from pipeline.analyst.kwic import kwic as find

    try:
        result = find(out, term, width=width, limit=limit)
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    if format != KwicFormat.table:
        _print_kwic_rows(result.rows, format)
        if not result.n_total:
            raise typer.Exit(1)
        return
    what = f"formulation {result.canonical}" if result.kind == "formulation" else f"string {term!r}"
    table = Table(
        # Text, not markup: a term such as [/] is the user's, never a style.
        title=Text(
            f"{what}: {result.n_total:,} occurrence{'' if result.n_total == 1 else 's'}"
            + (f", newest {len(result.rows)} shown" if len(result.rows) < result.n_total else "")
        ),
        title_justify="left",
    )
    # Contexts are cut to what fits a line (a Han character takes two cells), from the match out.
    # Room left beside the match, a 14-character title, the date and the borders.
    screen = Console()
    if screen.is_terminal:
        room = screen.width - 2 * max(len(term), len(result.canonical or "")) - 56
        side = max(4, min(width, room // 4))
    else:
        # A pipe or a file has no width to fit: the whole --width of context, lines as long as
        # they need (it was cut to 4 characters to fit 80 columns nobody was looking at).
        side = width
        screen = Console(width=100_000)
    table.add_column("left", justify="right", no_wrap=True, overflow="crop")
    table.add_column("match", style="bold red", no_wrap=True)
    table.add_column("right", no_wrap=True, overflow="crop")
    table.add_column("document", no_wrap=True)
    table.add_column("date", no_wrap=True)
    for r in result.rows:
        table.add_row(
            Text(r["left_context"][-side:]),
            Text(r["match"]),
            Text(r["right_context"][:side]),
            Text(_short(r["title"] or r["doc_id"], 14)),
            r["published_at"] or (str(r["year"]) if r["year"] else "undated"),
        )
    screen.print(table)
    if not result.n_total:
        raise typer.Exit(1)
