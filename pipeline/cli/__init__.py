"""The `tifa` command line (the top layer: it may import every other package, none imports it).

Commands only parse and validate arguments and call plain functions of the packages below, which
a notebook imports just as well. `app` holds the typer application; importing the command
modules registers their commands on it.
"""

from __future__ import annotations

from pipeline.cli import analyst, commands, lexicon  # noqa: F401 - registers the commands
from pipeline.cli.app import app, console

__all__ = ["app", "console", "main"]


def main() -> None:
    app()
