"""Dashboard-ready views: `DIR/tifa.duckdb`, one DuckDB file holding views over the Parquet tables.

Superset, Metabase, Grafana or Evidence connect to this one file and see every table plus the
analyst views (`trends`, `trends_monthly`, `new_tonight`, `people`, `concordance`,
`stories_tonight`, `usage_trends`; counts per story with the reach beside them: run/stories.py)
and `story_documents` (documents with their story columns filled). The file
holds no data, only view definitions (about 270 KB, the size DuckDB gives an almost empty
file), and is always as fresh as the Parquet files: each view reads `DIR/<table>/*.parquet` when
it is queried, so rows written by later runs appear without rebuilding the file.

Paths: the views name the Parquet folders by their absolute path, resolved when the file is
written (DuckDB resolves a relative path in a view against the *reader's* working directory, not
the file's, so a relative path would break as soon as a dashboard opened the file from elsewhere).
Moving DIR, or mounting it at another path in a container, needs `tifa views --out DIR` there.

The file is rebuilt at the end of every `tifa run` (under the run's lock) by writing a new file
under a temporary dot-name and renaming it over the old one, like every other file tifa writes: a
dashboard opening it sees the old definitions or the new ones, never a half-written file.

The same SQL defines the report's queries (`report.py` creates these views as temporary
views on its own connection), so the page and the dashboards cannot disagree.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import duckdb

from pipeline.analyst.aggregate import _duck_type
from pipeline.core.faults import checkpoint
from pipeline.core.vocabulary import RelationName
from pipeline.io.schema import SCHEMAS
from pipeline.io.storage import duckdb_glob
from pipeline.io.write import table_files

VIEWS_FILE = "tifa.duckdb"
# Characters of context either side of a match in the `concordance` view.
CONCORDANCE_WIDTH = 30
ANALYST_VIEWS = (
    "trends",
    "trends_monthly",
    "new_tonight",
    "people",
    "concordance",
    "stories_tonight",
    "usage_trends",
)
# Storage format of the file: readable by DuckDB 1.0 and later.
STORAGE_VERSION = "v1.0.0"


# Longest title the analyst views (and so the report) show; documents.title keeps it whole. A
# title is a label repeated in every concordance row: a 1 MB "title" (a scrape that put the
# page in it) made a 547 MB report and a 2.9 GB process.
TITLE_CHARS = 200


def short_title(expr: str) -> str:
    """SQL: `expr` cut to TITLE_CHARS characters, with … when cut."""
    return (
        f"CASE WHEN length({expr}) > {TITLE_CHARS} "
        f"THEN left({expr}, {TITLE_CHARS - 1}) || '…' ELSE {expr} END"
    )


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _table_source(out: Path, table: str) -> str:
    if not table_files(out, table):
        # No file yet (a folder before its first complete run): an empty relation with the
        # declared columns, so every view still binds; the next run's rewrite points it at files.
        cols = ", ".join(
            f'CAST(NULL AS {_duck_type(f.type)}) AS "{f.name}"' for f in SCHEMAS[table]
        )
        return f"(SELECT {cols} WHERE FALSE)"
    # The folder named as itself: DuckDB reads [ ] * ? in it as a pattern (see storage.py).
    glob = duckdb_glob(f"{out.resolve().as_posix()}/{table}", "*.parquet")
    return f"read_parquet({_quote(glob)}, union_by_name = true)"


def _context(expr: str) -> str:
    # Newlines and runs of spaces in a context would break a one-line concordance row.
    return f"trim(regexp_replace({expr}, '\\s+', ' ', 'g'))"


def concordance_select(width: int = CONCORDANCE_WIDTH) -> str:
    """SELECT over the `formulations` and `documents` views giving one row per mention: left
    context, match, right context (`width` characters each way), document and date."""
    w = int(width)
    return f"""
        SELECT f.formulation_id, f.canonical, f.category,
               {
        _context(
            f"substring(d.text, greatest(f.start - {w}, 0) + 1, "
            f"f.start - greatest(f.start - {w}, 0))"
        )
    } AS left_context,
               f.text AS match,
               {_context(f'substring(d.text, f."end" + 1, {w})')} AS right_context,
               f.doc_id, {short_title("d.title")} AS title, d.published_at, d.year, d.source,
               f.sent_id, f.start,
               f."end", f.quoted, d.run_id
        FROM formulations f JOIN documents d USING (doc_id)
    """


# The run the views call "tonight" is the last completed run that wrote something: a document
# (the first completed run at or after the newest document's run) or an errors row (a night
# whose only news is a broken file still gets its report). A rerun that writes nothing leaves
# every view's rows as they were (and its report unchanged) instead of emptying `new_tonight`.
# What it brought is every document written since the completed run before it (run ids sort by
# start time), so documents of an interrupted run in between count for the night that finished
# them. With nothing written at all, the newest completed run. `new_tonight.run_id` says which
# run this is.
_LAST_RUN = """
    WITH r AS (
        SELECT run_id, coalesce(lag(run_id) OVER (ORDER BY run_id), '') AS since FROM runs
    ),
    wrote AS (
        SELECT min(r.run_id) AS run_id FROM r, (SELECT max(run_id) AS newest FROM documents) m
        WHERE r.run_id >= m.newest
        UNION ALL
        SELECT max(run_id) FROM errors WHERE run_id IN (SELECT run_id FROM runs)
    )
    SELECT r.run_id, r.since FROM r
    ORDER BY r.run_id = (SELECT max(run_id) FROM wrote) DESC NULLS LAST, r.run_id DESC
    LIMIT 1
