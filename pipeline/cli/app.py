"""The typer application every `tifa` command registers on, the console they print to, and the
checks and messages several commands share.

Its own module so that each command module imports it without importing the others."""

from __future__ import annotations

import errno
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    help="tifa: raw Chinese political text in, Parquet tables of documents, entities, "
    "formulations (提法) and relations out.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)


def check_out_path(out: Path | str) -> None:
    """Refuse, before anything is written, an output folder whose path DuckDB cannot be told to
    read literally (its views, the derived tables and the report read it through DuckDB)."""
    from pipeline.io.storage import UnreadablePath, check_duckdb_folder, is_url

    if is_url(out):
        return
    try:
        check_duckdb_folder(str(Path(out).resolve()))
    except UnreadablePath as exc:
        console.print(f"[red]error:[/red] --out: {escape(str(exc))}")
        raise typer.Exit(2) from None


def environment_failure(exc: BaseException) -> str | None:
    """What failed in the environment, for the failures that are not OSError/MemoryError:
    DuckDB's I/O and memory errors, a pool worker that died; None for anything else."""
    from concurrent.futures.process import BrokenProcessPool

    if isinstance(exc, BrokenProcessPool):
        return (
            "a worker process died (killed by a signal or by the system, often for lack of "
            "memory: try fewer --workers)"
        )
    if isinstance(exc, ImportError) and any(
        m in str(exc) for m in ("failed to map segment", "Cannot allocate memory")
    ):
        # Under a memory limit (ulimit -v) a library loaded late (DuckDB for the derived
        # tables) cannot even be mapped.
        return f"out of memory while loading a library ({str(exc).strip()[-160:]})"
    if type(exc).__module__.lstrip("_").startswith("duckdb"):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if type(exc).__name__ == "OutOfMemoryException":
            return f"out of memory in DuckDB ({first})"
        if type(exc).__name__ in ("IOException", "FatalException"):
            # FatalException: DuckDB's write of a checkpoint failed (file too large, disk full).
            return f"DuckDB could not read or write a file ({first})"
    return None


def _environment_message(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "out of memory (try fewer --workers or a smaller --batch-size)"
    if exc.errno == errno.ENOSPC:
        what = "disk full"
    elif exc.errno == errno.EDQUOT:
        what = "disk quota exceeded"
    else:
        what = exc.strerror or type(exc).__name__
    where = f" while writing {exc.filename}" if getattr(exc, "filename", None) else ""
    return f"{what}{where}" if exc.strerror or where else f"{what}: {exc}"
