"""What every tifa component and extractor reads from a spaCy Doc, in one place.

The Doc extensions tifa components set (`Doc._.tifa_*`, declared here once), the cached text
and entities, sentence bounds, and the one way to cut tokens at new boundaries."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

import numpy
from spacy.attrs import IDX, LENGTH, SENT_START, TAG
from spacy.tokens import Doc, Span

from pipeline.nlp.labels import KEPT_LAC_LABELS, entity_label
from pipeline.nlp.lac_runner import get_runner
from pipeline.normalise.sentences import split_sentences

# LAC was trained on sentences; longer inputs are split at a safe boundary before tagging.
MAX_SENTENCE_CHARS = 250


def _extension(name: str) -> tuple[str, str, None, None]:
    """Declare the Doc extension `doc._.<name>` and return the key spaCy stores its value under
    in `doc.user_data`. Components and extractors read the key directly: `doc._` builds an
    object on every access, and some of these are read once per entity."""
    if not Doc.has_extension(name):
        Doc.set_extension(name, default=None)
    return ("._.", name, None, None)


# Every value one tifa component leaves on a Doc for another, declared once (`doc._.tifa_*`).
#
# The Doc's text: `Doc.text` joins a new Token object per word on every access (4 accesses per
# document cost ~25% of a run's Python time); the text never changes once the tokenizer has
# built the Doc (retokenizing splits words, not characters).
TEXT_USER_DATA = _extension("tifa_text")
# The Doc's entities as the last tifa component left them (see `entities`).
ENTS_USER_DATA = _extension("tifa_ents")
# {(start, end): title start} of titles that begin inside an organisation's name (DomainSpans).
TITLE_STARTS = _extension("tifa_title_starts")
# Where LACTokenizer leaves its analysis: a list of (sentence start, [(word, tag), ...]).
LAC_USER_DATA = _extension("tifa_lac")
# Set by the LAC tokenizer when it ran the NER model itself (see LACTokenizer).
NER_DONE_USER_DATA = _extension("tifa_ner_done")
# Which NER produced the PERSON/ORG/LOC/GPE entities of a Doc ("model", "hanlp"; absent: LAC).
NER_SOURCE_USER_DATA = _extension("tifa_ner_source")
# {(start, end)} of the entities `tifa_domain_spans` found by its rules (not by a model).
RULE_SPANS = _extension("tifa_rule_spans")


def doc_text(doc: Doc) -> str:
    """`doc.text`, computed once per Doc (the LAC tokenizer stores the text it was given)."""
    cached = doc.user_data.get(TEXT_USER_DATA)
    if cached is None:
        cached = doc.user_data[TEXT_USER_DATA] = doc.text
    return cached


def entities(doc: Doc) -> tuple[Span, ...]:
    """`doc.ents` as `tifa_domain_spans`, the last component, set them: the getter builds a Span,
    and Token objects for its offsets, per entity on every call, and the rows and relations read
    them four times per document. A component added after it that changes the entities must
    drop ``doc.user_data[ENTS_USER_DATA]``."""
    cached = doc.user_data.get(ENTS_USER_DATA)
    return doc.ents if cached is None else cached


def span_text(span: Span) -> str:
    """`span.text` without a Token object per word (a slice of the cached text)."""
    return doc_text(span.doc)[span.start_char : span.end_char]


def sentence_bounds(doc: Doc) -> list[tuple[int, int, int, int]]:
    """(first token, end token, start char, end char) of each sentence, as `doc.sents` gives
    them, read from arrays: no Span or Token object is made."""
    n = len(doc)
    if n == 0:
        return []
    arr = doc.to_array([SENT_START, IDX, LENGTH]).astype(numpy.int64)
    starts = numpy.flatnonzero(arr[:, 0] == 1)
    if not len(starts) or starts[0] != 0:
        starts = numpy.concatenate(([0], starts[starts != 0]))
    ends = numpy.append(starts[1:], n)
    char_starts = arr[starts, 1]
    char_ends = arr[ends - 1, 1] + arr[ends - 1, 2]
    return list(
        zip(
            starts.tolist(),
            ends.tolist(),
            char_starts.tolist(),
            char_ends.tolist(),
            strict=True,
        )
    )


def token_boundaries(doc: Doc) -> tuple[set[int], set[int]]:
    """(character offsets where a token starts, where one ends), from arrays."""
    arr = doc.to_array([IDX, LENGTH]).astype(numpy.int64)
    if not len(arr):
        return set(), set()
    return set(arr[:, 0].tolist()), set((arr[:, 0] + arr[:, 1]).tolist())


def lac_words(doc: Doc) -> list[tuple[int, int, str]]:
    """(start, end, LAC tag) of every word, in order, from arrays."""
    arr = doc.to_array([IDX, LENGTH, TAG])
    strings = doc.vocab.strings
    return [(int(i), int(i + n), strings[int(t)]) for i, n, t in arr.tolist()] if len(arr) else []


def contiguous_runs(indices: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def split_tokens_at(doc: Doc, boundaries: set[int]) -> None:
    """Split tokens so that every character offset in `boundaries` is a token boundary."""
    if not boundaries:
        return
    starts = doc.to_array("IDX").tolist()  # no Token object per word
    inner: dict[int, list[int]] = {}
    for b in sorted(boundaries):
        i = bisect.bisect_right(starts, b) - 1
        if i >= 0 and starts[i] < b < starts[i] + len(doc[i]):
            inner.setdefault(i, []).append(b - starts[i])
    to_split: list[tuple[Any, list[str]]] = []
    for i, cuts_inside in inner.items():
        token = doc[i]
        cuts = [0, *cuts_inside, len(token)]
        to_split.append((token, [token.text[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]))
    if not to_split:
        return
    ents = [(e.start_char, e.end_char, e.label_) for e in doc.ents]
    doc.ents = []
    with doc.retokenize() as retokenizer:
        for token, pieces in to_split:
            heads = [(token, 0)] * len(pieces)
            attrs = {"TAG": [token.tag_] * len(pieces), "POS": [token.pos_] * len(pieces)}
            retokenizer.split(token, pieces, heads=heads, attrs=attrs)
    spans = [doc.char_span(s, e, label=lab, alignment_mode="expand") for s, e, lab in ents]
    doc.set_ents([s for s in spans if s is not None], default="outside")


def lac_analysis(
    texts: Sequence[str], runner: str, threads: int | None = None
) -> tuple[list[list[tuple[int, int]]], list[list[tuple[int, list[tuple[str, str]]]]]]:
    """LAC over the sentences of `texts` in one batched call: per text, its sentence spans and
    its analysis as (sentence start, [(word, tag), ...]) — what the LAC tokenizer stores in
    `doc.user_data`, for Docs another tokenizer made."""

    spans = [split_sentences(t, MAX_SENTENCE_CHARS) for t in texts]
    flat = [t[s:e] for t, doc_spans in zip(texts, spans, strict=True) for s, e in doc_spans]
    tagged = get_runner(runner, threads).run(flat) if flat else []
    analyses = []
    pos = 0
    for doc_spans in spans:
        analyses.append([(s, tagged[pos + k]) for k, (s, _e) in enumerate(doc_spans)])
        pos += len(doc_spans)
    return spans, analyses


def set_model_entities(doc: Doc, predicted: list[tuple[int, int, str]], source: str) -> None:
    """Set a model's PERSON/ORG/LOC spans as the Doc's entities (any NER backend): LOC refined
    to GPE, tokens split at entity boundaries, LAC's DATE/WORK_OF_ART kept where they do not
    overlap, the first (leftmost) of overlapping model spans kept; `source` is recorded for the
    entities table."""

    text = doc.text
    predicted = [
        (s, e, entity_label("LOC", text[s:e]) if label == "LOC" else label)
        for s, e, label in predicted
    ]
    kept = [
        (e.start_char, e.end_char, e.label_)
        for e in doc.ents
        if e.label_ in KEPT_LAC_LABELS
        and all(e.end_char <= s or e.start_char >= t for s, t, _ in predicted)
    ]
    split_tokens_at(doc, {b for s, e, _ in predicted for b in (s, e)})
    spans = []
    taken: list[tuple[int, int]] = []
    for s, e, label in sorted(predicted + kept):
        if any(s < t and a < e for a, t in taken):
            continue
        span = doc.char_span(s, e, label=label)
        if span is not None and span.text.strip():
            spans.append(span)
            taken.append((s, e))
    doc.set_ents(spans, default="outside")
    doc.user_data[NER_SOURCE_USER_DATA] = source


class EntityPredictor(Protocol):
    """What the LAC tokenizer needs of a NER component to run it on the same batch (the
    `tifa_ner` CRF): entities per sentence from LAC's analysis."""

    def predict(
        self,
        sentences: Sequence[str],
        analyses: Sequence[Sequence[tuple[str, str]]],
        documents: Sequence[int] | None = None,
    ) -> list[list[tuple[int, int, str]]]: ...


class BatchedComponent:
    """`__call__` and `pipe` for a spaCy component whose work is done per batch of Docs in
    `_pipe_batch` (one model call for all sentences of the batch)."""

    def __call__(self, doc: Doc) -> Doc:
        return next(iter(self._pipe_batch([doc])))

    def pipe(self, docs: Iterable[Doc], batch_size: int = 64) -> Iterator[Doc]:
        batch: list[Doc] = []
        for doc in docs:
            batch.append(doc)
            if len(batch) >= batch_size:
                yield from self._pipe_batch(batch)
                batch = []
        if batch:
            yield from self._pipe_batch(batch)

    def _pipe_batch(self, docs: list[Doc]) -> Iterable[Doc]:
        raise NotImplementedError
