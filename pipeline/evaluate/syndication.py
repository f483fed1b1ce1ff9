"""Story detection against a labelled set of real syndicated copies.

The set (`tests/data/syndication/items.jsonl`, sources in its README) holds the same story as
several sites published it (different chrome, headlines, datelines, scripts, pinyin-annotated
scrapes, trimmed endings) and distinct stories on the same topic and date (hard negatives).
Every pair of items is labelled by their `story` field. The items are decided in file order by
the run's own story planner (`run/stories.py`), and a pair is predicted "same story" when both
land in one cluster: precision and recall over pairs, with the similarity of every pair the
planner got wrong.
"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path
from typing import Any

from pipeline.normalise.signature import similarity, story_signature
from pipeline.run.config import DEFAULT_COPY_THRESHOLD, DEFAULT_STORY_THRESHOLD
from pipeline.run.stories import StoryPlanner

DEFAULT_SET = Path(__file__).resolve().parents[2] / "tests" / "data" / "syndication" / "items.jsonl"


def load_items(path: Path | str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def evaluate_syndication(
    path: Path | str = DEFAULT_SET,
    story_threshold: float = DEFAULT_STORY_THRESHOLD,
    copy_threshold: float = DEFAULT_COPY_THRESHOLD,
) -> dict[str, Any]:
    """Pairwise precision and recall of "same story", the clusters found, and the errors."""
    items = load_items(path)
    planner = StoryPlanner(story_threshold, copy_threshold)
    sigs = {}
    for item in items:
        sigs[item["id"]] = story_signature(item["text"], item.get("title"))
        planner.see(item["id"], sigs[item["id"]], True)
    cluster = {i["id"]: planner.decisions[i["id"]].cluster_id for i in items}
    tp = fp = fn = tn = 0
    errors = []
    for a, b in combinations(items, 2):
        gold = a["story"] == b["story"]
        pred = cluster[a["id"]] == cluster[b["id"]]
        tp += gold and pred
        fp += pred and not gold
        fn += gold and not pred
        tn += not gold and not pred
        if gold != pred:
            sa, sb = sigs[a["id"]][0], sigs[b["id"]][0]
            sim = similarity(sa, sb) if sa is not None and sb is not None else None
            errors.append(
                {"a": a["id"], "b": b["id"], "gold": gold, "predicted": pred, "similarity": sim}
            )
    derived = sum(1 for d in planner.decisions.values() if d.derived)
    copies = sum(1 for d in planner.decisions.values() if d.duplicate_of)
    return {
        "items": len(items),
        "stories": len({i["story"] for i in items}),
        "clusters": len(set(cluster.values())),
        "pairs": tp + fp + fn + tn,
        "same_story_pairs": tp + fn,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "copies": copies,
        "derived": derived,
        "story_threshold": story_threshold,
        "copy_threshold": copy_threshold,
        "errors": errors,
        "similarities": _positive_similarities(items, sigs),
    }


def _positive_similarities(
    items: list[dict[str, Any]], sigs: dict[str, Any]
) -> list[dict[str, Any]]:
    """Estimated similarity of every same-story pair (how far the thresholds are)."""
    out = []
    for a, b in combinations(items, 2):
        if a["story"] != b["story"]:
            continue
        sa, sb = sigs[a["id"]][0], sigs[b["id"]][0]
        sim = similarity(sa, sb) if sa is not None and sb is not None else None
        out.append({"a": a["id"], "b": b["id"], "similarity": sim})
    return out
