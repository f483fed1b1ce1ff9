"""Formulation matching (every lexicon form, exact offsets, corpus counts) and discovery."""

from __future__ import annotations

import functools
from collections import defaultdict

import pytest

from pipeline.extract.formulations import (
    FormulationMatcher,
    get_candidate_finder,
    load_lexicon,
    squeeze,
)
from pipeline.nlp.build import get_nlp
from pipeline.normalise import normalise_text

from .conftest import dev_documents

LEXICON = load_lexicon()
MATCHER = FormulationMatcher(LEXICON)
NESTED = FormulationMatcher(LEXICON, nested=True)
CASES = [(entry.id, form) for entry in LEXICON for form in entry.forms]


@pytest.mark.parametrize("entry_id, form", CASES)
def test_every_form_maps_to_its_entry_with_exact_offsets(entry_id: str, form: str) -> None:
    prefix = "会议强调，要深刻把握"
    text = f"{prefix}{form}的丰富内涵。"
    mentions = [m for m in MATCHER.find(text) if m.formulation.id == entry_id]
    assert len(mentions) == 1, [(m.text, m.formulation.id) for m in MATCHER.find(text)]
    m = mentions[0]
    assert (m.start, m.end) == (len(prefix), len(prefix) + len(form))
    assert text[m.start : m.end] == form
    assert m.match_kind == ("canonical" if form == m.formulation.canonical else "variant")
    quoted = MATCHER.find(f"坚持“{form}”")
    assert any(q.formulation.id == entry_id and q.quoted for q in quoted)


def test_longest_match_wins_and_nested_is_optional() -> None:
    text = "用习近平新时代中国特色社会主义思想凝心铸魂"
    flat = [m.canonical for m in (x.formulation for x in MATCHER.find(text))]
    assert flat == ["习近平新时代中国特色社会主义思想"]
    nested = NESTED.find(text)
    assert [m.nested for m in nested].count(False) == 1
    assert any(m.nested and m.formulation.canonical == "中国特色社会主义" for m in nested)


def test_anachronistic_mentions_are_dropped() -> None:
    entry = next(e for e in LEXICON if e.canonical == "两个确立")
    text = "深刻领悟“两个确立”的决定性意义"
    assert [m.formulation.id for m in MATCHER.find(text, year=2022)] == [entry.id]
    assert MATCHER.find(text, year=entry.first_year - 1) == []


@functools.cache
def _normalised_dev() -> list[tuple[str, int, str]]:
    return [(doc_id, year, normalise_text(raw)) for doc_id, year, raw in dev_documents()]


def _string_occurrences(text: str, forms: tuple[str, ...]) -> int:
    """Occurrences of an entry in `text`: every position where one of its forms starts,
    overlapping forms of the same entry counted once."""
    spans = []
    for form in forms:
        start = text.find(form)
        while start != -1:
            spans.append((start, start + len(form)))
            start = text.find(form, start + 1)
    spans.sort(key=lambda s: (s[0], -s[1]))
    count, last_end = 0, -1
    for start, end in spans:
        if start >= last_end:
            count += 1
            last_end = end
    return count


def test_corpus_counts_lie_between_exact_and_quote_blind_string_counts() -> None:
    """Every exact occurrence of a form is found; beyond them, only occurrences written with
    quotes or spaces inside (“三个代表”重要思想, “八五”计划), never more than the text without
    its quotes and spaces holds."""
    docs = _normalised_dev()
    mismatches, extra = [], 0
    for doc_id, year, text in docs:
        found: dict[str, int] = defaultdict(int)
        for m in NESTED.find(text, year=year):
            found[m.formulation.id] += 1
        bare = squeeze(text)
        for entry in LEXICON:
            if entry.first_year is not None and year < entry.first_year:
                low = high = 0
            else:
                low = _string_occurrences(text, entry.forms)
                high = _string_occurrences(bare, tuple(squeeze(f) for f in entry.forms))
            n = found.get(entry.id, 0)
            extra += n - low
            if not low <= n <= max(low, high):
                mismatches.append((doc_id, entry.canonical, n, low, high))
    assert mismatches == []
    assert extra > 0  # the quoted-inside forms the exact matcher missed
    assert sum(1 for _, _, t in docs for _ in NESTED.find(t)) > 1000


def test_no_form_occurs_in_a_document_dated_before_its_first_year() -> None:
    early = [
        (doc_id, entry.canonical)
        for doc_id, year, text in _normalised_dev()
        for entry in LEXICON
        if entry.first_year and year < entry.first_year and any(f in text for f in entry.forms)
    ]
    assert early == []


# --------------------------------------------------------------------------------------------
# Discovery


def _candidates(text: str) -> list[tuple[str, str]]:
    doc = get_nlp()(text)
    starts = {t.idx for t in doc}
    ends = {t.idx + len(t) for t in doc}
    return [(c.text, c.pattern) for c in get_candidate_finder().find(text, starts, ends)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("扎实做好“六稳”工作，全面落实“六保”任务。", "六稳"),
        ("扎实做好“六稳”工作，全面落实“六保”任务。", "六保"),
        ("稳定实现农村贫困人口两不愁三保障。", "两不愁三保障"),
        ("聚焦三区三州等深度贫困地区。", "三区三州"),
        ("严格落实四个不摘要求。", "四个不摘"),
    ],
)
def test_discovers_numeric_formulations(text: str, expected: str) -> None:
    assert expected in [t for t, _ in _candidates(text)]


@pytest.mark.parametrize(
    "text",
    [
        "用了三个月时间完成。",
        "要把握好两个方面的关系。",
        "一个人也不能少。",
        "我讲三点意见。",
        "一是加强领导，二是完善制度。",
        "全年增长五个百分点。",
    ],
)
def test_noise_is_not_a_candidate(text: str) -> None:
    assert _candidates(text) == []


def test_enumeration_introduced_by_a_numeral() -> None:
    found = dict(_candidates("坚持四个全面：全面建设、全面深化、全面依法、全面从严。"))
    assert found.get("四个全面") == "enumeration"
