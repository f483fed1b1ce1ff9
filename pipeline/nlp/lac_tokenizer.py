"""The LAC tokenizer: LAC segments and tags, and each Doc is built once with POS, sentences
and entities (the CRF's, when the pipeline has a `tifa_ner` component)."""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy
from spacy.attrs import ENT_IOB, ENT_TYPE, POS, SENT_START, TAG
from spacy.tokens import Doc

from pipeline.core.textutil import is_han as _is_han
from pipeline.nlp.docs import (
    LAC_USER_DATA,
    NER_DONE_USER_DATA,
    NER_SOURCE_USER_DATA,
    TEXT_USER_DATA,
    EntityPredictor,
)
from pipeline.nlp.labels import _POS_OF_TAG, KEPT_LAC_LABELS, entity_label, lac_label_table
from pipeline.nlp.lac_runner import get_runner
from pipeline.normalise.sentences import split_sentences


class LACTokenizer:
    """Segments with LAC and returns Docs with `tag_`, `pos_`, sentence starts and entities set."""

    def __init__(
        self,
        vocab: Any,
        runner: str = "batched",
        max_sentence_chars: int = 250,
        threads: int | None = None,
    ):
        self.vocab = vocab
        self.runner_name = runner
        self.threads = threads
        self.max_sentence_chars = max_sentence_chars
        # The pipeline this tokenizer belongs to (set by the factory): when it has a `tifa_ner`
        # component, that model runs here on the same batch and each Doc is built once with its
        # words cut at entity boundaries (re-tokenising afterwards costs as much as the CRF).
        self.pipeline_ref: Any = None
        self.fuse_ner = True
        # LAC analyses started ahead of `pipe` (see `analyse_ahead`), by chunk of texts.
        self._ahead: dict[tuple[str, ...], Any] = {}
        self._ahead_pool: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # A weak reference does not pickle; an unpickled tokenizer leaves NER to the component.
        # Analyses started ahead (futures, a thread pool) stay with this process.
        return {**self.__dict__, "pipeline_ref": None, "_ahead": {}, "_ahead_pool": None}

    def analyse_ahead(self, texts: Sequence[str], batch_size: int = 64) -> None:
        """Start LAC on `texts` in a background thread; a later `pipe` over the same texts uses
        the result. A single-process run calls this for the next batch while it finishes the
        current one: LAC (ONNX Runtime, which releases the GIL) then runs beside the CRF, the
        rules and the writing, which are single-threaded, instead of one core idling through
        them. LAC's output does not depend on what it is batched with, so Docs are the same."""
        if self._ahead_pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._ahead_pool = ThreadPoolExecutor(1, thread_name_prefix="tifa-lac-ahead")
        for chunk in self._chunks(texts, batch_size, None):
            self._ahead[tuple(chunk)] = self._ahead_pool.submit(self._analyse, chunk)

    def forget_ahead(self) -> None:
        """Drop analyses started ahead that no `pipe` took (a run stopping early)."""
        for future in self._ahead.values():
            future.cancel()
        self._ahead.clear()

    def _fused_ner(self) -> EntityPredictor | None:
        nlp = self.pipeline_ref() if self.pipeline_ref is not None else None
        if not self.fuse_ner or nlp is None or "tifa_ner" not in nlp.pipe_names:
            return None
        return nlp.get_pipe("tifa_ner")

    @property
    def runner(self) -> Any:
        return get_runner(self.runner_name, self.threads)

    def __call__(self, text: str) -> Doc:
        return next(iter(self.pipe([text])))

    def pipe(self, texts: Iterable[str], batch_size: int = 64) -> Iterator[Doc]:
        # (Analysing the next 50k-character chunk in the background while the CRF tagged the
        # current one was tried: 10% slower and 20% more CPU on 2 cores, as small chunks batch
        # LAC worse and only the CRF was overlapped. `analyse_ahead` overlaps a whole batch.)
        for chunk in self._chunks(texts, batch_size, None):
            ahead = self._ahead.pop(tuple(chunk), None) if self._ahead else None
            if ahead is not None:
                yield from self._finish(*ahead.result())
            else:
                yield from self._make_docs(chunk)

    @staticmethod
    def _chunks(
        texts: Iterable[str], batch_size: int, max_chars: int | None
    ) -> Iterator[list[str]]:
        batch: list[str] = []
        chars = 0
        for text in texts:
            batch.append(text)
            chars += len(text)
            if len(batch) >= batch_size or (max_chars is not None and chars >= max_chars):
                yield batch
                batch, chars = [], 0
        if batch:
            yield batch

    def _make_docs(self, texts: Sequence[str]) -> list[Doc]:
        return self._finish(*self._analyse(texts))

    def _analyse(
        self, texts: Sequence[str]
    ) -> tuple[Sequence[str], list[list[tuple[int, int]]], list[str], list]:
        """LAC over the sentences of `texts`: (texts, sentence spans, sentences, analyses)."""
        spans = [split_sentences(t, self.max_sentence_chars) for t in texts]
        flat = [t[s:e] for t, doc_spans in zip(texts, spans, strict=True) for s, e in doc_spans]
        tagged = self.runner.run(flat) if flat else []
        return texts, spans, flat, tagged

    def _finish(
        self,
        texts: Sequence[str],
        spans: list[list[tuple[int, int]]],
        flat: list[str],
        tagged: list,
    ) -> list[Doc]:
        """The CRF over LAC's analysis (when fused) and one Doc per text."""
        ner = self._fused_ner()
        predicted = None
        if ner is not None and flat:
            documents = [k for k, doc_spans in enumerate(spans) for _ in doc_spans]
            predicted = ner.predict(flat, tagged, documents)
        docs = []
        pos = 0
        for text, doc_spans in zip(texts, spans, strict=True):
            part = slice(pos, pos + len(doc_spans))
            docs.append(
                self._build(text, doc_spans, tagged[part], predicted[part] if predicted else None)
            )
            pos += len(doc_spans)
        return docs

    def _build(
        self,
        text: str,
        sent_spans: list[tuple[int, int]],
        tagged: list[list[tuple[str, str]]],
        predicted: list[list[tuple[int, int, str]]] | None = None,
    ) -> Doc:
        analysis = tagged
        entity_tags: list[list[str]] | None = None
        if predicted is not None:
            # Entities from the trained model: words are cut at entity boundaries.
            tagged, entity_tags = _cut_at_entities(tagged, predicted)
        words: list[str] = []
        tags: list[str] = []
        sent_starts: list[bool] = []
        ents: list[str] = []
        cursor = 0

        def gap(until: int) -> None:
            # Text between sentences (whitespace, newlines) becomes whitespace tokens so that
            # doc.text == text and character offsets need no translation.
            if until > cursor:
                words.append(text[cursor:until])
                tags.append("_SP")
                sent_starts.append(len(words) == 1)  # (words[:-1] copied the list each time)
                ents.append("O")

        for k, ((start, end), pairs) in enumerate(zip(sent_spans, tagged, strict=True)):
            gap(start)
            cursor = start
            if entity_tags is not None:
                # The model's pieces and tags: a sentence at a time (list.extend, not a
                # Python step per word).
                if pairs:
                    words.extend([w for w, _ in pairs])
                    tags.extend([t for _, t in pairs])
                    sent_starts.append(True)
                    sent_starts.extend([False] * (len(pairs) - 1))
                    ents.extend(entity_tags[k])
                    cursor += sum(map(len, words[len(words) - len(pairs) :]))
                if cursor != end:  # defensive: LAC must return exactly the characters given
                    raise RuntimeError("LAC output does not cover its input sentence")
                continue
            first = True
            for word, tag in pairs:
                words.append(word)
                tags.append(tag)
                sent_starts.append(first)
                first = False
                label = entity_label(tag, word) if not word.isspace() else ""
                if (
                    label == "PERSON"
                    and "·" in word
                    and not sent_starts[-1]
                    and len(words[-2]) == 1
                    and _is_han(words[-2])
                    and tags[-2] not in ("w", "p", "u", "c")
                ):
                    # LAC splits transliterated names at the first character ("买|买提·艾力").
                    ents[-1] = "B-PERSON"
                    ents.append("I-PERSON")
                else:
                    ents.append(f"B-{label}" if label else "O")
                cursor += len(word)
            if cursor != end:  # defensive: LAC must return exactly the characters it was given
                raise RuntimeError("LAC output does not cover its input sentence")
        gap(len(text))
        if not words:
            return Doc(self.vocab, words=[], spaces=[])
        pos = list(map(_POS_OF_TAG.__getitem__, tags))
        doc = _doc_with_annotations(self.vocab, words, tags, pos, sent_starts, ents)
        # LAC's own analysis per sentence, for the trained NER component's features: reading it
        # back from tokens would create a Token object per word.
        doc.user_data[LAC_USER_DATA] = [
            (start, pairs) for (start, _end), pairs in zip(sent_spans, analysis, strict=True)
        ]
        doc.user_data[TEXT_USER_DATA] = text
        if entity_tags is not None:
            doc.user_data[NER_DONE_USER_DATA] = True
            doc.user_data[NER_SOURCE_USER_DATA] = "model"
        return doc

    # spaCy serialisation hooks: the tokenizer has no state of its own beyond its config.
    def to_bytes(self, **_: Any) -> bytes:
        return b""

    def from_bytes(self, _data: bytes, **_: Any) -> LACTokenizer:
        return self

    def to_disk(self, _path: Any, **_: Any) -> None:
        return None

    def from_disk(self, _path: Any, **_: Any) -> LACTokenizer:
        return self


