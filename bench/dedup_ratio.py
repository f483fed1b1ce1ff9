"""What finding syndicated copies saves: a night where a share of the documents are reprints,
run with story detection (`dedup`, the default) and without, side by side.

Usage: python bench/dedup_ratio.py [--reprint-share 0.4] [--edited-share 0.125] [--repeats 2]
                                   [--input CSV]

The night is built in a temporary folder (never in the repo) from real speeches (default: the
dev corpus's xi_speeches_2020.csv, ../shared/corpora/dev): every speech once as published on
one site, then reprints — the same speech on other sites with their own page chrome (menus, a
breadcrumb, a source and date line, an editor line, related links, a copyright footer), a
headline variant and another paragraph layout — until `--reprint-share` of the documents are
reprints; `--edited-share` of the reprints also drop a paragraph of 80 characters or more
(real edits: processed in full). Reprints follow their original in input order, interleaved
with other speeches.

Both runs go through `run_pipeline` into fresh folders in this process with the models already
loaded, alternating (best of `--repeats`). Printed: documents, stories, copies not run through
the NLP, seconds and chars/s of each, the ratio (without ÷ with), and whether every table's
rows of the canonical copies are identical in the two outputs (run ids aside).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEV = ROOT.parent / "shared" / "corpora" / "dev"
TABLES = ("sentences", "entities", "formulations", "candidate_mentions", "relations",
          "removed_lines", "documents")  # fmt: skip
SITES = ("news.example-a.cn", "www.example-b.gov.cn", "m.example-c.com.cn", "example-d.org.cn")


def chrome(site: str, title: str, date: str, k: int) -> tuple[str, str]:
    """(head, foot) of a reprinting site's page."""
    name = {0: "某某新闻网", 1: "某某市人民政府", 2: "某某日报客户端", 3: "某某理论网"}[k % 4]
    head = "\n".join(
        [
            f"{name}",
            "首页 | 要闻 | 时政 | 理论 | 地方 | 视频 | 专题",
            "当前位置：首页 > 时政 > 正文",
            f"【转载】{title}" if k % 2 else f"{title}（全文）",
            f"来源：新华社  {date} 08:{10 + k % 50:02d}  【字体：大 中 小】",
        ]
    )
    foot = "\n".join(
        [
            f"（责任编辑：{'王李张刘'[k % 4]}{'明华强伟'[k % 4]}）",
            "相关新闻：",
            "· 习近平回信勉励留学生",
            "· 中央政治局召开会议",
            f"版权所有 © {name}  京ICP备{10000000 + k}号",
        ]
    )
    return head, foot


def build_night(src: Path, folder: Path, reprint_share: float, edited_share: float) -> dict:
    csv.field_size_limit(1 << 30)
    with open(src, encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if len(r["Text"]) > 200]
    rng = random.Random(29)
    originals = []
    for i, r in enumerate(rows):
        paras = [p for p in r["Text"].split("　　") if p.strip()]
        title = paras[0][:30]
        originals.append({"id": f"orig-{i:03d}", "paras": paras, "title": title,
                          "date": r["Date"]})  # fmt: skip
    n_reprints = round(len(originals) * reprint_share / (1 - reprint_share))
    reprints: dict[str, list[dict]] = {o["id"]: [] for o in originals}
    for k in range(n_reprints):
        o = originals[k % len(originals)]
        paras = list(o["paras"])
        edited = k < round(n_reprints * edited_share) and len(paras) > 3
        if edited:  # a paragraph of substance (a short line is a light edit: derived)
            mid = len(paras) // 2
            long = [j for j, p in enumerate(paras) if len(p) >= 80]
            if long:
                del paras[min(long, key=lambda j: abs(j - mid))]
        site = SITES[k % len(SITES)]
        head, foot = chrome(site, o["title"], o["date"], k)
        body = "\n".join(paras) if k % 2 else "\n\n".join("　　" + p for p in paras)
        reprints[o["id"]].append({
            "id": f"reprint-{k:03d}-of-{o['id']}", "title": o["title"], "date": o["date"],
            "url": f"https://{site}/c/{k}.html", "text": f"{head}\n{body}\n{foot}",
            "edited": edited,
        })  # fmt: skip
    records = []
    for o in originals:
        records.append({"id": o["id"], "title": o["title"], "date": o["date"],
                        "url": f"https://www.origin.gov.cn/{o['id']}.html",
                        "text": "　　".join(o["paras"])})  # fmt: skip
    # Each reprint a few documents after its original.
    order = list(records)
    for o in originals:
        for rp in reprints[o["id"]]:
            at = next(i for i, r in enumerate(order) if r["id"] == o["id"])
            order.insert(min(len(order), at + 1 + rng.randrange(4)), rp)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "night.jsonl", "w", encoding="utf-8") as fh:
        for r in order:
            rec = {k: r[k] for k in ("id", "title", "date", "url", "text")}
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    edited_ids = {r["id"] for v in reprints.values() for r in v if r["edited"]}
    return {"originals": len(originals), "reprints": n_reprints, "edited": len(edited_ids),
            "edited_ids": edited_ids,
            "chars": sum(len(r["text"]) for r in order)}  # fmt: skip


