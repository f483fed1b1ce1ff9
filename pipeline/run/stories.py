"""One story, counted once: syndicated copies found and linked before the batches run.

A night holds the same Xinhua or 人民日报 item reprinted by many sites. Before the batches, in
input order, every document to be processed gets a `StoryDecision` from the story index
(`StoryIndex`): exact copies by the hash of their signature text, near copies by MinHash LSH
(`normalise/signature.py`), each match confirmed by its estimated Jaccard similarity. A document
similar enough (`story_threshold`) to one seen before joins that document's story (cluster); the
first copy seen is the story's canonical copy and its doc_id is the cluster id. A copy whose
similarity to the canonical copy reaches `copy_threshold` is *derived*: it is normalised and
gets its own `documents` row (its own metadata, text, date, source) but is not run through the
NLP: the canonical copy's rows serve (`documents.rows_from`), provided the lengths of the two
texts differ by at most `copy_length_gap` characters (a headline variant or a dateline does
not reach it; a paragraph removed from a long speech barely moves the shingles but does).
Any other copy (an added or removed paragraph) is processed in full and stays in the story.

The index persists with the archive (the `signatures` table, written with each batch, so it is
exactly as complete as the archive): tonight's documents are matched against every earlier
night's. Decisions are a function of the input order and of the archive of completed runs, so
a killed run's rerun and a Dask run decide exactly what an uninterrupted local run decides: the
documents a killed run wrote (no `runs` row yet) enter the index where the rerun meets them in
its input, never earlier.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pipeline.core.document import Document
from pipeline.io.ingest import IngestError
from pipeline.io.storage import Store
from pipeline.io.write import read_table
from pipeline.normalise.signature import NUM_PERM, SCHEME, similarity, story_signature


@dataclass(frozen=True)
class StoryDecision:
    """What the story index decided for one document."""

    cluster_id: str
    duplicate_of: str | None = None  # the story's canonical copy (None: this is it)
    similarity: float | None = None  # estimated Jaccard similarity to the canonical copy
    derived: bool = False  # not run through the NLP: the canonical copy's rows serve
    signature: bytes | None = None
    text_hash: str | None = None
    n_chars: int | None = None

    def columns(self, doc_id: str) -> dict[str, Any]:
        """The story columns of the document's `documents` row."""
        return {
            "cluster_id": self.cluster_id,
            "duplicate_of": self.duplicate_of,
            "similarity": self.similarity,
            "rows_from": self.duplicate_of if self.derived else doc_id,
        }

    def signature_row(self, doc_id: str, run_id: str) -> dict[str, Any]:
        return {
            "doc_id": doc_id,
            "cluster_id": self.cluster_id,
            "signature": self.signature,
            "text_hash": self.text_hash,
            "n_chars": self.n_chars,
            "run_id": run_id,
        }


def own_story(doc_id: str) -> StoryDecision:
    """A document that is its own story (deduplication off, a huge document, no signature)."""
    return StoryDecision(cluster_id=doc_id)


@dataclass
class _Entry:
    cluster_id: str
    signature: bytes | None
    text_hash: str | None
    n_chars: int | None = None


class StoryIndex:
    """Signatures of the documents decided so far: exact-copy hashes and MinHash LSH bands."""

    def __init__(self, story_threshold: float) -> None:
        from datasketch import MinHashLSH

        self.threshold = story_threshold
        self.entries: dict[str, _Entry] = {}
        self.exact: dict[str, str] = {}  # text hash -> first doc_id with it
        self.lsh = MinHashLSH(threshold=story_threshold, num_perm=NUM_PERM)

    def add(self, doc_id: str, entry: _Entry) -> None:
        self.remove(doc_id)
        self.entries[doc_id] = entry
        if entry.text_hash and entry.text_hash not in self.exact:
            self.exact[entry.text_hash] = doc_id
        if entry.signature is not None:
            self.lsh.insert(doc_id, _minhash(entry.signature), check_duplication=False)

    def remove(self, doc_id: str) -> None:
        old = self.entries.pop(doc_id, None)
        if old is None:
            return
        if old.text_hash and self.exact.get(old.text_hash) == doc_id:
            del self.exact[old.text_hash]
        if old.signature is not None:
            self.lsh.remove(doc_id)

    def best_match(self, signature: bytes | None, digest: str | None) -> tuple[str, float] | None:
        """The most similar document decided so far (ties: the smallest doc_id), if similar
        enough; an exact copy first."""
        if digest and digest in self.exact:
            return self.exact[digest], 1.0
        if signature is None:
            return None
        best: tuple[str, float] | None = None
        for cand in sorted(self.lsh.query(_minhash(signature))):
            other = self.entries[cand].signature
            sim = similarity(signature, other) if other is not None else 0.0
            if sim >= self.threshold and (best is None or sim > best[1]):
                best = (cand, sim)
        return best


