"""The README's code snippets run: every ```python block under *Querying* and every `duckdb …`
command line, on the bundled samples, from a folder where `data/processed` is their output."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text("utf-8")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", README, flags=re.S | re.M)


@pytest.fixture()
def workdir(samples_out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "processed").symlink_to(samples_out, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_python_snippets_run(workdir: Path, samples_out: Path) -> None:
    import pandas as pd

    blocks = _blocks("python")
    assert len(blocks) >= 2
    for block in blocks:
        namespace: dict = {}
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
        assert printed.getvalue().strip(), block
        if "by_year" in namespace:
            by_year = namespace["by_year"]
            # Every mention is counted, undated documents included, and years are integers.
            n_forms = len(pd.read_parquet(samples_out / "formulations"))
            assert by_year.sum() == n_forms
            years = by_year.index.get_level_values("year")
            assert years.isna().any()
            assert all(isinstance(y, int) for y in years.dropna().tolist())


def _duckdb_cli() -> str | None:
    beside = Path(sys.executable).with_name("duckdb")
    return str(beside) if beside.is_file() else shutil.which("duckdb")


@pytest.mark.skipif(_duckdb_cli() is None, reason="no duckdb CLI (pip install duckdb-cli)")
def test_readme_duckdb_commands_run(workdir: Path) -> None:
    commands = [
        line.strip()
        for block in _blocks("bash")
        for line in block.splitlines()
        if line.strip().startswith("duckdb ")
    ]
    assert commands
    for command in commands:
        args = shlex.split(command)
        done = subprocess.run(
            [_duckdb_cli(), *args[1:]], capture_output=True, text=True, timeout=60, cwd=workdir
        )
        assert done.returncode == 0, (command, done.stderr)
        assert done.stdout.count("\n") > 5, (command, done.stdout)


def test_readme_quick_start_runs(workdir: Path) -> None:
    """The quick start's `tifa` lines (the run itself is the fixture's) and its `duckdb` lines,
    which the test above runs."""
    from typer.testing import CliRunner

    from pipeline.cli import app

    start = README.index("## Quick start")
    assert README[:start].count("\n") < 80  # within the first 80 lines
    (block,) = re.findall(r"^```bash\n(.*?)^```", README[start:], flags=re.S | re.M)[:1]
    lines = [line.split("  #")[0].strip() for line in block.splitlines()]
    tifa = [line for line in lines if line.startswith("tifa ")]
    assert len(tifa) >= 3
    for line in tifa:
        args = shlex.split(line.split(" > ")[0])[1:]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, (line, result.output)
        assert result.stdout.strip() or result.output.strip(), line
    assert any(line.startswith("duckdb ") for line in lines)
