"""Does People's Daily 1998 as extra training data help the NER? (issue 26, model card).

Usage: python bench/ner_extra_data.py [--msra-sentences N] [--pd-paragraphs N] [--iterations N]

Trains two CRFs with the same small budget: the first N sentences of the MSRA training split
(its held-out blocks excluded), and the same plus the first N People's Daily paragraphs with
nr/ns/nt mapped to PERSON/LOC/ORG; scores both on the MSRA `dev` and `test` blocks, which
neither saw. Prints one line per model and block. Takes a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NER = ROOT.parent / "shared" / "corpora" / "ner"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--msra-sentences", type=int, default=8000)
    parser.add_argument("--pd-paragraphs", type=int, default=4000)
    parser.add_argument("--iterations", type=int, default=60)
    args = parser.parse_args()

    from pipeline.evaluate.ner import evaluate_ner
    from pipeline.nlp import train as t

    msra, pd = NER / "msra_train.bio", NER / "peoples_daily_199801.pos.txt"
    config = t.load_training_config()
    config["crf"]["max_iterations"] = args.iterations
    maps = config["label_maps"]
    base = list(
        itertools.islice(
            t.read_msra_train(msra, maps["msra"], t.held_out_blocks(config)), args.msra_sentences
        )
    )
    extra = list(
        itertools.islice(t.read_peoples_daily_train(pd, maps["peoples_daily"]), args.pd_paragraphs)
    )
    for name, sentences in (("msra", base), ("msra+peoples_daily", base + extra)):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "model"
            t.train_ner(t.TrainingData(msra=msra, peoples_daily=pd), out, config=config,
                        sentences=sentences)  # fmt: skip
            for split in ("dev", "test"):
                r = evaluate_ner(msra, "bio", split=split, ner_model=str(out))
                labels = " ".join(
                    f"{k} {v['precision']:.3f}/{v['recall']:.3f}/{v['f1']:.3f}"
                    for k, v in r["per_label"].items()
                )
                print(
                    f"{name:20s} {split:4s} micro {r['micro_precision']:.3f}/"
                    f"{r['micro_recall']:.3f}/{r['micro_f1']:.3f}  {labels}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
