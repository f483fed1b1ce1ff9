"""Shared fixtures: real inputs, real models, real Parquet output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SEEDS = SHARED / "seeds"
DEV = SHARED / "corpora" / "dev"
NER = SHARED / "corpora" / "ner"
SAMPLES = ROOT / "data" / "raw"


def seed_path(prefix: str) -> Path:
    matches = sorted(SEEDS.glob(f"{prefix}_*.txt")) if SEEDS.is_dir() else []
    if not matches:
        pytest.skip(f"seed {prefix} not available in ../shared/seeds")
    return matches[0]


@pytest.fixture(scope="session")
def seeds_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real run over both seeds (copied into a temp input folder)."""
    src = [seed_path("000"), seed_path("004")]
    inputs = tmp_path_factory.mktemp("seed_inputs")
    for p in src:
        shutil.copy(p, inputs / p.name)
    out = tmp_path_factory.mktemp("seed_out")
    from pipeline.runner import run_pipeline

    run_pipeline([inputs], out)
    return out


@pytest.fixture(scope="session")
def samples_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real run over the bundled samples in data/raw."""
    out = tmp_path_factory.mktemp("samples_out")
    from pipeline.runner import run_pipeline

    run_pipeline([SAMPLES], out)
    return out
