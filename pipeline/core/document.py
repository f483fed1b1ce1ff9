"""The one record that flows through every stage (datatrove-style).

Ingest fills the raw fields; normalise fills `text`, `normalised`, metadata and flags; later stages
only read a Document and return rows. A Document is plain data so it pickles cheaply to worker
processes and Dask workers.
"""

from __future__ import annotations

import hashlib
import json
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
    # The mapped fields as the input gave them (title, date, source, url; canonical JSON, ""
    # when none): part of the content hash, so a corrected date or title is a change.
    input_fields: str = ""
    # Filled by normalise: the clean text and the Normalised result that maps it to raw_text.
    text: str = ""
    normalised: Any = None  # a normalise.Normalised
    flags: dict[str, Any] = field(default_factory=dict)
    sentences: list[tuple[int, int]] = field(default_factory=list)
    # The story it belongs to, decided before the batches (a run.stories.StoryDecision; None:
    # its own story).
    story: Any = None

    @property
    def group(self) -> str:
        """The documents this one shares page chrome with: its site when a URL says so, else
        its file (a .jsonl/.csv) or, for one-document .txt files, their folder."""
        if self.url:
            host = url_host(self.url)
            if host:
                return host.removeprefix("www.")
        if self.source_file.endswith(".txt"):
            return os.path.dirname(self.source_file)
        return self.source_file

    @property
    def content_hash(self) -> str:
        return content_hash(self.raw_text, self.input_fields)

    def raw_span(self, start: int, end: int) -> tuple[int, int]:
        """Map a [start, end) span of the normalised text back onto the raw text."""
        if self.normalised is None:
            return start, end
        return self.normalised.raw_span(start, end)


def url_host(url: str) -> str | None:
    """The host a URL names, or None for one urllib cannot parse (`http://[bad`: an unclosed
    IPv6 bracket, a netloc that NFKC changes): a malformed url is kept as the input gave it
    and its document grouped by its file, never a failed run."""
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def content_hash(raw_text: str, input_fields: str = "") -> str:
    """What a rerun compares to tell a changed document: its raw text and, when the input gave
    any, its mapped metadata fields (a corrected date must reach the archive). With no fields
    the hash is the text's alone, as before they counted, so .txt documents keep theirs."""
    digest = hashlib.blake2b(raw_text.encode("utf-8"), digest_size=16)
    if input_fields:
        # The text's length first: no text + fields pair can spell another pair.
        digest.update(b"\x00fields:%d:" % len(raw_text) + input_fields.encode("utf-8"))
    return digest.hexdigest()


# The mapped fields that are part of a document's identity hash (see `content_hash`).
HASHED_FIELDS = ("title", "date", "source", "url")


def input_fields_json(values: dict[str, object]) -> str:
    """Canonical JSON of the mapped fields the input gave (None and "" left out)."""
    present = {k: v for k, v in values.items() if v is not None and v != ""}
    if not present:
        return ""
    return json.dumps(present, sort_keys=True, ensure_ascii=False, default=str)


def content_doc_id(stem: str, raw_text: str) -> str:
    """The id of a document that has none of its own: its file's stem and 16 hex digits of a
    hash of its text (64 bits under one stem: two texts of files of one name share an id with
    odds of about n²/3.7e19, one in ten million for a million texts)."""
    digest = hashlib.blake2b(raw_text.encode("utf-8", "surrogatepass"), digest_size=8)
    return f"{stem}-{digest.hexdigest()}"
