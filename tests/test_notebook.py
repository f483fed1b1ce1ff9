"""notebooks/explore.ipynb executes top to bottom (nbclient, a real kernel) and draws its plots,
from the project root and from notebooks/, on the bundled samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT

nbformat = pytest.importorskip("nbformat", reason="the notebook extra is not installed")
nbclient = pytest.importorskip("nbclient", reason="the notebook extra is not installed")
pytest.importorskip("matplotlib", reason="the notebook extra is not installed")

NOTEBOOK = ROOT / "notebooks" / "explore.ipynb"


def _execute(cwd: Path, out: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TIFA_OUT", str(out))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    ).execute()
    return nb


def _images(nb) -> int:
    return sum(
        1
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    )


def _text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_notebook_runs_from_notebooks_folder_on_the_samples(
    samples_out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = _execute(ROOT / "notebooks", samples_out, monkeypatch)
    assert _images(nb) >= 4  # trends, categories, co-occurrence, people by post
    text = _text(nb)
    assert f"tables in {samples_out}" in text
    assert "undated" in text  # documents without a date are kept


def test_notebook_runs_from_the_root_and_fills_an_empty_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "processed"
    nb = _execute(ROOT, out, monkeypatch)
    assert "running tifa on the bundled samples first" in _text(nb)
    assert (out / "tifa.duckdb").is_file() and list((out / "documents").glob("*.parquet"))
    assert _images(nb) >= 4
