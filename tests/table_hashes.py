"""Row counts and a hash of every table's sorted rows, for one `tifa run --out` folder.

Used by `tests/test_snapshot.py` (the bundled samples against `tests/data/samples_snapshot.json`)
and as a script to check that two output folders hold the same tables (optimisations must not
change a single row):

    python tests/table_hashes.py OUT_A OUT_B     # exit 1 and name the tables that differ
    python tests/table_hashes.py OUT             # print the digests

Columns that differ between two runs of the same input by design (the run id and times, the
number of workers) are left out; `source_file` is made relative to the input folder when one is
given, so the snapshot does not depend on where the checkout lives.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

# Differ between two runs of identical input: not part of a table's content.
VOLATILE_COLUMNS = frozenset(
    {"run_id", "started_at", "finished_at", "workers", "first_run", "last_run"}
)

# Depend on which run wrote which document, by design: discovery compares tonight's documents
# (the last run's) with the archive's (issue 28: burst and novelty), so an archive built over
# several nights ranks its candidates differently from the same documents written at once.
# Comparisons across run histories leave these columns and the burst rows out.
HISTORY_COLUMNS = {"formulation_candidates": frozenset({"rank", "score", "archive_docs", "burst"})}


def without_history(table: str, row: dict[str, Any]) -> dict[str, Any] | None:
    """`row` without its history-dependent columns; None for a row that exists only because of
    the run history (a burst term)."""
    cols = HISTORY_COLUMNS.get(table)
    if not cols:
        return row
    if row.get("pattern") == "burst":
        return None
    return {k: v for k, v in row.items() if k not in cols}


def _canonical(value: Any) -> Any:
    """A JSON-serialisable form of a Parquet value that is stable across runs."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)  # exact: a changed last digit is a changed row
    if isinstance(value, bytes):
        return value.hex()  # a story signature
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in sorted(value.items())}
    return value


def table_digests(
    out: str | Path, input_root: str | Path | None = None, across_runs: bool = False
) -> dict[str, dict]:
    """{table: {"rows": n, "sha256": hash of its sorted rows}} for every table under `out`;
    `across_runs`: for comparing archives written over different runs (HISTORY_COLUMNS)."""
    import pyarrow.parquet as pq

    out = Path(out)
    prefix = str(input_root).rstrip("/") + "/" if input_root is not None else None
    digests: dict[str, dict] = {}
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("_")):
        rows: list[str] = []
        for part in sorted(folder.glob("*.parquet")):
            for row in pq.read_table(part).to_pylist():
                if across_runs and (row := without_history(folder.name, row)) is None:
                    continue
                kept = {k: _canonical(v) for k, v in sorted(row.items())}
                for k in VOLATILE_COLUMNS & kept.keys():
                    del kept[k]
                src = kept.get("source_file")
                if prefix and isinstance(src, str) and src.startswith(prefix):
                    kept["source_file"] = src[len(prefix) :]
                rows.append(json.dumps(kept, ensure_ascii=False, sort_keys=True))
        rows.sort()
        digest = hashlib.sha256("\n".join(rows).encode("utf-8")).hexdigest()
        digests[folder.name] = {"rows": len(rows), "sha256": digest}
    return digests


def compare(a: dict[str, dict], b: dict[str, dict]) -> list[str]:
    """Lines naming each table whose rows differ between two digests (empty: identical)."""
    return [
        f"{t}: {a.get(t)} != {b.get(t)}"
        for t in sorted(a.keys() | b.keys())
        if a.get(t) != b.get(t)
    ]


def main(argv: list[str]) -> int:
    if len(argv) == 1:
        print(json.dumps(table_digests(argv[0]), indent=2))
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    diff = compare(table_digests(argv[0]), table_digests(argv[1]))
    for line in diff:
        print(line)
    if not diff:
        print("identical: every table has the same rows")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
