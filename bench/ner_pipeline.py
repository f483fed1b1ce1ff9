"""Full-pipeline throughput with the trained NER (`--ner model`) against the LAC-only pipeline.

Usage: python bench/ner_pipeline.py [--repeats N] [--limit N]

Runs `process_batch` (normalise → nlp → formulations → relations → rows) over the dev corpus
with each backend, alternating A/B runs so both see the same machine load, and keeps each
backend's best run. The last line is ``ratio N.NN`` = model chars/s ÷ LAC-only chars/s.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import DEV, load_dev_documents  # noqa: E402

from pipeline.core.document import Document  # noqa: E402
from pipeline.run.batch import RunContext, load_models, process_batch  # noqa: E402
from pipeline.run.config import RunConfig  # noqa: E402


def documents(limit: int | None) -> list[Document]:
    docs = [
        Document(doc_id=doc_id, source_file="bench", raw_text=text, year=year)
        for doc_id, year, text in load_dev_documents()
    ]
    return docs[:limit] if limit else docs


def run_once(options: RunConfig, limit: int | None, batch_size: int) -> tuple[int, float]:
    docs = documents(limit)  # fresh Documents: normalise fills them in place
    start = time.perf_counter()
    n_chars = 0
    for i in range(0, len(docs), batch_size):
        n_chars += process_batch(docs[i : i + batch_size], options, RunContext()).n_chars
    return n_chars, time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="A/B rounds (best of each)")
    parser.add_argument("--limit", type=int, help="use only the first N dev documents")
    parser.add_argument("--batch-size", type=int, default=16, help="documents per batch")
    parser.add_argument("--ner-model", help="NER model folder (default: models/tifa_ner)")
    args = parser.parse_args(argv)
    if not DEV.is_dir():
        parser.error(f"dev corpus not found at {DEV}")

    backends = {
        "lac": RunConfig.of(ner="lac"),
        "model": RunConfig.of(ner="model", ner_model=args.ner_model),
    }
    for options in backends.values():
        load_models(options)  # model loading is start-up, not throughput
        run_once(options, 2, args.batch_size)  # warm caches
    best: dict[str, float] = {}
    n_chars = 0
    for _ in range(args.repeats):
        for name, options in backends.items():
            n_chars, seconds = run_once(options, args.limit, args.batch_size)
            rate = n_chars / seconds
            best[name] = max(best.get(name, 0.0), rate)
            print(f"{name:6s} {rate:10,.0f} chars/s ({seconds:.2f} s)", flush=True)
    print(f"{n_chars:,} chars per run; best of {args.repeats}")
    print(f"LAC-only pipeline:     {best['lac']:10,.0f} chars/s")
    print(f"trained-NER pipeline:  {best['model']:10,.0f} chars/s")
    print(f"ratio {best['model'] / best['lac']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
