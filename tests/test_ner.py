"""The trained NER component: decoding, features, training determinism, the bundled model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import spacy

from pipeline.nlp.build import DEFAULT_NER_MODEL, build_nlp
from pipeline.nlp.crf import decode_bioes
from pipeline.nlp.crf_features import char_features
from pipeline.nlp.train import bioes, read_peoples_daily_train

SHARED_NER = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "ner"
needs_model = pytest.mark.skipif(
    not (DEFAULT_NER_MODEL / "tifa_ner" / "model.crfsuite").exists(),
    reason="models/tifa_ner is not trained in this checkout",
)


@pytest.mark.parametrize(
    "tags, spans",
    [
        (["B-ORG", "I-ORG", "E-ORG", "O"], [(0, 3, "ORG")]),
        (["S-PERSON", "B-LOC", "E-LOC"], [(0, 1, "PERSON"), (1, 3, "LOC")]),
        (["O", "O"], []),
        # Invalid paths are read leniently: a run of one label is one entity.
        (["I-ORG", "E-ORG", "O"], [(0, 2, "ORG")]),
        (["B-ORG", "I-ORG"], [(0, 2, "ORG")]),
        (["B-ORG", "E-LOC"], [(0, 1, "ORG"), (1, 2, "LOC")]),
    ],
)
def test_decode_bioes(tags: list[str], spans: list[tuple[int, int, str]]) -> None:
    assert decode_bioes(tags) == spans


def test_bioes_round_trips_through_decode() -> None:
    spans = {(0, 3, "ORG"), (4, 5, "PERSON"), (7, 9, "LOC")}
    assert set(decode_bioes(bioes(10, spans))) == spans


def test_char_features_one_list_per_character() -> None:
    words = [("湖北省", "LOC"), ("省长", "n"), ("王忠林", "PER"), ("。", "w")]
    sentence = "".join(w for w, _ in words)
    feats = char_features(sentence, words)
    assert len(feats) == len(sentence)
    assert "wp=B" in feats[0] and "wt=LOC" in feats[0]
    assert "wp=E" in feats[2] and "wt-1=^" in feats[0]
    assert "wt+1=n" in feats[0]
    with pytest.raises(ValueError):
        char_features(sentence + "啊", words)


def test_peoples_daily_joins_surname_and_given_name(tmp_path: Path) -> None:
    path = tmp_path / "pd.txt"
    path.write_text("中共中央/nt  总书记/n  江/nr  泽民/nr  在/p  北京/ns  讲话/v\n", "utf-8")
    maps = {"nr": "PERSON", "ns": "LOC", "nt": "ORG"}
    [(text, spans)] = list(read_peoples_daily_train(path, maps))
    assert text == "中共中央总书记江泽民在北京讲话"
    assert spans == {(0, 4, "ORG"), (7, 10, "PERSON"), (11, 13, "LOC")}


@pytest.mark.skipif(not SHARED_NER.exists(), reason="../shared/corpora/ner not present")
def test_training_is_deterministic_and_loads_with_spacy(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    runner = CliRunner()
    digests = []
    for name in ("a", "b"):
        out = tmp_path / name
        result = runner.invoke(
            app,
            [
                "train", "ner", "--msra", str(SHARED_NER / "msra_train.bio"),
                "--limit", "400", "--max-iterations", "15", "--out", str(out),
            ],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        digests.append(json.loads((out / "training.json").read_text("utf-8"))["model_sha256_16"])
        assert (out / "tifa_ner" / "model.crfsuite").read_bytes()
    assert digests[0] == digests[1]

    nlp = spacy.load(tmp_path / "a")
    assert nlp.pipe_names == ["tifa_ner", "tifa_domain_spans"]
    text = "新华社北京电，国务院总理李强在人民大会堂会见了法国外长。"
    doc = nlp(text)
    assert doc.text == text
    for ent in doc.ents:
        assert text[ent.start_char : ent.end_char] == ent.text


@needs_model
def test_bundled_model_tags_political_text() -> None:
    nlp = build_nlp(ner="model")
    doc = nlp(
        "中共中央总书记、国家主席习近平在北京会见了美国总统拜登。湖北省人民政府省长王忠林出席会议。"
    )
    ents = {(e.text, e.label_) for e in doc.ents}
    assert ("习近平", "PERSON") in ents
    assert ("王忠林", "PERSON") in ents
    assert ("北京", "GPE") in ents
    assert ("湖北省", "GPE") in ents  # MSRA's convention: 湖北省 + 人民政府 (LOC + O)
    assert ("国家主席", "POSITION") in ents


@needs_model
def test_bundled_model_is_a_spacy_pipeline_on_disk() -> None:
    loaded = spacy.load(DEFAULT_NER_MODEL)
    built = build_nlp(ner="model")
    text = "全国人大常委会委员长赵乐际主持会议。外交部发言人毛宁在例行记者会上回答提问。"
    assert [(e.start_char, e.end_char, e.label_) for e in loaded(text).ents] == [
        (e.start_char, e.end_char, e.label_) for e in built(text).ents
    ]
    assert (DEFAULT_NER_MODEL / "meta.json").exists()
    size = sum(p.stat().st_size for p in DEFAULT_NER_MODEL.rglob("*") if p.is_file())
    assert size <= 50 * 1024 * 1024


@needs_model
@pytest.mark.parametrize(
    "text, not_person",
    [
        ("我们必须坚持毛泽东思想和邓小平理论。", {"毛泽东", "邓小平"}),
        ("深入学习邓小平新时期军队建设思想。", {"邓小平"}),
        ("会议现场。 新华社记者 鞠鹏/摄", {"鞠鹏"}),
        ("全世界真正的马克思列宁主义者团结起来。", {"马克思"}),
        ("这是不懂马列的一种表现。", {"马", "列"}),
        ("中华文明人命关天的道德观念。", {"关天"}),
        ("为国家长治久安打下新的基础。", {"久安"}),
        ("总结同王张江姚“四人帮”的斗争。", {"王张江姚"}),
    ],
)
def test_names_inside_doctrines_and_photo_credits_are_not_people(
    text: str, not_person: set[str]
) -> None:
    doc = build_nlp(ner="model")(text)
    people = {e.text for e in doc.ents if e.label_ == "PERSON"}
    assert not (people & not_person), people


@needs_model
def test_model_works_without_lac_tokenizer_analysis() -> None:
    # Another tokenizer leaves no LAC analysis in user_data: the component runs LAC itself.
    nlp = build_nlp(ner="model")
    text = "国务院副总理丁薛祥出席开幕式并致辞。"
    doc = nlp.make_doc(text)
    doc.user_data.clear()
    doc = nlp.get_pipe("tifa_ner")(doc)
    assert ("丁薛祥", "PERSON") in {(e.text, e.label_) for e in doc.ents}


@needs_model
def test_compiled_inference_equals_crfsuite_tagger() -> None:
    """crf_inference must give CRFsuite's own tags (its reason to exist is speed only)."""
    import pycrfsuite

    from pipeline.nlp.crf_inference import CompiledCRF
    from pipeline.nlp.lac_runner import get_runner

    sentences = [
        "中共中央政治局常委、国务院副总理丁薛祥出席开幕式并致辞。",
        "新华社北京3月5日电，第十四届全国人民代表大会第二次会议在人民大会堂开幕。",
        "湖北省委书记王蒙徽在武汉会见了德国大众汽车集团董事长布鲁默一行。",
        "美国国务卿布林肯、欧盟外交与安全政策高级代表博雷利和联合国秘书长古特雷斯发表声明。",
        "1998年，江泽民同志在中央经济工作会议上指出，要坚持以经济建设为中心。",
        "我",
        "G20峰会在印度尼西亚巴厘岛举行，ABC电视台进行了报道。",
    ]
    analyses = get_runner("batched").run(sentences)
    model = (DEFAULT_NER_MODEL / "tifa_ner" / "model.crfsuite").read_bytes()
    tagger = pycrfsuite.Tagger()
    tagger.open_inmemory(model)
    expected = [tagger.tag(char_features(s, a)) for s, a in zip(sentences, analyses, strict=True)]
    compiled = CompiledCRF.from_crfsuite(model)
    assert compiled.tag(sentences, analyses) == expected
    # The stored arrays are the same model.
    stored = CompiledCRF.from_bytes(compiled.to_bytes())
    assert stored.tag(sentences, analyses) == expected
    # So is the shipped compiled file, and the character tables it stores (read instead of
    # rebuilt, for start-up) are the ones the attributes give.
    shipped = CompiledCRF.from_bytes((DEFAULT_NER_MODEL / "tifa_ner" / "compiled.npz").read_bytes())
    assert shipped.tag(sentences, analyses) == expected
    rebuilt = CompiledCRF(
        shipped.labels, shipped.attributes, shipped.weights[1:], shipped.transitions
    )
    assert shipped.char_ids == rebuilt.char_ids
    for template, table in rebuilt.unigram.items():
        assert np.array_equal(shipped.unigram[template], table)
    for template, (keys, ids) in rebuilt.bigram.items():
        assert np.array_equal(shipped.bigram[template][0], keys)
        assert np.array_equal(shipped.bigram[template][1], ids)


