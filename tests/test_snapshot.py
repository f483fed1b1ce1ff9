"""Every table of a run on the bundled samples equals the stored snapshot (row counts and a hash
of each table's sorted rows): speed work must not change a single row.

A deliberate change of output (new samples, new rules, a retrained model) regenerates it with

    TIFA_UPDATE_SNAPSHOT=1 .venv/bin/pytest tests/test_snapshot.py

and the diff of tests/data/samples_snapshot.json shows which tables changed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import SAMPLES
from tests.table_hashes import compare, table_digests

SNAPSHOT = Path(__file__).parent / "data" / "samples_snapshot.json"


def test_samples_tables_match_snapshot(samples_out: Path) -> None:
    got = table_digests(samples_out, input_root=SAMPLES)
    if os.environ.get("TIFA_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    diff = compare(expected, got)
    assert not diff, (
        "tables differ from tests/data/samples_snapshot.json (regenerate deliberately with "
        "TIFA_UPDATE_SNAPSHOT=1 pytest tests/test_snapshot.py):\n" + "\n".join(diff)
    )
