"""The one date parser of the pipeline: input fields (ingest) and dates found in page headers
(normalise) both go through ``parse_date``.

Every date is checked against the calendar. A value that looks like a date but is not one
(2024-02-30, 2023年13月1日) is never stored as a date: ``ParsedDate.problem`` says what was
wrong, the run keeps it as a quality flag on the document, and the year is kept only when the
month is a real month (the day alone being wrong does not make the year doubtful).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime

from pipeline.core.resources import read_lines

__all__ = ["ParsedDate", "parse_date", "congress_year", "MIN_YEAR", "MAX_YEAR"]

MIN_YEAR = 1800
MAX_YEAR = 2100

_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
# Chinese numerals as written in official dates: 二〇二三年三月五日, 一九四九年十月一日.
_CN_DIGIT = {"〇": 0, "○": 0, "零": 0, "O": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5}
_CN_DIGIT.update({"六": 6, "七": 7, "八": 8, "九": 9})
_CN = "〇○零一二三四五六七八九十"

_SEP = r"\s*[-/.年]\s*"
_RX_YMD = re.compile(
    r"(?<!\d)(?P<y>1[89]\d\d|20\d\d)" + _SEP + r"(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})(?!\d)"
)
_RX_COMPACT = re.compile(r"^\s*(?P<y>1[89]\d\d|20\d\d)(?P<m>\d\d)(?P<d>\d\d)\s*$")
_RX_YM = re.compile(r"(?<!\d)(?P<y>1[89]\d\d|20\d\d)\s*(?:年|[-/.])\s*(?P<m>\d{1,2})\s*月?(?!\d)")
_RX_YEAR = re.compile(r"^\s*(?P<y>1[89]\d\d|20\d\d)\s*年?\s*$")
_RX_CN_YMD = re.compile(
    rf"(?P<y>[〇○零O一二三四五六七八九]{{4}})年(?P<m>[{_CN}]{{1,3}})月(?:(?P<d>[{_CN}]{{1,3}})日)?"
)


@dataclass(frozen=True)
class ParsedDate:
    published_at: date | None = None
    year: int | None = None
    # Why a value that looked like a date was not taken as one (None: nothing wrong).
    problem: str | None = None


def _cn_number(text: str) -> int | None:
    """一 .. 三十一 (the numbers of months and days)."""
    if not text:
        return None
    if "十" not in text:
        return _CN_DIGIT.get(text) if len(text) == 1 else None
    tens, _, units = text.partition("十")
    n = (_CN_DIGIT.get(tens, -100) if tens else 1) * 10
    n += _CN_DIGIT.get(units, -100) if units else 0
    return n if n > 0 else None


def _checked(y: int, m: int | None, d: int | None, shown: str) -> ParsedDate:
    if not MIN_YEAR <= y <= MAX_YEAR:
        return ParsedDate(problem=f"year {y} out of range in {shown!r}")
    if m is None:
        return ParsedDate(year=y)
    if not 1 <= m <= 12:
        return ParsedDate(problem=f"no month {m} in {shown!r}")
    if d is None:
        return ParsedDate(year=y)
    try:
        return ParsedDate(published_at=date(y, m, d), year=y)
    except ValueError:
        return ParsedDate(year=y, problem=f"no such date {y:04d}-{m:02d}-{d:02d} in {shown!r}")


def parse_date(value: object) -> ParsedDate:
    """Date and year from a field value or a header line.

    Understands date/datetime objects, a year as a number, ISO dates and datetimes, 2024年3月12日,
    2024/3/12, 2024.3.12, 20240312, 二〇二四年三月十二日, a year-month (year only) and a bare
    year. Anything else gives an empty result (no problem: the value is simply not a date).
    """
    if value is None or isinstance(value, bool):
        return ParsedDate()
    if isinstance(value, datetime):
        return ParsedDate(published_at=value.date(), year=value.year)
    if isinstance(value, date):
        return ParsedDate(published_at=value, year=value.year)
    if isinstance(value, float) and not math.isfinite(value):
        return ParsedDate()
    if isinstance(value, int | float):
        if value == int(value) and MIN_YEAR <= value <= MAX_YEAR:
            return ParsedDate(year=int(value))
        return ParsedDate()
    text = str(value).translate(_FULLWIDTH_DIGITS)
    shown = text.strip()[:40]
    if m := _RX_YMD.search(text):
        return _checked(int(m["y"]), int(m["m"]), int(m["d"]), shown)
    if m := _RX_COMPACT.match(text):
        return _checked(int(m["y"]), int(m["m"]), int(m["d"]), shown)
    if m := _RX_CN_YMD.search(text):
        y = int("".join(str(_CN_DIGIT[c]) for c in m["y"]))
        month = _cn_number(m["m"])
        day = _cn_number(m["d"]) if m["d"] else None
        if month is None or (m["d"] and day is None):
            return ParsedDate(year=y)
        return _checked(y, month, day, shown)
    if m := _RX_YM.search(text):
        return _checked(int(m["y"]), int(m["m"]), None, shown)
    if m := _RX_YEAR.match(text):
        return _checked(int(m["y"]), None, None, shown)
    return ParsedDate()


# Congress number -> year the congress met (resources/cpc_congress_years.tsv), so congress
# reports that carry only their number still land on the right year in trends.
_CONGRESS_YEARS = {
    int(n): int(y)
    for n, y in (line.split("\t")[:2] for line in read_lines("cpc_congress_years.tsv"))
}
# "第十九次全国代表大会" of the party, or "十九大" standing alone or in brackets ("报告 (七大)");
# a bare 一大/十大 inside running text (一大批) is not a congress.
_RX_CONGRESS = re.compile(
    rf"(?:共产党|党的)第(?P<n>[{_CN}]{{1,3}}|\d{{1,2}})次全国代表大会"
    rf"|(?:^|[(（\[【\s])(?P<short>[{_CN}]{{1,3}}|\d{{1,2}})大(?:$|[)）\]】\s])"
)


def congress_year(value: object) -> int | None:
    """Year of the N-th national congress of the CPC from 19, "19", "十九", "第十九次全国代表大会"
    or "十九大"; None when the value names no congress that has met."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return _CONGRESS_YEARS.get(value)
    if isinstance(value, float):
        return _CONGRESS_YEARS.get(int(value)) if value.is_integer() else None
    text = str(value).strip().translate(_FULLWIDTH_DIGITS)
    if text.isdigit():
        return _CONGRESS_YEARS.get(int(text))
    m = _RX_CONGRESS.search(text)
    if m is None and re.fullmatch(f"[{_CN}]{{1,3}}", text):
        m = _RX_CONGRESS.search(text + "大")
    if m is None:
        return None
    number = m["n"] or m["short"]
    n = int(number) if number.isdigit() else _cn_number(number)
    return _CONGRESS_YEARS.get(n) if n else None
