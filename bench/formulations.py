"""Formulation matching throughput with the full lexicon, on the normalised dev corpus.

Usage: python bench/formulations.py [--repeat N]

Prints MB/s (UTF-8 bytes of normalised text per second) of FormulationMatcher.find on one core,
for the default (longest match) and nested modes, and compares with the naive approach of one
str.find scan per lexicon form, measured side by side in the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import dev_documents  # noqa: E402

from pipeline.extract.formulations import FormulationMatcher, load_lexicon  # noqa: E402
from pipeline.normalise import normalise_text  # noqa: E402


def best_of(repeat: int, fn) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (best kept)")
    args = parser.parse_args()
    texts = [normalise_text(raw) for _, _, raw in dev_documents()]
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    lexicon = load_lexicon()
    n_forms = sum(len(e.forms) for e in lexicon)
    flat, nested = FormulationMatcher(lexicon), FormulationMatcher(lexicon, nested=True)
    n_mentions = sum(len(flat.find(t)) for t in texts)
    forms = [f for e in lexicon for f in e.forms]

    def naive() -> None:
        for t in texts:
            for f in forms:
                t.count(f)

    t_flat = best_of(args.repeat, lambda: [flat.find(t) for t in texts])
    t_nested = best_of(args.repeat, lambda: [nested.find(t) for t in texts])
    t_naive = best_of(max(1, args.repeat // 2), naive)
    print(
        f"lexicon: {len(lexicon)} entries, {n_forms} forms; corpus {n_bytes / 1e6:.2f} MB, "
        f"{n_mentions} mentions"
    )
    print(f"automaton, longest match: {n_bytes / t_flat / 1e6:8.1f} MB/s")
    print(f"automaton, nested:        {n_bytes / t_nested / 1e6:8.1f} MB/s")
    print(f"naive str.count per form: {n_bytes / t_naive / 1e6:8.1f} MB/s")
    print(f"ratio {t_naive / t_flat:.2f}")


if __name__ == "__main__":
    main()
