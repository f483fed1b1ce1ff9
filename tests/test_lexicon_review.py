"""Issue 28: matching analysts expect, lexicon provenance and validation, discovery beyond
numbers, the review loop (tifa lexicon accept/reject + back-fill) and formulation_usage.

Real runs over the bundled samples (data/raw, ~3 s) and real resources; no mocks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from pipeline.analyst.lexicon_review import candidates
from pipeline.cli import app
from pipeline.extract.discovery import burst_terms, calibrated_score
from pipeline.extract.formulations import CandidateFinder, FormulationMatcher, get_matcher
from pipeline.extract.lexicon import (
    LEXICON_PATH,
    Formulation,
    LexiconError,
    UserLexicon,
    load_lexicon,
    load_user_lexicon,
    merge_lexicons,
    user_lexicon_path,
)
from pipeline.run.runner import run_pipeline
from tests.conftest import SAMPLES

# A document of the samples with 五水共治 (quoted), which the packaged lexicon lacks.
ACCEPTED = "五水共治"


def _entry(**kw: object) -> Formulation:
    base = dict(id="x", canonical="x", variants=(), category="economy", first_year=None, gloss="")
    return Formulation(**{**base, **kw})  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Matching


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # quoted and unquoted, full- and half-width quotes, quotes and spaces inside
        ("深刻领悟“两个确立”的决定性意义", [("两个确立", "两个确立", True)]),
        ("深刻领悟两个确立的决定性意义", [("两个确立", "两个确立", False)]),
        ('深刻领悟"两个确立"的决定性意义', [("两个确立", "两个确立", True)]),
        ('深刻领悟两个"确立"的决定性意义', [('两个"确立"', "两个确立", True)]),
        ("深刻领悟两个“确立”的决定性意义", [("两个“确立”", "两个确立", True)]),
        ("深刻领悟两个 确立的决定性意义", [("两个 确立", "两个确立", False)]),
        ("深刻领悟两个　确立的决定性意义", [("两个　确立", "两个确立", False)]),
        ("增强「四个意识」", [("四个意识", "四个意识", True)]),
        # enumerated forms: each one its own mention
        (
            "增强“四个意识”“四个自信”",
            [("四个意识", "四个意识", True), ("四个自信", "四个自信", True)],
        ),
        (
            "增强“四个意识”、坚定“四个自信”、做到“两个维护”",
            [
                ("四个意识", "四个意识", True),
                ("四个自信", "四个自信", True),
                ("两个维护", "两个维护", True),
            ],
        ),
        # a quotation that opens inside the would-be match and closes past it is another phrase
        ("坚持新发展“理念创新”", []),
        # one that wraps its head is the formulation (“十四五”规划, “新发展”理念)
        ("坚持“新发展”理念", [("“新发展”理念", "新发展理念", True)]),
        # a formulation inside a longer one: counted once, at the longer one
        (
            "坚持习近平新时代中国特色社会主义思想",
            [("习近平新时代中国特色社会主义思想", "习近平新时代中国特色社会主义思想", False)],
        ),
    ],
)
def test_matching_table(text: str, expected: list[tuple[str, str, bool]]) -> None:
    found = get_matcher().find(text, year=2024)
    assert [(m.text, m.formulation.canonical, m.quoted) for m in found] == expected
    for m in found:
        assert text[m.start : m.end] == m.text


def test_nested_mention_counts_once_with_its_parent() -> None:
    (m,) = get_matcher().find("坚持习近平新时代中国特色社会主义思想", year=2024)
    assert m.parent is not None and m.parent.canonical == "新时代中国特色社会主义"
    nested = get_matcher(nested=True).find("坚持习近平新时代中国特色社会主义思想", year=2024)
    assert [x.nested for x in nested].count(False) == 1


def test_enumerated_numeric_newcomers_once_in_the_lexicon() -> None:
    matcher = FormulationMatcher(
        [_entry(id="liang_zhong", canonical="两重"), _entry(id="liang_xin", canonical="两新")]
    )
    found = matcher.find("加力推进“两重”“两新”建设")
    assert [(m.text, m.quoted) for m in found] == [("两重", True), ("两新", True)]
    assert [m.text for m in matcher.find("统筹“两重”建设和“两新”工作")] == ["两重", "两新"]


@pytest.mark.parametrize(
    "text", ["开展“人工智能+”行动", "开展“人工智能＋”行动", "开展人工智能 + 行动", "人工智能+"]
)
def test_full_and_half_width_plus(text: str) -> None:
    matcher = FormulationMatcher([_entry(id="ai_plus", canonical="人工智能+")])
    (m,) = matcher.find(text)
    assert m.formulation.id == "ai_plus" and text[m.start : m.end] == m.text


# --------------------------------------------------------------------------------------------
# Lexicon fields and validation


def _write_lexicon(tmp_path: Path, entries: list[dict]) -> Path:
    path = tmp_path / "lex.yaml"
    path.write_text(yaml.safe_dump(entries, allow_unicode=True), encoding="utf-8")
    return path


GOOD = {
    "id": "low_altitude_economy",
    "canonical": "低空经济",
    "variants": [],
    "category": "economy",
    "first_year": 2023,
    "gloss": "The low-altitude economy.",
    "components": [],
    "introduced_in": "2024年政府工作报告 (2024-03-05)",
    "source": "https://www.gov.cn/yaowen/liebiao/202403/content_6939153.htm",
}


def test_provenance_fields_load(tmp_path: Path) -> None:
    two = {
        **GOOD,
        "id": "liangge_queli_x",
        "canonical": "两个确立X",
        "components": [
            "确立习近平同志党中央的核心、全党的核心地位",
            "确立习近平新时代中国特色社会主义思想的指导地位",
        ],
    }
    (a, b) = load_lexicon(_write_lexicon(tmp_path, [GOOD, two]))
    assert a.introduced_in.startswith("2024年政府工作报告") and a.source.startswith("https://")
    assert len(b.components) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"abbreviation": ["低空"]}, "unknown field 'abbreviation'"),
        ({"components": "a, b"}, "'components' must be a list of strings"),
        ({"components": ["ok", ""]}, "'components' must be a list of non-empty strings"),
        ({"source": 12}, "'source' must be a string"),
        ({"introduced_in": ["a"]}, "'introduced_in' must be a string"),
        ({"first_year": "2024"}, "'first_year' must be a year"),
        ({"first_year": 24}, "first_year 24 is not a year"),
        ({"category": "tech"}, "has category 'tech'"),
        ({"id": "Low Altitude"}, "ascii snake_case"),
        ({"canonical": ""}, "needs 'canonical'"),
        ({"variants": ["“低空经济”"]}, "without its quotes"),
        ({"variants": ["低空经济"]}, "is also a variant"),
    ],
)
def test_a_bad_entry_is_one_clear_error(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(LexiconError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_lexicon(_write_lexicon(tmp_path, [{**GOOD, **change}]))


def test_a_form_of_two_entries_names_both(tmp_path: Path) -> None:
    other = {**GOOD, "id": "other", "canonical": "低空飞行", "variants": ["低空经济"]}
    with pytest.raises(LexiconError, match="'low_altitude_economy' and 'other'"):
        load_lexicon(_write_lexicon(tmp_path, [GOOD, other]))


def test_packaged_lexicon_loads_with_the_new_loader() -> None:
    assert len(load_lexicon(LEXICON_PATH)) >= 479


# --------------------------------------------------------------------------------------------
# User lexicon: merge, upgrade, conflicts


def test_merge_reports_conflicts_and_prefers_the_packaged_entry() -> None:
    packaged = [_entry(id="sannong", canonical="三农问题", variants=("农业农村农民问题",))]
    user = UserLexicon(
        (
            _entry(id="user_a", canonical="三农问题", origin="user"),
            _entry(id="sannong", canonical="三农", variants=("农业农村农民问题",), origin="user"),
        )
    )
    merged, notes = merge_lexicons(packaged, user)
    assert [(f.id, f.canonical, f.variants) for f in merged] == [
        ("sannong", "三农问题", ("农业农村农民问题",)),
        ("sannong_user", "三农", ()),
    ]
    assert any("'三农问题' is now in the packaged lexicon as 'sannong'" in n for n in notes)
    assert any("variant '农业农村农民问题'" in n for n in notes)
    assert any("id 'sannong' is a packaged id" in n for n in notes)


# --------------------------------------------------------------------------------------------
# The review loop, end to end


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("review") / "out"
    run_pipeline([SAMPLES], out)
    return out


def _tifa(*argv: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(argv), prog_name="tifa")
    return result.exit_code, result.output


def test_accept_then_backfill_finds_mentions_in_formulations_and_report(night: Path) -> None:
    forms = pd.read_parquet(night / "formulations")
    assert ACCEPTED not in set(forms.canonical)
    code, text = _tifa("lexicon", "candidates", "--out", str(night), "-n", "50")
    assert code == 0 and ACCEPTED in text
    code, text = _tifa("lexicon", "accept", ACCEPTED, "--out", str(night), "--category", "economy")
    assert code == 0, text
    entry = load_user_lexicon(user_lexicon_path(night)).entries[0]
    assert entry.canonical == ACCEPTED and entry.category == "economy"
    assert "candidate rank" in entry.source  # provenance: where the term came from
    n_docs = len(pd.read_parquet(night / "documents"))
    code, text = _tifa("run", "--force", "--only", "formulations", "--out", str(night))
    assert code == 0, text
    assert f"{ACCEPTED} +1" in text
    forms = pd.read_parquet(night / "formulations")
    rows = forms[forms.canonical == ACCEPTED]
    assert len(rows) == 1 and rows.formulation_id.iloc[0] == entry.id and rows.quoted.iloc[0]
    docs = pd.read_parquet(night / "documents").set_index("doc_id")
    r = rows.iloc[0]
    assert docs.loc[r.doc_id, "text"][r.start : r.end] == ACCEPTED
    assert len(docs) == n_docs  # nothing else rewritten, nothing analysed again
    usage = pd.read_parquet(night / "formulation_usage")
    assert set(usage[usage.canonical == ACCEPTED].governor) == {"持续打好"}
    report = max((night / "reports").glob("2*.html"), key=lambda p: p.stat().st_mtime)
    html = report.read_text(encoding="utf-8")
    assert "Accepted by analysts" in html and f"<b>{ACCEPTED}</b>" in html
    # no longer a candidate; a later nightly run keeps matching it
    cands = pd.read_parquet(night / "formulation_candidates")
    assert ACCEPTED not in set(cands.text)
    code, text = _tifa("lexicon", "accept", ACCEPTED, "--out", str(night))
    assert code == 2 and "already in your user lexicon" in text


def test_reject_keeps_a_term_out_of_the_candidates(night: Path) -> None:
    cands = pd.read_parquet(night / "formulation_candidates")
    term = next(t for t in cands.text if t != ACCEPTED)
    code, text = _tifa("lexicon", "reject", term, "--out", str(night))
    assert code == 0, text
    assert term in load_user_lexicon(user_lexicon_path(night)).rejected
    assert term not in {c["text"] for c in candidates(night, 100)}
    _tifa("lexicon", "apply", "--out", str(night), "--no-report")
    assert term not in set(pd.read_parquet(night / "formulation_candidates").text)


def test_user_lexicon_survives_a_packaged_lexicon_upgrade(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_pipeline([SAMPLES], out)
    assert _tifa("lexicon", "accept", ACCEPTED, "--out", str(out))[0] == 0
    user_file = user_lexicon_path(out)
    before = user_file.read_text(encoding="utf-8")
    # The packaged lexicon of a later release has the term, with provenance.
    upgraded = tmp_path / "formulations.yaml"
    shutil.copy(LEXICON_PATH, upgraded)
    with upgraded.open("a", encoding="utf-8") as fh:
        fh.write(
            '\n- id: wushui_gongzhi\n  canonical: "五水共治"\n  variants: []\n'
            "  category: governance\n  first_year: 2013\n"
            '  gloss: "Zhejiang\'s five waters treated together."\n'
            '  introduced_in: "浙江省委十三届四次全会 (2013-11)"\n  source: "zj.gov.cn"\n'
        )
    code, text = _tifa(
        "run", "--force", "--only", "formulations", "--out", str(out), "--lexicon", str(upgraded)
    )
    assert code == 0, text
    assert "'五水共治' is now in the packaged lexicon as 'wushui_gongzhi'" in text
    assert user_file.read_text(encoding="utf-8") == before  # the analyst's file is untouched
    forms = pd.read_parquet(out / "formulations")
    assert set(forms[forms.canonical == ACCEPTED].formulation_id) == {"wushui_gongzhi"}


def test_a_broken_user_lexicon_is_one_clear_error(tmp_path: Path) -> None:
    out = tmp_path / "out"
    user_lexicon_path(out).parent.mkdir(parents=True)
    user_lexicon_path(out).write_text("formulations:\n- id: a\n  canonical: 甲\n", encoding="utf-8")
    code, text = _tifa("run", str(SAMPLES), "--out", str(out), "-q")
    assert code == 2
    assert "user_formulations.yaml: entry 'a' needs 'category'" in " ".join(text.split())


# --------------------------------------------------------------------------------------------
# formulation_usage


def test_usage_rows_name_the_governing_verb(night: Path) -> None:
    usage = pd.read_parquet(night / "formulation_usage")
    got = set(zip(usage.canonical, usage.governor, strict=True))
    assert {("两个确立", "深刻领悟"), ("两个维护", "坚决做到"), ("党的二十大", "全面贯彻")} <= got
    row = usage[usage.governor == "深刻领悟"].iloc[0]
    assert (row.verb, row.modifier) == ("领悟", "深刻")
    docs = pd.read_parquet(night / "documents").set_index("doc_id")
    for r in usage.itertuples():
        text = docs.loc[r.doc_id, "text"]
        assert text[r.gov_start : r.gov_end] == r.governor and text[r.start : r.end] == r.text
        assert r.gov_end <= r.start


def governed_mentions(out: Path) -> tuple[list[tuple[str, int]], set[tuple[str, int]]]:
    """The measure of coverage: a mention has a governing verb when the word right before it
    in its clause (quotes skipped), as LAC tags the clause before it, is a verb (v, vd, vn) and
    no copula (是, 为, 有). Returns those mentions and the mentions with a usage row."""
    from pipeline.nlp.lac_runner import get_runner

    forms = pd.read_parquet(out / "formulations")
    forms = forms[~forms.nested]
    usage = pd.read_parquet(out / "formulation_usage")
    have = set(zip(usage.doc_id, usage.start, strict=True))
    docs = pd.read_parquet(out / "documents", columns=["doc_id", "text"]).set_index("doc_id")
    prefixes = []
    for r in forms.itertuples():
        left = docs.loc[r.doc_id, "text"][max(0, r.start - 20) : r.start]
        for p in "，。；：！？、\n":
            left = left.rsplit(p, 1)[-1]
        prefixes.append(left or "。")
    governed = []
    for r, words in zip(forms.itertuples(), get_runner().run(prefixes), strict=True):
        words = [w for w in words if w[1] != "w" and w[0].strip("“”‘’\"' 　")]
        if words and words[-1][1] in ("v", "vd", "vn") and words[-1][0] not in ("是", "为", "有"):
            governed.append((r.doc_id, r.start))
    return governed, have


def test_usage_covers_mentions_with_a_governing_verb(night: Path) -> None:
    governed, have = governed_mentions(night)
    assert len(governed) >= 20
    share = sum(k in have for k in governed) / len(governed)
    assert share >= 0.9, share


# --------------------------------------------------------------------------------------------
# Discovery


@pytest.mark.parametrize(
    "text",
    [
        "一伙千方百计破坏的敌人",
        "把敌人打到九霄云外去",
        "减少二氧化碳排放",
        "你们青年人好像早晨八九点钟的太阳",
        "“八九点钟的太阳”",
        "这是“千方百计”的结果",
    ],
)
def test_noise_falls_out(text: str) -> None:
    every = set(range(len(text) + 1))
    found = CandidateFinder().find(text, every, every)
    assert not found, found


@pytest.mark.parametrize(
    ("text", "term", "pattern"),
    [
        ("大力发展“低空经济”等新兴产业", "低空经济", "quoted_term"),
        ("坚持“投资于人”", "投资于人", "quoted_term"),
        ("开展“人工智能+”行动", "人工智能+", "quoted_term"),
        ("加力推进“两重”建设", "两重", "quoted_numeral"),
    ],
)
def test_quoted_candidates_beyond_numbers(text: str, term: str, pattern: str) -> None:
    every = set(range(len(text) + 1))
    found = CandidateFinder().find(text, every, every)
    assert [(c.text, c.pattern) for c in found] == [(term, pattern)]


def test_burst_terms_against_the_archive() -> None:
    archive = [
        "坚持稳中求进工作总基调，推动经济高质量发展，扩大国内需求。",
        "推动经济高质量发展，深化改革开放，保障和改善民生。",
    ] * 15
    tonight = list(
        enumerate(
            [
                "大力发展低空经济，培育银发经济。推动经济高质量发展。",
                "推动低空经济健康发展，发展银发经济。推动经济高质量发展。",
                "积极打造“低空经济”新高地，壮大银发经济。",
                "低空经济、银发经济成为新的增长点，推动经济高质量发展。",
            ]
        )
    )
    tonight = [(f"d{i}", t) for i, t in tonight]
    found = {b.text: b for b in burst_terms(tonight, archive, len(archive))}
    assert {"低空经济", "银发经济"} <= set(found)
    assert "经济高质量发展" not in found and "质量发展" not in found  # in the archive too
    assert "展低空经济" not in found and "空经济" not in found  # fragments
    b = found["低空经济"]
    assert (b.n_docs, b.archive_docs) == (4, 0) and "低空经济" in b.example_sentence
    assert burst_terms(tonight, [], 0) == []  # no archive: nothing to compare with


def test_calibrated_score_orders_the_evidence() -> None:
    strong = calibrated_score("quoted_numeral", 10, 30, 0.8, None)
    weak = calibrated_score("numeral_measure", 1, 1, 0.0, None)
    burst = calibrated_score("burst", 8, 20, 0.0, 30.0)
    assert 0 < weak < burst < strong < 1


def test_a_second_night_ranks_what_is_new_against_the_archive(tmp_path: Path) -> None:
    """Night 1: the samples. Night 2: a short work report with newcomers; its candidates carry
    their rate against the archive, and the numeric newcomers lead. (A two-entry lexicon, so
    that the newcomers stay candidates whatever the packaged lexicon has learnt since.)"""
    out = tmp_path / "out"
    lexicon = _write_lexicon(tmp_path, [GOOD | {"id": "cm", "canonical": "中国式现代化"}])
    run_pipeline([SAMPLES], out, lexicon=str(lexicon))
    night2 = tmp_path / "night2"
    night2.mkdir()
    (night2 / "report_2026.txt").write_text(
        "2026年县政府工作报告\n"
        "坚持把“三农”工作作为重中之重。加力推进“两重”建设，扎实推进“两新”工作，"
        "大力发展“低空经济”，培育“银发经济”，实施“人工智能+”行动。\n",
        encoding="utf-8",
    )
    run_pipeline([night2], out, lexicon=str(lexicon))
    cands = pd.read_parquet(out / "formulation_candidates").set_index("text")
    for term in ("两重", "两新", "低空经济", "银发经济", "人工智能+"):
        assert cands.loc[term, "archive_docs"] == 0, term
        assert cands.loc[term, "burst"] > 1, term
    assert cands.loc["三农", "archive_docs"] >= 1  # the samples had it
    assert max(cands.loc["两重", "rank"], cands.loc["两新", "rank"]) <= 5
    assert cands.loc["低空经济", "pattern"] == "quoted_term"
    assert "低空经济" in cands.loc["低空经济", "example_sentence"]


def test_a_killed_backfill_is_finished_by_running_it_again(tmp_path: Path) -> None:
    """SIGKILL between a part's usage and formulations files (the third part), then the same
    command again: the tables equal those of a back-fill never interrupted."""
    import os
    import subprocess
    import sys

    from tests.table_hashes import compare, table_digests

    base = tmp_path / "base"
    run_pipeline([SAMPLES], base, batch_size=1)
    assert len(list((base / "documents").glob("part-*.parquet"))) >= 4
    assert _tifa("lexicon", "accept", ACCEPTED, "--out", str(base))[0] == 0
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    shutil.copytree(base, clean)
    shutil.copytree(base, killed)
    cmd = [sys.executable, "-m", "pipeline", "run", "--force", "--only", "formulations"]
    env = {**os.environ, "TIFA_CRASH_AT": "backfill.usage_written:3"}
    done = subprocess.run(
        [*cmd, "--out", str(killed)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == -9, done.stderr[-400:]
    assert _tifa("run", "--force", "--only", "formulations", "--out", str(clean))[0] == 0
    code, text = _tifa("run", "--force", "--only", "formulations", "--out", str(killed))
    assert code == 0, text
    tables = ("formulations", "formulation_usage", "formulation_counts", "formulation_candidates")
    a, b = table_digests(clean), table_digests(killed)
    assert compare({t: a[t] for t in tables}, {t: b[t] for t in tables}) == []
    forms = pd.read_parquet(killed / "formulations")
    assert ACCEPTED in set(forms.canonical)


def test_a_known_formulation_with_its_verb_is_no_candidate() -> None:
    from pipeline.extract.discovery import usage_of_known

    known = ["共同富裕", "乡村振兴"]
    assert usage_of_known("扎实推动共同富裕", known)
    assert not usage_of_known("乡村全面振兴", known)
    assert not usage_of_known("共同富裕示范区", known)
