"""The analyst's review loop over discovered formulations: list candidates, accept, reject.

`accept` adds an entry to the user lexicon beside the output (`<out>/lexicon/user_formulations
.yaml`, see extract/lexicon.py) and `reject` adds the term to its `rejected` list; every later
run over that output merges the file with the packaged lexicon, and `tifa run --force --only
formulations` (run/backfill.py) back-fills an accepted term's mentions over the archive. The
file is plain YAML an analyst may also edit by hand; it is written whole, atomically, and
checked before it replaces the old one.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from pipeline.extract.lexicon import (
    CATEGORIES,
    LEXICON_PATH,
    LexiconError,
    lexicon_for,
    load_user_lexicon,
    parse_entry,
    user_lexicon_path,
)
from pipeline.io.write import read_table

HEADER = """\
# tifa user lexicon: formulations accepted and terms rejected by analysts for this output
# (tifa lexicon accept / tifa lexicon reject). Every run over this output merges it with the
# packaged lexicon; upgrading tifa leaves it alone. Entries have the packaged lexicon's fields
# (id, canonical, category, variants, first_year, gloss, components, introduced_in, source).
"""
DEFAULT_CATEGORY = "governance"


class ReviewError(ValueError):
    """A term or option that cannot be accepted or rejected (the message says why)."""


@dataclass(frozen=True)
class Accepted:
    entry: dict[str, Any]
    path: Path
    was_rejected: bool
    candidate: dict[str, Any] | None


def candidates(out: Path | str, limit: int | None = 30) -> list[dict[str, Any]]:
    """The ranked candidates of the last run, without those accepted or rejected since."""
    out = Path(out)
    if not (out / "formulation_candidates").is_dir():
        raise FileNotFoundError(f"{out} holds no tifa output (no formulation_candidates); run tifa")
    rows = read_table(out, "formulation_candidates").to_pylist()
    decided = _decided(out)
    rows = [r for r in sorted(rows, key=lambda r: r["rank"]) if r["text"] not in decided]
    return rows[:limit] if limit else rows


def _decided(out: Path) -> set[str]:
    user = load_user_lexicon(user_lexicon_path(out))
    return set(user.rejected) | {form for e in user.entries for form in e.forms}


def accept(
    out: Path | str,
    term: str,
    category: str | None = None,
    variants: list[str] | None = None,
    gloss: str = "",
    lexicon: str | None = None,
) -> Accepted:
    """Add `term` to the user lexicon of `out` (an entry with provenance: the candidate's rank,
    score, documents and example); returns what was written."""
    out, term = Path(out), term.strip()
    if not term:
        raise ReviewError("the term is empty")
    _check_out(out)
    category = category or DEFAULT_CATEGORY
    if category not in CATEGORIES:
        raise ReviewError(
            f"unknown category {category!r}; use one of {', '.join(sorted(CATEGORIES))}"
        )
    path = user_lexicon_path(out)
    data = _read(path)
    merged, _ = lexicon_for(lexicon or str(LEXICON_PATH), str(path) if path.is_file() else None)
    for e in merged:
        if term in e.forms:
            where = "your user lexicon" if e.origin == "user" else "the packaged lexicon"
            raise ReviewError(f"{term!r} is already in {where} (id {e.id}, {e.canonical})")
    cand = next((c for c in _all_candidates(out) if c["text"] == term), None)
    entry: dict[str, Any] = {
        "id": "user_" + hashlib.sha1(term.encode()).hexdigest()[:10],
        "canonical": term,
        "variants": [v.strip() for v in variants or [] if v.strip() and v.strip() != term],
        "category": category,
        "first_year": None,
        "gloss": gloss,
        "source": _provenance(cand),
    }
    if cand and cand.get("example_doc_id"):
        entry["introduced_in"] = f"first seen {cand.get('first_seen') or 'undated'} in this archive"
    parse_entry(entry, str(path), len(data["formulations"]) + 1, origin="user")
    was_rejected = term in data["rejected"]
    data["rejected"] = [r for r in data["rejected"] if r != term]
    data["formulations"].append(entry)
    _write(path, data, lexicon)
    return Accepted(entry, path, was_rejected, cand)


def reject(out: Path | str, term: str) -> tuple[Path, bool]:
    """Add `term` to the rejected terms of `out` (never proposed again); an accepted entry of
    that term is removed. Returns (the file, whether an accepted entry was removed)."""
    out, term = Path(out), term.strip()
    if not term:
        raise ReviewError("the term is empty")
    _check_out(out)
    path = user_lexicon_path(out)
    data = _read(path)
    before = len(data["formulations"])
    data["formulations"] = [e for e in data["formulations"] if e.get("canonical") != term]
    if term not in data["rejected"]:
        data["rejected"].append(term)
    _write(path, data, None)
    return path, len(data["formulations"]) < before


def _all_candidates(out: Path) -> list[dict[str, Any]]:
    try:
        return read_table(out, "formulation_candidates").to_pylist()
    except (OSError, ValueError):
        return []


def _provenance(cand: dict[str, Any] | None) -> str:
    day = datetime.now(UTC).date().isoformat()
    if not cand:
        return f"accepted by an analyst (tifa lexicon accept) on {day}"
    return (
        f"accepted by an analyst (tifa lexicon accept) on {day}: candidate rank {cand['rank']} "
        f"({cand['pattern']}, score {cand['score']:.3g}, {cand['n_docs']} documents, "
        f"{cand['n_mentions']} mentions), e.g. {cand['example_doc_id']}: "
        f"{' '.join(str(cand['example_sentence']).split())[:120]}"
    )


def _check_out(out: Path) -> None:
    """A misspelt --out would start a user lexicon nobody's runs read: refuse a folder that
    holds no tifa output."""
    if not (out / "documents").is_dir():
        raise ReviewError(f"{out} holds no tifa output (no {out / 'documents'}); run tifa first")


def _read(path: Path) -> dict[str, list[Any]]:
    load_user_lexicon(path)  # a broken file is an error here, not overwritten
    if not path.is_file():
        return {"formulations": [], "rejected": []}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {
        "formulations": list(data.get("formulations") or []),
        "rejected": list(data.get("rejected") or []),
    }


def _write(path: Path, data: dict[str, list[Any]], lexicon: str | None) -> None:
    """Write whole, atomically, after checking the new file merges with the lexicon."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    body = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)
    tmp.write_text(HEADER + body, encoding="utf-8")
    try:
        lexicon_for(lexicon or str(LEXICON_PATH), str(tmp))
    except LexiconError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
