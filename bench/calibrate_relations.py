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
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETS = ["relations", "relations_heldout", "relations_blind2", "relations_blind3"]


def suggested(right: int, rows: int) -> float:
    """Laplace-smoothed precision rounded down to 0.05; at most 0.75 below 10 rows."""
    value = int((right + 1) / (rows + 2) * 20) / 20
    return min(value, 0.75) if rows < 10 else value


def calibrate(sets: list[str]) -> dict[str, Any]:
    from pipeline.evaluate import extract_relations_for_records
    from pipeline.relations.scoring import relation_key

    n: Counter[str] = Counter()
    right: Counter[str] = Counter()
    conf: dict[str, float] = {}
    high_n = high_right = 0
    data = ROOT / "tests" / "data"
    for name in sets:
        docs = [
            json.loads(x)
            for x in (data / f"{name}_docs.jsonl").read_text("utf-8").splitlines()
            if x.strip()
        ]
        gold = {
            relation_key(json.loads(x))
            for x in (data / f"{name}_gold.jsonl").read_text("utf-8").splitlines()
            if x.strip()
        }
        seen = set()
        for row in extract_relations_for_records(docs):
            key = relation_key(row)
            if key in seen:
                continue
            seen.add(key)
            rule = row["rule"] + (f"/{row['resolved_from']}" if row["resolved_from"] else "")
            n[rule] += 1
            ok = key in gold
            right[rule] += ok
            conf[rule] = row["confidence"]
            if row["confidence"] >= 0.8 - 1e-6:
                high_n += 1
                high_right += ok
    rules = {
        r: {
            "rows": n[r],
            "right": right[r],
            "precision": round(right[r] / n[r], 3),
            "smoothed": round((right[r] + 1) / (n[r] + 2), 3),
            "confidence": round(conf[r], 3),
            "suggested": suggested(right[r], n[r]),
        }
        for r in sorted(n)
    }
    return {
        "sets": sets,
        "rules": rules,
        "rows_at_0.8": high_n,
        "precision_at_0.8": round(high_right / high_n, 4) if high_n else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(DEFAULT_SETS))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = calibrate([s for s in args.sets.split(",") if s])
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
