"""Dashboard tables derived from the batch tables, rebuilt whole after every run.

DuckDB aggregates straight from the Parquet files (out of core), so this step's memory does not
grow with the corpus; only the aggregated result is materialised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipeline.core.vocabulary import RelationName
from pipeline.extract.discovery import (
    archive_frequency,
    burst_ratio,
    burst_terms,
    calibrated_score,
    usages_of_known,
)
from pipeline.extract.formulations import get_matcher
from pipeline.extract.lexicon import LEXICON_PATH, load_user_lexicon
from pipeline.extract.persons import build_persons
from pipeline.io.schema import SCHEMAS
from pipeline.io.storage import Store, duckdb_path
from pipeline.io.write import DatasetWriter, table_parts


def _source(out: Store, table: str) -> str:
    files = [out.url(name) for name in table_parts(out, table)]
    if not files:
        # An empty relation with the declared columns keeps the SQL the same for a fresh --out.
        cols = ", ".join(
            f'CAST(NULL AS {_duck_type(f.type)}) AS "{f.name}"' for f in SCHEMAS[table]
        )
        return f"(SELECT {cols} WHERE FALSE)"
    # Each file named as itself: DuckDB reads [ ] * ? in any path as a pattern.
    listing = ", ".join("'" + duckdb_path(p).replace("'", "''") + "'" for p in files)
    # By name: files written before a column was added (documents' story columns) lack it.
    return f"read_parquet([{listing}], union_by_name = true)"


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_string(t):
        return "VARCHAR"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    if pa.types.is_floating(t):
        return "DOUBLE"
    return "BIGINT"


def _arrow(rel: duckdb.DuckDBPyRelation) -> pa.Table:
    result = rel.arrow()
    return result.read_all() if hasattr(result, "read_all") else result


# The story columns of documents (run/stories.py); an archive written before stories existed
# has none, and each of its documents is its own story whose rows are its own.
STORY_COLUMNS = ("cluster_id", "duplicate_of", "similarity", "rows_from")


def story_documents(con: duckdb.DuckDBPyConnection, source: str) -> str:
    """SQL over `source` (the documents) with the story columns filled: `cluster_id` and
    `rows_from` default to the document itself, `is_canonical` says whether it is the story's
    canonical copy (the one whose rows count a story once)."""
    have = {row[0] for row in con.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    missing = ", ".join(
        f'CAST(NULL AS {_duck_type(SCHEMAS["documents"].field(c).type)}) AS "{c}"'
        for c in STORY_COLUMNS
        if c not in have
    )
    base = f"(SELECT *{', ' + missing if missing else ''} FROM {source})"
    return f"""(SELECT * REPLACE (coalesce(cluster_id, doc_id) AS cluster_id,
                                  coalesce(rows_from, doc_id) AS rows_from),
                       coalesce(cluster_id, doc_id) = doc_id AS is_canonical
                FROM {base})"""


def build_formulation_counts(con: duckdb.DuckDBPyConnection, out: Store) -> pa.Table:
    docs = story_documents(con, _source(out, "documents"))
    keys = ("year", "month", "source")
    same = " AND ".join(f"s.{k} IS NOT DISTINCT FROM r.{k}" for k in keys)
    return _arrow(
        con.sql(
            f"""
            WITH d AS (SELECT * FROM {docs}),
            f AS (SELECT * FROM {_source(out, "formulations")}),
            story AS (
                SELECT f.formulation_id, d.year::INTEGER AS year,
                       month(d.published_at)::INTEGER AS month, d.source,
                       count(*) AS n_mentions, count(DISTINCT f.doc_id) AS n_docs
                FROM f JOIN d USING (doc_id) WHERE d.is_canonical GROUP BY ALL
            ),
            reach AS (
                SELECT f.formulation_id, f.canonical, f.category, d.year::INTEGER AS year,
                       month(d.published_at)::INTEGER AS month, d.source,
                       count(*) AS reach_mentions, count(DISTINCT d.doc_id) AS reach_docs
                FROM f JOIN d ON d.rows_from = f.doc_id GROUP BY ALL
            )
            SELECT r.formulation_id, r.canonical, r.category, r.year, r.month, r.source,
                   coalesce(s.n_mentions, 0) AS n_mentions, coalesce(s.n_docs, 0) AS n_docs,
                   r.reach_mentions, r.reach_docs
            FROM reach r LEFT JOIN story s ON s.formulation_id = r.formulation_id AND {same}
            ORDER BY formulation_id, year NULLS FIRST, month NULLS FIRST, source NULLS FIRST
            """
        )
    )


def build_stories(con: duckdb.DuckDBPyConnection, out: Store) -> pa.Table:
    """One row per story: its canonical copy, how many copies (and how many not run through
    the NLP), from which sources, first and last seen."""
    docs = story_documents(con, _source(out, "documents"))
    return _arrow(
        con.sql(
            f"""
            SELECT cluster_id, cluster_id AS canonical_doc_id,
                   arg_min(title, (NOT is_canonical, doc_id)) FILTER (WHERE title IS NOT NULL)
                       AS title,
                   count(*) AS n_copies,
                   count(*) FILTER (WHERE rows_from <> doc_id) AS n_derived,
                   count(DISTINCT source) AS n_sources,
                   coalesce(list_sort(list_distinct(list(source))), []) AS sources,
                   min(published_at) AS first_seen, max(published_at) AS last_seen,
                   min(similarity) AS min_similarity,
                   min(run_id) AS first_run, max(run_id) AS last_run
            FROM {docs}
            GROUP BY cluster_id
            ORDER BY n_copies DESC, cluster_id
            """
        )
    ).cast(SCHEMAS["stories"])


def build_formulation_candidates(
    con: duckdb.DuckDBPyConnection,
    out: Store,
    lexicon: str | None = None,
    user_lexicon: str | None = None,
) -> pa.Table:
    """Discovery candidates, ranked by the calibrated score: the candidate mentions (numeric
    patterns, quoted terms) grouped by text, and the burst/novel terms of tonight's documents
    against the archive (extract/discovery.py); lexicon forms and rejected terms left out."""
    grouped = _arrow(
        con.sql(
            f"""
            SELECT text,
                   -- the strongest evidence any mention gave
                   CASE WHEN bool_or(pattern = 'quoted_numeral') THEN 'quoted_numeral'
                        WHEN bool_or(pattern = 'enumeration') THEN 'enumeration'
                        WHEN bool_or(pattern = 'numeral_compound') THEN 'numeral_compound'
                        WHEN bool_or(pattern = 'quoted_term') THEN 'quoted_term'
                        ELSE 'numeral_measure' END AS pattern,
                   count(DISTINCT doc_id)::INTEGER AS n_docs,
                   count(*)::INTEGER AS n_mentions,
                   count(*) FILTER (WHERE pattern LIKE 'quoted%')::INTEGER AS n_quoted,
                   min(published_at) AS first_seen,
                   max(published_at) AS last_seen,
                   -- the best sentence: one where it is quoted (the text names it), then the
                   -- one nearest 60 characters (a fragment says little, a page too much);
                   -- ties broken by doc_id and position, so identical reruns give identical
                   -- tables
                   arg_min(sentence, (pattern NOT LIKE 'quoted%', abs(length(sentence) - 60),
                                      doc_id, start, sentence)) AS example_sentence,
                   arg_min(doc_id, (pattern NOT LIKE 'quoted%', abs(length(sentence) - 60),
                                    doc_id, start, sentence)) AS example_doc_id
            FROM {_source(out, "candidate_mentions")}
            GROUP BY text
            """
        )
    )
    matcher = get_matcher(lexicon or str(LEXICON_PATH), user=user_lexicon)
    rejected = set(load_user_lexicon(user_lexicon).rejected)
    rows = [
        r
        for r in grouped.to_pylist()
        if r["text"] not in matcher.forms and r["text"] not in rejected
    ]
    usages = usages_of_known([r["text"] for r in rows], matcher.forms)
    rows = [r for r in rows if r["text"] not in usages]
    nights = _Nights(con, out)
    _add_bursts(rows, nights, list(matcher.forms), rejected)
    _add_history(con, out, rows, nights)
    for r in rows:
        share = r["n_quoted"] / r["n_mentions"] if r["n_mentions"] else 0.0
        r["score"] = calibrated_score(
            r["pattern"], r["n_docs"], r["n_mentions"], share, r.get("burst")
        )
    rows.sort(key=lambda r: (-r["score"], -r["n_docs"], r["text"]))
    for i, r in enumerate(rows, start=1):
        r["rank"] = i
    return pa.Table.from_pylist(rows, schema=SCHEMAS["formulation_candidates"])


class _Nights:
    """Tonight (the documents of the last run) and the archive (every earlier document)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, out: Store):
        self.con, self.out = con, out
        self.docs = _source(out, "documents")
        self.last = con.execute(f"SELECT max(run_id) FROM {self.docs}").fetchall()[0][0]
        self.n_archive = self.n_tonight = 0
        if self.last is not None:
            self.n_archive, self.n_tonight = con.execute(
                f"SELECT count(*) FILTER (WHERE run_id <> $1), count(*) FILTER (WHERE run_id = $1)"
                f" FROM {self.docs}",
                [self.last],
            ).fetchall()[0]

    def tonight(self) -> list[tuple[str, str]]:
        return self.con.execute(
            f"SELECT doc_id, text FROM {self.docs} WHERE run_id = ? ORDER BY doc_id", [self.last]
        ).fetchall()

    def archive_frequency(self, terms: list[str]) -> Any:
        """Archive documents holding each term: streamed on a cursor of its own, 256 texts at a
        time (the archive is never held whole), one Aho-Corasick pass."""
        cur = self.con.cursor()
        try:
            cur.execute(f"SELECT text FROM {self.docs} WHERE run_id <> ?", [self.last])

            def texts() -> Any:
                while batch := cur.fetchmany(256):
                    yield from (t for (t,) in batch)

            return archive_frequency(texts(), terms)
        finally:
            cur.close()


