"""Every Parquet table tifa writes, declared once.

Writers build `pa.Table.from_pylist(rows, schema=SCHEMAS[name])`, so a value of the wrong type fails
at write time instead of silently producing a column that dashboards read differently each night.
Offsets (`start`/`end`) are character offsets into `documents.text`; `raw_start`/`raw_end` are
character offsets into the decoded raw document, so a row can be traced to what the user supplied.
"""

from __future__ import annotations

import pyarrow as pa

from pipeline.core.vocabulary import RelationName

_str = pa.string()
_i32 = pa.int32()
_i64 = pa.int64()
_ts = pa.timestamp("us", tz="UTC")

BYLINE = pa.struct(
    [
        pa.field("kind", _str, nullable=False),
        pa.field("text", _str, nullable=False),
        pa.field("person", _str),
        pa.field("post", _str),
        pa.field("place", _str),
        pa.field("date", _str),
        pa.field("meeting", _str),
        pa.field("raw_start", _i32, nullable=False),
        pa.field("raw_end", _i32, nullable=False),
    ]
)

DOCUMENTS = pa.schema(
    [
        pa.field("doc_id", _str, nullable=False),
        pa.field("source_file", _str, nullable=False),
        pa.field("title", _str),
        pa.field("published_at", pa.date32()),
        pa.field("year", _i32),
        pa.field("source", _str),
        pa.field("url", _str),
        pa.field("author", _str),
        pa.field("contributor", _str),
        # The title as the input gave it (``title`` is cleaned like the text).
        pa.field("title_raw", _str),
        # Names from photo credits (新华社记者 X 摄) and editor lines (责任编辑：X), "、"-joined;
        # credits leave the text, so they never become PERSON mentions.
        pa.field("photographer", _str),
        pa.field("editor", _str),
        # Why a date in the input or page header was not taken (2024-02-30); null when fine.
        pa.field("date_problem", _str),
        # Input fields tifa does not map to a column, as a JSON object (DuckDB: metadata->>'k').
        pa.field("metadata", _str),
        pa.field("text", _str, nullable=False),
        pa.field("n_chars", _i32, nullable=False),
        pa.field("n_raw_chars", _i32, nullable=False),
        pa.field("encoding", _str),
        pa.field("content_hash", _str, nullable=False),
        pa.field("had_pinyin_annotations", pa.bool_(), nullable=False),
        pa.field("converted_from_traditional", pa.bool_(), nullable=False),
        pa.field("n_chars_converted", _i32, nullable=False),
        pa.field("chrome_lines_removed", _i32, nullable=False),
        pa.field("has_redactions", pa.bool_(), nullable=False),
        # Who delivered the text, from its speaker line (浙江省省长 刘捷): the name and the post
        # as written; the line stays in the text. Null when the page has none.
        pa.field("speaker", _str),
        pa.field("speaker_post", _str),
        # Every speaker and delivery line (——2026年1月13日在…会议上) read as data, with its raw
        # offsets; kind is "speaker" or "delivered".
        pa.field("bylines", pa.list_(BYLINE)),
        # The loss alarm: characters of the text plus those of the prose lines cleaning
        # removed; the share of them removed by position or shape alone (what a pattern names or
        # what recurs across the source's documents has evidence, and a second rendering of the
        # article is not lost); every reason with its characters ("chrome:outside-article 1234;
        # chrome:repeated 278"). removed_lines has the lines.
        pa.field("prose_chars", _i32, nullable=False),
        pa.field("prose_removed_share", pa.float32(), nullable=False),
        pa.field("prose_removed_reasons", _str),
        pa.field("run_id", _str, nullable=False),
        # The story (syndicated copies of one item, run/stories.py): the doc_id of its first
        # copy seen, the canonical copy; duplicate_of names it on every other copy (null on the
        # canonical copy itself), with the estimated Jaccard similarity of the two texts.
        # rows_from: the document whose sentences/entities/formulations/relations rows serve
        # for this one (itself, or the canonical copy for a copy not run through the NLP).
        # Null in archives written before stories existed (read as their own story).
        pa.field("cluster_id", _str),
        pa.field("duplicate_of", _str),
        pa.field("similarity", pa.float32()),
        pa.field("rows_from", _str),
    ]
)

