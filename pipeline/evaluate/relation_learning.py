"""The relation decider learned from every gold set, and judged leave-one-set-out.

A gold set is a genre the rules were (or were not) tuned on; the next night brings a genre nobody
wrote a set for. So the headline figure is leave-one-set-out: for every set, the decider is
trained on all the *other* sets and scores the one left out; the mean and the worst set are what
to expect of the next genre. The rules that propose the rows were written against the older sets,
so the figure measures the learned decision honestly and the rules only as far as the newest
(first-run) sets do: the README gives those first-run figures beside it.

Sets are listed in `tests/data/relation_sets.yaml` with the conventions they were written under
(1: before issue 27, 2: since). A conventions-1 set did not annotate session roles and folded a
sitting into its session; `convention_key` maps both sides so that a set is not scored on a
class it never annotated.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.evaluate.relations import (
    Key,
    convention_key,
    extract_relations_for_records,
    relation_key,
)
from pipeline.extract.relations import get_extractor
from pipeline.extract.relations.decider import (
    FEATURES_VERSION,
    RelationDecider,
    row_features,
    sentence_heads,
)

# The decider judges the generous proposals; the precise rules' rows are written as they are
# (their calibrated confidence is measured per rule: tifa evaluate-relations, `calibrate`).
JUDGED_RULES = ("proposed_",)
# Chosen leave-one-set-out over the 14 sets (threshold 0.2-0.5 x C 0.3/1.0: mean F1 0.802-0.806);
# a low threshold: a proposal is kept unless its features speak against it.
DEFAULT_C = 0.3
DEFAULT_THRESHOLD = 0.3


@dataclass
class GoldSet:
    name: str
    docs: list[dict[str, Any]]
    gold: list[dict[str, Any]]
    conventions: int
    genre: str


def gold_sets(folder: Path, only: list[str] | None = None) -> list[GoldSet]:
    """Every `<name>_gold.jsonl` with its `<name>_docs.jsonl` in `folder`, with the conventions
    and genre `relation_sets.yaml` gives (a set it does not list: conventions 2)."""
    table_path = folder / "relation_sets.yaml"
    table = yaml.safe_load(table_path.read_text("utf-8")) if table_path.exists() else {}
    out = []
    for gold_path in sorted(folder.glob("*_gold.jsonl")):
        name = gold_path.name[: -len("_gold.jsonl")]
        docs_path = folder / f"{name}_docs.jsonl"
        if not docs_path.exists() or (only and name not in only):
            continue
        meta = (table or {}).get(name, {})
        out.append(
            GoldSet(
                name,
                _jsonl(docs_path),
                _jsonl(gold_path),
                int(meta.get("conventions", 2)),
                str(meta.get("genre", "")),
            )
        )
    if not out:
        raise ValueError(f"no relation gold sets (<name>_gold.jsonl + _docs.jsonl) in {folder}")
    return out


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text("utf-8").splitlines() if x.strip()]


@contextmanager
def undecided() -> Iterator[None]:
    """Every proposed row written, as the rules propose them (to train and to judge the model)."""
    extractor = get_extractor()
    before, extractor.decide = extractor.decide, False
    try:
        yield
    finally:
        extractor.decide = before


@dataclass
class Candidate:
    set_name: str
    key: Key | None  # None: a class this set does not annotate
    features: dict[str, float]
    label: bool
    rule: str


def candidates(gs: GoldSet) -> list[Candidate]:
    """The rows the rules propose on one set, each with its features and whether it is right."""
    with undecided():
        rows = extract_relations_for_records(gs.docs)
    titles = {d.get("id"): d.get("title") or "" for d in gs.docs}
    gold = {k for r in gs.gold if (k := convention_key(relation_key(r), gs.conventions))}
    heads = sentence_heads(rows)
    out = []
    for row in rows:
        key = convention_key(relation_key(row), gs.conventions)
        feats = row_features(
            row, titles.get(row["doc_id"], ""), heads[(row["doc_id"], row.get("sent_id"))]
        )
        out.append(Candidate(gs.name, key, feats, key in gold if key else False, row["rule"]))
    return out


def gold_keys(gs: GoldSet) -> set[Key]:
    return {k for r in gs.gold if (k := convention_key(relation_key(r), gs.conventions))}


def train(
    cands: list[Candidate],
    c: float = DEFAULT_C,
    threshold: float = DEFAULT_THRESHOLD,
    judged: tuple[str, ...] = JUDGED_RULES,
) -> dict[str, Any]:
    """A logistic model over the features of the candidates of the `judged` rules (prefixes;
    rows of classes a set did not annotate left out)."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    usable = [x for x in cands if x.key is not None and x.rule.startswith(judged)]
    ys = [x.label for x in usable]
    weights: dict[str, float] = {}
    if len(set(ys)) == 2:  # (no proposals, or all right: nothing to learn, every one is kept)
        vec = DictVectorizer()
        xs = vec.fit_transform([x.features for x in usable])
        model = LogisticRegression(C=c, fit_intercept=False, max_iter=2000)
        model.fit(xs, ys)
        weights = {
            name: round(float(w), 5)
            for name, w in zip(vec.get_feature_names_out(), model.coef_[0], strict=True)
            if abs(w) > 1e-5
        }
    return {
        "features_version": FEATURES_VERSION,
        "threshold": threshold,
        "judged_rules": list(judged),
        "weights": dict(sorted(weights.items())),
        "trained_on": sorted({x.set_name for x in usable}),
        "rows": len(usable),
        "right": sum(ys),
        "c": c,
    }