# Heading order of `Doc.__init__`'s own `from_array` call for these annotations.
_DOC_ATTRS = [POS, TAG, SENT_START, ENT_IOB, ENT_TYPE]


_IOB_STRINGS = ("", "I", "O", "B")  # Token.iob_strings(): ENT_IOB values


def _doc_with_annotations(
    vocab: Any,
    words: list[str],
    tags: list[str],
    pos: list[str],
    sent_starts: list[bool],
    ents: list[str],
) -> Doc:
    """`Doc(vocab, words, spaces=[False]*n, tags=, pos=, sent_starts=, ents=)`, the same Doc,
    with the annotation array built here in one go: `Doc.__init__` adds and looks up every
    string and assigns every array cell one Python call at a time (~10% of a run)."""
    n = len(words)
    doc = Doc(vocab, words=words, spaces=[False] * n)
    # Doc.__init__'s repairs of an inconsistent IOB sequence: an I- after O, or after another
    # label, becomes B- (a repair changes no label, so each is decided on its own).
    for i in [i for i in range(1, n) if ents[i][0] == "I"]:
        prev, ent = ents[i - 1], ents[i]
        if prev[0] == "O" or prev[1:] != ent[1:]:
            ents[i] = "B" + ent[1:]
    ids = _string_ids(vocab.strings)
    iob_of = _IOB_OF
    arr = numpy.empty((n, len(_DOC_ATTRS)), dtype=numpy.uint64)
    arr[:, 0] = list(map(ids.__getitem__, pos))
    arr[:, 1] = list(map(ids.__getitem__, tags))
    arr[:, 2] = numpy.where(numpy.array(sent_starts, dtype=bool), 1, -1).astype(numpy.int32)
    arr[:, 3] = list(map(iob_of.__getitem__, ents))
    arr[:, 4] = [ids[e[2:]] for e in ents]  # "O"[2:] == "": no label
    doc.from_array(_DOC_ATTRS, arr)
    return doc