# The archive's story index: one MinHash signature per document (normalise/signature.py),
# written with the document's batch so the index is exactly as complete as the archive.
SIGNATURES = pa.schema(
    [
        pa.field("doc_id", _str, nullable=False),
        pa.field("cluster_id", _str, nullable=False),
        # NUM_PERM little-endian uint32; null for a text too short to sign or a huge document.
        pa.field("signature", pa.binary()),
        pa.field("text_hash", _str),
        # Characters the signature was made of (Han, ASCII letters, digits).
        pa.field("n_chars", _i32),
        pa.field("run_id", _str, nullable=False),
    ]
)

# One row per story (cluster of syndicated copies), rebuilt after every run from documents.
STORIES = pa.schema(
    [
        pa.field("cluster_id", _str, nullable=False),
        pa.field("canonical_doc_id", _str, nullable=False),
        pa.field("title", _str),
        pa.field("n_copies", _i64, nullable=False),
        # Copies not run through the NLP (the canonical copy's rows serve for them).
        pa.field("n_derived", _i64, nullable=False),
        pa.field("n_sources", _i64, nullable=False),
        pa.field("sources", pa.list_(_str), nullable=False),
        pa.field("first_seen", pa.date32()),
        pa.field("last_seen", pa.date32()),
        pa.field("min_similarity", pa.float32()),
        pa.field("first_run", _str, nullable=False),
        pa.field("last_run", _str, nullable=False),
    ]
)

_SPAN_FIELDS = [
    pa.field("doc_id", _str, nullable=False),
    pa.field("sent_id", _i32, nullable=False),
    pa.field("start", _i32, nullable=False),
    pa.field("end", _i32, nullable=False),
    pa.field("raw_start", _i32, nullable=False),
    pa.field("raw_end", _i32, nullable=False),
    pa.field("text", _str, nullable=False),
]

SENTENCES = pa.schema(_SPAN_FIELDS)

ENTITIES = pa.schema(
    _SPAN_FIELDS
    + [
        pa.field("label", _str, nullable=False),
        # LAC's own tag (PER/ORG/LOC/TIME/nw) or "rule" for POSITION/MEETING/DOCUMENT spans.
        pa.field("lac_tag", _str, nullable=False),
        pa.field("source", _str, nullable=False),
        # DOCUMENT rows: the body that issued it, from an `issues` relation or the title itself
        # (《中共中央关于…的意见》); null when the text does not say.
        pa.field("issuer", _str),
        # PERSON rows: the canonical name (毛主席 → 毛泽东, 习近平总书记 → 习近平); the surface
        # stays in `text`. Null for other labels. See pipeline/extract/persons.py.
        pa.field("person", _str),
    ]
)

FORMULATIONS = pa.schema(
    _SPAN_FIELDS
    + [
        pa.field("formulation_id", _str, nullable=False),
        pa.field("canonical", _str, nullable=False),
        pa.field("category", _str, nullable=False),
        # "canonical" (the standard form matched) or "variant" (another surface form).
        pa.field("match_kind", _str, nullable=False),
        pa.field("quoted", pa.bool_(), nullable=False),
        # True for a mention that lies inside a longer mention (only written when asked for).
        pa.field("nested", pa.bool_(), nullable=False),
        # The broader lexicon formulation inside this mention's text (两个确立 in
        # 深刻领悟两个确立的决定性意义): a mention is counted once, at its most specific entry,
        # with its parent here; null when it contains none.
        pa.field("parent_id", _str),
    ]
)