def _minhash(signature: bytes) -> Any:
    import numpy as np
    from datasketch import MinHash

    return MinHash(
        num_perm=NUM_PERM, hashvalues=np.frombuffer(signature, dtype=np.uint32), scheme=SCHEME
    )


class StoryPlanner:
    """The run's story decisions, taken in input order (`see`)."""

    def __init__(
        self,
        story_threshold: float,
        copy_threshold: float,
        archive: Iterable[Any] = (),
        copy_length_gap: int = 40,
    ) -> None:
        self.copy_threshold = copy_threshold
        self.copy_length_gap = copy_length_gap
        self.index = StoryIndex(story_threshold)
        # doc_id -> entry of documents a killed run wrote: indexed where the input meets them.
        self.held: dict[str, _Entry] = {}
        self.decisions: dict[str, StoryDecision] = {}
        self.seen: set[str] = set()
        for doc_id, entry, completed in archive:
            if completed:
                self.index.add(doc_id, entry)
            else:
                self.held[doc_id] = entry

    def see(self, doc_id: str, signature: Any, needs_processing: bool) -> None:
        """One document of the input, in order. `signature` is (minhash, text hash, length), or
        None for a document deduplication leaves alone (a huge one); unused when the document
        is skipped (unchanged since the run that wrote it)."""
        if doc_id in self.seen:
            return  # a doc_id read twice: the later copy is refused
        self.seen.add(doc_id)
        held = self.held.pop(doc_id, None)
        if not needs_processing:
            if held is not None:
                self.index.add(doc_id, held)
            return
        self.index.remove(doc_id)  # a changed document is decided anew
        if signature is None:
            self.decisions[doc_id] = own_story(doc_id)
            return
        decision = self.decide(doc_id, *signature)
        self.decisions[doc_id] = decision
        self.index.add(doc_id, _Entry(decision.cluster_id, *signature))

    def decide(
        self, doc_id: str, minhash: bytes | None, digest: str, n_chars: int | None = None
    ) -> StoryDecision:
        match = self.index.best_match(minhash, digest)
        if match is None or self.index.entries[match[0]].cluster_id == doc_id:
            return StoryDecision(doc_id, signature=minhash, text_hash=digest, n_chars=n_chars)
        cluster = self.index.entries[match[0]].cluster_id
        canonical = self.index.entries.get(cluster)
        sim = match[1]
        if match[0] != cluster and canonical is not None:
            if canonical.text_hash == digest:
                sim = 1.0
            elif canonical.signature is not None and minhash is not None:
                sim = similarity(minhash, canonical.signature)
        derived = (
            canonical is not None
            and sim >= self.copy_threshold
            and _length_gap(n_chars, canonical.n_chars) <= self.copy_length_gap
        )
        return StoryDecision(cluster, cluster, round(sim, 4), derived, minhash, digest, n_chars)


def _length_gap(a: int | None, b: int | None) -> float:
    """How many characters two texts' lengths differ by (infinite when unknown): a removed or
    added paragraph shows here even where the shingles of a long text barely move; a headline
    variant or a dateline does not."""
    if a is None or b is None:
        return float("inf")
    return abs(a - b)


def load_archive(out: Any) -> Iterator[tuple[str, _Entry, bool]]:
    """(doc_id, entry, written by a completed run) of every document in the archive's index."""
    store = Store(out)
    table = read_table(store, "signatures")
    if table.num_rows == 0:
        return
    completed = set(read_table(store, "runs", ["run_id"])["run_id"].to_pylist())
    for row in table.to_pylist():
        entry = _Entry(row["cluster_id"], row["signature"], row["text_hash"], row.get("n_chars"))
        yield row["doc_id"], entry, row["run_id"] in completed


def story_planner(config: Any, writer: Any) -> StoryPlanner | None:
    """The run's story planner over the archive's index (None when deduplication is off)."""
    if not config.dedup:
        return None
    archive = load_archive(writer.store)
    return StoryPlanner(
        config.story_threshold, config.copy_threshold, archive, config.copy_length_gap
    )


def signature_of(doc: Document, chunk_chars: int) -> tuple[bytes | None, str] | None:
    """A document's (minhash, text hash); None for a huge document (processed in chunks, it is
    its own story)."""
    if len(doc.raw_text) > chunk_chars:
        return None
    return story_signature(doc.raw_text, doc.title_raw)


def with_stories(
    stream: Iterable[Document | IngestError], decisions: dict[str, StoryDecision] | None
) -> Iterator[Document | IngestError]:
    """The admitted stream with each document's story decision attached (`Document.story`)."""
    for item in stream:
        if decisions is not None and isinstance(item, Document):
            item.story = decisions.get(item.doc_id)
        yield item
