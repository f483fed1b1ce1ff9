"""Vectorised inference for the `tifa_ner` CRF: the same tags as CRFsuite's tagger, faster.

CRFsuite tags one sentence at a time from feature *strings*: for every character Python builds
about twenty strings (`ner_features.char_features`), CRFsuite copies and hashes them, then runs
its Viterbi. Both halves cost about as much as LAC itself, which made the trained pipeline
markedly slower than the LAC-only one. Here every attribute of the model gets an integer id and
one weight matrix holds all state weights:

* character templates (c, c-1, c+1c+2, …) become array lookups over character ids for a whole
  batch at once (one NumPy operation per template, no strings);
* word templates are looked up once per LAC word and repeated over its characters;
* state scores are sums of weight-matrix rows; the Viterbi runs batched over sentences with
  `lac_runner.viterbi_batch`.

The weights are read from CRFsuite's own dump, so the trained `model.crfsuite` stays the source
of truth; `tests/test_ner.py` checks that the tags equal `pycrfsuite.Tagger.tag` on real
sentences, and `bench/ner_pipeline.py` measures the speed.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from pipeline.nlp.crf_features import (
    BIGRAM_TEMPLATES,
    PAD_END,
    PAD_START,
    UNIGRAM_TEMPLATES,
    WORD_LONG,
    char_class,
)
from pipeline.nlp.lac_runner import viterbi_batch

# (character -> character id, unigram template -> [character id -> attribute id], bigram
# template -> (sorted pair keys a * V + b, their attribute ids)), V = number of characters + 1.
CharacterTables = tuple[
    dict[str, int], dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]
]


def _character_tables(index: dict[str, int]) -> CharacterTables:
    """The character templates' lookup tables, from the attribute ids."""
    # Attribute values grouped by template in one pass over the (~78k) attributes: a pass
    # per template with str.startswith took ~0.7 s of every process's start-up.
    by_template: dict[str, list[tuple[str, int]]] = {}
    for a, i in index.items():
        template, sep, value = a.partition("=")
        if sep:
            by_template.setdefault(template, []).append((value, i))
    chars: set[str] = set()
    for template in UNIGRAM_TEMPLATES:
        chars.update(value for value, _ in by_template.get(template, ()))
    for template in BIGRAM_TEMPLATES:
        for value, _ in by_template.get(template, ()):
            chars.update(value)  # the characters of the pair
    char_ids = {c: i + 1 for i, c in enumerate(sorted(chars))}
    v = len(char_ids) + 1
    unigram = {}
    for template in UNIGRAM_TEMPLATES:
        table = np.zeros(v, dtype=np.int64)
        for value, i in by_template.get(template, ()):
            table[char_ids[value]] = i
        unigram[template] = table
    bigram: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for template in BIGRAM_TEMPLATES:
        items = sorted(
            (char_ids[value[0]] * v + char_ids[value[1]], i)
            for value, i in by_template.get(template, ())
            if len(value) == 2
        )
        bigram[template] = (
            np.array([k for k, _ in items], dtype=np.int64),
            np.array([i for _, i in items], dtype=np.int64),
        )
    return char_ids, unigram, bigram


