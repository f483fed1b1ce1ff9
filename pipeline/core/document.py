"""The one record that flows through every stage (datatrove-style).

Ingest fills the raw fields; normalise fills `text`, `normalised`, metadata and flags; later stages
only read a Document and return rows. A Document is plain data so it pickles cheaply to worker
processes and Dask workers.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Document:
    doc_id: str
    source_file: str
    raw_text: str
    title: str | None = None
    published_at: date | None = None
    year: int | None = None
    source: str | None = None
    url: str | None = None
    author: str | None = None
    contributor: str | None = None
    encoding: str | None = None
    # The title as the input gave it (normalise cleans `title` like the text).
    title_raw: str | None = None
    photographer: str | None = None
    editor: str | None = None
    # Why a date in the input was not taken (2024-02-30): a quality flag, never a value.
    date_problem: str | None = None
    # Input fields tifa does not map to a column, kept as they came (JSON-able values).
    metadata: dict[str, Any] = field(default_factory=dict)
    # Filled by normalise: the clean text and the Normalised result that maps it to raw_text.
    text: str = ""
    normalised: Any = None  # a normalise.Normalised
    flags: dict[str, Any] = field(default_factory=dict)
    sentences: list[tuple[int, int]] = field(default_factory=list)

    @property
    def group(self) -> str:
        """The documents this one shares page chrome with: its site when a URL says so, else
        its file (a .jsonl/.csv) or, for one-document .txt files, their folder."""
        if self.url:
            host = urlsplit(self.url).hostname
            if host:
                return host.removeprefix("www.")
        if self.source_file.endswith(".txt"):
            return os.path.dirname(self.source_file)
        return self.source_file

    @property
    def content_hash(self) -> str:
        return content_hash(self.raw_text)

    def raw_span(self, start: int, end: int) -> tuple[int, int]:
        """Map a [start, end) span of the normalised text back onto the raw text."""
        if self.normalised is None:
            return start, end
        return self.normalised.raw_span(start, end)


def content_hash(raw_text: str) -> str:
    return hashlib.blake2b(raw_text.encode("utf-8"), digest_size=16).hexdigest()