@needs_model
def test_fused_tokenizer_gives_the_component_result() -> None:
    """The LAC tokenizer runs the model itself when the pipeline has tifa_ner (one Doc build,
    no re-tokenising); the Docs must be what the component alone would make."""
    from pipeline.nlp.build import annotate

    texts = [
        "辽宁省委常委、沈阳市委书记徐文才出席。1998年1月，江泽民同志在北京会见外宾。",
        "意大利副总理兼文化部长韦尔特罗尼表示，《罗马日报》报道了此事。\n\n新华社记者 鞠鹏/摄",
        "中国驻美国大使谢锋在华盛顿出席招待会。",
    ]
    fused_nlp = build_nlp(ner="model")
    plain_nlp = build_nlp(ner="model")
    plain_nlp.tokenizer.fuse_ner = False
    for fused, plain in zip(annotate(fused_nlp, texts), annotate(plain_nlp, texts), strict=True):
        assert fused._.tifa_ner_done and not plain._.tifa_ner_done
        assert [t.text for t in fused] == [t.text for t in plain]
        assert [(e.start_char, e.end_char, e.label_) for e in fused.ents] == [
            (e.start_char, e.end_char, e.label_) for e in plain.ents
        ]


@needs_model
def test_spacy_load_in_a_fresh_interpreter() -> None:
    """The package's spaCy entry points register tifa's components: no import of pipeline."""
    import subprocess
    import sys

    code = (
        "import spacy, sys; nlp = spacy.load(sys.argv[1]); "
        "print(sorted({e.label_ for e in nlp('国务院总理李强在北京会见外宾。').ents}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(DEFAULT_NER_MODEL)],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    ).stdout
    assert "PERSON" in out and "GPE" in out


@needs_model
@pytest.mark.parametrize(
    "text, person",
    [
        ("列宁治官僚主义的一个故事。", "列宁"),  # a verb between name and 主义: a person
        ("曹建明从理论和实践结合上作了说明。", "曹建明"),
        ("马克思和恩格斯合著《德意志意识形态》。", "恩格斯"),
        ("习近平总书记关于党的建设的重要思想。", "习近平"),
    ],
)
def test_people_near_doctrine_words_stay_people(text: str, person: str) -> None:
    doc = build_nlp(ner="model")(text)
    assert person in {e.text for e in doc.ents if e.label_ == "PERSON"}


@needs_model
def test_span_probabilities_are_crfsuite_marginals() -> None:
    """A one-character span's probability is CRFsuite's own marginal of its S- tag; a longer
    span's probability (all of its tags at once) is at most the marginal of each of its tags."""
    import pycrfsuite

    from pipeline.nlp.crf_inference import CompiledCRF
    from pipeline.nlp.lac_runner import get_runner

    sentences = ["毛主席和周总理接见了外宾。", "国务院副总理丁薛祥出席开幕式并致辞。"]
    analyses = get_runner("batched").run(sentences)
    model = (DEFAULT_NER_MODEL / "tifa_ner" / "model.crfsuite").read_bytes()
    compiled = CompiledCRF.from_crfsuite(model)
    tags, probabilities = compiled.tag_and_score(sentences, analyses, label="PERSON")
    assert tags == compiled.tag(sentences, analyses)
    tagger = pycrfsuite.Tagger()
    tagger.open_inmemory(model)
    checked = 0
    for sentence, words, spans in zip(sentences, analyses, probabilities, strict=True):
        assert spans, sentence
        tagger.set(char_features(sentence, words))
        for (s, e), p in spans.items():
            names = ["S"] if e - s == 1 else ["B", *["I"] * (e - s - 2), "E"]
            marginals = [tagger.marginal(f"{n}-PERSON", s + i) for i, n in enumerate(names)]
            if e - s == 1:
                assert p == pytest.approx(marginals[0], abs=1e-6)
            assert 0.0 < p <= min(marginals) + 1e-6
            checked += 1
    assert checked >= 3


@pytest.mark.parametrize(
    "sentence, spans, at, confident, expected",
    [
        # a title before (with a layout space) or after the name
        ("中华人民共和国主席 习近平尊敬的各位同事", [(10, 13, "PERSON")], 0, set(), True),
        ("吴邦国委员长主持会议。", [(0, 3, "PERSON")], 0, set(), True),
        ("李华同志在会上讲话。", [(0, 2, "PERSON")], 0, set(), True),
        # the same string named with confidence elsewhere in the document
        ("陈兵出席。", [(0, 2, "PERSON")], 0, {"陈兵"}, True),
        # an item of a 、-list with a sure or titled person in the same clause
        ("出席的有张三、李四、王五。", [(4, 6, "PERSON"), (7, 9, "PERSON")], 0, set(), True),
        # no evidence: an ordinary word in running text
        ("它陈兵中国边境。", [(1, 3, "PERSON")], 0, set(), False),
        ("明大德、守公德、严私德。", [(8, 11, "PERSON")], 0, set(), False),
        # a list whose other items are just as doubtful is no evidence
        ("出席的有张三、李四、王五。", [(4, 6, "PERSON"), (7, 9, "PERSON")], 1, set(), False),
        # a list item in another clause is no evidence
        ("张三出席，李四、王五缺席。", [(0, 2, "PERSON"), (5, 7, "PERSON")], 1, set(), False),
    ],
)
def test_doubtful_person_needs_evidence(
    sentence: str,
    spans: list[tuple[int, int, str]],
    at: int,
    confident: set[str],
    expected: bool,
) -> None:
    from pipeline.nlp.crf import _supported

    # The span under test is doubtful; in the 'list' case item 1 is sure, in the 'doubtful
    # list' case both items are doubtful.
    unsure = {0, 1} if sentence.startswith("出席的有") and not expected else {at}
    assert _supported(sentence, spans, at, unsure, confident) is expected


@needs_model
@pytest.mark.parametrize(
    "text, not_person",
    [
        ("苏联在边境陈兵百万，威胁我国安全。", "陈兵"),
        ("推进集体林权制度改革。", "林权"),
        ("坚持陆海统筹，发展海洋经济。", "陆海"),
        ("以战止战、以武止戈。", "武止戈"),
    ],
)
def test_words_the_model_is_unsure_of_are_not_people(text: str, not_person: str) -> None:
    doc = build_nlp(ner="model")(text)
    assert not_person not in {e.text for e in doc.ents if e.label_ == "PERSON"}


@needs_model
@pytest.mark.parametrize(
    "text, people",
    [
        ("全国人大常委会副委员长王晨、曹建明、张春贤、沈跃跃、吉炳轩出席会议。",
         {"王晨", "曹建明", "张春贤", "沈跃跃", "吉炳轩"}),
        ("中华人民共和国主席 习近平尊敬的各位同事", {"习近平"}),
        ("从清末的张謇到新中国的荣毅仁。", {"张謇", "荣毅仁"}),
        # LAC's names where the model found none, with a title beside them or after 为
        ("栗战书委员长主持闭幕会。", {"栗战书"}),
        ("任命：\n陈毅兼外交部部长，\n沙千里为粮食部部长。", {"陈毅", "沙千里"}),
    ],
)  # fmt: skip
def test_people_with_evidence_stay_people(text: str, people: set[str]) -> None:
    doc = build_nlp(ner="model")(text)
    assert people <= {e.text for e in doc.ents if e.label_ == "PERSON"}


@needs_model
def test_entities_carry_no_layout_whitespace() -> None:
    # A sentence that runs over a line break ("，\n") must not give "\n沙千里" or "\n中国…".
    doc = build_nlp(ner="model")(
        "任命：\n陈毅兼外交部部长，\n沙千里为粮食部部长，\n中国共产党第十四次全国代表大会开幕。"
    )
    assert doc.ents and all(e.text == e.text.strip() for e in doc.ents)


def test_name_character_counts_come_from_training_names() -> None:
    from pipeline.nlp.train import name_character_counts

    counts = name_character_counts(
        [("李华和张晓明来了", {(0, 2, "PERSON"), (3, 6, "PERSON")}), ("北京", {(0, 2, "LOC")})]
    )
    assert counts == {"first": {"张": 1, "李": 1}, "given": {"华": 1, "明": 1, "晓": 1}}


def test_forward_backward_equals_enumeration() -> None:
    """The scaled recursions give the log partition function and the per-position marginals
    that summing over every tag sequence gives (end-padded rows of different lengths, scores
    far apart enough to underflow a naive product)."""
    import itertools

    from pipeline.nlp.crf_inference import forward_backward

    rng = np.random.default_rng(7)
    n_tags, steps = 3, 5
    emissions = rng.normal(0, 30, (3, steps, n_tags))
    transitions = rng.normal(0, 5, (n_tags, n_tags))
    lengths = np.array([1, 3, 5])
    for row, n in enumerate(lengths):
        emissions[row, n:] = 0.0
    alpha, beta, log_z = forward_backward(emissions, transitions, lengths)
    for row, n in enumerate(lengths):
        paths = list(itertools.product(range(n_tags), repeat=int(n)))
        scores = np.array(
            [
                sum(emissions[row, t, y] for t, y in enumerate(p))
                + sum(transitions[a, b] for a, b in itertools.pairwise(p))
                for p in paths
            ]
        )
        top = scores.max()
        expected_z = top + np.log(np.exp(scores - top).sum())
        assert log_z[row] == pytest.approx(expected_z, rel=1e-12)
        for t in range(n):
            for y in range(n_tags):
                mask = np.array([p[t] == y for p in paths])
                expected = np.exp(scores[mask] - expected_z).sum()
                marginal = np.exp(alpha[row, t, y] + beta[row, t, y] - log_z[row])
                assert marginal == pytest.approx(expected, abs=1e-12)
