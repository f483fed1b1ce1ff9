"""Page boilerplate by repetition: lines that recur in many documents of one site or file.

Kept apart from ``pipeline.normalise`` (which loads its rules on import) so that the runner and
the stage options can hold the counts without loading the normaliser: a rerun over unchanged
input never needs it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.core.textutil import HSPACE_CHARS


def line_key(line: str) -> int:
    """A stable 64-bit key of a line (the same in every process, unlike ``hash``)."""
    digest = hashlib.blake2b(
        line.strip(HSPACE_CHARS).encode("utf-8", "surrogatepass"), digest_size=8
    )
    return int.from_bytes(digest.digest(), "little")


@dataclass(frozen=True)
class Boilerplate:
    """Lines repeated across the documents of a group (a site or a file) within a run."""

    keys: dict[str, frozenset[int]] = field(default_factory=dict)

    def for_group(self, group: str | None) -> frozenset[int]:
        return self.keys.get(group or "", frozenset())


class BoilerplateCounter:
    """Counts, per group, in how many documents each line occurs.

    Memory stays bounded whatever the size of the run: when a group holds more than
    ``max_keys`` distinct lines, the lines seen in a single document so far are dropped
    (a heavy-hitters sketch: a line that really recurs across many documents comes back).
    """

    # A line must recur in this many documents, and in this share of its group's documents.
    MIN_DOCS = 3
    MIN_SHARE = 0.1
    MAX_LINE = 200

    def __init__(self, max_keys: int = 500_000) -> None:
        self.max_keys = max_keys
        self.counts: dict[str, dict[int, int]] = {}
        self.n_docs: dict[str, int] = {}

    def add(self, group: str | None, lines: Iterable[str]) -> None:
        group = group or ""
        counts = self.counts.setdefault(group, {})
        self.n_docs[group] = self.n_docs.get(group, 0) + 1
        for key in {line_key(s) for s in lines if 0 < len(s.strip()) <= self.MAX_LINE}:
            counts[key] = counts.get(key, 0) + 1
        if len(counts) > self.max_keys:
            self.counts[group] = {k: n for k, n in counts.items() if n > 1}

    def merge(self, other: BoilerplateCounter) -> None:
        """Add the counts of another part of the run (a Dask worker's partition). Exact while
        no group outgrows ``max_keys``; past it, approximate like the sketch itself."""
        for group, counts in other.counts.items():
            mine = self.counts.setdefault(group, {})
            for key, n in counts.items():
                mine[key] = mine.get(key, 0) + n
            if len(mine) > self.max_keys:
                self.counts[group] = {k: n for k, n in mine.items() if n > 1}
        for group, n in other.n_docs.items():
            self.n_docs[group] = self.n_docs.get(group, 0) + n

    def result(self) -> Boilerplate:
        keys = {}
        for group, counts in self.counts.items():
            need = max(self.MIN_DOCS, self.MIN_SHARE * self.n_docs[group])
            frequent = frozenset(k for k, n in counts.items() if n >= need)
            if frequent:
                keys[group] = frequent
        return Boilerplate(keys)
