"""`tifa lexicon …`: the analyst's review loop over discovered formulations (candidates, accept,
reject, apply). The work is in analyst/lexicon_review.py and run/backfill.py."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from pipeline.cli.app import app, console, fail

lexicon_app = typer.Typer(
    help="Review discovered formulations: list candidates, accept or reject them (into "
    "OUT/lexicon/user_formulations.yaml, merged into every later run), back-fill the archive.",
    no_args_is_help=True,
)
app.add_typer(lexicon_app, name="lexicon")

_OUT_HELP = "The output folder of `tifa run` (its user lexicon is OUT/lexicon/)."


@lexicon_app.command("candidates")
def candidates_cmd(
    out: Path = typer.Option(Path("data/processed"), "--out", "-o", help=_OUT_HELP),
    limit: int = typer.Option(30, "--limit", "-n", min=1, help="How many, best first."),
) -> None:
    """List the discovered candidates, ranked, with their best example sentence.

    Ranked by the calibrated score (the chance an analyst adds it); candidates accepted or
    rejected since the last run are left out."""
    from pipeline.analyst.lexicon_review import candidates

    try:
        rows = candidates(out, limit)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc), 2)
    table = Table(title=Text(f"{len(rows)} candidates in {out}"), title_justify="left")
    for col in ("rank", "term", "pattern", "score", "docs", "mentions", "example"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            str(r["rank"]),
            Text(r["text"]),
            r["pattern"],
            f"{r['score']:.2f}",
            str(r["n_docs"]),
            str(r["n_mentions"]),
            Text(_around(" ".join(r["example_sentence"].split()), r["text"])),
        )
    console.print(table)
    if rows:
        console.print(f"accept one: tifa lexicon accept {escape(rows[0]['text'])} --out {out}")


def _around(sentence: str, term: str, side: int = 18) -> str:
    at = max(sentence.find(term), 0)
    lo, hi = max(0, at - side), min(len(sentence), at + len(term) + side)
    return ("…" if lo else "") + sentence[lo:hi] + ("…" if hi < len(sentence) else "")


@lexicon_app.command("accept")
def accept_cmd(
    term: str = typer.Argument(..., help="The formulation to add (its canonical form)."),
    out: Path = typer.Option(Path("data/processed"), "--out", "-o", help=_OUT_HELP),
    category: str = typer.Option(
        None,
        "--category",
        "-c",
        help="Its category (leadership_core, ideology, development_strategy, party_building, "
        "governance, economy, social_policy, foreign_affairs, defense, meetings_and_plans; "
        "default governance).",
    ),
    variant: list[str] = typer.Option(  # noqa: B008
        None, "--variant", help="Another surface form (repeat for several)."
    ),
    gloss: str = typer.Option("", "--gloss", help="A one-line English explanation."),
) -> None:
    """Add TERM to OUT's user lexicon (a formulation from now on).

    Later runs match it; `tifa run --force --only formulations --out OUT` back-fills its
    mentions over the whole archive now."""
    from pipeline.analyst.lexicon_review import accept

    try:
        done = accept(out, term, category, variant or [], gloss)
    except (ValueError, OSError) as exc:
        fail(" ".join(str(exc).split()), 2)
    e = done.entry
    console.print(
        f"accepted {escape(e['canonical'])} ({e['category']}, id {e['id']}) into {done.path}"
        + (" (it was rejected before)" if done.was_rejected else "")
    )
    console.print(f"back-fill the archive: tifa run --force --only formulations --out {out}")


@lexicon_app.command("reject")
def reject_cmd(
    term: str = typer.Argument(..., help="The candidate to turn down."),
    out: Path = typer.Option(Path("data/processed"), "--out", "-o", help=_OUT_HELP),
) -> None:
    """Turn TERM down: it is never proposed again.

    Written to the `rejected` list of OUT's user lexicon; an accepted entry of TERM is removed."""
    from pipeline.analyst.lexicon_review import reject

    try:
        path, removed = reject(out, term)
    except (ValueError, OSError) as exc:
        fail(" ".join(str(exc).split()), 2)
    extra = " (its accepted entry removed)" if removed else ""
    console.print(f"rejected {escape(term.strip())} in {path}{extra}")


@lexicon_app.command("apply")
def apply_cmd(
    out: Path = typer.Option(Path("data/processed"), "--out", "-o", help=_OUT_HELP),
    lexicon: Path = typer.Option(
        None, exists=True, dir_okay=False, help="Formulation lexicon YAML (default: bundled)."
    ),
    nested_formulations: bool = typer.Option(
        False, help="Also keep formulation mentions nested inside longer ones."
    ),
    no_report: bool = typer.Option(False, "--no-report", help="Do not rewrite the report."),
) -> None:
    """Back-fill the archive's formulations with the current lexicon, without the NLP.

    Rewrites the formulations and formulation_usage tables from documents.text (packaged +
    user lexicon), then the derived tables, views and report. The same as `tifa run --force
    --only formulations`."""
    run_backfill(out, lexicon, nested_formulations, not no_report)


def run_backfill(out: Path, lexicon: Path | None, nested: bool, report: bool) -> None:
    from pipeline.io.lock import OutputLocked
    from pipeline.run.backfill import backfill_formulations

    try:
        s = backfill_formulations(out, str(lexicon) if lexicon else None, nested, report)
    except OutputLocked as exc:
        fail(str(exc), 3)
    except (FileNotFoundError, ValueError) as exc:
        fail(" ".join(str(exc).split()), 2)
    for note in s.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
    gained = ", ".join(f"{k} {v:+d}" for k, v in s.gained.most_common(10) if v)
    console.print(
        f"formulations back-filled over {s.n_documents:,} documents ({s.n_parts} parts): "
        f"{s.mentions_before:,} → {s.mentions_after:,} mentions, {s.usage_after:,} usage rows"
        f" in {s.seconds:.1f}s" + (f"; changed: {escape(gained)}" if gained else "")
    )
    if s.report_path:
        console.print(f"report: {s.report_path}")