def _add_bursts(rows: list[dict], nights: _Nights, known: list[str], rejected: set[str]) -> None:
    """Burst and novel terms of tonight against the archive, as rows (or onto the row of the
    same text); nothing on the first night, which has no archive to compare with."""
    if not nights.n_archive or not nights.n_tonight:
        return
    names = nights.con.execute(
        f"""SELECT DISTINCT e.text, e.label FROM {_source(nights.out, "entities")} e
            JOIN {nights.docs} d USING (doc_id) WHERE d.run_id = ?""",
        [nights.last],
    ).fetchall()
    from pipeline.nlp.lac_runner import get_runner

    by_text = {r["text"]: r for r in rows}
    found = burst_terms(
        nights.tonight(),
        [],
        nights.n_archive,
        known,
        entities=names,
        words=get_runner().run,
        archive_df=nights.archive_frequency,
    )
    for b in found:
        if b.text in rejected:
            continue
        row = by_text.get(b.text)
        if row is None:
            row = by_text[b.text] = {
                "text": b.text,
                "pattern": "burst",
                "n_docs": b.n_docs,
                "n_mentions": b.n_mentions,
                "n_quoted": b.n_quoted,
                "first_seen": None,
                "last_seen": None,
                "example_sentence": b.example_sentence,
                "example_doc_id": b.example_doc_id,
            }
            rows.append(row)
        row["archive_docs"], row["burst"] = b.archive_docs, b.ratio


