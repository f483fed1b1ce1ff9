"""Relations on the seeds, on hand-written sentences, and against the gold sets."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.evaluate.relations import (
    canonical_role,
    evaluate_relations,
    extract_relations_for_records,
)

from .conftest import ROOT, seed_path, txt_doc_id

GOLD = ROOT / "tests" / "data"


def _rels(text: str, title: str | None = None) -> set[tuple]:
    rec = {"id": "t", "text": text, "title": title}
    return {
        _fact(r["relation"], r["head"], r["tail"], r["role"])
        for r in extract_relations_for_records([rec])
    }


def _fact(relation: str, head: str, tail: str, role: str | None) -> tuple:
    """A row as the gold scorer sees it: a role without the body its tail names, so that
    "党委副书记" at …自治区党委 and "副书记" at …自治区党委 (NER segmentation) are one fact."""
    return (relation, head, tail, canonical_role(role, tail))


def _seed_rels(out: Path, prefix: str) -> pd.DataFrame:
    rel = pd.read_parquet(out / "relations")
    return rel[rel.doc_id == txt_doc_id(seed_path(prefix))]


def test_seed_000_relations(seeds_out: Path) -> None:
    rel = _seed_rels(seeds_out, "000")
    facts = set(zip(rel["relation"], rel["head"], rel["tail"], rel["role"].fillna(""), strict=True))
    assert ("holds_position", "何光耀", "湖北省委党史研究室", "主任") in facts
    assert ("holds_position", "吴海涛", "湖北省委", "省委常委") in facts
    assert ("holds_position", "吴海涛", "湖北省委", "秘书长") in facts
    assert ("holds_position", "王洲洋", "湖北省委党史研究室", "副主任") in facts
    assert any(r == "chairs" and h == "王洲洋" for r, h, _, _ in facts)
    assert any(r == "instructs" and h == "吴海涛" for r, h, _, _ in facts)
    resolved = rel[(rel["head"] == "王洲洋") & (rel["relation"] == "holds_position")]
    assert list(resolved["resolved_from"]) == ["text"]


def test_seed_004_invents_no_people(seeds_out: Path) -> None:
    rel = _seed_rels(seeds_out, "004")
    assert rel[rel["head_label"] == "PERSON"].empty
    assert ("issues", "党中央", "《关于在全党开展党史学习教育的通知》") in set(
        zip(rel["relation"], rel["head"], rel["tail"], strict=True)
    )


@pytest.mark.parametrize(
    "text, title, expected",
    [
        (
            "会前，省委常委、省委秘书长吴海涛作出批示。",
            "湖北省召开全省党史工作会议",
            {
                ("holds_position", "吴海涛", "湖北省委", "省委常委"),
                ("holds_position", "吴海涛", "湖北省委", "秘书长"),
            },
        ),
        (
            "湖北省人民政府省长 张明\n省长张明作政府工作报告。",
            None,
            {("holds_position", "张明", "湖北省人民政府", "省长")},
        ),
        (
            "自治区党委副书记、自治区主席买买提·艾力出席会议并讲话。",
            "新疆维吾尔自治区召开民族团结工作会议",
            {
                ("holds_position", "买买提·艾力", "新疆维吾尔自治区党委", "党委副书记"),
                ("holds_position", "买买提·艾力", "新疆维吾尔自治区人民政府", "自治区主席"),
            },
        ),
        (
            "国务院副总理刘明远、张华东参加会议。",
            None,
            {
                ("holds_position", "刘明远", "国务院", "副总理"),
                ("holds_position", "张华东", "国务院", "副总理"),
            },
        ),
        (
            "中共中央办公厅、国务院办公厅联合印发了《关于进一步减轻基层负担的意见》。",
            None,
            {
                ("issues", "中共中央办公厅", "《关于进一步减轻基层负担的意见》", None),
                ("issues", "国务院办公厅", "《关于进一步减轻基层负担的意见》", None),
            },
        ),
    ],
)
def test_relation_patterns(text: str, title: str | None, expected: set[tuple]) -> None:
    found = _rels(text, title)
    assert {_fact(*f) for f in expected} <= found, found


@pytest.mark.parametrize(
    "text, title, expected",
    [
        (
            "会议决定任命王淑英为海南省发展和改革委员会主任，免去何振华的海南省发展和改革委员会主任职务。",
            None,
            {("holds_position", "王淑英", "海南省发展和改革委员会", "主任")},
        ),
        (
            "省人大常委会副主任欧阳红、吉家豪，秘书长文昌盛出席会议。",
            "海南省人大常委会举行第十次会议",
            {
                ("holds_position", "文昌盛", "海南省人大常委会", "秘书长"),
                ("holds_position", "欧阳红", "海南省人大常委会", "副主任"),
            },
        ),
        (
            "生态环境部举行发布会。宣传教育司副司长叶青参加发布会。",
            None,
            {("holds_position", "叶青", "生态环境部宣传教育司", "副司长")},
        ),
        (
            "会上，学校党委印发《海南大学关于加强基层党组织建设的实施方案》。",
            None,
            {("issues", "学校党委", "《海南大学关于加强基层党组织建设的实施方案》", None)},
        ),
        (
            "财政部、税务总局在发布会前发布了《关于延续实施有关税费优惠政策的公告》。",
            None,
            {
                ("issues", "财政部", "《关于延续实施有关税费优惠政策的公告》", None),
                ("issues", "税务总局", "《关于延续实施有关税费优惠政策的公告》", None),
            },
        ),
    ],
)
def test_more_relation_patterns(text: str, title: str | None, expected: set[tuple]) -> None:
    found = _rels(text, title)
    assert {_fact(*f) for f in expected} <= found, found


def test_dismissal_is_not_a_post() -> None:
    found = _rels("会议决定免去何振华的海南省发展和改革委员会主任职务。")
    assert not [f for f in found if f[1] == "何振华"]


def test_redacted_names_yield_nothing() -> None:
    found = _rels("××同志主持会议并讲话。县委书记在会上讲话。")
    assert not [f for f in found if f[0] in ("holds_position", "chairs", "addresses")]


@pytest.mark.parametrize("name", ["relations", "relations_heldout", "relations_blind2"])
def test_gold_precision_and_recall(name: str) -> None:
    report = evaluate_relations(GOLD / f"{name}_gold.jsonl", GOLD / f"{name}_docs.jsonl")
    assert report["support"] >= 60
    assert report["micro_precision"] >= 0.9, report["false_positives"]
    assert report["micro_recall"] >= 0.85, report["false_negatives"]


def test_people_view(seeds_out: Path) -> None:
    people = pd.read_parquet(seeds_out / "people")
    row = people[(people["person"] == "何光耀") & (people["role"] == "主任")]
    assert list(row["organisation"]) == ["湖北省委党史研究室"]
    assert str(row["first_seen"].iloc[0]) == "2024-03-12"


def test_document_entities_carry_their_issuer(seeds_out: Path, samples_out: Path) -> None:
    ents = pd.read_parquet(seeds_out / "entities")
    docs = ents[(ents["label"] == "DOCUMENT") & (ents["doc_id"] == txt_doc_id(seed_path("004")))]
    issuers = dict(zip(docs["text"], docs["issuer"], strict=True))
    assert (
        issuers["《中共中央关于加强和改进新形势下党史工作的意见》"] == "中共中央"
    )  # from the title
    assert issuers["《关于在全党开展党史学习教育的通知》"] == "党中央"  # from 党中央已经印发了
    sample = pd.read_parquet(samples_out / "entities")
    assert sample[sample["label"] != "DOCUMENT"]["issuer"].isna().all()


# ---------------------------------------------------------------------------------------------
# Blind set 3 (real text, issue 10), calibration, and the dev corpus


@pytest.mark.parametrize(
    "name, holds_recall",
    [
        ("relations_blind3", 0.70),  # floor under today's figure (1949 list of 政务委员 etc.)
        ("relations_blind4", 0.80),
        ("relations_blind5", 0.80),
    ],
)
def test_blind_set_targets(name: str, holds_recall: float) -> None:
    """Targets of issue 10 on the real-text sets (each was blind for its first run; README)."""
    report = evaluate_relations(GOLD / f"{name}_gold.jsonl", GOLD / f"{name}_docs.jsonl")
    labels = report["per_label"]
    assert labels["holds_position"]["precision"] >= 0.92, report["false_positives"]
    assert labels["holds_position"]["recall"] >= holds_recall, report["false_negatives"]
    predicted = right = 0
    for relation in ("chairs", "attends", "addresses"):
        label = labels.get(relation, {"predicted": 0, "precision": 0.0})
        predicted += label["predicted"]
        right += round(label["precision"] * label["predicted"])
    assert right >= 0.9 * predicted, report["false_positives"]


@pytest.mark.parametrize(
    "name, precision, recall",
    [
        # floors under today's figures (first runs: 0.651 / 0.227 and 0.667 / 0.391; README)
        ("relations_blind6", 0.80, 0.50),
        ("relations_blind7", 0.75, 0.50),
        ("relations_blind8", 0.74, 0.42),  # first run 0.594 / 0.338
    ],
)
def test_third_round_sets(name: str, precision: float, recall: float) -> None:
    report = evaluate_relations(GOLD / f"{name}_gold.jsonl", GOLD / f"{name}_docs.jsonl")
    assert report["micro_precision"] >= precision, report["false_positives"]
    assert report["micro_recall"] >= recall, report["false_negatives"]


def test_confidence_is_calibrated() -> None:
    """Rows at confidence >= 0.8 are >= 95% right on the gold sets (README: calibration)."""
    from pipeline.evaluate.relations import calibrate

    report = calibrate(
        GOLD,
        [
            "relations",
            "relations_heldout",
            "relations_blind2",
            "relations_blind3",
            "relations_blind4",
            "relations_blind5",
        ],
    )
    assert report["rows_at_0.8"] >= 300
    assert report["precision_at_0.8"] >= 0.95, report["rules"]


@pytest.fixture(scope="module")
def dev_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from .conftest import DEV

    if not DEV.is_dir():
        pytest.skip("dev corpus not available in ../shared/corpora/dev")
    from pipeline.run.runner import run_pipeline

    out = tmp_path_factory.mktemp("dev_out")
    run_pipeline([DEV], out)
    return out


def test_dev_no_state_or_military_post_on_the_party(dev_out: Path) -> None:
    rel = pd.read_parquet(dev_out / "relations")
    posts = rel[rel["relation"] == "holds_position"]
    assert len(posts) > 20
    state = posts["role"].str.contains("国家|军委|总理|国务委员|委员长", regex=True)
    assert posts[state & (posts["tail"] == "中共中央")].empty
    assert {"中华人民共和国", "中央军委"} <= set(posts[state]["tail"])


def test_dev_no_names_starting_with_year_particle_or_digit(dev_out: Path) -> None:
    rel = pd.read_parquet(dev_out / "relations")
    names = pd.concat([rel["tail"], rel.loc[rel["head_label"] == "ORG", "head"]])
    assert not names.str.match(r"^[年的在0-9０-９]").any()
    ents = pd.read_parquet(dev_out / "entities")
    meetings = ents[ents["label"] == "MEETING"]["text"]
    assert len(meetings) > 50 and not meetings.str.match(r"^[年的在0-9０-９]").any()


def test_dev_one_name_per_person(dev_out: Path) -> None:
    ents = pd.read_parquet(dev_out / "entities")
    people = ents[ents["label"] == "PERSON"]
    assert ents[ents["label"] != "PERSON"]["person"].isna().all()
    # Every mention written 毛主席 (the NER's span is 毛 or 毛主席, by backend) and every 毛泽东
    # is one person.
    docs = pd.read_parquet(dev_out / "documents")[["doc_id", "text"]]
    m = people.merge(docs, on="doc_id", suffixes=("", "_doc"))
    chairman = m[[t[s : s + 3] == "毛主席" for t, s in zip(m["text_doc"], m["start"], strict=True)]]
    assert len(chairman) > 100 and (chairman["person"] == "毛泽东").all()
    assert (people[people["text"] == "毛泽东"]["person"] == "毛泽东").all()
    mao = people[people["person"] == "毛泽东"]
    assert "毛泽东" in set(mao["text"]) and set(chairman["text"]) <= set(mao["text"])
    persons = pd.read_parquet(dev_out / "persons")
    row = persons[persons["person"] == "毛泽东"].iloc[0]
    assert {"毛泽东", *chairman["text"]} <= set(row["aliases"])
    assert row["n_mentions"] == len(mao)
    assert persons["person"].is_unique
    xi = persons[persons["person"] == "习近平"].iloc[0]
    assert "国家主席 @ 中华人民共和国" in set(xi["posts"])
