"""`tifa train ner`: train the `tifa_ner` CRF from the offline NER corpora and save the pipeline.

Reproducible by construction: the corpora are read in file order, the MSRA held-out blocks (`dev`
and `test`, contiguous blocks of the file named in `resources/ner_training.yaml`, the splits
`tifa evaluate --split dev|test` scores) are never trained on, LAC's analysis is
deterministic, and CRFsuite's L-BFGS has no random state. The settings live in
`resources/ner_training.yaml`, so the command line only names the data and the output.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.resources import RESOURCES, load_yaml
from pipeline.nlp.corpora import (
    count_sentences,
    held_out_blocks,
    read_cluener,
    read_peoples_daily,
    read_tagged,
    select_split,
)
from pipeline.nlp.crf import MODEL_FILE
from pipeline.nlp.crf_features import char_features

TRAINING_CONFIG = RESOURCES / "ner_training.yaml"

Sentence = tuple[str, set[tuple[int, int, str]]]


@dataclass
class TrainingData:
    msra: Path | None = None
    peoples_daily: Path | None = None
    cluener: Path | None = None


def load_training_config(path: Path = TRAINING_CONFIG) -> dict[str, Any]:
    # A copy: training pops settings from it, and load_yaml's objects are shared.
    return copy.deepcopy(load_yaml(path))


# ---------------------------------------------------------------------------------------------
# Corpus readers: (text, {(start, end, label)}) with labels already in the model's label set.


def read_msra_train(
    path: Path, label_map: dict[str, str], blocks: dict[str, tuple[float, float]]
) -> Iterator[Sentence]:
    """MSRA (BMES or BIO, one character per line) without its held-out blocks (dev and test)."""
    n = count_sentences(path)
    for text, spans in select_split(read_tagged(path), "train", n, blocks):
        yield text, {(s, e, label_map[lab]) for s, e, lab in spans if lab in label_map}


def read_peoples_daily_train(path: Path, label_map: dict[str, str]) -> Iterator[Sentence]:
    """People's Daily 1998 with its tags mapped to the model's labels (nr/ns/nt)."""
    for text, spans in read_peoples_daily(path):
        yield text, {(s, e, label_map[lab]) for s, e, lab in spans if lab in label_map}


def read_cluener_train(path: Path, label_map: dict[str, str]) -> Iterator[Sentence]:
    for text, spans in read_cluener(path):
        yield text, {(s, e, label_map[lab]) for s, e, lab in spans if lab in label_map}


def bioes(n: int, spans: set[tuple[int, int, str]]) -> list[str]:
    tags = ["O"] * n
    for s, e, label in sorted(spans):
        if any(t != "O" for t in tags[s:e]):
            continue  # overlapping gold spans (rare in CLUENER): keep the first
        if e - s == 1:
            tags[s] = f"S-{label}"
        else:
            tags[s] = f"B-{label}"
            for i in range(s + 1, e - 1):
                tags[i] = f"I-{label}"
            tags[e - 1] = f"E-{label}"
    return tags


def training_sentences(data: TrainingData, config: dict[str, Any]) -> Iterator[Sentence]:
    maps = config["label_maps"]
    if data.msra:
        yield from read_msra_train(data.msra, maps["msra"], held_out_blocks(config))
    if data.peoples_daily:
        yield from read_peoples_daily_train(data.peoples_daily, maps["peoples_daily"])
    if data.cluener:
        yield from read_cluener_train(data.cluener, maps["cluener"])


def name_character_counts(
    sentences: Iterable[Sentence], label: str = "PERSON"
) -> dict[str, dict[str, int]]:
    """How often each character opens (`first`) or continues (`given`) a 2–3 character person
    name in the training data: the model's prior of what a Chinese name looks like."""
    first: Counter[str] = Counter()
    given: Counter[str] = Counter()
    for text, spans in sentences:
        for s, e, lab in spans:
            if lab == label and 2 <= e - s <= 3:
                first[text[s]] += 1
                given.update(text[s + 1 : e])
    return {"first": dict(sorted(first.items())), "given": dict(sorted(given.items()))}


