"""Tonight's largest stories: syndicated copies linked by run/stories.py (`tifa dedup`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.analyst.views import connect_views


def largest_stories(out: Path | str, limit: int = 20, min_copies: int = 2) -> list[dict[str, Any]]:
    """Tonight's stories with at least `min_copies` copies written tonight, largest first
    (the `stories_tonight` view)."""
    con = connect_views(out)
    try:
        cur = con.execute(
            "SELECT * FROM stories_tonight WHERE copies_tonight >= ? LIMIT ?",
            [int(min_copies), int(limit)],
        )
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def story_totals(out: Path | str) -> dict[str, int]:
    """Documents, stories and copies not run through the NLP, tonight and in the archive."""
    con = connect_views(out)
    try:
        row = con.execute(
            """
            WITH lr AS (SELECT * FROM last_run)
            SELECT count(*) FILTER (WHERE d.run_id > lr.since),
                   count(DISTINCT d.cluster_id) FILTER (WHERE d.run_id > lr.since),
                   count(*) FILTER (WHERE d.run_id > lr.since AND d.rows_from <> d.doc_id),
                   count(*), count(DISTINCT d.cluster_id),
                   count(*) FILTER (WHERE d.rows_from <> d.doc_id)
            FROM story_documents d, lr
            """
        ).fetchone()
    finally:
        con.close()
    keys = ("docs_tonight", "stories_tonight", "derived_tonight", "docs", "stories", "derived")
    return dict(zip(keys, row or (0,) * 6, strict=True))