def score_set(
    cands: list[Candidate], gold: set[Key], decider: RelationDecider | None
) -> dict[str, Any]:
    """Micro P/R/F of the rows kept (all proposed rows when `decider` is None), and the share
    right of the kept rows the model scores at 0.8 or more."""
    pred: set[Key] = set()
    high: dict[Key, bool] = {}
    for x in cands:
        if x.key is None:
            continue
        judged = decider is not None and decider.judges(x.rule)
        p = decider.score(x.features) if judged else x.features["prior"]
        if not judged or p >= decider.threshold:
            pred.add(x.key)
            if decider is not None and p >= 0.8:
                high[x.key] = x.key in gold
    tp = len(pred & gold)
    precision = tp / len(pred) if pred else 0.0
    recall = tp / len(gold) if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    by_rel: dict[str, dict[str, float]] = {}
    for rel in sorted({k[1] for k in gold | pred}):
        g = {k for k in gold if k[1] == rel}
        p_ = {k for k in pred if k[1] == rel}
        t = len(g & p_)
        by_rel[rel] = {
            "precision": round(t / len(p_), 3) if p_ else 0.0,
            "recall": round(t / len(g), 3) if g else 0.0,
            "gold": len(g),
        }
    return {
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "f1": round(f1, 3),
        "gold": len(gold),
        "predicted": len(pred),
        "high_confidence_rows": len(high),
        "high_confidence_right": round(sum(high.values()) / len(high), 3) if high else None,
        "by_relation": by_rel,
    }


def leave_one_set_out(sets: list[GoldSet], c: float = DEFAULT_C) -> dict[str, Any]:
    """For every set: the rules alone, and the decider trained on all other sets."""
    cands = {gs.name: candidates(gs) for gs in sets}
    per_set = {}
    for gs in sets:
        rest = [x for name, cs in cands.items() if name != gs.name for x in cs]
        decider = RelationDecider(train(rest, c=c))
        gold = gold_keys(gs)
        per_set[gs.name] = {
            "genre": gs.genre,
            "conventions": gs.conventions,
            "rules_only": score_set(cands[gs.name], gold, None),
            "decided": score_set(cands[gs.name], gold, decider),
        }
    summary = {}
    for kind in ("rules_only", "decided"):
        f1s = {name: s[kind]["f1"] for name, s in per_set.items()}
        worst = min(f1s, key=f1s.__getitem__)
        summary[kind] = {
            "mean_f1": round(sum(f1s.values()) / len(f1s), 3),
            "worst_set": worst,
            "worst_f1": f1s[worst],
        }
    return {"sets": per_set, "summary": summary, "candidates": dict(_rule_counts(cands))}


def _rule_counts(cands: dict[str, list[Candidate]]) -> Counter[str]:
    return Counter(x.rule for cs in cands.values() for x in cs)


def train_decider(sets: list[GoldSet], out: Path, c: float = DEFAULT_C) -> dict[str, Any]:
    """Train on every set and write the model `out` (the packaged one is
    pipeline/resources/relation_decider.json)."""
    cands = [x for gs in sets for x in candidates(gs)]
    model = train(cands, c=c)
    out.write_text(json.dumps(model, ensure_ascii=False, indent=1) + "\n", "utf-8")
    return model
