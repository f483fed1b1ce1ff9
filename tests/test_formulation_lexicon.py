"""Integrity tests for the curated formulation lexicon (pipeline/resources/formulations.yaml)."""

from __future__ import annotations

import csv
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from pipeline.extract.formulations import CATEGORIES as FORMULATION_CATEGORIES

REPO = Path(__file__).resolve().parents[1]
LEXICON_PATH = REPO / "pipeline/resources/formulations.yaml"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEV_CORPUS = SHARED / "corpora" / "dev"

# The one fixed category set, shared with the matcher that loads the lexicon.
CATEGORIES = set(FORMULATION_CATEGORIES)

REQUIRED_KEYS = {
    "id": str,
    "canonical": str,
    "variants": list,
    "category": str,
    "first_year": (int, type(None)),
    "gloss": str,
}

MUST_INCLUDE = [
    "两个确立",
    "两个维护",
    "四个意识",
    "四个自信",
    "六个必须坚持",
    "两个结合",
    "两个一百年",
    "十四五",
    "以史鉴今、资政育人",
    "五位一体",
    "四个全面",
    "三个代表",
    "科学发展观",
    "新发展理念",
    "新质生产力",
    "中国式现代化",
    "不忘初心、牢记使命",
    "习近平新时代中国特色社会主义思想",
    "习近平文化思想",
    "六稳",
    "六保",
    "两不愁三保障",
    "三区三州",
    "四个不摘",
    "三去一降一补",
    "八项规定",
    "四风",
    "打虎拍蝇猎狐",
    "党的二十大",
    "党的十九大",
    "党的十八大",
    "二十届二中全会",
    "二十届三中全会",
    "一带一路",
    "人类命运共同体",
    "共同富裕",
    "全过程人民民主",
    "总体国家安全观",
    "乡村振兴",
    "脱贫攻坚",
    "供给侧结构性改革",
    "新发展格局",
    "碳达峰碳中和",
    "改革开放",
    "一国两制",
    "四项基本原则",
    "一个中心两个基本点",
    "实事求是",
    "解放思想",
    "三个有利于",
    "社会主义初级阶段",
    "小康社会",
    "三步走",
    "和谐社会",
    "八荣八耻",
    "中国梦",
    "两学一做",
    "放管服",
    "大众创业万众创新",
    "绿水青山就是金山银山",
    "以人民为中心",
    "自我革命",
    "伟大建党精神",
    "三大攻坚战",
    "高质量发展",
    "百年未有之大变局",
    "三个务必",
    "两个务必",
    "百花齐放、百家争鸣",
    "三反五反",
    "大跃进",
    "人民公社",
]

# Variants that the brief requires to be recognised as forms of some entry.
MUST_MATCH_FORMS = {
    "十四五规划": "十四五",
    "第十四个五年规划": "十四五",
    "以史鉴今资政育人": "以史鉴今、资政育人",
    "不忘初心牢记使命": "不忘初心、牢记使命",
    "三个代表重要思想": "三个代表",
    "双循环": "新发展格局",
    "双碳": "碳达峰碳中和",
    "百花齐放百家争鸣": "百花齐放、百家争鸣",
}

ID_RE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
QUOTE_PAIRS = [
    ("“", "”"),
    ("‘", "’"),
    ('"', '"'),
    ("'", "'"),
    ("「", "」"),
    ("『", "』"),
    ("《", "》"),
]

# Year of each CPC national congress, by congress number.
CONGRESS_YEAR = {
    1: 1921,
    2: 1922,
    3: 1923,
    4: 1925,
    5: 1927,
    6: 1928,
    7: 1945,
    8: 1956,
    9: 1969,
    10: 1973,
    11: 1977,
    12: 1982,
    13: 1987,
    14: 1992,
    15: 1997,
    16: 2002,
    17: 2007,
    18: 2012,
    19: 2017,
    20: 2022,
}


@pytest.fixture(scope="module")
def entries() -> list[dict]:
    with LEXICON_PATH.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, list), "lexicon must be a YAML list"
    return data


def forms_of(entry: dict) -> list[str]:
    return [entry["canonical"], *entry["variants"]]


def test_entry_count(entries):
    assert len(entries) >= 300


def test_required_keys_and_types(entries):
    for entry in entries:
        assert isinstance(entry, dict), entry
        missing = set(REQUIRED_KEYS) - set(entry)
        assert not missing, f"{entry.get('id')}: missing {missing}"
        for key, typ in REQUIRED_KEYS.items():
            value = entry[key]
            assert isinstance(value, typ) and not isinstance(value, bool), (
                f"{entry['id']}: {key}={value!r} has wrong type"
            )
        assert all(isinstance(v, str) for v in entry["variants"]), entry["id"]
        gloss = entry["gloss"].strip()
        assert gloss and "\n" not in gloss, f"{entry['id']}: gloss must be one non-empty line"
        assert gloss.isascii(), f"{entry['id']}: gloss must be English"


