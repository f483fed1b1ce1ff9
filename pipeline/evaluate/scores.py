"""Precision, recall and F1, per label and micro-averaged, for every evaluator."""

from __future__ import annotations

from collections import Counter
from typing import Any


def prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def prf_report(
    tp: Counter[str], n_pred: Counter[str], n_gold: Counter[str], labels: list[str]
) -> dict[str, Any]:
    per_label = {}
    for lab in labels:
        p, r, f = prf(tp[lab], n_pred[lab], n_gold[lab])
        per_label[lab] = {
            "precision": round(p, 4),
            "recall": round(r, 4),
            "f1": round(f, 4),
            "support": n_gold[lab],
            "predicted": n_pred[lab],
        }
    p, r, f = prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values()))
    return {
        "micro_precision": round(p, 4),
        "micro_recall": round(r, 4),
        "micro_f1": round(f, 4),
        "support": sum(n_gold.values()),
        "per_label": per_label,
    }
