"""Entity-level NER scores against BMES/BIO/CLUENER gold (`tifa evaluate`).

The MSRA dev split is carved deterministically (every 10th sentence, `--split dev`); `tifa train
ner` never trains on it, so `--split dev` figures are held-out figures for the trained model.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.nlp.corpora import Gold, read_cluener, read_tagged

DEFAULT_LABEL_MAPS: dict[str, dict[str, str]] = {
    # MSRA's LOC covers countries and provinces, which tifa labels GPE.
    "bmes": {"PER": "PERSON", "LOC": "LOC", "ORG": "ORG"},
    "bio": {"PER": "PERSON", "LOC": "LOC", "ORG": "ORG"},
    "cluener": {
        "name": "PERSON",
        "government": "ORG",
        "organization": "ORG",
        "company": "ORG",
        "position": "POSITION",
        "address": "LOC",
    },
}


# How tifa's own labels are folded before comparison (GPE is a kind of LOC for these gold sets).
PREDICTION_FOLD = {"GPE": "LOC"}


def parse_label_map(spec: str | None) -> dict[str, str] | None:
    if not spec:
        return None
    pairs = [p.split("=", 1) for p in spec.split(",") if p.strip()]
    return {k.strip(): v.strip() for k, v in pairs}


def evaluate_ner(
    gold_path: Path,
    fmt: str,
    label_map: dict[str, str] | None = None,
    *,
    limit: int | None = None,
    split: str = "all",
    lac_runner: str = "batched",
    ner: str = "model",
    ner_model: str | None = None,
) -> dict[str, Any]:
    from pipeline.nlp.build import annotate, get_nlp

    mapping = label_map or DEFAULT_LABEL_MAPS[fmt]
    reader = read_cluener(gold_path) if fmt == "cluener" else read_tagged(gold_path)
    sentences: list[Gold] = []
    for i, (text, spans) in enumerate(reader):
        if split == "dev" and i % 10 != 0:
            continue
        mapped = {(s, e, mapping[lab]) for s, e, lab in spans if lab in mapping}
        sentences.append((text, mapped))
        if limit and len(sentences) >= limit:
            break
    labels = set(mapping.values())
    nlp = get_nlp(lac_runner, ner, ner_model)
    tp: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    for (_, gold), doc in zip(sentences, annotate(nlp, (t for t, _ in sentences)), strict=True):
        pred = set()
        for ent in doc.ents:
            label = PREDICTION_FOLD.get(ent.label_, ent.label_)
            if label in labels:
                pred.add((ent.start_char, ent.end_char, label))
        for _, _, lab in gold:
            n_gold[lab] += 1
        for _, _, lab in pred:
            n_pred[lab] += 1
        for _, _, lab in gold & pred:
            tp[lab] += 1
    report = _prf_report(tp, n_pred, n_gold, sorted(labels))
    report["n_sentences"] = len(sentences)
    report["gold"] = str(gold_path)
    report["split"] = split
    report["ner"] = ner
    return report


def _prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def _prf_report(
    tp: Counter[str], n_pred: Counter[str], n_gold: Counter[str], labels: list[str]
) -> dict[str, Any]:
    per_label = {}
    for lab in labels:
        p, r, f = _prf(tp[lab], n_pred[lab], n_gold[lab])
        per_label[lab] = {
            "precision": round(p, 4),
            "recall": round(r, 4),
            "f1": round(f, 4),
            "support": n_gold[lab],
            "predicted": n_pred[lab],
        }
    p, r, f = _prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values()))
    return {
        "micro_precision": round(p, 4),
        "micro_recall": round(r, 4),
        "micro_f1": round(f, 4),
        "support": sum(n_gold.values()),
        "per_label": per_label,
    }


# ---------------------------------------------------------------------------------------------
# Page cleaning against a line-labelled gold set (tests/data/scraped_pages/*/gold.jsonl)
REMOVE_LABELS = frozenset({"chrome", "meta", "credit"})


KEEP_LABELS = frozenset({"body", "title"})