def test_ids_unique_snake_case(entries):
    ids = [e["id"] for e in entries]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    for i in ids:
        assert i.isascii() and ID_RE.match(i), f"bad id {i!r}"


def test_categories_in_fixed_set(entries):
    for entry in entries:
        assert entry["category"] in CATEGORIES, f"{entry['id']}: {entry['category']!r}"


def test_no_form_shared_between_entries(entries):
    owner: dict[str, str] = {}
    clashes = []
    for entry in entries:
        for form in set(forms_of(entry)):
            if form in owner and owner[form] != entry["id"]:
                clashes.append((form, owner[form], entry["id"]))
            owner.setdefault(form, entry["id"])
    assert not clashes, clashes


def test_canonical_not_repeated_and_variants_unique(entries):
    for entry in entries:
        variants = entry["variants"]
        assert entry["canonical"] not in variants, entry["id"]
        assert len(variants) == len(set(variants)), entry["id"]


def test_forms_well_formed(entries):
    for entry in entries:
        for form in forms_of(entry):
            assert isinstance(form, str) and form, entry["id"]
            assert form == form.strip(), f"{entry['id']}: {form!r} has surrounding whitespace"
            assert " " not in form, f"{entry['id']}: {form!r} contains an ASCII space"
            assert len(form) >= 2, f"{entry['id']}: {form!r} is too short"
            for left, right in QUOTE_PAIRS:
                assert not (form.startswith(left) and form.endswith(right)), (
                    f"{entry['id']}: {form!r} is quote-wrapped"
                )


def test_first_year_range(entries):
    for entry in entries:
        year = entry["first_year"]
        assert year is None or 1921 <= year <= 2026, f"{entry['id']}: {year}"


def test_must_include_canonicals(entries):
    canonicals = {e["canonical"] for e in entries}
    missing = [c for c in MUST_INCLUDE if c not in canonicals]
    assert not missing, missing


def test_required_variants_attached(entries):
    by_form = {f: e["canonical"] for e in entries for f in forms_of(e)}
    for form, canonical in MUST_MATCH_FORMS.items():
        assert by_form.get(form) == canonical, f"{form!r} should be a form of {canonical!r}"


def test_meetings_present(entries):
    meetings = {e["canonical"] for e in entries if e["category"] == "meetings_and_plans"}
    for c in (
        "党的二十大",
        "党的十九大",
        "党的十八大",
        "二十届二中全会",
        "二十届三中全会",
        "十四五",
    ):
        assert c in meetings, c


# ---------------------------------------------------------------------------
# first_year calibration against the development corpus
# ---------------------------------------------------------------------------

_FULLWIDTH_DIGITS = str.maketrans({chr(0xFF10 + i): str(i) for i in range(10)})


def _load_dev_docs() -> list[tuple[int, str, str]]:
    opencc = pytest.importorskip("opencc")
    converter = opencc.OpenCC("t2s")

    def norm(text: str) -> str:
        return converter.convert(text).translate(_FULLWIDTH_DIGITS)

    docs: list[tuple[int, str, str]] = []
    reports = DEV_CORPUS / "cpc_congress_reports.jsonl"
    if reports.exists():
        with reports.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                rec = json.loads(line)
                year = CONGRESS_YEAR[int(rec["congress"])]
                text = norm(f"{rec.get('title', '')}\n{rec.get('content', '')}")
                docs.append(
                    (year, f"congress {rec['congress']}: {rec.get('title', '')[:30]}", text)
                )
    speeches = DEV_CORPUS / "xi_speeches_2020.csv"
    if speeches.exists():
        csv.field_size_limit(sys.maxsize)
        with speeches.open(encoding="utf-8", newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                date = (row.get("Date") or "").strip()
                if not date[:4].isdigit():
                    continue
                docs.append((int(date[:4]), f"xi speech {date} #{i}", norm(row.get("Text") or "")))
    return docs


@pytest.mark.skipif(not DEV_CORPUS.is_dir(), reason="shared dev corpus not available")
def test_first_year_not_contradicted_by_dev_corpus(entries):
    docs = _load_dev_docs()
    if not docs:
        pytest.skip("dev corpus is empty")
    by_year: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for year, label, text in docs:
        by_year[year].append((label, text))
    violations = []
    for entry in entries:
        first_year = entry["first_year"]
        if first_year is None:
            continue
        for year, items in by_year.items():
            if year >= first_year:
                continue
            for label, text in items:
                for form in forms_of(entry):
                    if form in text:
                        violations.append(
                            f"{entry['id']} (first_year={first_year}): {form!r} in {label} ({year})"
                        )
    assert not violations, "\n".join(violations)