"""

# First seen = the earliest run that wrote a document mentioning it. Each item's example is its
# first mention among tonight's documents (date, doc_id, position), with the sentence.
_NEW_TONIGHT = """
    WITH lr AS (SELECT * FROM last_run),
    tonight AS (
        SELECT d.doc_id, d.cluster_id, @TITLE@ AS title, d.published_at
        FROM story_documents d, lr
        WHERE d.run_id > lr.since AND d.is_canonical
    ),
    copies AS (
        SELECT x.cluster_id, count(*) AS n FROM story_documents x, lr WHERE x.run_id > lr.since
        GROUP BY x.cluster_id
    ),
    f_first AS (
        SELECT f.formulation_id, min(d.run_id) AS first_run
        FROM formulations f JOIN documents d USING (doc_id) GROUP BY ALL
    ),
    f_new AS (
        SELECT f.formulation_id, any_value(f.canonical) AS item, any_value(f.category) AS detail,
               count(DISTINCT f.doc_id) AS n_docs, count(*) AS n_mentions,
               list(DISTINCT t.cluster_id) AS clusters,
               arg_min(struct_pack(doc_id := f.doc_id, sent_id := f.sent_id),
                       (t.published_at, f.doc_id, f.start)) AS ex
        FROM formulations f JOIN tonight t USING (doc_id)
        JOIN f_first ff USING (formulation_id), lr
        WHERE ff.first_run > lr.since
        GROUP BY f.formulation_id
    ),
    c_first AS (
        SELECT c.text, min(d.run_id) AS first_run
        FROM candidate_mentions c JOIN documents d USING (doc_id) GROUP BY ALL
    ),
    c_new AS (
        SELECT c.text AS item, any_value(fc.pattern) AS detail, any_value(fc.rank) AS rank,
               count(DISTINCT c.doc_id) AS n_docs, count(*) AS n_mentions,
               list(DISTINCT t.cluster_id) AS clusters,
               arg_min(struct_pack(doc_id := c.doc_id, sent_id := c.sent_id),
                       (t.published_at, c.doc_id, c.start)) AS ex
        FROM candidate_mentions c JOIN tonight t USING (doc_id)
        JOIN c_first cf USING (text)
        JOIN formulation_candidates fc USING (text), lr
        WHERE cf.first_run > lr.since
        GROUP BY c.text
    ),
    -- burst terms no earlier document had (term statistics: not in candidate_mentions); the
    -- example is the first sentence of the example document that holds the term
    b_new AS (
        SELECT fc.text AS item, fc.pattern AS detail, fc.rank, fc.n_docs, fc.n_mentions,
               list_value(sd.cluster_id) AS clusters,
               struct_pack(doc_id := fc.example_doc_id,
                           sent_id := (SELECT min(s.sent_id) FROM sentences s
                                       WHERE s.doc_id = fc.example_doc_id
                                         AND contains(s.text, fc.text))) AS ex
        FROM formulation_candidates fc
        LEFT JOIN story_documents sd ON sd.doc_id = fc.example_doc_id
        WHERE fc.pattern = 'burst' AND fc.archive_docs = 0
    ),
    r_all AS (
        SELECT coalesce(r.person, r.head) AS person, r.role, r.tail AS organisation, r.doc_id,
               r.sent_id, r.start, d.run_id, d.published_at, d.cluster_id
        FROM relations r JOIN story_documents d USING (doc_id)
        WHERE r.relation = '{HOLDS}' AND d.is_canonical
    ),
    r_new AS (
        SELECT person AS item,
               coalesce(role, '') || ' @ ' || organisation AS detail,
               count(DISTINCT doc_id) AS n_docs, count(*) AS n_mentions,
               list(DISTINCT cluster_id) AS clusters,
               arg_min(struct_pack(doc_id := doc_id, sent_id := sent_id),
                       (published_at, doc_id, start)) AS ex,
               min(run_id) AS first_run
        FROM r_all GROUP BY person, role, organisation
    ),
    items AS (
        SELECT 'formulation' AS kind,
               row_number() OVER (ORDER BY n_mentions DESC, item) AS rank,
               item, detail, n_docs, n_mentions, clusters, ex FROM f_new
        UNION ALL
        SELECT 'candidate', rank, item, detail, n_docs, n_mentions, clusters, ex FROM c_new
        UNION ALL
        SELECT 'candidate', rank, item, detail, n_docs, n_mentions, clusters, ex FROM b_new
        UNION ALL
        SELECT 'appointment', row_number() OVER (ORDER BY n_mentions DESC, item, detail),
               item, detail, n_docs, n_mentions, clusters, ex
        FROM r_new, lr WHERE first_run > lr.since
    )
    SELECT i.kind, i.rank::INTEGER AS rank, i.item, i.detail, i.n_docs, i.n_mentions,
           (SELECT coalesce(sum(k.n), 0) FROM copies k
            WHERE list_contains(i.clusters, k.cluster_id))::BIGINT AS reach_docs,
           s.text AS sentence, i.ex.doc_id AS doc_id, @TITLE@ AS title, d.published_at,
           (SELECT run_id FROM lr) AS run_id
    FROM items i
    LEFT JOIN sentences s ON s.doc_id = i.ex.doc_id AND s.sent_id = i.ex.sent_id
    LEFT JOIN documents d ON d.doc_id = i.ex.doc_id
    ORDER BY CASE i.kind WHEN 'formulation' THEN 0 WHEN 'candidate' THEN 1 ELSE 2 END, i.rank