class CompiledCRF:
    """A trained linear-chain CRF over `ner_features` templates, as arrays."""

    def __init__(
        self,
        labels: Sequence[str],
        attributes: Sequence[str],
        weights: np.ndarray,
        transitions: np.ndarray,
        tables: CharacterTables | None = None,
    ):
        # Attribute id 0 is "no attribute": a zero row, so unknown values add nothing.
        self.labels = list(labels)
        self.attributes = list(attributes)
        self.weights = np.vstack([np.zeros((1, len(self.labels))), weights])
        self.transitions = transitions
        index = {a: i + 1 for i, a in enumerate(self.attributes)}
        self.attr_ids = index
        self.char_ids, self.unigram, self.bigram = tables or _character_tables(index)
        self.n_chars = len(self.char_ids) + 1
        self.bias_id = index.get("b", 0)
        # (word, tag) -> first row of its summed scores in _word_matrix.
        self._word_rows: dict[tuple[str, str], int] = {}
        self._word_next_row = 0
        self._word_matrix = np.zeros((0, len(self.labels)))
        self._codes: np.ndarray | None = None
        self._context: tuple | None = None

    def _code_ids(self) -> np.ndarray:
        """Character id of every Unicode code point (0: no feature mentions it)."""
        if self._codes is None:
            table = np.zeros(0x110000, dtype=np.int32)
            for c, cid in self.char_ids.items():
                table[ord(c)] = cid
            self._codes = table
        return self._codes

    def _context_ids(self) -> tuple:
        """`dict.get`s of tag -> attribute id for the previous and the next word's tag."""
        if self._context is None:
            prev = {a[5:]: i for a, i in self.attr_ids.items() if a.startswith("wt-1=")}
            nxt = {a[5:]: i for a, i in self.attr_ids.items() if a.startswith("wt+1=")}
            self._context = (prev.get, nxt.get)
        return self._context

    def _word_block(self, word: str, tag: str) -> np.ndarray:
        """Summed scores [len(word), K] of one LAC word's own templates."""
        attr = self.attr_ids.get
        m = len(word)
        value = word if m <= 4 else WORD_LONG
        positions = "S" if m == 1 else "B" + "M" * (m - 2) + "E"
        ids = [
            [
                attr("wp=" + p, 0),
                attr("wt=" + tag, 0),
                attr("wpt=" + p + tag, 0),
                attr("w=" + value, 0),
                attr("wpw=" + p + value, 0),
                attr("wptc=" + p + tag + c, 0),
            ]
            for p, c in zip(positions, word, strict=True)
        ]
        return self.weights[np.array(ids, dtype=np.int64)].sum(axis=1)

    @classmethod
    def from_crfsuite(cls, model_bytes: bytes) -> CompiledCRF:
        """Read the labels and weights of a CRFsuite model (the bytes of `model.crfsuite`)."""
        import pycrfsuite

        tagger = pycrfsuite.Tagger()
        tagger.open_inmemory(model_bytes)
        info = tagger.info()
        labels = tagger.labels()
        lab = {name: i for i, name in enumerate(labels)}
        attributes = sorted({attr for attr, _ in info.state_features})
        aid = {a: i for i, a in enumerate(attributes)}
        weights = np.zeros((len(attributes), len(labels)))
        for (attr, label), w in info.state_features.items():
            weights[aid[attr], lab[label]] = w
        transitions = np.zeros((len(labels), len(labels)))
        for (a, b), w in info.transitions.items():
            transitions[lab[a], lab[b]] = w
        return cls(labels, attributes, weights, transitions)

    # -- tagging --------------------------------------------------------------------------------
    def _lookup(self, keys: np.ndarray, ids: np.ndarray, query: np.ndarray) -> np.ndarray:
        if not len(keys):
            return np.zeros(len(query), dtype=np.int64)
        at = np.searchsorted(keys, query)
        at[at == len(keys)] = 0
        return np.where(keys[at] == query, ids[at], 0)

    def emissions(
        self, sentences: Sequence[str], analyses: Sequence[Sequence[tuple[str, str]]]
    ) -> np.ndarray:
        """State scores [total characters, K] of the sentences, concatenated."""
        v = self.n_chars
        joined = "".join(PAD_START + s + PAD_END for s in sentences)
        # Character ids by code point: one table lookup for the whole batch.
        codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
        cids = self._code_ids()[codes].astype(np.int64)
        lengths = np.array([len(s) for s in sentences], dtype=np.int64)
        stride = lengths + len(PAD_START) + len(PAD_END)
        offsets = np.concatenate([[0], np.cumsum(stride)[:-1]]) + len(PAD_START)
        real = np.repeat(offsets - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        real += np.arange(int(lengths.sum()))
        n = len(real)
        k = len(self.labels)
        total = np.zeros((n, k))
        w = self.weights
        if self.bias_id:
            total += w[self.bias_id]
        for template, offset in UNIGRAM_TEMPLATES.items():
            total += w[self.unigram[template][cids[real + offset]]]
        for template, (oa, ob) in BIGRAM_TEMPLATES.items():
            keys, ids = self.bigram[template]
            total += w[self._lookup(keys, ids, cids[real + oa] * v + cids[real + ob])]

        # Class and word templates. A word's own templates (wp, wt, wpt, w, wpw, wptc) depend
        # only on the word and its tag, so their summed scores are computed once per distinct
        # (word, tag), kept as rows of one matrix, and gathered; the neighbouring tags are
        # looked up once per word and repeated over its characters.
        attr = self.attr_ids.get
        text = "".join(sentences)
        class_of = {c: attr("t=" + char_class(c), 0) for c in set(text)}
        total += w[np.array([class_of[c] for c in text], dtype=np.int64)]
        prev_get, next_get = self._context_ids()
        cache = self._word_rows
        if len(cache) > 200_000:  # bounded: memory stays flat on open-ended vocabularies
            cache.clear()
            self._word_next_row = 0
            self._word_matrix = np.zeros((0, k))
        blocks: list[np.ndarray] = []  # rows of (word, tag) pairs first seen in this batch
        row_of: list[int] = []
        word_lengths: list[int] = []
        word_prev: list[int] = []
        word_next: list[int] = []
        for words in analyses:
            tags = [t for _, t in words]
            word_prev += [prev_get(t, 0) for t in ["^", *tags[:-1]]]
            word_next += [next_get(t, 0) for t in [*tags[1:], "$"]]
            for key in words:
                row = cache.get(key)
                if row is None:
                    row = cache[key] = self._word_next_row
                    block = self._word_block(*key)
                    blocks.append(block)
                    self._word_next_row += len(block)
                row_of.append(row)
                word_lengths.append(len(key[0]))
        if sum(word_lengths) != n:
            raise ValueError("LAC words do not cover the sentences")
        if blocks:
            self._word_matrix = np.vstack([self._word_matrix, *blocks])
        if word_lengths:
            lens = np.array(word_lengths, dtype=np.int64)
            first = np.concatenate([[0], np.cumsum(lens)[:-1]])
            within = np.arange(n) - np.repeat(first, lens)
            total += self._word_matrix[np.repeat(np.array(row_of), lens) + within]
            total += w[np.repeat(np.array(word_prev, dtype=np.int64), lens)]
            total += w[np.repeat(np.array(word_next, dtype=np.int64), lens)]
        return total

    def tag(
        self, sentences: Sequence[str], analyses: Sequence[Sequence[tuple[str, str]]]
    ) -> list[list[str]]:
        """Best label sequence per sentence, as `pycrfsuite.Tagger.tag` gives it."""
        return self.tag_and_score(sentences, analyses, label=None)[0]

    def tag_constrained(
        self,
        sentence: str,
        words: Sequence[tuple[str, str]],
        forced: Sequence[tuple[int, int, str]] = (),
        closed: Iterable[int] = (),
        closed_label: str = "PERSON",
    ) -> list[str]:
        """The best label sequence of one sentence under constraints: every span of `forced` is
        exactly one entity of its label (B…E or S), and no position of `closed` opens or closes
        a `closed_label` entity (it may sit inside one). Constraints are imposed on the Viterbi
        by removing the tags they rule out, so the rest of the sentence is the model's best
        reading given them."""
        scores = self.emissions([sentence], [words])
        index = {label: i for i, label in enumerate(self.labels)}
        blocked = np.zeros(scores.shape, dtype=bool)
        pinned = set()
        for s, e, label in forced:
            inner = [f"I-{label}"] * (e - s - 2)
            wanted = [f"S-{label}"] if e - s == 1 else [f"B-{label}", *inner, f"E-{label}"]
            for i, tag in zip(range(s, e), wanted, strict=True):
                blocked[i] = True
                blocked[i, index[tag]] = False
                pinned.add(i)
        edge_tags = [index[f"{p}-{closed_label}"] for p in "BES" if f"{p}-{closed_label}" in index]
        for i in closed:
            if i not in pinned and 0 <= i < len(sentence):
                blocked[i, edge_tags] = True
        scores[blocked] = -1e9
        path = viterbi_batch(scores[None], self.transitions, np.array([len(sentence)]))[0]
        return [self.labels[t] for t in path[: len(sentence)].tolist()]

    def tag_and_score(
        self,
        sentences: Sequence[str],
        analyses: Sequence[Sequence[tuple[str, str]]],
        label: str | None = "PERSON",
    ) -> tuple[list[list[str]], list[dict[tuple[int, int], float]]]:
        """Best label sequence per sentence and, for every span of `label` in it, the model's
        probability of exactly that span (its marginal under the CRF: the summed probability of
        every tag sequence that labels those characters B…E or S), as {(start, end): p}."""
        out: list[list[str]] = [[] for _ in sentences]
        probabilities: list[dict[tuple[int, int], float]] = [{} for _ in sentences]
        if not sentences:
            return out, probabilities
        scores = self.emissions(sentences, analyses)
        lengths = [len(s) for s in sentences]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).tolist()
        # Batches of similar length keep the padding small.
        order = sorted((i for i in range(len(sentences)) if lengths[i]), key=lengths.__getitem__)
        scored: list[int] = []
        for chunk, batch, chunk_lengths in _padded_batches(scores, starts, lengths, order):
            paths = viterbi_batch(batch, self.transitions, chunk_lengths)
            for row, i in enumerate(chunk):
                out[i] = [self.labels[t] for t in paths[row, : lengths[i]].tolist()]
                if label is not None and any(t.endswith("-" + label) for t in out[i]):
                    scored.append(i)
        if scored:
            self._score_spans(scores, starts, lengths, scored, out, probabilities, label)
        return out, probabilities

    def _score_spans(
        self,
        scores: np.ndarray,
        starts: list[int],
        lengths: list[int],
        sentences: list[int],
        tags: list[list[str]],
        probabilities: list[dict[tuple[int, int], float]],
        label: str | None,
    ) -> None:
        index = {name: k for k, name in enumerate(self.labels)}
        trans = self.transitions.astype(np.float64)
        sentences = sorted(sentences, key=lengths.__getitem__)
        for chunk, batch, lens in _padded_batches(scores, starts, lengths, sentences):
            alpha, beta, log_z = forward_backward(batch, trans, lens)
            for row, i in enumerate(chunk):
                for s, e, lab in _spans(tags[i]):
                    if lab != label:
                        continue
                    names = (
                        [f"S-{lab}"]
                        if e - s == 1
                        else [f"B-{lab}", *[f"I-{lab}"] * (e - s - 2), f"E-{lab}"]
                    )
                    path = [index[n] for n in names]
                    score = alpha[row, s, path[0]]
                    for k in range(1, len(path)):
                        score += trans[path[k - 1], path[k]] + batch[row, s + k, path[k]]
                    score += beta[row, e - 1, path[-1]] - log_z[row]
                    probabilities[i][(s, e)] = float(np.exp(min(score, 0.0)))

    # -- storage --------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            labels=np.array(self.labels),
            attributes=np.array(self.attributes),
            weights=self.weights[1:],
            transitions=self.transitions,
            # The character tables too: rebuilding them from the attribute strings took 0.1 s
            # of every process's start-up.
            chars=np.array(sorted(self.char_ids, key=self.char_ids.__getitem__)),
            **{f"unigram_{t}": self.unigram[t] for t in UNIGRAM_TEMPLATES},
            **{f"bigram_keys_{t}": self.bigram[t][0] for t in BIGRAM_TEMPLATES},
            **{f"bigram_ids_{t}": self.bigram[t][1] for t in BIGRAM_TEMPLATES},
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CompiledCRF:
        z = np.load(io.BytesIO(data), allow_pickle=False)
        tables = None  # files written before the tables were stored: rebuilt in __init__
        if "chars" in z.files:
            char_ids = {c: i + 1 for i, c in enumerate(z["chars"].tolist())}
            tables = (
                char_ids,
                {t: z[f"unigram_{t}"] for t in UNIGRAM_TEMPLATES},
                {t: (z[f"bigram_keys_{t}"], z[f"bigram_ids_{t}"]) for t in BIGRAM_TEMPLATES},
            )
        return cls(
            z["labels"].tolist(), z["attributes"].tolist(), z["weights"], z["transitions"], tables
        )


