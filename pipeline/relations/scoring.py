"""How a relation row is compared with a gold row (tifa evaluate-relations).

Two conventions differ between gold sets without changing the fact a row states:
* script: the pipeline writes simplified Chinese; a gold set written over a traditional source
  keeps the traditional characters (周恩來, 國務院). Both sides are compared after OpenCC t2s.
* one name per person: a head written as an alias (毛主席) and its canonical name (毛泽东) are
  the same person; heads are compared by the alias table of pipeline/persons.py.
* a body written into the title: "国务院总理" at 国务院 and "总理" at 国务院 are one post; so are
  "政治局常委" and "中央政治局常委" at 中共中央政治局. A role is compared without its longest
  leading part (two characters or more, leaving two or more) that the tail already names.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any


@functools.cache
def _t2s(text: str) -> str:
    """Simplified, without spaces, punctuation of one width (（试行） = (试行): normalisation
    writes brackets full-width inside Chinese text, a gold set may keep the page's)."""
    from pipeline.normalise import _converter

    return unicodedata.normalize("NFKC", "".join(_converter().convert(text).split()))


def canonical_role(role: str | None, tail: str) -> str | None:
    if not role:
        return role
    for cut in range(len(role) - 2, 1, -1):
        if role[:cut] in tail:
            return role[cut:]
    return role


def relation_key(r: dict[str, Any]) -> tuple[str, str, str, str, str | None]:
    """(doc_id, relation, head, tail, role) in the form two conventions agree on."""
    tail = _t2s(r["tail"])
    role = _t2s(r["role"]) if r.get("role") else None
    head = _t2s(r["head"])
    if r["relation"] != "issues":
        from pipeline.persons import get_person_names

        head = get_person_names().aliases.get(head, head)
    if role and role.startswith(_COMMITTEES) and len(role) > 2 and not tail.endswith(role[:2]):
        # 党委书记 at 浙江大学 = 书记 at 浙江大学党委: one fact, two ways to write it.
        tail, role = tail + role[:2], role[2:]
    return (r["doc_id"], r["relation"], head, tail, canonical_role(role, tail))


_COMMITTEES = ("党委", "党组")


def suggested(right: int, rows: int) -> float:
    """Laplace-smoothed precision rounded down to 0.05; at most 0.75 below 10 rows."""
    value = int((right + 1) / (rows + 2) * 20) / 20
    return min(value, 0.75) if rows < 10 else value


def calibrate(data: Path, sets: list[str]) -> dict[str, Any]:
    """Per (rule, resolved_from): rows produced on the gold sets `data/<set>_{docs,gold}.jsonl`,
    rows right, precision, and the confidence the rules file gives; and the precision of all
    rows at confidence >= 0.8."""
    from pipeline.evaluate import extract_relations_for_records
    from pipeline.relations.scoring import relation_key

    n: Counter[str] = Counter()
    right: Counter[str] = Counter()
    conf: dict[str, float] = {}
    high_n = high_right = 0
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
