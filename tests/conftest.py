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


def txt_doc_id(path: Path) -> str:
    """The doc_id tifa gives a .txt file: its stem and a hash of its text (`--id-from
    content`), read through tifa's own reader so the file's encoding is decoded as a run
    decodes it."""
    from pipeline.io.ingest import iter_documents

    (doc,) = list(iter_documents([path]))
    return doc.doc_id


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
    from pipeline.run.runner import run_pipeline

    run_pipeline([inputs], out)
    return out


@pytest.fixture(scope="session")
def samples_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real run over the bundled samples in data/raw."""
    out = tmp_path_factory.mktemp("samples_out")
    from pipeline.run.runner import run_pipeline

    run_pipeline([SAMPLES], out)
    return out


# Years of the CPC national congresses (the dev corpus gives only the congress number).
CONGRESS_YEARS = {
    1: 1921, 2: 1922, 3: 1923, 4: 1925, 5: 1927, 6: 1928, 7: 1945, 8: 1956, 9: 1969, 10: 1973,
    11: 1977, 12: 1982, 13: 1987, 14: 1992, 15: 1997, 16: 2002, 17: 2007, 18: 2012, 19: 2017,
    20: 2022,
}  # fmt: skip


def load_dev_documents(dev: Path = DEV) -> list[tuple[str, int, str]]:
    """(doc_id, year, raw text) for every document of the dev corpus (no pytest needed)."""
    import csv
    import json
    import sys

    docs = []
    with open(dev / "cpc_congress_reports.jsonl", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            rec = json.loads(line)
            docs.append((f"congress-{i}", CONGRESS_YEARS[rec["congress"]], rec["content"]))
    csv.field_size_limit(sys.maxsize)
    with open(dev / "xi_speeches_2020.csv", encoding="utf-8", newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            docs.append((f"xi-{i}", int(row["Date"][:4]), row["Text"]))
    return docs


def load_dev_sentences(dev: Path = DEV) -> list[str]:
    """Dev corpus sentences split on 。！？ and newlines, empty ones dropped."""
    import re

    split = re.compile(r"[。！？\n]")
    return [s for _, _, doc in load_dev_documents(dev) for s in split.split(doc) if s.strip()]


def dev_documents() -> list[tuple[str, int, str]]:
    """load_dev_documents(), skipping the test when ../shared is absent."""
    if not DEV.is_dir():
        pytest.skip("dev corpus not available in ../shared/corpora/dev")
    return load_dev_documents()