""".replace("{HOLDS}", RelationName.HOLDS_POSITION).replace("@TITLE@", short_title("d.title"))

# Mentions per formulation and year: one grain per view (a view mixing months and years put a
# year-dated report in January). Undated documents stay in (year NULL) so a chart can say how
# many it could not place instead of dropping them. rate_per_10k: mentions per 10,000
# characters of that year's documents, comparable across years of different sizes. Counted
# by story (the canonical copy of each: a story reprinted 40 times is one), with the reach
# beside: reach_mentions and reach_docs count every copy (run/stories.py).
_TRENDS = """
    WITH chars AS (SELECT year, sum(n_chars) AS n_chars FROM story_documents WHERE is_canonical
                   GROUP BY year),
    story AS (
        SELECT f.formulation_id, any_value(f.canonical) AS canonical,
               any_value(f.category) AS category, d.year,
               count(*) AS n_mentions, count(DISTINCT f.doc_id) AS n_docs
        FROM formulations f JOIN story_documents d USING (doc_id)
        WHERE d.is_canonical
        GROUP BY f.formulation_id, d.year
    ),
    reach AS (
        SELECT f.formulation_id, d.year,
               count(*) AS reach_mentions, count(DISTINCT d.doc_id) AS reach_docs
        FROM formulations f JOIN story_documents d ON d.rows_from = f.doc_id
        GROUP BY f.formulation_id, d.year
    )
    SELECT s.formulation_id, s.canonical, s.category, s.year, s.n_mentions, s.n_docs,
           10000.0 * s.n_mentions / c.n_chars AS rate_per_10k,
           coalesce(r.reach_mentions, s.n_mentions) AS reach_mentions,
           coalesce(r.reach_docs, s.n_docs) AS reach_docs
    FROM story s
    LEFT JOIN chars c ON c.year IS NOT DISTINCT FROM s.year
    LEFT JOIN reach r ON r.formulation_id = s.formulation_id AND r.year IS NOT DISTINCT FROM s.year
    ORDER BY s.formulation_id, s.year NULLS FIRST
