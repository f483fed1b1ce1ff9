"""Which proposed relation rows to write: a model learned from every relation gold set.

The rules of `posts`, `events`, `issues` and the bylines *propose* rows, generously; this module
*decides*. Each proposed row is described by features any row has (the rule that proposed it
and how its tail was resolved, the role and the shape of the tail, the cue words of its sentence
and next to its head, the document's title) and scored by a logistic model trained on all gold
sets (`tifa train-relations`, `pipeline/evaluate/relation_learning.py`). The score is the row's
`confidence`, so a row says which rule proposed it and how sure the model is; rows under the
model's threshold are not written. The model is data (`resources/relation_decider.json`): the
weight of every feature can be read, and a feature the model never saw weighs nothing.

Why a linear model and not gradient boosting: ~3,000 candidate rows of 13 sets train it; a
linear model over sparse indicator features is explainable weight by weight, trains in a second
and needs no library at run time (numpy-free dot product over a dict).
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pipeline.core.resources import RESOURCES
from pipeline.extract.relations.base import foreign_state_re, rules
from pipeline.nlp.known_persons import known_person_names

MODEL_PATH = RESOURCES / "relation_decider.json"
FEATURES_VERSION = 2


def _bucket(n: int, edges: tuple[int, ...] = (0, 1, 2, 4, 8, 16, 32)) -> str:
    for edge in edges:
        if n <= edge:
            return str(edge)
    return f">{edges[-1]}"


@functools.cache
def _cues() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    table = rules()["decision_cues"]
    return tuple(table["sentence"]), tuple(table["before_head"]), tuple(table["title"])


def row_features(row: Mapping[str, Any], title: str, heads_in_sentence: int) -> dict[str, float]:
    """The features of one proposed row (a `relations` row as written, before the decision)."""
    sentence_cues, before_cues, title_cues = _cues()
    rel = str(row["relation"])
    rule = str(row["rule"])
    how = row.get("resolved_from") or "-"
    tail = str(row["tail"])
    role = row.get("role") or ""
    evidence = str(row.get("evidence") or "")
    head = str(row["head"])
    f: dict[str, float] = {
        "bias": 1.0,
        f"rel={rel}": 1.0,
        f"rule={rule}": 1.0,
        f"rule_how={rule}/{how}": 1.0,
        f"rel_how={rel}/{how}": 1.0,
        f"tail_label={row.get('tail_label')}": 1.0,
        f"tail_end={tail[-2:]}": 1.0,
        f"tail_end1={rel}/{tail[-1:]}": 1.0,
        f"tail_len={_bucket(len(tail), (2, 4, 6, 9, 14, 20))}": 1.0,
        f"heads_in_sentence={_bucket(heads_in_sentence)}": 1.0,
        f"head_len={len(head) if len(head) < 6 else 6}": 1.0,
        f"span_len={_bucket(int(row['end']) - int(row['start']), (4, 8, 16, 32, 64, 128))}": 1.0,
        f"rule_span={rule}/{_bucket(int(row['end']) - int(row['start']), (8, 32, 128))}": 1.0,
    }
    if role:
        f[f"role={role}"] = 1.0
        f[f"role_end={role[-1]}"] = 1.0
        f[f"role_in_tail={role[:2] in tail}"] = 1.0
    f[f"known_person={head in known_person_names()}"] = 1.0
    foreign = foreign_state_re().search(evidence)
    f[f"foreign_state_in_sentence={foreign is not None}"] = 1.0
    if foreign is not None:
        f[f"foreign_state_in_sentence/{rel}/{row.get('tail_label')}"] = 1.0
        f[f"foreign_tail={foreign.group() in tail}"] = 1.0
    f[f"tail_written={_compact(tail) in _compact(evidence)}"] = 1.0
    f[f"head_in_title={head in title}"] = 1.0
    at = evidence.find(head)
    if at < 0:
        f["head_not_in_sentence"] = 1.0
        before = after = ""
    else:
        before = evidence[max(0, at - 8) : at]
        after = evidence[at + len(head) : at + len(head) + 4]
        f[f"head_at={_bucket(at, (0, 4, 12, 30, 60, 120))}"] = 1.0
    for cue in sentence_cues:
        if cue in evidence:
            f[f"sent_has={cue}"] = 1.0
            f[f"sent_has={rel}/{cue}"] = 1.0
    for cue in before_cues:
        if cue in before:
            f[f"before_head={cue}"] = 1.0
    if after[:1]:
        f[f"after_head={after[:1]}"] = 1.0
    for cue in title_cues:
        if cue in title:
            f[f"title_has={cue}"] = 1.0
            f[f"title_has={rel}/{cue}"] = 1.0
    f["prior"] = float(row.get("confidence") or 0.5)
    return f


def _compact(text: str) -> str:
    return "".join(text.split())


def sentence_heads(rows: Iterable[Mapping[str, Any]]) -> Counter[tuple[Any, Any]]:
    """How many distinct heads the proposed rows of each (document, sentence) have."""
    heads: dict[tuple[Any, Any], set[str]] = {}
    for r in rows:
        heads.setdefault((r["doc_id"], r.get("sent_id")), set()).add(str(r["head"]))
    return Counter({k: len(v) for k, v in heads.items()})


class RelationDecider:
    """A logistic model over `row_features`: `score(row)` is the probability that the row is
    right; `decide(rows)` keeps rows at or above the threshold and writes the score into their
    `confidence`. It judges the rows of the rules it was trained to judge (`judged_rules`,
    prefixes: the generous proposals); the precise rules' rows keep their calibrated confidence."""

    def __init__(self, model: Mapping[str, Any]) -> None:
        if model.get("features_version") != FEATURES_VERSION:
            raise ValueError(
                f"relation decider model has features version {model.get('features_version')},"
                f" this code computes version {FEATURES_VERSION}: retrain it (tifa train-relations)"
            )
        self.weights: dict[str, float] = dict(model["weights"])
        self.threshold = float(model["threshold"])
        self.judged_rules = tuple(model["judged_rules"])

    @classmethod
    def load(cls, path: Path | str = MODEL_PATH) -> RelationDecider:
        return cls(json.loads(Path(path).read_text("utf-8")))

    def judges(self, rule: str) -> bool:
        return rule.startswith(self.judged_rules)

    def score(self, features: Mapping[str, float]) -> float:
        z = sum(self.weights.get(k, 0.0) * v for k, v in features.items())
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def explain(self, features: Mapping[str, float], top: int = 5) -> list[tuple[str, float]]:
        """The features that moved this row's score most, with their contribution."""
        parts = [(k, self.weights.get(k, 0.0) * v) for k, v in features.items()]
        return sorted(parts, key=lambda kv: -abs(kv[1]))[:top]

    def decide(self, rows: list[dict[str, Any]], title: str) -> list[dict[str, Any]]:
        heads = sentence_heads(rows)
        kept = []
        for row in rows:
            if not self.judges(row["rule"]):
                kept.append(row)
                continue
            p = self.score(row_features(row, title, heads[(row["doc_id"], row.get("sent_id"))]))
            if p >= self.threshold:
                row["confidence"] = round(p, 3)
                kept.append(row)
        return kept


@functools.cache
def get_decider() -> RelationDecider | None:
    """The packaged model, or None when none is packaged (every proposed row is written)."""
    if not MODEL_PATH.exists():
        return None
    return RelationDecider.load(MODEL_PATH)
