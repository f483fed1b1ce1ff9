"""Evaluators: entity-level NER scores against BMES/BIO/CLUENER gold, relation scores against JSONL.

The MSRA dev split is carved deterministically (every 10th sentence, `--split dev`); `tifa train
ner` never trains on it, so `--split dev` figures are held-out figures for the trained model.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.textutil import HAN

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

Gold = tuple[str, set[tuple[int, int, str]]]


def parse_label_map(spec: str | None) -> dict[str, str] | None:
    if not spec:
        return None
    pairs = [p.split("=", 1) for p in spec.split(",") if p.strip()]
    return {k.strip(): v.strip() for k, v in pairs}


def read_tagged(path: Path) -> Iterator[Gold]:
    """Character-per-line BMES or BIO files, sentences separated by blank lines."""
    chars: list[str] = []
    tags: list[str] = []
    with open(path, encoding="utf-8-sig") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 2:
                chars.append(parts[0])
                tags.append(parts[-1])
            elif not parts and chars:
                yield "".join(chars), _spans_from_tags(tags)
                chars, tags = [], []
    if chars:
        yield "".join(chars), _spans_from_tags(tags)


def _spans_from_tags(tags: list[str]) -> set[tuple[int, int, str]]:
    spans = set()
    start, label = None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, lab = tag.partition("-")
        if start is not None and (prefix in ("O", "B", "S") or lab != label):
            spans.add((start, i, label))
            start, label = None, None
        if prefix in ("B", "S") or (prefix in ("I", "M", "E") and start is None):
            start, label = i, lab
        if prefix in ("E", "S") and start is not None:
            spans.add((start, i + 1, label))
            start, label = None, None
    return spans


def read_cluener(path: Path) -> Iterator[Gold]:
    """CLUENER: JSON objects, one per line or pretty-printed back to back."""
    decoder = json.JSONDecoder()
    text = path.read_text(encoding="utf-8")
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return
        record, pos = decoder.raw_decode(text, pos)
        spans = set()
        for label, mentions in record.get("label", {}).items():
            for offsets in mentions.values():
                for start, end in offsets:
                    spans.add((start, end + 1, label))  # CLUENER ends are inclusive
        yield record["text"], spans


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
    from pipeline.nlp import annotate, get_nlp

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
# Relations


def extract_relations_for_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the real stages (normalise → nlp → relations) on JSON records; return relation rows.

    A document that fails in any stage raises: an evaluation must not score a crash as a miss."""
    from pipeline.ingest import FieldMap, IngestError, _record_to_document
    from pipeline.stages import StageOptions, process_batch

    docs = []
    for i, rec in enumerate(records):
        doc = _record_to_document(rec, FieldMap(), "gold", "utf-8", f"record {i}", i + 1)
        if isinstance(doc, IngestError):
            raise ValueError(f"gold document {i} cannot be read: {doc.message}")
        docs.append(doc)
    result = process_batch(docs, StageOptions(run_id="evaluate"))
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

    from pipeline.relations.scoring import relation_key as key

    gold = {key(r) for r in gold_rows}
    doc_ids = {r["id"] for r in records}
    pred = {key(r) for r in extract_relations_for_records(records) if r["doc_id"] in doc_ids}
    labels = sorted({k[1] for k in gold | pred})
    tp = Counter(k[1] for k in gold & pred)
    n_pred = Counter(k[1] for k in pred)
    n_gold = Counter(k[1] for k in gold)
    report = _prf_report(tp, n_pred, n_gold, labels)
    report["false_positives"] = sorted(pred - gold)
    report["false_negatives"] = sorted(gold - pred)
    return report


# ---------------------------------------------------------------------------------------------
# Page cleaning against a line-labelled gold set (tests/data/scraped_pages/*/gold.jsonl)
REMOVE_LABELS = frozenset({"chrome", "meta", "credit"})
# A speaker line (浙江省省长 刘捷) must be kept as data: in the text, or read as a byline.
KEEP_LABELS = frozenset({"body", "title", "speaker"})
# A body line that is a paragraph of prose (the issue-24 measure of lost text): enough Han
# characters and sentence punctuation.
_PROSE_PARAGRAPH_HAN = 20
_RX_SENTENCE_PUNCT = re.compile(r"[。！？；，]")
_RX_HAN = re.compile(f"[{HAN}]")


def _is_prose_paragraph(line: str) -> bool:
    n_han = len(_RX_HAN.findall(line))
    return n_han >= _PROSE_PARAGRAPH_HAN and _RX_SENTENCE_PUNCT.search(line) is not None