"""
# The same per month, over the documents with a full date only (a year-only date has no month).
# How each formulation is used, year by year: its governing verbs and modifiers
# (formulation_usage), with each governor's share of that year's governed mentions.
_USAGE_TRENDS = """
    SELECT u.formulation_id, any_value(u.canonical) AS canonical, d.year::INTEGER AS year,
           u.governor, any_value(u.verb) AS verb, any_value(u.modifier) AS modifier,
           count(*) AS n_mentions, count(DISTINCT u.doc_id) AS n_docs,
           count(*) / sum(count(*)) OVER (PARTITION BY u.formulation_id, d.year) AS share
    FROM formulation_usage u JOIN documents d USING (doc_id)
    GROUP BY u.formulation_id, d.year, u.governor
    ORDER BY u.formulation_id, year NULLS FIRST, n_mentions DESC, u.governor
"""

_TRENDS_MONTHLY = """
    WITH chars AS (
        SELECT date_trunc('month', published_at)::DATE AS month, sum(n_chars) AS n_chars
        FROM story_documents WHERE published_at IS NOT NULL AND is_canonical GROUP BY ALL
    ),
    reach AS (
        SELECT f.formulation_id, date_trunc('month', d.published_at)::DATE AS month,
               count(*) AS reach_mentions, count(DISTINCT d.doc_id) AS reach_docs
        FROM formulations f JOIN story_documents d ON d.rows_from = f.doc_id
        WHERE d.published_at IS NOT NULL
        GROUP BY ALL
    ),
    story AS (
        SELECT f.formulation_id, any_value(f.canonical) AS canonical,
               any_value(f.category) AS category, c.month,
               count(*) AS n_mentions, count(DISTINCT f.doc_id) AS n_docs,
               10000.0 * count(*) / any_value(c.n_chars) AS rate_per_10k
        FROM formulations f JOIN story_documents d USING (doc_id)
        JOIN chars c ON c.month = date_trunc('month', d.published_at)::DATE
        WHERE d.is_canonical
        GROUP BY f.formulation_id, c.month
    )
    SELECT s.*, coalesce(r.reach_mentions, s.n_mentions) AS reach_mentions,
           coalesce(r.reach_docs, s.n_docs) AS reach_docs
    FROM story s LEFT JOIN reach r USING (formulation_id, month)
    ORDER BY s.formulation_id, s.month
"""


# Documents with their story columns filled (an archive written before stories existed has
# none: each document its own story, its rows its own), and whether each is its story's
# canonical copy, the one whose rows count a story once.
_STORY_DOCUMENTS = """
    SELECT * REPLACE (coalesce(cluster_id, doc_id) AS cluster_id,
                      coalesce(rows_from, doc_id) AS rows_from),
           coalesce(cluster_id, doc_id) = doc_id AS is_canonical
    FROM @DOCS@