class _IOBCodes(dict):
    """IOB tag ("B-ORG", "O") -> ENT_IOB value, checked as Doc.__init__ checks it."""

    def __missing__(self, ent: str) -> int:
        if ent != "O" and (len(ent) < 3 or ent[1] != "-" or ent[0] not in "BI"):
            raise ValueError(f"invalid IOB tag {ent!r}")
        code = self[ent] = _IOB_STRINGS.index(ent[0])
        return code


_IOB_OF = _IOBCodes()


class _StringIds(dict):
    """string -> its hash in one StringStore, added on first use (`strings.add` per value per
    Doc was most of Doc.__init__'s time)."""

    def __init__(self, strings: Any):
        super().__init__()
        self.strings = strings

    def __missing__(self, value: str) -> int:
        self.strings.add(value)
        h = self[value] = self.strings[value]
        return h


# id(StringStore) -> its ids (a StringStore takes no weak reference; the _StringIds holds the
# store, so an id is never reused while its entry lives; one pipeline per process).
_STRING_IDS: dict[int, _StringIds] = {}


def _string_ids(strings: Any) -> _StringIds:
    ids = _STRING_IDS.get(id(strings))
    if ids is None or ids.strings is not strings:
        ids = _STRING_IDS[id(strings)] = _StringIds(strings)
    return ids