def _spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:

    return decode_bioes(tags)


def forward_backward(
    emissions: np.ndarray, transitions: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log forward and backward scores of a ``[B, T, K]`` end-padded emission batch and each
    row's log partition function; a row's backward recursion starts at its own last step.

    The recursions run scaled, in probability space: one ``[B, K] @ [K, K]`` product per step,
    renormalised, its log scale accumulated, instead of a log-sum-exp over ``[B, K, K]``
    (4-5x faster on sentences of 80+ characters; the same scores to ~1e-11)."""
    batch, steps, n_tags = emissions.shape
    top = emissions.max(axis=2)
    e = np.exp(emissions - top[..., None])
    t_max = transitions.max()
    et = np.exp(transitions - t_max)
    alpha = np.empty((batch, steps, n_tags))
    beta = np.zeros((batch, steps, n_tags))
    # (log 0 = -inf for a tag whose probability underflows: it then has none.)
    with np.errstate(divide="ignore"):
        a = e[:, 0]
        c = a.sum(axis=1)
        a = a / c[:, None]
        log_scale = top[:, 0] + np.log(c)
        alpha[:, 0] = np.log(a) + log_scale[:, None]
        for t in range(1, steps):
            a = (a @ et) * e[:, t]
            c = a.sum(axis=1)
            a = a / c[:, None]
            log_scale = log_scale + np.log(c) + top[:, t] + t_max
            alpha[:, t] = np.log(a) + log_scale[:, None]
        b = np.ones((batch, n_tags))
        log_scale = np.zeros(batch)
        for t in range(steps - 2, -1, -1):
            following = (e[:, t + 1] * b) @ et.T
            d = following.sum(axis=1)
            live = t + 1 < lengths
            log_scale = np.where(live, log_scale + np.log(d) + top[:, t + 1] + t_max, 0.0)
            b = np.where(live[:, None], following / d[:, None], 1.0)
            beta[:, t] = np.where(live[:, None], np.log(b) + log_scale[:, None], 0.0)
    last = alpha[np.arange(batch), lengths - 1]
    peak = last.max(axis=1)
    log_z = peak + np.log(np.exp(last - peak[:, None]).sum(axis=1))
    return alpha, beta, log_z


def _padded_batches(
    scores: np.ndarray, starts: list[int], lengths: list[int], order: list[int], size: int = 256
) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
    """Sentences `order` (sorted by length) as end-padded ``[B, T, K]`` emission batches."""
    for b in range(0, len(order), size):
        chunk = order[b : b + size]
        batch = np.zeros((len(chunk), lengths[chunk[-1]], scores.shape[1]))
        for row, i in enumerate(chunk):
            batch[row, : lengths[i]] = scores[starts[i] : starts[i] + lengths[i]]
        yield chunk, batch, np.array([lengths[i] for i in chunk])


def decode_bioes(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Spans from BIOES tags, leniently: an entity starts at B/S or at an I/E that does not
    continue the previous tag's label, and ends at E/S or before anything that does not continue
    it. The CRF learns valid transitions, so leniency only matters for rare invalid paths."""
    spans: list[tuple[int, int, str]] = []
    start: int | None = None
    label = ""
    for i, tag in enumerate(tags):
        prefix, _, lab = tag.partition("-")
        continues = start is not None and lab == label and prefix in ("I", "E")
        if not continues and start is not None:
            spans.append((start, i, label))
            start = None
        if prefix == "O":
            continue
        if not continues:
            start, label = i, lab
        if prefix in ("E", "S"):
            spans.append((start, i + 1, label))  # type: ignore[arg-type]
            start = None
    if start is not None:
        spans.append((start, len(tags), label))
    return spans