def _add_history(
    con: duckdb.DuckDBPyConnection, out: Store, rows: list[dict], nights: _Nights
) -> None:
    """Tonight's rate of each candidate mentioned tonight against its archive rate (the same
    smoothed ratio as a burst): a candidate the archive already had ranks lower."""
    todo = [r for r in rows if r.get("burst") is None]
    if not nights.n_archive or not nights.n_tonight or not todo:
        return
    tonight_docs = dict(
        con.execute(
            f"""SELECT c.text, count(DISTINCT c.doc_id) FROM {_source(out, "candidate_mentions")} c
                JOIN {nights.docs} d USING (doc_id) WHERE d.run_id = ? GROUP BY c.text""",
            [nights.last],
        ).fetchall()
    )
    todo = [r for r in todo if tonight_docs.get(r["text"])]
    archive_df = nights.archive_frequency([r["text"] for r in todo])
    for r in todo:
        r["archive_docs"] = archive_df[r["text"]]
        r["burst"] = round(
            burst_ratio(
                tonight_docs[r["text"]], nights.n_tonight, archive_df[r["text"]], nights.n_archive
            ),
            3,
        )


def build_people(con: duckdb.DuckDBPyConnection, out: Store) -> pa.Table:
    return _arrow(
        con.sql(
            f"""
            SELECT coalesce(r.person, r.head) AS person, r.role, r.tail AS organisation,
                   min(d.published_at) AS first_seen, max(d.published_at) AS last_seen,
                   count(DISTINCT r.doc_id) AS n_docs, count(*) AS n_mentions,
                   min(r.doc_id) AS example_doc_id
            FROM {_source(out, "relations")} r
            JOIN {_source(out, "documents")} d USING (doc_id)
            WHERE r.relation = '{RelationName.HOLDS_POSITION}'
            GROUP BY ALL
            ORDER BY person, first_seen NULLS LAST, role
            """
        )
    )


def rebuild_derived_tables(
    out_dir: Path | str | Store,
    writer: DatasetWriter,
    lexicon: str | None = None,
    user_lexicon: str | None = None,
) -> dict[str, int]:
    out = Store(out_dir)
    con = duckdb.connect()
    out.register(con)
    try:
        built = {
            "formulation_counts": build_formulation_counts(con, out),
            "formulation_candidates": build_formulation_candidates(con, out, lexicon, user_lexicon),
            "people": build_people(con, out),
            "persons": build_persons(con, lambda table: _source(out, table)),
            "stories": build_stories(con, out),
        }
    finally:
        con.close()
    for name, table in built.items():
        writer.write_whole(name, table)
    return {name: t.num_rows for name, t in built.items()}
