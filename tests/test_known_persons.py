"""Issue 26: honest held-out splits, People's Daily as gold, known persons and name boundaries.

The name cases run the whole pipeline with the shipped model (no stand-ins): a known name is
never split or extended, a run of known names is cut into its persons, a conjunction or
preposition opens or closes no name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.core.resources import RESOURCES, read_lines
from pipeline.evaluate.ner import evaluate_ner, read_gold
from pipeline.nlp.build import annotate, get_nlp
from pipeline.nlp.corpora import (
    INTERLEAVED_DEV,
    _peoples_daily_line,
    count_sentences,
    held_out_blocks,
    read_tagged,
    select_split,
    split_of,
)
from pipeline.nlp.known_persons import closed_edges, forced_persons, known_person_names
from pipeline.nlp.train import load_training_config, read_msra_train

from .conftest import NER


@pytest.fixture(scope="module")
def nlp():
    return get_nlp()


def _persons(nlp, text: str) -> list[str]:
    (doc,) = annotate(nlp, [text])
    return [e.text for e in doc.ents if e.label_ == "PERSON"]


# -- known persons and boundaries, through the whole pipeline ----------------------------------

PSC_RUN = "赵乐际王沪宁蔡奇丁薛祥李希韩正出席"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # headline runs of names without separators are cut into their persons
        (PSC_RUN, ["赵乐际", "王沪宁", "蔡奇", "丁薛祥", "李希", "韩正"]),
        ("习近平李强赵乐际王沪宁蔡奇丁薛祥李希等出席大会。",
         ["习近平", "李强", "赵乐际", "王沪宁", "蔡奇", "丁薛祥", "李希"]),
        ("江泽民李鹏乔石朱镕基李瑞环刘华清胡锦涛出席。",
         ["江泽民", "李鹏", "乔石", "朱镕基", "李瑞环", "刘华清", "胡锦涛"]),
        # a name before a one-character word is not cut
        ("刘国中出席会议。", ["刘国中"]),
        ("王伟中在会上讲话。", ["王伟中"]),
        ("常委、书记处书记尉健行作了重要讲话。", ["尉健行"]),
        # a conjunction or preposition between two titled names belongs to neither
        ("习近平主席和普京总统举行会谈。", ["习近平", "普京"]),
        ("李希同王毅会见了客人。", ["李希", "王毅"]),
        ("国务院总理李强在北京会见外宾。", ["李强"]),
    ],
)  # fmt: skip
def test_known_names_hold(nlp, text: str, expected: list[str]) -> None:
    assert _persons(nlp, text) == expected


@pytest.mark.parametrize(
    ("text", "absent"),
    [
        # a known name that is an ordinary word, with no evidence of a person, is no person
        ("这一习惯势力的汪洋大海会给解放思想带来阻力。", "汪洋"),
        ("汪洋中的小木屋。", "汪洋"),
        # a surname that is also a function word stays a surname where no conjunction can be
        ("农民尽快富起来，和万春还帮助农民架桥。", "万春"),
    ],
)
def test_no_person_is_made_of_ordinary_words(nlp, text: str, absent: str) -> None:
    assert absent not in _persons(nlp, text)


def test_no_current_psc_member_is_split_or_extended_in_runs(nlp) -> None:
    """Every order of the 20th PSC in one unseparated run gives exactly the seven names."""
    psc = ["习近平", "李强", "赵乐际", "王沪宁", "蔡奇", "丁薛祥", "李希"]
    for shift in range(len(psc)):
        names = psc[shift:] + psc[:shift]
        assert _persons(nlp, "".join(names) + "出席会议。") == names


def test_known_persons_file_is_sourced() -> None:
    path_lines = read_lines("known_persons.tsv")
    text = (RESOURCES / "known_persons.tsv").read_text("utf-8")
    header = [ln for ln in text.splitlines() if ln.startswith("#")]
    declared = {m.group(1) for ln in header if (m := re.match(r"#\s+(S\d+)\s", ln))}
    names = []
    for line in path_lines:
        name, _aliases, _what, sources = line.split("\t")
        assert set(sources.split(",")) <= declared, line
        assert re.fullmatch(r"[\u4e00-\u9fff]{2,4}", name), name
        names.append(name)
    assert len(names) == len(set(names)) >= 190
    assert {"习近平", "李强", "赵乐际", "王沪宁", "蔡奇", "丁薛祥", "李希"} <= set(names)
    # Two-character names are matched written with a table's padding space too.
    assert known_person_names()["蔡 奇"] == "蔡奇"


def test_forced_persons_and_closed_edges_read_lac() -> None:
    words = [("赵乐际", "PER"), ("王沪宁", "PER"), ("蔡奇丁", "PER"), ("薛祥", "PER")]
    sentence = "".join(w for w, _ in words)
    forced = forced_persons(sentence, words, [])
    assert [sentence[s:e] for s, e in forced] == ["赵乐际", "王沪宁", "蔡奇", "丁薛祥"]
    # A sure longer name the model found is not cut to the known name inside it.
    words = [("陈希", "PER"), ("同", "p"), ("问题", "n")]
    assert forced_persons("陈希同问题", words, [(0, 3, "PERSON")], sure=[(0, 3)]) == []
    # 和 between two names is closed; at the start of a sentence or after 、 it is not.
    words = [("习近平", "PER"), ("主席", "n"), ("和", "c"), ("普京", "PER"), ("总统", "n")]
    assert closed_edges("习近平主席和普京总统", words) == {5}
    assert closed_edges("、和志强", [("、", "w"), ("和", "c"), ("志强", "n")]) == set()


# -- splits and gold readers -------------------------------------------------------------------


def test_held_out_blocks_are_contiguous_and_never_trained_on(tmp_path: Path) -> None:
    gold = tmp_path / "g.bio"
    # 40 one-character sentences: 0..39, so a sentence's text is its index.
    gold.write_text("".join(f"{i % 10} O\n\n" for i in range(40)), "utf-8")
    blocks = held_out_blocks(load_training_config())
    n = count_sentences(gold)
    assert n == 40
    split = [split_of(i, n, blocks) for i in range(n)]
    # whole blocks: each split is one run of consecutive sentences
    for name in ("dev", "test"):
        where = [i for i, s in enumerate(split) if s == name]
        assert where and where == list(range(where[0], where[-1] + 1))
    assert split[-1] == "dev" and split.count("train") == 32
    trained = list(read_msra_train(gold, {"PER": "PERSON"}, blocks))
    assert len(trained) == 32
    held = {name: list(select_split(read_tagged(gold), name, n, blocks)) for name in blocks}
    assert sum(map(len, held.values())) == 8
    assert len(list(select_split(read_tagged(gold), INTERLEAVED_DEV, n, blocks))) == 4


def test_peoples_daily_reader_names_compounds_and_runs() -> None:
    line = (
        "中共中央/nt 总书记/n 江/nr 泽民/nr 、/w 李/nr 鹏/nr 乔/nr 石/nr 欧阳/nr 中石/nr "
        "会见/v [中央/n 人民/n 广播/vn 电台/n]nt 和/c [中国/ns 国际/n 广播/vn 电台/n]nt "
        "的/u 克林顿/nr 在/p 北京/ns"
    )
    text, spans = _peoples_daily_line(line.split())
    assert text.startswith("中共中央总书记江泽民、李鹏乔石")
    assert sorted((text[s:e], lab) for s, e, lab in spans) == [
        ("中共中央", "nt"),
        ("中国国际广播电台", "nt"),  # the compound, not 中国/ns inside it
        ("中央人民广播电台", "nt"),
        ("乔石", "nr"),
        ("克林顿", "nr"),
        ("北京", "ns"),
        ("李鹏", "nr"),
        ("欧阳中石", "nr"),
        ("江泽民", "nr"),
    ]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("peoples_daily_199801.pos.txt", "peoples-daily"), ("cluener_train.json", "cluener")],
)
def test_evaluate_reads_the_other_corpora(name: str, fmt: str) -> None:
    path = NER / name
    if not path.exists():
        pytest.skip(f"{name} not available")
    report = evaluate_ner(path, fmt, limit=200)
    assert report["n_sentences"] == 200
    person = report["per_label"]["PERSON"]
    assert person["support"] > 30
    assert person["precision"] > 0.6 and person["recall"] > 0.5


def test_msra_blocks_hold_whole_articles_apart() -> None:
    msra = NER / "msra_train.bio"
    if not msra.exists():
        pytest.skip("MSRA training file not available")
    sizes = {s: sum(1 for _ in read_gold(msra, "bio", s)) for s in ("dev", "test", "train")}
    assert sizes == {"dev": 5029, "test": 5029, "train": 40231}


def test_person_precision_holds_on_the_msra_dev_block(nlp) -> None:
    """Held-out check: with the name constraints, PERSON precision on the first 1,500
    sentences of the MSRA dev block (never trained on by `tifa train ner`) stays high."""
    msra = NER / "msra_train.bio"
    if not msra.exists():
        pytest.skip("MSRA training file not available")
    report = evaluate_ner(msra, "bio", split="dev", limit=1500)
    assert report["per_label"]["PERSON"]["precision"] >= 0.95
