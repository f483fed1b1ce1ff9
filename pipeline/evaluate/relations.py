"""How a relation row is compared with a gold row (tifa evaluate-relations).

Two conventions differ between gold sets without changing the fact a row states:
* script: the pipeline writes simplified Chinese; a gold set written over a traditional source
  keeps the traditional characters (周恩來, 國務院). Both sides are compared after OpenCC t2s.
* one name per person: a head written as an alias (毛主席) and its canonical name (毛泽东) are
  the same person; heads are compared by the alias table of pipeline/extract/persons.py.
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

import regex
import yaml

from pipeline.core.vocabulary import RelationName
from pipeline.evaluate.scores import prf_report


@functools.cache
def _t2s(text: str) -> str:
    """Simplified, without spaces, punctuation of one width (（试行） = (试行): normalisation
    writes brackets full-width inside Chinese text, a gold set may keep the page's)."""
    from pipeline.normalise import _converter

    return unicodedata.normalize("NFKC", "".join(_converter().convert(text).split()))


Key = tuple[str, str, str, str, str | None]

_SITTING_AT_END = regex.compile(
    r"(?:的)?(?:第[〇零一二三四五六七八九十百\d]+次全体会议|主席团(?:第[〇零一二三四五六七八九十百\d]+次)?会议"
    r"|开幕会|闭幕会|开幕大会|闭幕大会|开幕式|闭幕式)$"
)
_PLACE_BEFORE_BODY = regex.compile(
    r"^\p{Han}{2,6}?(?=(?:省|市|县|区)(?:政府|人民政府|人大|政协|委))"
)
_SITTING = regex.compile(
    r"(?:的)?(?:第[〇零一二三四五六七八九十百\d]+次全体会议|全体会议|开幕会|闭幕会|开幕式|闭幕式)$"
)
_SESSION_ROLES = ("常务主席", "执行主席")
_EVENTS = {RelationName.CHAIRS, RelationName.ATTENDS, RelationName.ADDRESSES}


def set_conventions(gold_path: Path) -> int:
    """The conventions a gold file was written under (relation_sets.yaml beside it; 2 if absent)."""
    table_path = gold_path.parent / "relation_sets.yaml"
    if not table_path.exists():
        return 2
    table = yaml.safe_load(table_path.read_text("utf-8")) or {}
    name = gold_path.name.removesuffix("_gold.jsonl")
    return int(table.get(name, {}).get("conventions", 2))


def convention_key(key: Key, conventions: int) -> Key | None:
    """`key` as a set written under `conventions` states it; None: a class the set does not
    annotate (a predicted row of it is neither right nor wrong there)."""
    if conventions >= 2:
        return key
    doc, rel, head, tail, role = key
    if rel == RelationName.HOLDS_POSITION and (
        role in _SESSION_ROLES
        or tail.endswith("主席团")
        or (role == "秘书长" and tail.endswith("会议"))
    ):
        return None
    if rel in _EVENTS:
        folded = _SITTING.sub("", tail)
        if len(folded) >= 4:
            tail = folded
    return (doc, rel, head, tail, role)


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
    if r["relation"] != RelationName.ISSUES:
        from pipeline.extract.persons import get_person_names

        head = get_person_names().aliases.get(head, head)
    if role and role.startswith(_COMMITTEES) and len(role) > 2 and not tail.endswith(role[:2]):
        # 党委书记 at 浙江大学 = 书记 at 浙江大学党委: one fact, two ways to write it.
        tail, role = tail + role[:2], role[2:]
    if r["relation"] in _EVENTS:
        tail = meeting_identity(tail)
    elif tail.endswith(_PRESIDIUM) or tail.endswith("会议"):
        # a session's presidium or officers: the session by its identity
        body = tail.removesuffix(_PRESIDIUM)
        same = meeting_identity(body)
        if same != body:
            tail = same + (_PRESIDIUM if tail.endswith(_PRESIDIUM) else "")
    return (r["doc_id"], r["relation"], head, tail, canonical_role(role, tail))


def meeting_identity(name: str) -> str:
    """One meeting, many names: a numbered session is its body's kind and its numbers, with the
    sitting written after it ("十四届全国人大二次会议开幕会" = "中华人民共和国第十四届全国人民代表
    大会第二次会议开幕会" = "npc:十四-二:开幕会"); any other meeting is its name."""
    from pipeline.extract.relations import get_extractor

    extractor = get_extractor()
    sitting = ""
    m = _SITTING_AT_END.search(name)
    if m is not None:
        sitting = m.group().removeprefix("的")
    session = name[: m.start()] if m is not None else name
    key = extractor.meeting_names.key(session)
    if key is None:
        # "青岛市政府第五十六次常务会议" = "市政府第五十六次常务会议": the place before a body
        # that names its level again is no part of the meeting's identity.
        return _PLACE_BEFORE_BODY.sub("", name)
    numbers, kind = key
    digits = "-".join(_arabic(n) for n in numbers)
    return f"{kind}:{digits}:{sitting}"


_DIGITS = {c: i for i, c in enumerate("〇一二三四五六七八九")} | {"零": 0, "两": 2}


def _arabic(number: str) -> str:
    """十四 → 14, 二 → 2, 14 → 14 (session numbers written either way)."""
    if number.isdigit():
        return str(int(number))
    total, current = 0, 0
    for ch in number:
        if ch in _DIGITS:
            current = _DIGITS[ch]
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        elif ch == "百":
            total += (current or 1) * 100
            current = 0
    return str(total + current)


_COMMITTEES = ("党委", "党组")
_PRESIDIUM = "主席团"


def suggested(right: int, rows: int) -> float:
    """Laplace-smoothed precision rounded down to 0.05; at most 0.75 below 10 rows."""
    value = int((right + 1) / (rows + 2) * 20) / 20
    return min(value, 0.75) if rows < 10 else value


def calibrate(data: Path, sets: list[str]) -> dict[str, Any]:
    """Per (rule, resolved_from): rows produced on the gold sets `data/<set>_{docs,gold}.jsonl`,
    rows right, precision, and the confidence the rules file gives; and the precision of all
    rows at confidence >= 0.8."""
    from pipeline.evaluate.relations import extract_relations_for_records, relation_key

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
        conventions = set_conventions(data / f"{name}_gold.jsonl")
        gold = {
            k
            for x in (data / f"{name}_gold.jsonl").read_text("utf-8").splitlines()
            if x.strip() and (k := convention_key(relation_key(json.loads(x)), conventions))
        }
        seen = set()
        for row in extract_relations_for_records(docs):
            key = convention_key(relation_key(row), conventions)
            if key is None or key in seen:
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


def extract_relations_for_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the real stages (normalise → nlp → relations) on JSON records; return relation rows.

    A document that fails in any stage raises: an evaluation must not score a crash as a miss."""
    from pipeline.io.ingest import FieldMap, IngestError, _record_to_document
    from pipeline.run.batch import RunContext, process_batch
    from pipeline.run.config import RunConfig

    docs = []
    for i, rec in enumerate(records):
        # Gold records are named by their place, as the gold files number them.
        fields = FieldMap(id_from="path")
        doc = _record_to_document(rec, fields, "gold", "utf-8", f"record {i}", i + 1)
        if isinstance(doc, IngestError):
            raise ValueError(f"gold document {i} cannot be read: {doc.message}")
        docs.append(doc)
    result = process_batch(docs, RunConfig(), RunContext(run_id="evaluate"))
    if result.rows.get("errors"):
        raise RuntimeError(f"documents failed during evaluation: {result.rows['errors']}")
    return result.rows.get("relations", [])


def evaluate_relations(gold_path: Path, docs_path: Path) -> dict[str, Any]:
    records = [
        json.loads(line) for line in docs_path.read_text("utf-8").splitlines() if line.strip()
    ]
    gold_rows = [
        json.loads(line) for line in gold_path.read_text("utf-8").splitlines() if line.strip()
    ]

    from pipeline.evaluate.relations import relation_key as key

    # A set written before issue 27 is not scored on classes it never annotated
    # (relation_sets.yaml beside it; relation_learning.convention_key).
    conventions = set_conventions(gold_path)
    gold = {k for r in gold_rows if (k := convention_key(key(r), conventions))}
    doc_ids = {r["id"] for r in records}
    pred = {
        k
        for r in extract_relations_for_records(records)
        if r["doc_id"] in doc_ids and (k := convention_key(key(r), conventions))
    }
    labels = sorted({k[1] for k in gold | pred})
    tp = Counter(k[1] for k in gold & pred)
    n_pred = Counter(k[1] for k in pred)
    n_gold = Counter(k[1] for k in gold)
    report = prf_report(tp, n_pred, n_gold, labels)
    report["false_positives"] = sorted(pred - gold)
    report["false_negatives"] = sorted(gold - pred)
    return report