def evaluate_page_cleaning(folder: str | Path, use_titles: bool = True) -> dict[str, Any]:
    """Score normalisation on scraped pages whose lines are labelled
    body/title/speaker/meta/credit/chrome/mixed: chrome left in the text, body lines removed
    (and among them prose paragraphs), speaker lines kept as data, and the credits found.
    Pages are cleaned as one run would clean them (repetition counted over the pages of each
    site in the folder). ``use_titles=False`` cleans them as .txt files are cleaned, without
    the title a .jsonl/.csv record would give."""
    from pipeline.normalise import BoilerplateCounter, boilerplate_lines, normalise

    folder = Path(folder)
    gold = [json.loads(line) for line in open(folder / "gold.jsonl", encoding="utf-8")]
    raws = {g["file"]: (folder / g["file"]).read_text(encoding="utf-8") for g in gold}
    counter = BoilerplateCounter()
    for g in gold:
        counter.add(g["site"], boilerplate_lines(raws[g["file"]]))
    boilerplate = counter.result()
    counts: Counter[str] = Counter()
    chrome_left: list[dict[str, Any]] = []
    body_removed: list[dict[str, Any]] = []
    credits = {"tp": 0, "fp": 0, "fn": 0}
    audit_complete = True
    per_page: dict[str, Counter[str]] = {}
    for g in gold:
        raw = raws[g["file"]]
        hint = g.get("title") if use_titles else None
        n = normalise(raw, boilerplate=boilerplate.for_group(g["site"]), title_hint=hint)
        kept = bytearray(len(raw) + 1)
        for off in n.raw_offsets[: len(n.text)]:
            kept[off] = 1
        removed = bytearray(len(raw) + 1)
        credit = bytearray(len(raw) + 1)
        for r in n.removed:
            removed[r.raw_start : r.raw_end] = b"\x01" * (r.raw_end - r.raw_start)
            if r.reason.startswith("credit:"):  # an inline credit leaves a body line by design
                credit[r.raw_start : r.raw_end] = b"\x01" * (r.raw_end - r.raw_start)
        data = bytearray(len(raw) + 1)  # read as a byline (documents.bylines)
        for b in n.bylines:
            data[b.raw_start : b.raw_end] = b"\x01" * (b.raw_end - b.raw_start)
        starts = [0]
        for i, c in enumerate(raw):
            if c == "\n":
                starts.append(i + 1)
        for item in g["lines"]:
            label = item["label"]
            s = starts[item["n"]]
            e = raw.find("\n", s)
            e = len(raw) if e < 0 else e
            # Control and format characters (a BOM) are dropped by design, not cut.
            content = [
                i
                for i in range(s, e)
                if not raw[i].isspace() and unicodedata.category(raw[i]) not in ("Cc", "Cf")
            ]
            if not content:
                continue
            n_kept = sum(kept[i] for i in content)
            counts[f"{label}_lines"] += 1
            where = {"file": g["file"], "line": item["n"], "text": raw[s:e].strip()[:80]}
            page = per_page.setdefault(g["file"], Counter())
            if label in REMOVE_LABELS and n_kept:
                counts[f"{label}_left"] += 1
                if label == "chrome":
                    chrome_left.append(where)
                    page["chrome_left"] += 1
            if label == "speaker" and all(data[i] for i in content):
                counts["speaker_as_data"] += 1
            elif label in KEEP_LABELS and n_kept < sum(1 for i in content if not credit[i]):
                counts[f"{label}_removed"] += 1
                body_removed.append({**where, "label": label})
                page[f"{label}_removed"] += 1
            if label == "body" and _is_prose_paragraph(raw[s:e]):
                counts["prose_paragraphs"] += 1
                page["prose_paragraphs"] += 1
                if n_kept < sum(1 for i in content if not credit[i]):
                    counts["prose_paragraphs_removed"] += 1
                    page["prose_paragraphs_removed"] += 1
            # Everything not kept must be listed in the audit.
            missing = [i for i in content if not kept[i] and not removed[i]]
            if missing:
                audit_complete = False
                counts["unaudited_lines"] += 1
        for role, names in g.get("credits", {}).items():
            found = set(filter(None, (n.metadata.get(role) or "").split("、")))
            want = set(names)
            credits["tp"] += len(found & want)
            credits["fp"] += len(found - want)
            credits["fn"] += len(want - found)
    return {
        "pages": len(gold),
        "sites": len({g["site"] for g in gold}),
        "chrome_left_per_page": len(chrome_left) / len(gold) if gold else 0.0,
        "counts": dict(counts),
        # file -> chrome_left, <label>_removed, prose_paragraphs, prose_paragraphs_removed
        "per_page": {f: dict(c) for f, c in per_page.items()},
        "chrome_left": chrome_left,
        "body_removed": body_removed,
        "credits": credits,
        "audit_complete": audit_complete,
    }
