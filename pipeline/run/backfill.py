"""Back-fill: the formulations of the whole archive again, from `documents.text`, without the NLP.

After `tifa lexicon accept` (or a packaged lexicon upgrade) the archive's `formulations` and
`formulation_usage` partitions are rewritten from the documents they belong to
(`tifa run --force --only formulations`, or `tifa lexicon apply`): each documents part file
`documents/part-K.parquet` gives the texts, and `formulations/part-K.parquet` and
`formulation_usage/part-K.parquet` (the same home, see io/write.py) are rewritten, one atomic
rename each. A mention found before keeps its row as it was (raw offsets exact); a new mention's
sentence comes from `sentences`, and its raw offsets from its sentence's (exact where the
sentence's clean and raw lengths agree, else the sentence's raw start plus the offset, clipped to
the sentence). Usage rows of new mentions (of every mention, in a part written before
formulation_usage existed) come from LAC tags of the clause before each mention only
(milliseconds; the documents are not analysed again). Then the derived tables, the views
and the report are rebuilt. Holds the output lock; a kill leaves each part old or new, and
running it again finishes the job.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import regex

from pipeline.core.faults import checkpoint
from pipeline.extract.formulations import FormulationMatcher, get_matcher
from pipeline.extract.lexicon import LEXICON_PATH, lexicon_for, user_lexicon_path
from pipeline.extract.rows import mention_fields
from pipeline.extract.usage import usage_rows
from pipeline.io.compact import recover as recover_compaction
from pipeline.io.lock import output_lock
from pipeline.io.schema import SCHEMAS
from pipeline.io.storage import Store
from pipeline.io.write import (
    DatasetWriter,
    file_key,
    finish_replacements,
    part_name,
    remove_interrupted_batches,
    table_parts,
)

_CLAUSE_START = regex.compile(r"[，。；：！？、\n][^，。；：！？、\n]*$")
_PREFIX_CHARS = 24


@dataclass
class BackfillSummary:
    out_dir: str
    n_parts: int = 0
    n_documents: int = 0
    mentions_before: int = 0
    mentions_after: int = 0
    usage_after: int = 0
    # formulation canonical -> mentions gained (negative: lost, e.g. a variant moved)
    gained: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    report_path: Path | None = None


def backfill_formulations(
    out_dir: Path | str,
    lexicon: str | None = None,
    nested: bool = False,
    report: bool = True,
) -> BackfillSummary:
    """Rewrite every formulations and formulation_usage part of `out_dir` from its documents
    with the current lexicon (packaged or `lexicon`, merged with the output's user lexicon)."""
    t0 = time.perf_counter()
    out = Path(out_dir)
    if not (out / "documents").is_dir():
        raise FileNotFoundError(f"{out} holds no tifa output (no {out / 'documents'})")
    lexicon = str(Path(lexicon).resolve()) if lexicon else str(LEXICON_PATH)
    user = user_lexicon_path(out)
    user_arg = str(user.resolve()) if user.is_file() else None
    _, notes = lexicon_for(lexicon, user_arg)
    summary = BackfillSummary(str(out), notes=notes)
    matcher = get_matcher(lexicon, nested, user_arg)
    with output_lock(out):
        store = Store(out)
        recover_compaction(store)
        remove_interrupted_batches(out)
        finish_replacements(out)
        for name in table_parts(store, "documents"):
            _backfill_part(store, file_key(name), matcher, summary)
        _rebuild(out, lexicon, user_arg, report, summary)
    summary.seconds = time.perf_counter() - t0
    return summary


def _backfill_part(
    store: Store, key: str, matcher: FormulationMatcher, summary: BackfillSummary
) -> None:
    docs = store.read_parquet(part_name("documents", key), ["doc_id", "text", "year"]).to_pylist()
    old_f = _read(store, "formulations", key)
    old_u = _read(store, "formulation_usage", key)
    # An archive written before formulation_usage existed: every mention gets its usage now.
    had_usage = store.exists(part_name("formulation_usage", key)) or not old_f
    sentences = _by_doc(_read(store, "sentences", key))
    old_by_doc, usage_by_doc = _by_doc(old_f), _by_doc(old_u)
    new_f: list[dict[str, Any]] = []
    new_u: list[dict[str, Any]] = []
    for d in docs:
        old = {
            (r["start"], r["end"], r["formulation_id"]): r for r in old_by_doc.get(d["doc_id"], [])
        }
        rows, fresh = _mention_rows(d, matcher, sentences.get(d["doc_id"], []), old)
        kept_usage = [
            u
            for u in usage_by_doc.get(d["doc_id"], [])
            if (u["start"], u["end"], u["formulation_id"]) in old
            and (u["start"], u["end"], u["formulation_id"]) not in fresh
        ]
        need = fresh if had_usage else {_k(r) for r in rows}
        kept_usage = kept_usage if had_usage else []
        new_u.extend(kept_usage + _fresh_usage(d["text"], [r for r in rows if _k(r) in need]))
        new_f.extend(rows)
        for r in rows:
            if _k(r) in fresh:
                summary.gained[r["canonical"]] += 1
        for k, r in old.items():
            if k not in {_k(x) for x in rows}:
                summary.gained[r["canonical"]] -= 1
    summary.n_parts += 1
    summary.n_documents += len(docs)
    summary.mentions_before += len(old_f)
    summary.mentions_after += len(new_f)
    summary.usage_after += len(new_u)
    _write(store, "formulation_usage", key, new_u)
    checkpoint("backfill.usage_written")  # a kill here: usage new, formulations old
    _write(store, "formulations", key, new_f)


def _k(r: dict[str, Any]) -> tuple[int, int, str]:
    return r["start"], r["end"], r["formulation_id"]


def _read(store: Store, table: str, key: str) -> list[dict[str, Any]]:
    name = part_name(table, key)
    if not store.exists(name):
        return []
    data = store.read_parquet(name)
    # A part written before a column existed (parent_id): the declared schema fills it in.
    missing = [f for f in SCHEMAS[table] if f.name not in data.column_names]
    for f in missing:
        data = data.append_column(f, pa.nulls(data.num_rows, f.type))
    return data.to_pylist()


def _by_doc(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["doc_id"], []).append(r)
    return out


def _write(store: Store, table: str, key: str, rows: list[dict[str, Any]]) -> None:
    name = part_name(table, key)
    if rows:
        store.write_parquet(pa.Table.from_pylist(rows, schema=SCHEMAS[table]), name)
    elif store.exists(name):
        store.remove(name)


def _mention_rows(
    doc: dict[str, Any],
    matcher: FormulationMatcher,
    sentences: list[dict[str, Any]],
    old: dict[tuple[int, int, str], dict[str, Any]],
) -> tuple[list[dict[str, Any]], set[tuple[int, int, str]]]:
    """The document's formulation rows with the current lexicon, and the keys of those new."""
    sentences = sorted(sentences, key=lambda s: s["start"])
    starts = [s["start"] for s in sentences]
    rows, fresh = [], set()
    for m in matcher.find(doc["text"], year=doc["year"]):
        row = mention_fields(m)
        key = (m.start, m.end, m.formulation.id)
        if key in old:
            rows.append({**old[key], **row})
            continue
        fresh.add(key)
        rows.append({**_span(doc["doc_id"], m.start, m.end, doc["text"], sentences, starts), **row})
    return rows, fresh


def _span(
    doc_id: str, start: int, end: int, text: str, sentences: list[dict[str, Any]], starts: list[int]
) -> dict[str, Any]:
    i = max(bisect.bisect_right(starts, start) - 1, 0)
    if sentences:
        s = sentences[i]
        raw_start = min(s["raw_start"] + (start - s["start"]), s["raw_end"])
        raw_end = min(s["raw_start"] + (end - s["start"]), s["raw_end"])
        sent_id = s["sent_id"]
    else:
        raw_start, raw_end, sent_id = start, end, 0
    return {
        "doc_id": doc_id,
        "sent_id": sent_id,
        "start": start,
        "end": end,
        "raw_start": raw_start,
        "raw_end": max(raw_end, raw_start),
        "text": text[start:end],
    }


def _fresh_usage(text: str, mentions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Usage rows of new mentions, from LAC tags of the clause before each one."""
    mentions = [m for m in mentions if not m["nested"]]
    if not mentions:
        return []
    from pipeline.nlp.lac_runner import get_runner

    prefixes = []
    for m in mentions:
        lo = max(0, m["start"] - _PREFIX_CHARS)
        window = text[lo : m["start"]]
        cut = _CLAUSE_START.search(window)
        base = lo + (cut.start() + 1 if cut else 0)
        prefixes.append((base, text[base : m["start"]]))
    texts = [p for _, p in prefixes]
    filled = [t for t in texts if t]
    done = iter(get_runner().run(filled) if filled else [])
    tagged = [next(done) if t else [] for t in texts]
    out = []
    for m, (base, _), words in zip(mentions, prefixes, tagged, strict=True):
        toks, pos = [], base
        for word, tag in words:
            toks.append((pos, pos + len(word), tag))
            pos += len(word)
        out.extend(usage_rows(text, [m], toks))
    return out


def _rebuild(
    out: Path, lexicon: str, user: str | None, report: bool, summary: BackfillSummary
) -> None:
    """Derived tables, views and report over the rewritten parts (as at the end of a run)."""
    from pipeline.analyst.aggregate import rebuild_derived_tables
    from pipeline.analyst.report import remove_temp_files, write_report
    from pipeline.analyst.views import write_views
    from pipeline.io import derived_state

    writer = DatasetWriter(out, "backfill")
    writer.ensure_tables()
    fingerprint = derived_state.inputs_fingerprint(out, lexicon, user)
    rows = rebuild_derived_tables(writer.store, writer, lexicon, user)
    derived_state.record(out, fingerprint, rows)
    write_views(out)
    remove_temp_files(out)
    if report and list((out / "runs").glob("part-*.parquet")):
        summary.report_path = write_report(out)
