"""HanLP as an optional NER backend (`tifa run --ner hanlp --ner-model PATH`).

Needs the `hanlp` extra (`pip install -e ".[hanlp]"`: HanLP 2.1 with a CPU torch); tifa imports
neither unless this backend is chosen. The model is a HanLP NER component saved on disk (the
folder `hanlp.load` reads: `config.json`, weights, vocabularies): one downloaded once on a
connected machine, or one trained with HanLP's own trainer (`tests/test_ner_backends.py` trains a
tiny one). Nothing is downloaded at run time: a path that is not a folder on disk is refused
before HanLP sees it (`hanlp.load` would otherwise treat it as a model name or URL).

The component tags each sentence of the document as a list of characters (HanLP's Chinese NER
models are character-level) and maps HanLP's labels to tifa's: PER/PERSON/NR → PERSON,
ORG/NT → ORG, LOC/NS/GPE → LOC, refined to GPE for administrative divisions by `entity_label`
(MSRA-style models say NR/NS/NT, OntoNotes-style ones PERSON/ORG/GPE/LOC). Other labels (DATE,
MONEY …) are dropped; LAC's DATE and WORK_OF_ART entities are kept where they do not overlap a
HanLP entity, as the `tifa_ner` component does. POSITION/MEETING/DOCUMENT stay with the
data-file rules of `tifa_domain_spans`, which runs after this component.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from spacy.tokens import Doc

from pipeline.nlp.docs import (
    LAC_USER_DATA,
    MAX_SENTENCE_CHARS,
    BatchedComponent,
    set_model_entities,
)
from pipeline.normalise.sentences import split_sentences

log = logging.getLogger(__name__)

# HanLP label -> tifa label (LOC is refined to GPE afterwards by `entity_label`).
HANLP_LABELS = {
    "PER": "PERSON",
    "PERSON": "PERSON",
    "NR": "PERSON",
    "ORG": "ORG",
    "NT": "ORG",
    "LOC": "LOC",
    "NS": "LOC",
    "GPE": "LOC",
}
# Sentences per HanLP call.
BATCH_SENTENCES = 64
INSTALL_HINT = 'the hanlp NER backend needs the hanlp extra: pip install -e ".[hanlp]"'


def map_label(label: str) -> str | None:
    """tifa's label for a HanLP label (None: not a label tifa takes from HanLP)."""
    return HANLP_LABELS.get(str(label).upper())


def check_model_path(model_path: str | Path) -> Path:
    """The model folder, or a clear error; never lets HanLP resolve a name or URL."""
    if not str(model_path):
        raise ValueError("the hanlp backend needs --ner-model PATH (a HanLP model folder on disk)")
    path = Path(model_path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"no HanLP model folder at {path}: pass the folder `hanlp.load` reads (config.json "
            "and weights); tifa never downloads models at run time"
        )
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path} has no config.json: not a saved HanLP component")
    return path.resolve()


@functools.cache
def load_hanlp_model(model_path: str, threads: int | None = None) -> Any:
    """The HanLP component saved at `model_path`, loaded once per process, on CPU; `threads`
    for torch (None: its default)."""
    path = check_model_path(model_path)
    try:
        import hanlp
        import torch
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc

    if threads is not None:
        # A worker of a pool or Dask cluster: one thread, like LAC, so workers share the cores.
        torch.set_num_threads(threads)
    model = hanlp.load(str(path), devices=-1)
    _fix_crf_orientation(model)
    return model


def _fix_crf_orientation(model: Any) -> None:
    """HanLP 2.1's `RNNTaggingModel` builds its CRF as `CRF(n_out, crf_constraints)`, which
    passes `None` as the CRF's `batch_first` although the tagger's tensors are batch-first; its
    Viterbi then decodes along the batch axis (one tag per sentence). Saved weights are the
    same either way, so the orientation is set right after loading."""
    inner = getattr(model, "model", None)
    crf = getattr(inner, "crf", None)
    lstm = getattr(inner, "word_lstm", None)
    if crf is not None and getattr(crf, "batch_first", True) is None:
        crf.batch_first = bool(getattr(lstm, "batch_first", True))


