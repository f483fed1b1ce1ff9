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

import functools
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import registry

from pipeline.core.resources import RESOURCES
from pipeline.nlp.config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_NER_MODEL,
    NER_BACKENDS,
    TOKENIZERS,
    NlpConfig,
    pkuseg_model_path,
)
from pipeline.nlp.crf import CRFEntityTagger
from pipeline.nlp.docs import MAX_SENTENCE_CHARS
from pipeline.nlp.domain_spans import DomainSpans
from pipeline.nlp.lac_tokenizer import LACTokenizer


@registry.tokenizers("tifa.LACTokenizer.v1")
def create_lac_tokenizer(
    runner: str = "batched",
    max_sentence_chars: int = MAX_SENTENCE_CHARS,
    threads: int | None = None,
):
    def make(nlp: Language) -> LACTokenizer:
        tokenizer = LACTokenizer(nlp.vocab, runner, max_sentence_chars, threads)
        tokenizer.pipeline_ref = weakref.ref(nlp)
        return tokenizer

    return make


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


@Language.factory(
    "tifa_ner",
    assigns=["doc.ents", "token.ent_type", "token.ent_iob"],
    default_config={"lac_runner": "batched", "lac_threads": None},
)
def make_crf_ner(
    nlp: Language, name: str, lac_runner: str, lac_threads: int | None
) -> CRFEntityTagger:
    return CRFEntityTagger(nlp.vocab, name=name, lac_runner=lac_runner, lac_threads=lac_threads)


@Language.factory(
    "tifa_hanlp_ner",
    assigns=["doc.ents", "token.ent_type", "token.ent_iob"],
    default_config={"model_path": "", "threads": None},
)
def make_hanlp_ner(nlp: Language, name: str, model_path: str, threads: int | None) -> Any:
    # hanlp (and torch) are imported only when the component first tags: tifa runs without
    # the [hanlp] extra.
    from pipeline.nlp.hanlp import HanLPEntityTagger

    return HanLPEntityTagger(nlp.vocab, name=name, model_path=model_path, threads=threads)


@Language.factory(
    "tifa_sentences",
    assigns=["token.is_sent_start", "doc.ents", "token.ent_type", "token.ent_iob"],
    default_config={"lac_runner": "batched", "lac_threads": None},
)
def make_sentences(nlp: Language, name: str, lac_runner: str, lac_threads: int | None) -> Any:
    from pipeline.nlp.segmenters import SentencesFromText

    return SentencesFromText(name=name, lac_runner=lac_runner, lac_threads=lac_threads)


def tokenizer_config(
    name: str = "lac",
    runner: str = "batched",
    max_sentence_chars: int = MAX_SENTENCE_CHARS,
    threads: int | None = None,
) -> dict[str, Any]:
    """The `[nlp.tokenizer]` config block for a tokenizer name."""
    if name == "lac":
        return {
            "@tokenizers": "tifa.LACTokenizer.v1",
            "runner": runner,
            "max_sentence_chars": max_sentence_chars,
            "threads": threads,
        }
    if name in ("char", "pkuseg"):
        return {"@tokenizers": "spacy.zh.ChineseTokenizer", "segmenter": name}
    raise ValueError(f"unknown tokenizer {name!r}: use one of {', '.join(TOKENIZERS)}")


def build_nlp(
    runner: str = "batched",
    max_sentence_chars: int = MAX_SENTENCE_CHARS,
    ner: str = "model",
    ner_model: str | Path | None = None,
    tokenizer: str | dict[str, Any] | None = None,
    pkuseg_model: str | Path | None = None,
    lac_threads: int | None = None,
) -> Language:
    """The tifa pipeline: tokenizer (`tokenizer`: a name in TOKENIZERS or a config block;
    default LAC; `pkuseg_model` is the spacy-pkuseg model folder, default models/pkuseg),
    the NER backend (`lac`: LAC's entities as the tokenizer set them; `model`: the trained
    `tifa_ner` component loaded from `ner_model`; `hanlp`: a HanLP model from disk), then the
    POSITION/MEETING/DOCUMENT rules. `lac_threads`: threads of LAC (and HanLP's torch) in this
    process, None for one per core."""
    if ner not in NER_BACKENDS:
        raise ValueError(f"unknown NER backend {ner!r}: use one of {', '.join(NER_BACKENDS)}")
    path = Path(ner_model) if ner_model else DEFAULT_NER_MODEL
    if tokenizer is None or isinstance(tokenizer, str):
        tokenizer = tokenizer_config(tokenizer or "lac", runner, max_sentence_chars, lac_threads)
    config: dict[str, Any] = {"nlp": {"tokenizer": tokenizer}}
    if tokenizer.get("segmenter") == "pkuseg":
        pkuseg = str(pkuseg_model_path(pkuseg_model))
        config["initialize"] = {
            "tokenizer": {"pkuseg_model": pkuseg, "pkuseg_user_dict": "default"}
        }
    nlp = spacy.blank("zh", config=config)
    if tokenizer.get("segmenter") == "pkuseg":
        nlp.tokenizer.initialize(**config["initialize"]["tokenizer"])
    if tokenizer.get("@tokenizers") != "tifa.LACTokenizer.v1":
        # Tokens only: sentences, LAC's analysis and LAC's entities are added first.
        nlp.add_pipe("tifa_sentences", config={"lac_runner": runner, "lac_threads": lac_threads})
    if ner == "model":
        component = nlp.add_pipe(
            "tifa_ner", config={"lac_runner": runner, "lac_threads": lac_threads}
        )
        component.from_disk(path / "tifa_ner" if (path / "tifa_ner").is_dir() else path)
    elif ner == "hanlp":
        if not ner_model:
            raise ValueError("the hanlp backend needs --ner-model PATH (a HanLP model on disk)")
        nlp.add_pipe(
            "tifa_hanlp_ner", config={"model_path": str(ner_model), "threads": lac_threads}
        )
    nlp.add_pipe("tifa_domain_spans")
    nlp.batch_size = DEFAULT_BATCH_SIZE
    if ner == "model" and (path / "config.cfg").exists():
        # The model's own config says how many texts go through it at once.
        nlp.batch_size = int(spacy.util.load_config(path / "config.cfg")["nlp"]["batch_size"])
    return nlp


@functools.cache
def get_nlp(config: NlpConfig = NlpConfig()) -> Language:  # noqa: B008 - frozen, hashable
    """One spaCy pipeline per process and configuration."""
    return build_nlp(
        config.lac_runner,
        ner=config.ner,
        ner_model=config.ner_model,
        tokenizer=config.tokenizer,
        pkuseg_model=config.pkuseg_model,
        lac_threads=config.lac_threads,
    )


def annotate(nlp: Language, texts: Iterable[str]) -> Iterator[Doc]:
    """Docs for `texts`, batching LAC across texts (nlp.pipe alone would tokenize one by one),
    `nlp.batch_size` texts per LAC and NER call (see `build_nlp`)."""
    batch_size = nlp.batch_size
    if hasattr(nlp.tokenizer, "pipe"):
        docs = nlp.tokenizer.pipe(texts, batch_size=batch_size)
    else:  # spaCy's ChineseTokenizer (characters, pkuseg) tokenizes one text at a time
        docs = (nlp.tokenizer(text) for text in texts)
    yield from nlp.pipe(docs, batch_size=batch_size)
