"""The typer application every `tifa` command registers on, and the console they print to.

Its own module so that each command module imports it without importing the others."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    help="tifa: raw Chinese political text in, Parquet tables of documents, entities, "
    "formulations (提法) and relations out.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)
