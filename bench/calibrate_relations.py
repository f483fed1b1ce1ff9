"""Confidence calibration of relation rules: precision per rule on the gold sets.

    python bench/calibrate_relations.py [--sets relations,relations_heldout,...] [--json]

For every (rule, resolved_from) the extractor uses, prints how many rows it produced on the gold
sets, how many were right, the measured precision and the confidence relation_rules.yaml gives;
then the precision of all rows at confidence >= 0.8 (the promise: >= 0.95). The confidence table
in relation_rules.yaml is set from these figures (Laplace-smoothed precision, rounded down to
0.05; rules seen fewer than 10 times get at most 0.75).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipeline.evaluate.relations import calibrate

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETS = [
    "relations",
    "relations_heldout",
    *(f"relations_blind{i}" for i in range(2, 14)),
]


def write_table(report: dict[str, Any], path: Path) -> None:
    """Replace the `confidence:` block of relation_rules.yaml with the suggested values."""
    lines = path.read_text("utf-8").splitlines()
    start = lines.index("confidence:")
    end = start + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    block = ["  default: 0.5"] + [
        f"  {rule}: {r['suggested']}" for rule, r in report["rules"].items()
    ]
    path.write_text("\n".join(lines[: start + 1] + block + lines[end:]) + "\n", "utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(DEFAULT_SETS))
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--write", action="store_true", help="write the suggested values into the rules file"
    )
    args = parser.parse_args()
    report = calibrate(ROOT / "tests" / "data", [s for s in args.sets.split(",") if s])
    if args.write:
        write_table(report, ROOT / "pipeline" / "resources" / "relation_rules.yaml")
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    print(f"{'rule':40} {'rows':>5} {'right':>5} {'prec':>6} {'smooth':>6} {'sugg':>5} {'conf':>5}")
    for rule, r in report["rules"].items():
        print(
            f"{rule:40} {r['rows']:5d} {r['right']:5d} {r['precision']:6.3f} "
            f"{r['smoothed']:6.3f} {r['suggested']:5.2f} {r['confidence']:5.2f}"
        )
    high, precision = report["rows_at_0.8"], report["precision_at_0.8"]
    print(f"rows at confidence >= 0.8: {high}, precision {precision}")


if __name__ == "__main__":
    main()
