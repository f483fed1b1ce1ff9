"""Every setting of a run in one object, built once (by the command line or a notebook) and
checked before any work starts.

`RunConfig` travels whole: the run loop, the executors and every worker read their settings
from it, and `nlp` (an `NlpConfig`) is what each process builds its spaCy pipeline from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pipeline.extract.lexicon import LEXICON_PATH, lexicon_for
from pipeline.io.compact import DEFAULT_COMPACT_ABOVE, DEFAULT_TARGET_BYTES
from pipeline.io.ingest import DEFAULT_MAX_DOC_BYTES, FieldMap
from pipeline.nlp.config import DEFAULT_NER_MODEL, NlpConfig

# How batches run: in this process or a local process pool, or on a Dask cluster.
SCHEDULERS = ("processes", "dask")

# Default size above which a document is processed in chunks (raw characters). Big enough
# that no ordinary document (the longest congress report has ~70k characters) is ever cut, and
# small enough that one chunk's offset maps, spaCy Doc and rows stay in the tens of MB.
DEFAULT_CHUNK_CHARS = 300_000

# Largest batch (raw characters) when batches run in parallel: smaller batches keep every
# worker busy to the end (5 MB made 4 batches of 400k characters: a worker finishing early
# idled while the other ran a whole batch); LAC still gets thousands of sentences per call.
# Batching changes which part file holds a document, not its rows.
PARALLEL_BATCH_CHARS = 100_000


DEFAULT_STORY_THRESHOLD = 0.35
DEFAULT_COPY_THRESHOLD = 0.95
DEFAULT_COPY_LENGTH_GAP = 40


class ConfigError(ValueError):
    """A setting that cannot work, found before the run starts (the message says which)."""


@dataclass(frozen=True)
class RunConfig:
    nlp: NlpConfig = field(default_factory=NlpConfig)
    lexicon: str = str(LEXICON_PATH)
    # The analyst's lexicon beside the output (<out>/lexicon/user_formulations.yaml, written by
    # `tifa lexicon accept`), merged with `lexicon`; run_pipeline fills it in from the output.
    user_lexicon: str | None = None
    nested_formulations: bool = False
    fields: FieldMap | None = None
    workers: int = 1
    scheduler: str = "processes"
    dask_address: str | None = None
    # Dask: bytes of input per task (None: about 8 tasks per worker, see run/dask.py).
    partition_bytes: int | None = None
    batch_size: int = 64
    # Small enough that LAC's analysis of the next batch overlaps most of a run (see
    # `executors.serially`: 150k beat 400k by 6% on the dev corpora, 100k and 60k batched LAC
    # less well), large enough that LAC gets thousands of sentences per call.
    batch_chars: int = 150_000
    chunk_chars: int = DEFAULT_CHUNK_CHARS
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES
    force: bool = False
    report: bool = False
    compact_above: int | None = DEFAULT_COMPACT_ABOVE
    compact_target_bytes: int = DEFAULT_TARGET_BYTES
    # Syndicated copies (run/stories.py): whether they are found and linked; the estimated
    # Jaccard similarity of two texts' shingles from which they are one story, and from which
    # a copy is not run through the NLP (the canonical copy's rows serve for it). Both measured
    # on tests/data/syndication/ (README: *One story, counted once*).
    dedup: bool = True
    story_threshold: float = DEFAULT_STORY_THRESHOLD
    copy_threshold: float = DEFAULT_COPY_THRESHOLD
    # ... and whose text (Han, letters, digits) is at most this many characters longer or
    # shorter than the canonical copy's (a headline, a dateline: yes; a paragraph: no).
    copy_length_gap: int = DEFAULT_COPY_LENGTH_GAP

    @classmethod
    def of(cls, **settings: Any) -> RunConfig:
        """A config from flat keyword settings (`ner="lac"`, `workers=2`, …): the names of
        `NlpConfig` go into `nlp`. Model and lexicon paths are made absolute (a Dask worker may
        run in another folder)."""
        nlp_names = {f.name for f in fields(NlpConfig)}
        nlp = {k: settings.pop(k) for k in list(settings) if k in nlp_names}
        unknown = set(settings) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"unknown run settings: {', '.join(sorted(unknown))}")
        for key in ("ner_model", "pkuseg_model"):
            if nlp.get(key):
                nlp[key] = os.path.abspath(nlp[key])
        if settings.get("lexicon") is None:
            settings.pop("lexicon", None)
        else:
            settings["lexicon"] = os.path.abspath(settings["lexicon"])
        base = cls(**settings)
        return replace(base, nlp=replace(base.nlp, **nlp)) if nlp else base

    @property
    def parallel(self) -> bool:
        return self.workers > 1 or self.scheduler == "dask"

    @property
    def lac_threads(self) -> int | None:
        """LAC threads per process: one per worker when workers share the cores, else all."""
        return 1 if self.parallel else None

    @property
    def run_batch_chars(self) -> int:
        return min(self.batch_chars, PARALLEL_BATCH_CHARS) if self.parallel else self.batch_chars

    def problems(self) -> list[str]:
        """Every setting that cannot work, as messages for the user (empty: none)."""
        out = list(self.nlp.problems()) + self._ner_model_problems()
        if self.scheduler not in SCHEDULERS:
            out.append(f"unknown scheduler {self.scheduler!r}: use one of {', '.join(SCHEDULERS)}")
        if self.dask_address and self.scheduler != "dask":
            out.append(
                "a Dask scheduler address was given but the scheduler is "
                f"{self.scheduler!r}: pass scheduler='dask' (tifa run --scheduler dask)"
            )
        for name in ("workers", "batch_size", "batch_chars", "chunk_chars", "max_doc_bytes"):
            if getattr(self, name) < 1:
                out.append(f"{name} must be at least 1")
        for name in ("story_threshold", "copy_threshold"):
            if not 0.0 < getattr(self, name) <= 1.0:
                out.append(f"{name} must be above 0 and at most 1")
        if self.copy_length_gap < 0:
            out.append("copy_length_gap must be at least 0")
        if self.copy_threshold < self.story_threshold:
            out.append("copy_threshold must be at least story_threshold")
        if not Path(self.lexicon).is_file():
            out.append(f"no formulation lexicon at {self.lexicon} (--lexicon)")
        else:
            try:
                lexicon_for(self.lexicon, self.user_lexicon)
            except (ValueError, OSError) as exc:
                # One line: a YAML parser's message spans several (the mark, the context).
                out.append(f"the formulation lexicon cannot be used: {' '.join(str(exc).split())}")
        return out

    def _ner_model_problems(self) -> list[str]:
        """A `model` NER folder that exists but holds no trained model (a mistyped --ner-model
        such as `models/`): found here, before any work, and not answered by "train the model",
        which is what the component says when it finally fails to load it."""
        if self.nlp.ner != "model":
            return []
        folder = Path(self.nlp.ner_model) if self.nlp.ner_model else DEFAULT_NER_MODEL
        if not folder.exists():
            if self.nlp.ner_model:
                return []  # NlpConfig.problems says so
            return [
                f"no NER model in {folder} (the default): restore it, train one with "
                "`tifa train ner --out models/tifa_ner`, or use --ner lac"
            ]
        # crf.MODEL_FILE, in the folder `tifa train ner --out` wrote (its tifa_ner/) or in the
        # component's own folder (not imported: nlp/crf.py loads spaCy).
        if not any((folder / sub / "model.crfsuite").is_file() for sub in ("tifa_ner", ".")):
            return [
                f"{folder} holds no tifa NER model (no model.crfsuite in it or in its "
                "tifa_ner/): give the folder `tifa train ner --out` wrote (--ner-model)"
            ]
        return []

    def check(self) -> RunConfig:
        """This config, or `ConfigError` naming every problem."""
        problems = self.problems()
        if problems:
            raise ConfigError("; ".join(problems))
        return self