# How each formulation mention is used: the verb or modifier governing it in its clause
# (坚决维护, 深刻领悟, 全面贯彻, 坚定不移推进), read from the LAC tags of the words before the
# mention (pipeline/extract/usage.py). One row per mention that has one.
FORMULATION_USAGE = pa.schema(
    # The mention (its offsets, its text) and its formulation,
    _SPAN_FIELDS
    + [
        pa.field("formulation_id", _str, nullable=False),
        pa.field("canonical", _str, nullable=False),
        # the governing phrase as written (深刻领悟), its head verb (领悟; null when only a
        # modifier governs: 全面 乡村振兴), its modifiers (深刻), its offsets in documents.text,
        pa.field("governor", _str, nullable=False),
        pa.field("verb", _str),
        pa.field("modifier", _str),
        pa.field("gov_start", _i32, nullable=False),
        pa.field("gov_end", _i32, nullable=False),
        # and the LAC tags of its words, space-joined (ad v).
        pa.field("tags", _str, nullable=False),
    ]
)

# One row per discovered candidate mention; aggregated into FORMULATION_CANDIDATES after a run.
CANDIDATE_MENTIONS = pa.schema(
    _SPAN_FIELDS
    + [
        pa.field("pattern", _str, nullable=False),
        pa.field("published_at", pa.date32()),
        pa.field("sentence", _str, nullable=False),
    ]
)

FORMULATION_CANDIDATES = pa.schema(
    [
        pa.field("rank", _i32, nullable=False),
        pa.field("text", _str, nullable=False),
        pa.field("pattern", _str, nullable=False),
        pa.field("score", pa.float64(), nullable=False),
        pa.field("n_docs", _i32, nullable=False),
        pa.field("n_mentions", _i32, nullable=False),
        pa.field("n_quoted", _i32, nullable=False),
        pa.field("first_seen", pa.date32()),
        pa.field("last_seen", pa.date32()),
        pa.field("example_sentence", _str, nullable=False),
        pa.field("example_doc_id", _str, nullable=False),
        # Term statistics (pattern "burst"; other patterns where the term also bursts): the
        # documents of the archive (before tonight) holding it, and tonight's document rate over
        # the archive's (smoothed); null when not measured.
        pa.field("archive_docs", _i32),
        pa.field("burst", pa.float64()),
    ]
)

FORMULATION_COUNTS = pa.schema(
    [
        pa.field("formulation_id", _str, nullable=False),
        pa.field("canonical", _str, nullable=False),
        pa.field("category", _str, nullable=False),
        pa.field("year", _i32),
        pa.field("month", _i32),
        pa.field("source", _str),
        # Story level: mentions in, and number of, the stories' canonical copies (a story
        # reprinted 40 times counts once). Grouped by the canonical copy's year, month, source.
        pa.field("n_mentions", _i64, nullable=False),
        pa.field("n_docs", _i64, nullable=False),
        # Copy level (reach): the same counted over every copy, by each copy's own year, month
        # and source (a copy not run through the NLP carries its canonical copy's mentions).
        pa.field("reach_mentions", _i64, nullable=False),
        pa.field("reach_docs", _i64, nullable=False),
    ]
)

RELATIONS = pa.schema(
    [
        pa.field("doc_id", _str, nullable=False),
        pa.field("sent_id", _i32, nullable=False),
        # One of `core.vocabulary.RelationName` (checked when a batch is written).
        pa.field("relation", _str, nullable=False, metadata={"values": ",".join(RelationName)}),
        pa.field("head", _str, nullable=False),
        pa.field("head_label", _str, nullable=False),
        pa.field("tail", _str, nullable=False),
        pa.field("tail_label", _str, nullable=False),
        pa.field("role", _str),
        pa.field("evidence", _str, nullable=False),
        pa.field("start", _i32, nullable=False),
        pa.field("end", _i32, nullable=False),
        pa.field("raw_start", _i32, nullable=False),
        pa.field("raw_end", _i32, nullable=False),
        pa.field("confidence", pa.float32(), nullable=False),
        pa.field("rule", _str, nullable=False),
        # How an abbreviated organisation ("室", "省委") was resolved: "text" (named earlier),
        # "locality" (the document's province/city), "stack" (another post of the same person).
        pa.field("resolved_from", _str),
        # The canonical name of a PERSON head (毛主席 → 毛泽东); null for other heads.
        pa.field("person", _str),
    ]
)