# ---------------------------------------------------------------------------------------------


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def train_ner(
    data: TrainingData,
    out_dir: Path,
    *,
    config: dict[str, Any] | None = None,
    limit: int | None = None,
    sentences: Iterable[Sentence] | None = None,
    on_stage: Callable[[str], None] | None = None,
    on_iteration: Callable[[int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Train the CRF on `data` and write the whole spaCy pipeline (LAC tokenizer + tifa_ner +
    domain rules) to `out_dir` with `nlp.to_disk`. Returns the training summary that is also
    stored in the pipeline's meta.json."""
    import pycrfsuite

    from pipeline.nlp.build import build_nlp
    from pipeline.nlp.lac_runner import get_runner

    config = config or load_training_config()
    say = on_stage or (lambda _msg: None)
    started = time.time()
    # `sentences` replaces the corpora's (experiments on slices: bench/ner_extra_data.py); the
    # corpora named in `data` are still recorded with their digests.
    sentences = list(sentences if sentences is not None else training_sentences(data, config))
    if limit:
        sentences = sentences[:limit]
    if not sentences:
        raise ValueError("no training sentences: name at least one corpus")
    say(f"{len(sentences):,} sentences; LAC analysis")
    texts = [t for t, _ in sentences]
    analysed = get_runner("batched").run(texts)

    class _Trainer(pycrfsuite.Trainer):
        # crfsuite reports progress only in verbose mode, through these hooks, which print by
        # default: iterations go to the caller's progress bar, the rest is silenced.
        def on_iteration(self, log: str, info: dict) -> None:
            if on_iteration:
                on_iteration(
                    int(info.get("num", 0)),
                    int(config["crf"]["max_iterations"]),
                    float(info.get("loss", 0.0)),
                )

        def on_start(self, log: str) -> None: ...
        def on_featgen_progress(self, log: str, percent: float) -> None: ...
        def on_featgen_end(self, log: str) -> None: ...
        def on_prepared(self, log: str) -> None: ...
        def on_prepare_error(self, log: str) -> None: ...
        def on_optimization_end(self, log: str) -> None: ...
        def on_end(self, log: str) -> None: ...

    params = dict(config["crf"])
    trainer = _Trainer(algorithm=params.pop("algorithm", "lbfgs"), verbose=True)
    say("features")
    n_chars = 0
    for (text, spans), words in zip(sentences, analysed, strict=True):
        if not text.strip():
            continue
        trainer.append(char_features(text, words), bioes(len(text), spans))
        n_chars += len(text)
    trainer.set_params(params)
    say("training the CRF")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp_model = out_dir / f".{MODEL_FILE}.tmp"
    trainer.train(str(tmp_model))
    model_bytes = tmp_model.read_bytes()
    tmp_model.unlink()

    summary = {
        "n_sentences": len(sentences),
        "n_chars": n_chars,
        "crf": config["crf"],
        "corpora": {
            name: {"path": p.name, "sha256_16": _file_digest(p)}
            for name, p in (
                ("msra", data.msra),
                ("peoples_daily", data.peoples_daily),
                ("cluener", data.cluener),
            )
            if p
        },
        "held_out": {"msra": config["held_out"]} if data.msra else {},
        "train_seconds": round(time.time() - started, 1),
        "model_sha256_16": hashlib.sha256(model_bytes).hexdigest()[:16],
    }
    nlp = build_nlp(ner="lac")
    component = nlp.add_pipe("tifa_ner", before="tifa_domain_spans")
    component.set_model(model_bytes, {"training": summary})
    component.name_characters = name_character_counts(sentences)
    nlp.meta["name"] = "tifa_ner"
    nlp.meta["version"] = str(config.get("version", "0.0.0"))
    nlp.meta["description"] = "Character CRF over LAC analysis for Chinese political-text NER"
    nlp.meta["license"] = "see models/README.md"
    nlp.meta["tifa_training"] = summary
    nlp.to_disk(out_dir)
    (out_dir / "training.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True), encoding="utf-8"
    )
    return summary