"""

# Tonight's stories, largest first: copies written tonight and in the whole archive, sources.
_STORIES_TONIGHT = """
    WITH lr AS (SELECT * FROM last_run)
    SELECT d.cluster_id, s.title, count(*) AS copies_tonight, s.n_copies AS copies_all,
           s.n_derived, s.n_sources, s.sources, s.first_seen, s.last_seen, s.min_similarity
    FROM story_documents d JOIN stories s USING (cluster_id), lr
    WHERE d.run_id > lr.since
    GROUP BY ALL
    ORDER BY copies_tonight DESC, copies_all DESC, d.cluster_id
"""


# The Parquet `people` table under its own name, with two columns for a dashboard: the post as
# one label and the example document's title. (The view once took the name and left the table
# as `people_table`: a query written against the Parquet folder's name read another thing.)
_PEOPLE = """
    SELECT p.*, coalesce(p.role, '') || ' @ ' || coalesce(p.organisation, '') AS post,
           @TITLE@ AS example_title
    FROM @SOURCE@ p LEFT JOIN documents d ON d.doc_id = p.example_doc_id
""".replace("@TITLE@", short_title("d.title"))


def _story_source(out: Path) -> str:
    """The documents view, with NULL story columns when no documents file has them (an
    archive written before stories existed)."""
    import pyarrow.parquet as pq

    files = table_files(out, "documents")
    if any("cluster_id" in pq.read_schema(f).names for f in files) or not files:
        return "documents"
    cols = ", ".join(
        f'CAST(NULL AS {_duck_type(SCHEMAS["documents"].field(c).type)}) AS "{c}"'
        for c in ("cluster_id", "duplicate_of", "similarity", "rows_from")
    )
    return f"(SELECT *, {cols} FROM documents)"


def view_statements(out: Path | str, *, temporary: bool = False) -> list[str]:
    """CREATE VIEW statements: one per table, under the table's name (`people` with two more
    columns), then the helper and analyst views."""
    out = Path(out)
    kind = "TEMP VIEW" if temporary else "VIEW"
    stmts = [
        f"CREATE OR REPLACE {kind} {table} AS SELECT * FROM {_table_source(out, table)}"
        for table in SCHEMAS
        if table != "people"
    ]
    stmts += [
        f"CREATE OR REPLACE {kind} story_documents AS "
        + _STORY_DOCUMENTS.replace("@DOCS@", _story_source(out)),
        f"CREATE OR REPLACE {kind} last_run AS {_LAST_RUN}",
        f"CREATE OR REPLACE {kind} trends AS {_TRENDS}",
        f"CREATE OR REPLACE {kind} trends_monthly AS {_TRENDS_MONTHLY}",
        f"CREATE OR REPLACE {kind} new_tonight AS {_NEW_TONIGHT}",
        f"CREATE OR REPLACE {kind} people AS "
        + _PEOPLE.replace("@SOURCE@", _table_source(out, "people")),
        f"CREATE OR REPLACE {kind} concordance AS {concordance_select()}",
        f"CREATE OR REPLACE {kind} stories_tonight AS {_STORIES_TONIGHT}",
        f"CREATE OR REPLACE {kind} usage_trends AS {_USAGE_TRENDS}",
    ]
    return stmts


def connect_views(out: Path | str) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with every view defined as a temporary view over `out`."""
    con = duckdb.connect()
    for stmt in view_statements(out, temporary=True):
        con.execute(stmt)
    return con


def write_views(out_dir: Path | str) -> Path:
    """(Re)create `DIR/tifa.duckdb` atomically; returns its path."""
    out = Path(out_dir)
    dest = out / VIEWS_FILE
    for stale in out.glob(f".{VIEWS_FILE}.*.tmp*"):  # left by a run killed while writing it
        stale.unlink(missing_ok=True)
    tmp = out / f".{VIEWS_FILE}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        # Oldest storage format that holds views: dashboards bundle their own DuckDB, often a
        # release or two behind this one (DuckDB 2.0's default format is unreadable by 1.x).
        con = duckdb.connect(str(tmp), config={"storage_compatibility_version": STORAGE_VERSION})
        try:
            for stmt in view_statements(out):
                con.execute(stmt)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        checkpoint("views.renaming")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)
    return dest