PEOPLE = pa.schema(
    [
        pa.field("person", _str, nullable=False),
        pa.field("role", _str),
        pa.field("organisation", _str),
        pa.field("first_seen", pa.date32()),
        pa.field("last_seen", pa.date32()),
        pa.field("n_docs", _i64, nullable=False),
        pa.field("n_mentions", _i64, nullable=False),
        pa.field("example_doc_id", _str, nullable=False),
    ]
)

# One row per canonical person (extract/persons.py): every surface seen for them, when, and the
# posts (role @ organisation) their holds_position rows give.
PERSONS = pa.schema(
    [
        pa.field("person", _str, nullable=False),
        pa.field("aliases", pa.list_(_str), nullable=False),
        pa.field("first_seen", pa.date32()),
        pa.field("last_seen", pa.date32()),
        pa.field("n_docs", _i64, nullable=False),
        pa.field("n_mentions", _i64, nullable=False),
        pa.field("posts", pa.list_(_str), nullable=False),
        pa.field("example_doc_id", _str, nullable=False),
    ]
)

# Every piece of raw text normalisation removed (page chrome, metadata and credit lines,
# inline credits), so an analyst can see what was cut and why.
REMOVED_LINES = pa.schema(
    [
        pa.field("doc_id", _str, nullable=False),
        # 1-based line of the raw text where the piece starts.
        pa.field("line", _i32, nullable=False),
        pa.field("raw_start", _i32, nullable=False),
        pa.field("raw_end", _i32, nullable=False),
        pa.field("text", _str, nullable=False),
        # chrome:pattern | chrome:before-title | chrome:toolbar | chrome:link-list |
        # chrome:between-chrome | chrome:repeated | chrome:pager | chrome:page-break | metadata |
        # credit | credit:<role>
        pa.field("reason", _str, nullable=False),
        pa.field("run_id", _str, nullable=False),
    ]
)

ERRORS = pa.schema(
    [
        pa.field("run_id", _str, nullable=False),
        pa.field("source_file", _str, nullable=False),
        pa.field("doc_id", _str),
        pa.field("stage", _str, nullable=False),
        pa.field("error_type", _str, nullable=False),
        pa.field("message", _str, nullable=False),
    ]
)

RUNS = pa.schema(
    [
        pa.field("run_id", _str, nullable=False),
        pa.field("started_at", _ts, nullable=False),
        pa.field("finished_at", _ts, nullable=False),
        pa.field("n_documents", _i64, nullable=False),
        pa.field("n_skipped", _i64, nullable=False),
        pa.field("n_replaced", _i64, nullable=False),
        pa.field("n_errors", _i64, nullable=False),
        pa.field("n_chars", _i64, nullable=False),
        pa.field("workers", _i32, nullable=False),
        pa.field("version", _str, nullable=False),
    ]
)

# Tables written per batch of documents (one part file per batch, documents last: see write.py).
BATCH_TABLES: dict[str, pa.Schema] = {
    "sentences": SENTENCES,
    "entities": ENTITIES,
    "formulations": FORMULATIONS,
    "formulation_usage": FORMULATION_USAGE,
    "candidate_mentions": CANDIDATE_MENTIONS,
    "relations": RELATIONS,
    "removed_lines": REMOVED_LINES,
    "errors": ERRORS,
    "signatures": SIGNATURES,
    "documents": DOCUMENTS,
}

# Tables rebuilt whole from the batch tables at the end of every run.
DERIVED_TABLES: dict[str, pa.Schema] = {
    "formulation_counts": FORMULATION_COUNTS,
    "formulation_candidates": FORMULATION_CANDIDATES,
    "people": PEOPLE,
    "persons": PERSONS,
    "stories": STORIES,
}

SCHEMAS: dict[str, pa.Schema] = {**BATCH_TABLES, **DERIVED_TABLES, "runs": RUNS}


def empty_table(schema: pa.Schema) -> pa.Table:
    """A table with no rows and exactly ``schema`` (metadata included).

    ``pa.Schema.empty_table`` imports pandas (0.14 s of a run's start-up, and nothing else in a run
    needs it)."""
    return pa.Table.from_batches([], schema=schema)
