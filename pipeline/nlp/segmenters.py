"""Docs from a tokenizer other than LAC: sentence boundaries and LAC's analysis added afterwards.

The tokenizer is chosen in config (`build_nlp(tokenizer="lac" | "char" | "pkuseg")`). LAC's own
tokenizer (`tifa.LACTokenizer.v1`) sets sentence starts, tags and entities in one pass. spaCy's
`spacy.zh.ChineseTokenizer` (characters, or spacy-pkuseg words) gives tokens only, so the
`tifa_sentences` component, first in the pipeline, adds what the rest of tifa reads:

* sentence starts from `split_sentences` (the same boundaries the LAC tokenizer uses; a token
  that straddles one is split there), so `doc.sents` works;
* LAC's analysis per sentence in `doc.user_data["tifa_lac"]`, which the `tifa_ner` component
  uses for its features (LAC runs once, batched across the documents of a batch);
* LAC's entities, so every NER backend starts from the same entities whatever the tokens: the
  `lac` backend keeps them, `model` and `hanlp` replace PERSON/ORG/LOC and keep DATE/WORK_OF_ART;
* LAC's tag (and its UD POS) on every token that lies inside one LAC word: all of them for
  characters, most for pkuseg words. A pkuseg word that spans several LAC words has no tag, so
  rules that read tags (meeting-name extension, some relation patterns) may find less there.
"""

from __future__ import annotations

import bisect
from typing import Any

from spacy.tokens import Doc

from pipeline.nlp.docs import LAC_USER_DATA, BatchedComponent, lac_analysis, split_tokens_at
from pipeline.nlp.labels import entity_label, lac_label_table


class SentencesFromText(BatchedComponent):
    """spaCy component: sentence starts, LAC analysis and LAC entities for non-LAC tokens."""

    def __init__(
        self,
        name: str = "tifa_sentences",
        lac_runner: str = "batched",
        lac_threads: int | None = None,
    ):
        self.name = name
        self.lac_runner = lac_runner
        self.lac_threads = lac_threads

    def _pipe_batch(self, docs: list[Doc]) -> list[Doc]:
        spans, analyses = lac_analysis([d.text for d in docs], self.lac_runner, self.lac_threads)
        for doc, doc_spans, analysis in zip(docs, spans, analyses, strict=True):
            doc.user_data[LAC_USER_DATA] = analysis
            set_sentences_and_lac_entities(doc, doc_spans, analysis)
        return docs

    # Nothing to save: the component is its config.
    def to_disk(self, _path: Any, **_: Any) -> None:
        return None

    def from_disk(self, _path: Any, **_: Any) -> SentencesFromText:
        return self


def set_sentences_and_lac_entities(
    doc: Doc,
    sent_spans: list[tuple[int, int]],
    analysis: list[tuple[int, list[tuple[str, str]]]],
) -> None:
    """Split tokens at sentence and LAC-entity boundaries, mark sentence starts, tag tokens that
    lie inside one LAC word, set LAC's entities (labels from `entity_label`, as the LAC tokenizer
    gives them)."""

    entities: list[tuple[int, int, str]] = []
    words: list[tuple[int, int, str]] = []  # (start, end, LAC tag), in text order
    for start, pairs in analysis:
        cursor = start
        for word, tag in pairs:
            label = entity_label(tag, word) if not word.isspace() else ""
            if label:
                entities.append((cursor, cursor + len(word), label))
            words.append((cursor, cursor + len(word), tag))
            cursor += len(word)
    boundaries = {b for s, e in sent_spans for b in (s, e)}
    boundaries |= {b for s, e, _ in entities for b in (s, e)}
    split_tokens_at(doc, boundaries)
    if not len(doc):
        return
    starts = {s for s, _ in sent_spans}
    word_starts = [s for s, _, _ in words]
    table = lac_label_table()
    for i, token in enumerate(doc):
        token.is_sent_start = i == 0 or token.idx in starts
        k = bisect.bisect_right(word_starts, token.idx) - 1
        if k >= 0 and token.idx + len(token) <= words[k][1] and not token.is_space:
            tag = words[k][2]
            token.tag_ = tag
            token.pos_ = table.get(tag, ("", "X"))[1] or "X"
    spans = []
    for s, e, label in entities:
        span = doc.char_span(s, e, label=label)
        if span is not None:
            spans.append(span)
    doc.set_ents(spans, default="outside")
