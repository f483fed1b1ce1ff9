"""Page-cleaning scores against hand-labelled scraped pages (`tifa evaluate-pages`): chrome left,
body lines removed, titles and credit lines found."""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.core.textutil import HAN

# Gold labels of lines that cleaning must remove, and of lines it must keep.
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
