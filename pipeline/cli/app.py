"""The typer application every `tifa` command registers on, the console they print to, and the
checks and messages several commands share.

Its own module so that each command module imports it without importing the others."""

from __future__ import annotations

import errno
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer._click import exceptions as click_errors  # typer's own copy of click's
from typer.core import TyperGroup


class _OneLineErrors(TyperGroup):
    """typer's group, except that a usage mistake (an unknown option, a value not among the
    choices, a missing argument) is one line and exit 2 like every other mistake tifa finds,
    not typer's boxed usage panel: a nightly job's log is read line by line."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_errors.NoArgsIsHelpError as exc:
            exc.show()  # `tifa` alone: the help, as before
            sys.exit(exc.exit_code)
        except click_errors.ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            # typer words a refused choice as pydantic does ("Value error, 'x' is not one of").
            message = exc.format_message().replace("Value error, ", "")
            console.print(f"[red]error:[/red] {escape(message)}{escape(hint)}")
            sys.exit(exc.exit_code)
        except typer.Abort:
            console.print("aborted")
            sys.exit(1)
        # Non-standalone click returns a command's typer.Exit code (None: success).
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_OneLineErrors,
    help="tifa: raw Chinese political text in, Parquet tables of documents, entities, "
    "formulations (提法) and relations out.",
    no_args_is_help=True,
    add_completion=False,
)
# soft_wrap: a message stays one line however narrow the terminal (logs are grepped by line).
console = Console(stderr=True, soft_wrap=True)


def _print_version(value: bool) -> None:
    if not value:
        return
    from pipeline import __version__  # the version the runs table and the report record

    print(f"tifa {__version__}")
    raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """tifa: raw Chinese political text in, Parquet tables of documents, entities, formulations
    (提法) and relations out."""


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


def fail(message: str, code: int) -> NoReturn:
    """End the command: one error line (the message escaped for rich markup) and its exit code
    (2 a usage mistake, 3 the output is locked, 1 anything else)."""
    console.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def environment_failure(exc: BaseException) -> str | None:
    """What failed in the environment, in a few words: the disk or memory (OSError,
    MemoryError), DuckDB's I/O and memory errors, a pool worker that died; None for anything
    else (a bug, whose traceback is wanted)."""
    from concurrent.futures.process import BrokenProcessPool

    if isinstance(exc, OSError | MemoryError):
        return _os_failure(exc)
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


def _os_failure(exc: OSError | MemoryError) -> str:
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
