"""Dashboard tables derived from the batch tables, rebuilt whole after every run.

DuckDB aggregates straight from the Parquet files (out of core), so this step's memory does not
grow with the corpus; only the aggregated result is materialised.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline.core.vocabulary import RelationName
from pipeline.extract.formulations import get_matcher, score_candidate
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
    con: duckdb.DuckDBPyConnection, out: Store, lexicon: str | None = None
) -> pa.Table:
    grouped = _arrow(
        con.sql(
            f"""
            SELECT text,
                   -- the strongest evidence any mention gave
                   CASE WHEN bool_or(pattern = 'quoted_numeral') THEN 'quoted_numeral'
                        WHEN bool_or(pattern = 'enumeration') THEN 'enumeration'
                        WHEN bool_or(pattern = 'numeral_compound') THEN 'numeral_compound'
                        ELSE 'numeral_measure' END AS pattern,
                   count(DISTINCT doc_id)::INTEGER AS n_docs,
                   count(*)::INTEGER AS n_mentions,
                   count(*) FILTER (WHERE pattern = 'quoted_numeral')::INTEGER AS n_quoted,
                   min(published_at) AS first_seen,
                   max(published_at) AS last_seen,
                   -- the shortest sentence; ties broken by doc_id and position, so identical
                   -- reruns give identical tables
                   arg_min(sentence, (length(sentence), doc_id, start, sentence))
                       AS example_sentence,
                   arg_min(doc_id, (length(sentence), doc_id, start, sentence)) AS example_doc_id
            FROM {_source(out, "candidate_mentions")}
            GROUP BY text
            """
        )
    )
    rows = grouped.to_pylist()
    lexicon_forms = (get_matcher(lexicon) if lexicon else get_matcher()).forms
    rows = [r for r in rows if r["text"] not in lexicon_forms]
    for r in rows:
        r["score"] = score_candidate(r["pattern"], r["n_docs"], r["n_mentions"], r["n_quoted"])
    rows.sort(key=lambda r: (-r["score"], -r["n_docs"], r["text"]))
    for i, r in enumerate(rows, start=1):
        r["rank"] = i
    return pa.Table.from_pylist(rows, schema=SCHEMAS["formulation_candidates"])


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
    out_dir: Path | str | Store, writer: DatasetWriter, lexicon: str | None = None
) -> dict[str, int]:
    out = Store(out_dir)
    con = duckdb.connect()
    out.register(con)
    try:
        built = {
            "formulation_counts": build_formulation_counts(con, out),
            "formulation_candidates": build_formulation_candidates(con, out, lexicon),
            "people": build_people(con, out),
            "persons": build_persons(con, lambda table: _source(out, table)),
            "stories": build_stories(con, out),
        }
    finally:
        con.close()
    for name, table in built.items():
        writer.write_whole(name, table)
    return {name: t.num_rows for name, t in built.items()}
