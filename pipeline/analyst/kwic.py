"""Keyword in context: every occurrence of a formulation, or of any string, with the text around
it, its document and date (`tifa kwic TERM`).

A TERM that names a formulation (its canonical form, its id or any surface form the archive
matched) lists that formulation's mentions from the `formulations` table, variants included, so
`tifa kwic 两个确立` finds the quoted “两个确立” too. Any other string is searched in the
documents' text, read in record batches (only the rows holding the string are converted to
Python), so memory does not grow with the archive.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds

from pipeline.analyst.views import concordance_select, connect_views
from pipeline.io.write import table_files


@dataclass
class KwicResult:
    term: str
    kind: str  # "formulation" (mentions of a lexicon entry) or "string" (plain text search)
    canonical: str | None
    n_total: int  # every occurrence, also those past `limit`
    rows: list[dict]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def kwic(out_dir: Path | str, term: str, *, width: int = 30, limit: int | None = 200) -> KwicResult:
    """Occurrences of `term` in the archive at `out_dir`, newest documents first."""
    out = Path(out_dir)
    if not table_files(out, "documents"):
        raise FileNotFoundError(f"{out} holds no tifa tables (no {out / 'documents'})")
    con = connect_views(out)
    try:
        hit = con.execute(
            "SELECT formulation_id, any_value(canonical) FROM formulations "
            "WHERE canonical = $t OR formulation_id = $t OR text = $t "
            "GROUP BY formulation_id ORDER BY count(*) DESC LIMIT 1",
            {"t": term},
        ).fetchone()
        if hit:
            fid, canonical = hit
            n_total = con.execute(
                "SELECT count(*) FROM formulations WHERE formulation_id = ?", [fid]
            ).fetchone()[0]
            cur = con.execute(
                f"SELECT left_context, match, right_context, doc_id, title, "
                f"published_at::VARCHAR AS published_at, year "
                f"FROM ({concordance_select(width)}) WHERE formulation_id = ? "
                f"ORDER BY published_at DESC NULLS LAST, doc_id, start LIMIT ?",
                [fid, limit if limit is not None else n_total],
            )
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
            return KwicResult(term, "formulation", canonical, n_total, rows)
    finally:
        con.close()
    return _string_kwic(out, term, width, limit)


def _string_kwic(out: Path, term: str, width: int, limit: int | None) -> KwicResult:
    if not term:
        raise ValueError("empty search term")
    cols = ["doc_id", "title", "published_at", "year", "text"]
    dataset = ds.dataset(table_files(out, "documents"), format="parquet")
    found: list[dict] = []
    holds_term = pc.match_substring(ds.field("text"), term)
    for batch in dataset.to_batches(columns=cols, filter=holds_term):
        for doc in batch.to_pylist():
            text, at = doc["text"], doc["text"].find(term)
            while at >= 0:
                found.append(
                    {
                        "left_context": _one_line(text[max(0, at - width) : at]),
                        "match": term,
                        "right_context": _one_line(text[at + len(term) : at + len(term) + width]),
                        "doc_id": doc["doc_id"],
                        "title": doc["title"],
                        "published_at": doc["published_at"].isoformat()
                        if doc["published_at"]
                        else None,
                        "year": doc["year"],
                        "_start": at,
                    }
                )
                at = text.find(term, at + len(term))
    found.sort(key=lambda r: (r["published_at"] or "", r["doc_id"]), reverse=True)
    found.sort(key=lambda r: r["published_at"] is None)  # undated last, like the SQL
    for r in found:
        r.pop("_start")
    rows = found if limit is None else found[:limit]
    return KwicResult(term, "string", None, len(found), rows)
