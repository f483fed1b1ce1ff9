"""Entity-level NER scores against BMES/BIO/CLUENER gold (`tifa evaluate`).

The MSRA file's held-out splits are whole contiguous blocks of it (`--split dev`, `--split test`;
the fractions are in resources/ner_training.yaml); `tifa train ner` trains on neither, so their
figures are held-out figures for a model trained by it. `--split dev-interleaved` is the old split
(every 10th sentence), kept to reproduce the figures of models trained before issue 26.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.evaluate.scores import prf_report
from pipeline.nlp.corpora import (
    Gold,
    count_sentences,
    held_out_blocks,
    read_cluener,
    read_peoples_daily,
    read_tagged,
    select_split,
)
from pipeline.nlp.train import load_training_config

SPLITS = ("all", "dev", "test", "train", "dev-interleaved")


def read_gold(gold_path: Path, fmt: str, split: str = "all") -> Iterator[Gold]:
    """The gold sentences of one file and split, labels as the file writes them."""
    if fmt == "cluener":
        reader = read_cluener(gold_path)
    elif fmt == "peoples-daily":
        reader = read_peoples_daily(gold_path)
    else:
        reader = read_tagged(gold_path)
    if split == "all":
        return reader
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: one of {', '.join(SPLITS)}")
    if fmt in ("bmes", "bio"):
        n = count_sentences(gold_path)
    else:
        n = sum(1 for _ in read_gold(gold_path, fmt))
    return select_split(reader, split, n, held_out_blocks(load_training_config()))


DEFAULT_LABEL_MAPS: dict[str, dict[str, str]] = {
    # MSRA's LOC covers countries and provinces, which tifa labels GPE.
    "bmes": {"PER": "PERSON", "LOC": "LOC", "ORG": "ORG"},
    "bio": {"PER": "PERSON", "LOC": "LOC", "ORG": "ORG"},
    "peoples-daily": {"nr": "PERSON", "ns": "LOC", "nt": "ORG"},
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
    from pipeline.nlp.build import NlpConfig, annotate, get_nlp

    mapping = label_map or DEFAULT_LABEL_MAPS[fmt]
    sentences: list[Gold] = []
    for text, spans in read_gold(gold_path, fmt, split):
        mapped = {(s, e, mapping[lab]) for s, e, lab in spans if lab in mapping}
        sentences.append((text, mapped))
        if limit and len(sentences) >= limit:
            break
    labels = set(mapping.values())
    nlp = get_nlp(NlpConfig(lac_runner=lac_runner, ner=ner, ner_model=ner_model))
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
    report = prf_report(tp, n_pred, n_gold, sorted(labels))
    report["n_sentences"] = len(sentences)
    report["gold"] = str(gold_path)
    report["split"] = split
    report["ner"] = ner
    return report
