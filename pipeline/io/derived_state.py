"""Whether the derived tables of an output folder are already those of its batch tables.

The derived tables (formulation_counts, formulation_candidates, people, persons) are a pure
function of the batch tables, the lexicon, the resource files and the code. A nightly rerun over
unchanged input writes no batch file, so rebuilding them would give the same tables again; it
also cost most of such a run (DuckDB, spaCy for the person rules, pandas through pyarrow). After
each rebuild `DIR/_derived.json` records what they were built from (names, sizes and
modification times of those files) and the files they were written to; a run whose inputs and
outputs still match skips the rebuild. Anything else (a new or rewritten part file, an edited
lexicon or rule file, a new tifa version, a derived file touched or removed, a run killed during
the rebuild) does not match, so the tables are rebuilt as before.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pipeline import __version__
from pipeline.io.schema import BATCH_TABLES, DERIVED_TABLES

STATE_FILE = "_derived.json"
TMP_FILE = f".{STATE_FILE}.tmp"
PACKAGE = Path(__file__).resolve().parent.parent


def _stats(paths: list[Path]) -> list[tuple[str, int, int]]:
    out = []
    for p in sorted(paths):
        try:
            st = p.stat()
        except OSError:
            continue
        out.append((str(p), st.st_size, st.st_mtime_ns))
    return out


def inputs_fingerprint(
    out: Path, lexicon: str | os.PathLike | None, user_lexicon: str | os.PathLike | None = None
) -> str:
    """A hash of everything the derived tables are built from (the user lexicon included: an
    accepted or rejected term changes the candidates)."""
    files = [f for table in BATCH_TABLES for f in (out / table).glob("part-*.parquet")]
    code = [*PACKAGE.rglob("*.py"), *PACKAGE.glob("resources/*")]
    extra = [Path(p) for p in (lexicon, user_lexicon) if p]
    parts = [__version__, str(lexicon), _stats(files), _stats(code + extra)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _outputs(out: Path) -> list[tuple[str, int, int]]:
    return _stats([f for t in DERIVED_TABLES for f in (out / t).glob("*.parquet")])


def up_to_date(out: Path, fingerprint: str) -> dict[str, int] | None:
    """The row counts of the derived tables when they are current for `fingerprint`, else None."""
    (out / TMP_FILE).unlink(missing_ok=True)  # left by a run killed inside `record`
    try:
        state = json.loads((out / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("inputs") != fingerprint:
        return None
    outputs = _outputs(out)
    if len(outputs) != len(DERIVED_TABLES) or state.get("outputs") != [list(o) for o in outputs]:
        return None
    rows = state.get("rows")
    return rows if isinstance(rows, dict) else None


def record(out: Path, fingerprint: str, rows: dict[str, int]) -> None:
    """Record that the derived tables now on disk were built from `fingerprint`."""
    state = {"inputs": fingerprint, "outputs": _outputs(out), "rows": rows}
    tmp = out / TMP_FILE
    tmp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(tmp, out / STATE_FILE)