class HanLPEntityTagger(BatchedComponent):
    """spaCy component: PERSON/ORG/LOC/GPE from a HanLP model, LAC's DATE/WORK_OF_ART kept."""

    threads: int | None = None  # torch threads in this process (None: torch's default)

    def __init__(
        self,
        vocab: Any,
        name: str = "tifa_hanlp_ner",
        model_path: str = "",
        threads: int | None = None,
    ):
        self.vocab = vocab
        self.name = name
        # Fail when the pipeline is built, not on the first document.
        self.model_path = str(check_model_path(model_path))
        self.threads = threads
        if importlib.util.find_spec("hanlp") is None:
            raise ImportError(INSTALL_HINT)
        self.n_failed_sentences = 0

    @property
    def model(self) -> Any:
        return load_hanlp_model(self.model_path, self.threads)

    # -- tagging -------------------------------------------------------------------------------
    def predict(self, sentences: Sequence[str]) -> list[list[tuple[int, int, str]]]:
        """(start, end, label) character spans per sentence; labels PERSON/ORG/LOC."""
        # HanLP's Chinese NER models read characters; whitespace is left out and mapped back.
        positions = [[i for i, c in enumerate(s) if not c.isspace()] for s in sentences]
        tokens = [[s[i] for i in pos] for s, pos in zip(sentences, positions, strict=True)]
        todo = [k for k, t in enumerate(tokens) if t]
        raw: dict[int, Any] = {}
        for b in range(0, len(todo), BATCH_SENTENCES):
            chunk = todo[b : b + BATCH_SENTENCES]
            for k, out in zip(chunk, self._tag([tokens[k] for k in chunk]), strict=True):
                raw[k] = out
        result: list[list[tuple[int, int, str]]] = []
        for k, pos in enumerate(positions):
            spans = []
            for item in raw.get(k) or []:
                if not isinstance(item, (tuple, list)) or len(item) < 4:
                    continue
                _text, label, begin, end = item[:4]
                tifa_label = map_label(label)
                if tifa_label is None or not (0 <= begin < end <= len(pos)):
                    continue
                spans.append((pos[begin], pos[end - 1] + 1, tifa_label))
            result.append(spans)
        return result

    def _tag(self, batch: list[list[str]]) -> list[Any]:
        model = self.model
        try:
            return list(model(batch))
        except Exception as exc:
            if type(exc).__name__ != "InvalidTagSequence":
                raise
        # A tagger without transition constraints can emit an invalid IOBES sequence, on which
        # HanLP's decoder raises: tag one sentence at a time and leave out only the bad ones.
        out: list[Any] = []
        for tokens in batch:
            try:
                out.append(model([tokens])[0])
            except Exception as exc:
                if type(exc).__name__ != "InvalidTagSequence":
                    raise
                self.n_failed_sentences += 1
                log.warning(
                    "HanLP gave an invalid tag sequence for %r; no entities", "".join(tokens)
                )
                out.append([])
        return out

    def _pipe_batch(self, docs: list[Doc]) -> Iterator[Doc]:
        # One HanLP call per BATCH_SENTENCES sentences across the documents of the batch.
        sentence_spans = [sentence_spans_of(doc) for doc in docs]
        texts = [doc.text for doc in docs]  # doc.text re-joins every token on each access
        flat = [t[s:e] for t, spans in zip(texts, sentence_spans, strict=True) for s, e in spans]
        predicted = self.predict(flat)
        pos = 0
        for doc, spans in zip(docs, sentence_spans, strict=True):
            found = []
            for (start, _end), sentence_spans_found in zip(
                spans, predicted[pos : pos + len(spans)], strict=True
            ):
                found += [(start + s, start + e, label) for s, e, label in sentence_spans_found]
            pos += len(spans)
            set_model_entities(doc, found, source="hanlp")
            yield doc

    # The component is its config (the model lives at model_path); nothing else to save.
    def to_disk(self, _path: Any, **_: Any) -> None:
        return None

    def from_disk(self, _path: Any, **_: Any) -> HanLPEntityTagger:
        return self


def sentence_spans_of(doc: Doc) -> list[tuple[int, int]]:
    """The document's sentences as character spans: the LAC tokenizer's (from its analysis in
    `doc.user_data`), else `split_sentences` (the same boundaries)."""
    analysis = doc.user_data.get(LAC_USER_DATA)
    if analysis is not None:
        return [(start, start + sum(len(w) for w, _ in words)) for start, words in analysis]

    return split_sentences(doc.text, MAX_SENTENCE_CHARS)