def table_rows(out: Path, table: str, ids: set[str]) -> Counter:
    from pipeline.io.write import read_table

    data = read_table(out, table).to_pylist()
    return Counter(
        json.dumps({k: v for k, v in r.items() if k != "run_id"}, sort_keys=True, default=str,
                   ensure_ascii=False)
        for r in data if r.get("doc_id") in ids
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--input", type=Path, default=DEV / "xi_speeches_2020.csv",
                    help="CSV of speeches (Date, Text)")  # fmt: skip
    ap.add_argument("--reprint-share", type=float, default=0.4)
    ap.add_argument("--edited-share", type=float, default=0.125)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    if not args.input.exists():
        print(f"no input at {args.input} (the dev corpora live in ../shared/)")
        return 2
    from pipeline.io.write import read_table
    from pipeline.run.batch import load_models
    from pipeline.run.config import RunConfig
    from pipeline.run.runner import run_pipeline

    tmp = Path(tempfile.mkdtemp(prefix="tifa-dedup-bench-"))
    try:
        night = build_night(args.input, tmp / "in", args.reprint_share, args.edited_share)
        print(
            f"night: {night['originals']} originals + {night['reprints']} reprints "
            f"({night['edited']} with a paragraph removed), {night['chars']:,} chars"
        )
        load_models(RunConfig.of())  # models loaded once, outside the timings
        best: dict[str, float] = {}
        outs: dict[str, Path] = {}
        for rep in range(args.repeats):
            for name, dedup in (("without", False), ("with", True)):
                out = tmp / f"out-{name}-{rep}"
                t0 = time.perf_counter()
                run_pipeline([tmp / "in"], out, dedup=dedup)
                dt = time.perf_counter() - t0
                best[name] = min(best.get(name, dt), dt)
                outs[name] = out
        cols = ["doc_id", "cluster_id", "rows_from", "similarity"]
        docs = read_table(outs["with"], "documents", cols).to_pylist()
        edited = sorted((d["similarity"], d["rows_from"] != d["doc_id"]) for d in docs
                        if d["doc_id"] in night["edited_ids"])  # fmt: skip
        print(
            "reprints with a paragraph removed (similarity, not analysed): "
            + ", ".join(f"{s:.3f} {'derived' if x else 'full'}" for s, x in edited)
        )
        canonical = {d["doc_id"] for d in docs if d["cluster_id"] == d["doc_id"]}
        derived = sum(1 for d in docs if d["rows_from"] != d["doc_id"])
        print(
            f"with dedup: {len(docs)} documents, {len(canonical)} stories, "
            f"{derived} copies not run through the NLP, "
            f"{len(docs) - len(canonical) - derived} copies processed in full"
        )
        for name in ("without", "with"):
            print(
                f"{name:>7} dedup: {best[name]:.2f} s, {night['chars'] / best[name]:,.0f} chars/s"
            )
        same = {
            t: table_rows(outs["with"], t, canonical) == table_rows(outs["without"], t, canonical)
            for t in TABLES
        }
        print(
            "canonical copies' rows identical: "
            + ", ".join(f"{t} {'yes' if ok else 'NO'}" for t, ok in same.items())
        )
        print(f"ratio {best['without'] / best['with']:.2f}")
        return 0 if all(same.values()) else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