def _cut_at_entities(
    tagged: list[list[tuple[str, str]]], predicted: list[list[tuple[int, int, str]]]
) -> tuple[list[list[tuple[str, str]]], list[list[str]]]:
    """LAC's words cut at the model's entity boundaries, with an IOB tag per piece: the model's
    PERSON/ORG/LOC (LOC refined to GPE), and LAC's own DATE/WORK_OF_ART words where no model
    entity overlaps them, as `CRFEntityTagger` sets them on an existing Doc."""
    kept_iob = _kept_lac_iob()
    out_words: list[list[tuple[str, str]]] = []
    out_tags: list[list[str]] = []
    for pairs, spans in zip(tagged, predicted, strict=True):
        if not spans:
            # Most sentences have no model entity: every word is one piece, LAC's DATE or
            # WORK_OF_ART kept (one dict lookup a word instead of the general loop below).
            out_words.append(list(pairs))
            out_tags.append(
                [
                    "O" if (iob := kept_iob.get(tag)) is None or word.isspace() else iob
                    for word, tag in pairs
                ]
            )
            continue
        sentence = "".join(w for w, _ in pairs)
        spans = sorted(spans)
        cuts = sorted({b for s, e, _ in spans for b in (s, e)})
        labels = [
            (s, e, entity_label("LOC", sentence[s:e]) if lab == "LOC" else lab)
            for s, e, lab in spans
        ]
        words: list[tuple[str, str]] = []
        iob: list[str] = []
        pos = 0
        j = 0  # next span that may cover a piece
        n_labels = len(labels)
        for word, tag in pairs:
            start, end = pos, pos + len(word)
            pos = end
            while j < n_labels and labels[j][1] <= start:
                j += 1
            if j == n_labels or end <= labels[j][0]:
                # No span overlaps the word, so no span boundary lies inside it either (spans
                # are sorted by start): one piece, LAC's own label where it is kept.
                words.append((word, tag))
                lac = kept_iob.get(tag)
                iob.append("O" if lac is None or word.isspace() else lac)
                continue
            lo = bisect.bisect_right(cuts, start)
            hi = bisect.bisect_left(cuts, end)
            bounds = [start, *cuts[lo:hi], end]
            overlaps = False
            for a, b in zip(bounds, bounds[1:], strict=False):
                while j < n_labels and labels[j][1] <= a:
                    j += 1
                words.append((word[a - start : b - start], tag))
                if j < n_labels and labels[j][0] <= a < labels[j][1]:
                    s, _, lab = labels[j]
                    iob.append(("B-" if a == s else "I-") + lab)
                    overlaps = True
                else:
                    iob.append("O")
            if not overlaps and len(bounds) == 2:
                lac = entity_label(tag, word) if not word.isspace() else ""
                if lac in KEPT_LAC_LABELS:
                    iob[-1] = "B-" + lac
        out_words.append(words)
        out_tags.append(iob)
    return out_words, out_tags


@functools.cache
def _kept_lac_iob() -> dict[str, str]:
    """LAC tag -> "B-<label>" for the LAC labels kept beside a model's entities (DATE,
    WORK_OF_ART; `entity_label` refines only LOC, which is not kept, so the tag decides)."""
    return {
        tag: "B-" + label
        for tag, (label, _) in lac_label_table().items()
        if label in KEPT_LAC_LABELS
    }
