"""The formulation lexicon: entries, their validation, and the analyst's lexicon beside the
output.

The packaged lexicon (`resources/formulations.yaml`, or `--lexicon`) is a YAML list of entries.
An entry's fields (the accepted set; anything else is an error naming the entry and the key):

    id            unique ascii snake_case identifier                       required
    canonical     the standard simplified form                              required
    category      one of CATEGORIES                                         required
    variants      other surface forms, abbreviations and long forms         list of str
    first_year    earliest year of official use, or null                    int | null
    gloss         one-line English explanation                              str
    components    the parts of a numeric formulation (两个确立 → its two 确立)   list of str
    introduced_in the document that introduced it ("2024年政府工作报告")      str
    source        URL or citation of the text it was read in                str

The user lexicon, `<out>/lexicon/user_formulations.yaml`, is written by `tifa lexicon accept` and
`tifa lexicon reject` and merged into every run over that output with the packaged one
(`merge_lexicons`): it is a mapping with `formulations` (entries as above) and `rejected` (terms
an analyst turned down, never proposed again). It lives with the archive, so upgrading tifa (and
its packaged lexicon) leaves it alone; where the packaged lexicon has since gained a user term,
the packaged entry is used and a note says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.resources import RESOURCES, load_yaml

LEXICON_PATH = RESOURCES / "formulations.yaml"
USER_LEXICON = "lexicon/user_formulations.yaml"
CATEGORIES = frozenset(
    {
        "leadership_core",
        "ideology",
        "development_strategy",
        "party_building",
        "governance",
        "economy",
        "social_policy",
        "foreign_affairs",
        "defense",
        "meetings_and_plans",
    }
)
REQUIRED_FIELDS = ("id", "canonical", "category")
# field -> (accepted types, what to call it in an error)
OPTIONAL_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "variants": ((list,), "a list of strings"),
    "first_year": ((int, type(None)), "a year (integer) or null"),
    "gloss": ((str,), "a string"),
    "components": ((list,), "a list of strings"),
    "introduced_in": ((str,), "a string"),
    "source": ((str,), "a string"),
}
FIELDS = (*REQUIRED_FIELDS, *OPTIONAL_FIELDS)
OPEN_QUOTES = "“‘「『\"'"
CLOSE_QUOTES = "”’」』\"'"
_ID = re.compile(r"^[a-z0-9_]+$")


class LexiconError(ValueError):
    """An entry that cannot be used: the message names the file, the entry and the field."""


@dataclass(frozen=True)
class Formulation:
    id: str
    canonical: str
    variants: tuple[str, ...]
    category: str
    first_year: int | None
    gloss: str
    components: tuple[str, ...] = ()
    introduced_in: str | None = None
    source: str | None = None
    origin: str = "packaged"  # or "user": accepted by an analyst (tifa lexicon accept)

    @property
    def forms(self) -> tuple[str, ...]:
        return (self.canonical, *self.variants)


def parse_entry(e: Any, where: str, n: int, origin: str = "packaged") -> Formulation:
    """One entry, checked field by field; a bad one is one `LexiconError`."""
    if not isinstance(e, dict):
        raise LexiconError(f"{where}: entry {n} is not a mapping of fields: {e!r:.80}")
    name = f"entry {e['id']!r}" if isinstance(e.get("id"), str) and e["id"] else f"entry {n}"
    unknown = sorted(set(map(str, e)) - set(FIELDS))
    if unknown:
        raise LexiconError(
            f"{where}: {name} has unknown field {unknown[0]!r}; the fields are {', '.join(FIELDS)}"
        )
    for key in REQUIRED_FIELDS:
        if not isinstance(e.get(key), str) or not e[key].strip():
            raise LexiconError(f"{where}: {name} needs {key!r} (a non-empty string)")
    if not _ID.match(e["id"]):
        raise LexiconError(f"{where}: {name}: id must be ascii snake_case ([a-z0-9_]+)")
    if e["category"] not in CATEGORIES:
        raise LexiconError(
            f"{where}: {name} has category {e['category']!r}; "
            f"use one of {', '.join(sorted(CATEGORIES))}"
        )
    for key, (types, what) in OPTIONAL_FIELDS.items():
        value = e.get(key)
        if (
            key in e
            and value is not None
            and (not isinstance(value, types) or isinstance(value, bool))
        ):
            raise LexiconError(f"{where}: {name}: {key!r} must be {what}, not {value!r:.60}")
        if isinstance(value, list) and not all(isinstance(v, str) and v.strip() for v in value):
            raise LexiconError(f"{where}: {name}: {key!r} must be a list of non-empty strings")
    year = e.get("first_year")
    if year is not None and not 1800 <= year <= 2100:
        raise LexiconError(f"{where}: {name}: first_year {year} is not a year")
    canonical = e["canonical"].strip()
    variants = tuple(v.strip() for v in e.get("variants") or ())
    for form in (canonical, *variants):
        if len(form) > 1 and form[0] in OPEN_QUOTES and form[-1] in CLOSE_QUOTES:
            raise LexiconError(
                f"{where}: {name}: write {form!r} without its quotes (the matcher finds quoted "
                "and unquoted forms alike)"
            )
    if canonical in variants:
        raise LexiconError(f"{where}: {name}: the canonical {canonical!r} is also a variant")
    return Formulation(
        id=e["id"],
        canonical=canonical,
        variants=variants,
        category=e["category"],
        first_year=year,
        gloss=e.get("gloss") or "",
        components=tuple(e.get("components") or ()),
        introduced_in=e.get("introduced_in"),
        source=e.get("source"),
        origin=origin,
    )


def check_unique(entries: list[Formulation], where: str) -> None:
    """Ids and surface forms belong to one entry each (a form of two entries could not say
    which one a mention is)."""
    ids: dict[str, Formulation] = {}
    forms: dict[str, Formulation] = {}
    for f in entries:
        if f.id in ids:
            raise LexiconError(f"{where}: id {f.id!r} is used by two entries")
        ids[f.id] = f
        for form in dict.fromkeys(f.forms):
            other = forms.get(form)
            if other is not None:
                raise LexiconError(
                    f"{where}: form {form!r} belongs to two lexicon entries "
                    f"({other.id!r} and {f.id!r})"
                )
            forms[form] = f


def load_lexicon(path: Path | str = LEXICON_PATH) -> list[Formulation]:
    entries = load_yaml(path)
    if not isinstance(entries, list):
        kind = type(entries).__name__
        raise LexiconError(f"{path}: a lexicon is a YAML list of entries, not a {kind}")
    lexicon = [parse_entry(e, str(path), n) for n, e in enumerate(entries, 1)]
    check_unique(lexicon, str(path))
    return lexicon


# ---------------------------------------------------------------------------------------------
# The analyst's lexicon beside the output


@dataclass(frozen=True)
class UserLexicon:
    entries: tuple[Formulation, ...] = ()
    rejected: tuple[str, ...] = ()


def user_lexicon_path(out: Path | str) -> Path:
    return Path(out) / USER_LEXICON


def load_user_lexicon(path: Path | str | None) -> UserLexicon:
    """The user lexicon at `path` (an absent file is an empty one)."""
    if path is None or not Path(path).is_file():
        return UserLexicon()
    data = load_yaml(path)
    if data is None:
        return UserLexicon()
    if not isinstance(data, dict) or set(map(str, data)) - {"formulations", "rejected"}:
        raise LexiconError(
            f"{path}: a user lexicon is a mapping with 'formulations' (entries) and 'rejected' "
            "(terms)"
        )
    items = data.get("formulations") or []
    rejected = data.get("rejected") or []
    if not isinstance(items, list) or not isinstance(rejected, list):
        raise LexiconError(f"{path}: 'formulations' and 'rejected' are lists")
    entries = [parse_entry(e, str(path), n, origin="user") for n, e in enumerate(items, 1)]
    check_unique(entries, str(path))
    bad = [r for r in rejected if not isinstance(r, str) or not r.strip()]
    if bad:
        raise LexiconError(f"{path}: 'rejected' holds terms (strings), not {bad[0]!r:.60}")
    return UserLexicon(tuple(entries), tuple(r.strip() for r in rejected))


def merge_lexicons(
    packaged: list[Formulation], user: UserLexicon
) -> tuple[list[Formulation], list[str]]:
    """The packaged entries plus the user's, and a note for each conflict (what was used).

    A user entry whose canonical is already a packaged form is dropped (the packaged entry, newer
    and reviewed, is used: what an upgrade of the packaged lexicon does to an accepted term); a
    user variant that is a packaged form is dropped from the user entry; a user id that a
    packaged entry has is renamed with a `_user` suffix."""
    forms = {form: f for f in packaged for form in f.forms}
    ids = {f.id for f in packaged}
    merged, notes = list(packaged), []
    for u in user.entries:
        owner = forms.get(u.canonical)
        if owner is not None:
            notes.append(
                f"user lexicon: {u.canonical!r} is now in the packaged lexicon as "
                f"{owner.id!r} ({owner.canonical}); the packaged entry is used"
            )
            continue
        clashing = [v for v in u.variants if v in forms]
        for v in clashing:
            notes.append(
                f"user lexicon: variant {v!r} of {u.canonical!r} belongs to the packaged entry "
                f"{forms[v].id!r}; it stays with that entry"
            )
        uid = u.id
        while uid in ids:
            uid += "_user"
        if uid != u.id:
            notes.append(f"user lexicon: id {u.id!r} is a packaged id; {u.canonical!r} is {uid!r}")
        kept = tuple(v for v in u.variants if v not in forms)
        entry = Formulation(**{**u.__dict__, "id": uid, "variants": kept})
        merged.append(entry)
        ids.add(uid)
        for form in entry.forms:
            forms[form] = entry
    return merged, notes


def lexicon_for(
    path: Path | str, user_path: Path | str | None
) -> tuple[list[Formulation], list[str]]:
    """The lexicon a run uses: packaged (or --lexicon) merged with the output's user lexicon."""
    return merge_lexicons(load_lexicon(path), load_user_lexicon(user_path))


def main(argv: list[str] | None = None) -> int:
    """`python -m pipeline.extract.lexicon FILE...`: check lexicon files, one line each."""
    import sys

    status = 0
    for name in argv if argv is not None else sys.argv[1:]:
        try:
            n = len(load_lexicon(name))
        except (LexiconError, OSError, ValueError) as exc:
            print(f"error: {' '.join(str(exc).split())}")
            status = 1
        else:
            print(f"{name}: {n} entries ok")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
