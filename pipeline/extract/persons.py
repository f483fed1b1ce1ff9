"""One name per person: the canonical name of every PERSON mention, and the `persons` table.

A mention keeps its surface text (entities.text, relations.head); the `person` column gives the
canonical name, from
1. the alias table (`resources/person_aliases.tsv`: 毛主席 → 毛泽东, 周总理 → 周恩来),
2. a full name followed by honorifics or a title (毛泽东同志, 习近平总书记, 李强总理 → the name),
3. a surname followed by a title (李书记, 王省长), resolved inside the document to the one full
   name with that surname the document mentions (the one holding that post when several do).
Anything else is its own canonical name. `build_persons` aggregates the table with DuckDB.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import duckdb
import pyarrow as pa
import regex

from pipeline.core.resources import RESOURCES, load_yaml, read_table
from pipeline.core.vocabulary import RelationName


@functools.cache
def _aliases() -> dict[str, str]:
    table: dict[str, str] = {}
    for row in read_table("person_aliases.tsv", ("alias", "canonical")):
        table[row["alias"]] = row["canonical"]
    return table


@functools.cache
def _rules() -> dict[str, Any]:
    return load_yaml(RESOURCES / "persons.yaml")


@functools.cache
def _compound_surnames() -> frozenset[str]:
    rules = load_yaml(RESOURCES / "person_rules.yaml")
    return frozenset(rules["compound_surnames"])


class PersonNames:
    """Resolves the PERSON surfaces of one document to canonical names."""

    def __init__(self) -> None:
        self.aliases = _aliases()
        from pipeline.nlp.crf import person_titles  # here: pipeline.nlp.crf imports spaCy

        self.titles = person_titles()
        self.honorifics = tuple(sorted(_rules()["honorifics"], key=len, reverse=True))
        self.name_re = regex.compile(_rules()["person_name"])
        self.surnames2 = _compound_surnames()

    def is_name(self, text: str) -> bool:
        return bool(self.name_re.fullmatch(text))

    def strip(self, surface: str) -> tuple[str, str | None]:
        """(name part, title written after it or None): 习近平总书记 → (习近平, 总书记)."""
        name = "".join(surface.split())
        if name in self.aliases:
            return self.aliases[name], None
        changed = True
        while changed:
            changed = False
            for h in self.honorifics:
                if name.endswith(h) and len(name) > len(h):
                    name, changed = name[: -len(h)], True
                    if name in self.aliases:
                        return self.aliases[name], None
        for title in self.titles:
            if name.endswith(title) and len(name) > len(title):
                rest = name[: -len(title)]
                return self.aliases.get(rest, rest), title
        return name, None

    def resolve(
        self, surfaces: Iterable[str], posts: Iterable[tuple[str, str]] = ()
    ) -> dict[str, str]:
        """surface → canonical name for every surface of one document. `posts` are the
        (surface, role) pairs of its holds_position rows, used to pick between namesakes."""
        surfaces = list(dict.fromkeys(surfaces))
        first: dict[str, tuple[str, str | None]] = {s: self.strip(s) for s in surfaces}
        full = {
            name for name, _ in first.values() if self.is_name(name) and not self._is_surname(name)
        }
        roles: dict[str, set[str]] = {}
        for surface, role in posts:
            roles.setdefault(first.get(surface, (surface, None))[0], set()).add(role)
        out: dict[str, str] = {}
        for surface, (name, title) in first.items():
            if self._is_surname(name) and title is not None:
                name = self._by_surname(name, title, full, roles) or surface
            out[surface] = name
        return out

    def _is_surname(self, name: str) -> bool:
        return len(name) == 1 or name in self.surnames2

    @staticmethod
    def _by_surname(
        surname: str, title: str, full: set[str], roles: dict[str, set[str]]
    ) -> str | None:
        """李书记 → the one 李… the document names (the one holding a …书记 post if several)."""
        candidates = sorted(n for n in full if n.startswith(surname) and len(n) > len(surname))
        holding = [n for n in candidates if any(r.endswith(title) for r in roles.get(n, ()))]
        if len(holding) == 1:
            return holding[0]
        return candidates[0] if len(candidates) == 1 else None


@functools.cache
def get_person_names() -> PersonNames:
    return PersonNames()


# ---------------------------------------------------------------------------------------------
# The persons table


def build_persons(con: duckdb.DuckDBPyConnection, source: Callable[[str], str]) -> pa.Table:
    """One row per canonical person: aliases seen, first/last seen, mentions, posts held.

    `source(table)` gives the SQL source of a batch table (aggregate._source bound to --out)."""
    from pipeline.io.schema import PERSONS

    entities, documents, relations = source("entities"), source("documents"), source("relations")
    rel = con.sql(
        f"""
        WITH m AS (
            SELECT e.person, e.text AS alias, e.doc_id, d.published_at
            FROM {entities} e JOIN {documents} d USING (doc_id)
            WHERE e.label = 'PERSON' AND e.person IS NOT NULL
        ),
        p AS (
            SELECT coalesce(r.person, r.head) AS person,
                   list(DISTINCT r.role || ' @ ' || r.tail ORDER BY r.role || ' @ ' || r.tail)
                       AS posts
            FROM {relations} r
            WHERE r.relation = '{RelationName.HOLDS_POSITION}' AND r.role IS NOT NULL
            GROUP BY ALL
        )
        SELECT m.person,
               list(DISTINCT m.alias ORDER BY m.alias) AS aliases,
               min(m.published_at) AS first_seen, max(m.published_at) AS last_seen,
               count(DISTINCT m.doc_id) AS n_docs, count(*) AS n_mentions,
               coalesce(any_value(p.posts), []::VARCHAR[]) AS posts,
               min(m.doc_id) AS example_doc_id
        FROM m LEFT JOIN p USING (person)
        GROUP BY m.person
        ORDER BY n_mentions DESC, m.person
        """
    )
    result = rel.arrow()
    table = result.read_all() if hasattr(result, "read_all") else result
    return table.select(PERSONS.names).cast(PERSONS)
