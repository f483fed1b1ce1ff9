"""Fit the calibrated score of discovery candidates (candidate_rules.yaml `score`).

Usage:
    # two nights over the dev corpora with the lexicon hidden (a one-entry lexicon), so that
    # lexicon formulations come back as candidates and can serve as labels:
    tifa run ../shared/corpora/dev/cpc_congress_reports.jsonl --out /tmp/cal --lexicon tiny.yaml
    tifa run ../shared/corpora/dev/xi_speeches_2020.csv --out /tmp/cal --lexicon tiny.yaml
    python bench/calibrate_candidates.py /tmp/cal [--lexicon tiny.yaml]

Label: the candidate is a form of the packaged lexicon (what analysts did add). Features: the
pattern (one-hot), ln(1+documents), ln(1+mentions), quoted share, ln(burst ratio).

Two fits are printed. (1) A free logistic regression (scikit-learn, L2, C=1): on the dev corpora
(386 candidates, 34 lexicon forms) it gives signs no analyst would sign (more documents, more
quoting and a stronger burst all *lower* the chance), because the labels are thin and
collinear, so it is shown, not used. (2) Platt scaling of the hand-set evidence score (the
weights in candidate_rules.yaml: their ranking stays, monotone in every piece of evidence):
z' = a·z + b fitted to the labels, and the `score` block with a and b applied is printed. That
block is what candidate_rules.yaml holds; the calibration table (predicted vs observed) is for it.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PATTERNS = [
    "quoted_numeral",
    "enumeration",
    "numeral_compound",
    "numeral_measure",
    "quoted_term",
    "burst",
]


def features(r: dict) -> list[float]:
    share = r["n_quoted"] / r["n_mentions"] if r["n_mentions"] else 0.0
    burst = r.get("burst")
    return [1.0 if r["pattern"] == p else 0.0 for p in PATTERNS] + [
        math.log1p(r["n_docs"]),
        math.log1p(r["n_mentions"]),
        share,
        math.log(burst) if burst and burst > 1 else 0.0,
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out", type=Path, help="an output folder built with the lexicon hidden")
    ap.add_argument("--lexicon", default=None, help="the hiding lexicon the runs used")
    args = ap.parse_args()

    import duckdb
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from pipeline.analyst.aggregate import build_formulation_candidates
    from pipeline.extract.lexicon import LEXICON_PATH, load_lexicon
    from pipeline.io.storage import Store

    store = Store(args.out)
    con = duckdb.connect()
    store.register(con)
    rows = build_formulation_candidates(con, store, args.lexicon).to_pylist()
    forms = {f for e in load_lexicon(LEXICON_PATH) for f in e.forms}
    x = np.array([features(r) for r in rows])
    y = np.array([r["text"] in forms for r in rows], dtype=int)
    model = LogisticRegression(C=1.0, fit_intercept=False, max_iter=2000)
    model.fit(x, y)
    w = model.coef_[0]
    p = model.predict_proba(x)[:, 1]
    print(f"{len(rows)} candidates, {y.sum()} lexicon forms among them")
    order = np.argsort(-p)
    print(f"precision@30 (lexicon forms only): {y[order[:30]].mean():.2f}")
    for lo in range(0, 100, 20):
        sel = (p * 100 >= lo) & (p * 100 < lo + 20)
        if sel.any():
            print(f"  predicted {lo}-{lo + 20}%: n={sel.sum()}, observed {y[sel].mean():.2f}")
    platt(rows, y)
    # One-hot without intercept: the intercept is the numeral_measure weight, patterns relative.
    base = w[PATTERNS.index("numeral_measure")]
    print("score:")
    print(f"  intercept: {base:.2f}")
    print(
        "  pattern: {"
        + ", ".join(f"{pat}: {w[i] - base:.2f}" for i, pat in enumerate(PATTERNS))
        + "}"
    )
    for name, value in zip(
        ["log_docs", "log_mentions", "quoted_share", "log_burst"], w[len(PATTERNS) :], strict=True
    ):
        print(f"  {name}: {value:.2f}")


def platt(rows: list[dict], y: object) -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from pipeline.extract.discovery import calibrated_score, get_discovery_rules

    def logit(r: dict) -> float:
        share = r["n_quoted"] / r["n_mentions"] if r["n_mentions"] else 0.0
        p = calibrated_score(r["pattern"], r["n_docs"], r["n_mentions"], share, r.get("burst"))
        p = min(max(p, 1e-6), 1 - 1e-6)
        return math.log(p / (1 - p))

    z = np.array([[logit(r)] for r in rows])
    m = LogisticRegression(C=100.0, max_iter=2000).fit(z, y)
    a, b = float(m.coef_[0][0]), float(m.intercept_[0])
    p = m.predict_proba(z)[:, 1]
    print(f"Platt scaling of the hand-set score: a={a:.3f} b={b:.3f}")
    for lo in range(0, 100, 20):
        sel = (p * 100 >= lo) & (p * 100 < lo + 20)
        if sel.any():
            seen = np.asarray(y)[sel].mean()
            mean = p[sel].mean()
            print(
                f"  predicted {lo}-{lo + 20}%: n={sel.sum()}, mean {mean:.2f}, observed {seen:.2f}"
            )
    w = get_discovery_rules().score
    print("score (calibrated):")
    print(f"  intercept: {a * w['intercept'] + b:.2f}")
    print("  pattern: {" + ", ".join(f"{k}: {a * v:.2f}" for k, v in w["pattern"].items()) + "}")
    for k in ("log_docs", "log_mentions", "quoted_share", "log_burst"):
        print(f"  {k}: {a * w[k]:.2f}")


if __name__ == "__main__":
    main()
