"""Which documents a run processes: the one admission decision, whichever executor runs it.

Documents are decided in input order: a doc_id read twice in one run is refused the second
time; a document already in the output with the same content is skipped, unless the run is
forced or an interrupted replacement of it is pending; a changed one replaces its older
version, whose home (the part files holding its rows) is recorded. A local run decides while it
streams the input (`admit`); a Dask run decides from its workers' surveys (run/dask.py).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pipeline.core.document import Document
from pipeline.io.ingest import IngestError
from pipeline.run.accounting import Outcome


class Verdict(enum.Enum):
    PROCESS = "process"
    SKIP = "skip"  # unchanged since an earlier run
    DUPLICATE = "duplicate"  # its doc_id was already read in this run


class Admission:
    def __init__(self, existing: dict[str, Any], unfinished: set[str], force: bool) -> None:
        self.existing = existing  # doc_id -> write.DocInfo of the documents already written
        self.unfinished = unfinished  # doc_ids whose replacement a killed run left half done
        self.force = force
        self.seen: set[str] = set()
        # doc_id -> home of each document being replaced by this run.
        self.homes: dict[str, str] = {}

    def decide(self, doc_id: str, content_hash: str) -> Verdict:
        if doc_id in self.seen:
            return Verdict.DUPLICATE
        self.seen.add(doc_id)
        if self._unchanged(doc_id, content_hash):
            return Verdict.SKIP
        previous = self.existing.get(doc_id)
        if previous is not None:
            self.homes[doc_id] = previous.home
        return Verdict.PROCESS

    def needs_processing(self, doc: Document) -> bool:
        """Whether `doc` would be processed, without deciding it (the boilerplate pre-pass)."""
        return not self._unchanged(doc.doc_id, doc.content_hash)

    def _unchanged(self, doc_id: str, content_hash: str) -> bool:
        """Already written with this content, and neither forced nor left half replaced."""
        previous = self.existing.get(doc_id)
        return (
            previous is not None
            and previous.content_hash == content_hash
            and not (self.force or doc_id in self.unfinished)
        )


def utf8_size(doc: Document) -> int:
    return len(doc.raw_text.encode("utf-8", "replace"))


def duplicate_doc_error(doc: Document) -> IngestError:
    return IngestError(
        doc.source_file,
        "DuplicateDocId",
        f"doc_id {doc.doc_id!r} already read in this run; the later copy is not used",
        doc_id=doc.doc_id,
    )


def admit(
    stream: Iterable[Document | IngestError],
    admission: Admission,
    count: Callable[[Outcome], None],
) -> Iterator[Document | IngestError]:
    """The documents of `stream` to process, and its ingest errors; a refused duplicate
    becomes an error, a skipped document is counted (`count`) and dropped."""
    for item in stream:
        if isinstance(item, IngestError):
            yield item
            continue
        verdict = admission.decide(item.doc_id, item.content_hash)
        if verdict is Verdict.SKIP:
            count(Outcome(n_skipped=1, n_bytes=utf8_size(item)))
        elif verdict is Verdict.DUPLICATE:
            yield duplicate_doc_error(item)
        else:
            yield item
