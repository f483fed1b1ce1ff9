"""Speaker and delivery lines ("bylines") of reports and speeches.

A government work report or a speech names who delivered it, where and when, on lines of their
own under the title:

    ——2026年1月13日在浙江省第十四届人民代表大会第四次会议上
    浙江省省长 刘捷

Such a line is short and has no sentence punctuation, so page-chrome rules by shape would take
it for a header; it is data instead. ``find_bylines`` reads them (the posts are data in
``resources/bylines.yaml``); ``pipeline.normalise.chrome.page_lines`` keeps their lines in the
text and reports them with raw offsets, and the documents table and the relation rules read
them (``speaker``, ``speaker_post``, ``bylines``; a holds_position row per government head).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass

from pipeline.core.resources import RESOURCES, load_yaml
from pipeline.core.textutil import HAN, HSPACE

_NAME = rf"[{HAN}]{{2,4}}(?:[·・][{HAN}]{{1,6}})?"
_DATE = r"\d{4}年\d{1,2}月(?:\d{1,2}日)?"
_RX_BARE_NAME = re.compile(_NAME)
_NAME_REACH = 4  # metadata lines between a name alone and the delivery line it belongs to
_RX_METADATA_LIKE = re.compile(r"[:：]|^[\d\s\-/:.年月日]+$")
_RX_DATE_LINE = re.compile(rf"[（(]({_DATE})[)）]")


@dataclass(frozen=True)
class Byline:
    """One byline: ``kind`` is "speaker" (a name, with the post and place when written) or
    "delivered" (the date and meeting the text was delivered at); ``line`` is its index among
    the page's lines, ``raw_start``/``raw_end`` its place in the raw text (-1 when untracked)."""

    kind: str
    text: str
    line: int
    person: str | None = None
    post: str | None = None
    place: str | None = None
    date: str | None = None
    meeting: str | None = None
    raw_start: int = -1
    raw_end: int = -1

    def as_row(self) -> dict[str, object]:
        row = asdict(self)
        row.pop("line")
        return row


@functools.cache
def _rules() -> dict:
    return load_yaml(RESOURCES / "bylines.yaml")


@functools.cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    r = _rules()
    posts = "|".join(sorted(map(re.escape, r["speaker_posts"]), key=len, reverse=True))
    sp = f"[{HSPACE}]"
    # 浙江省省长 刘捷 · 省长 胡玉亭 · 自治区主席 韦韬; without a space only after a place or a
    # body (浙江省省长刘捷): "市长热线" is no name.
    ends = "|".join(map(re.escape, r["prefix_endings"]))
    # A two-character name may be spaced out for the layout (上海市市长 龚 正).
    name = rf"{_NAME}|[{HAN}]{sp}{{1,2}}[{HAN}]"
    speaker = re.compile(
        rf"(?P<prefix>[{HAN}]{{0,{int(r['max_prefix'])}}}?)(?P<post>{posts}){sp}+(?P<name>{name})"
        rf"|(?P<prefix2>[{HAN}]{{1,{int(r['max_prefix'])}}}?(?:{ends}))(?P<post2>{posts})"
        rf"(?P<name2>{_NAME})"
    )
    # ——2026年1月13日在浙江省第十四届人民代表大会第四次会议上 · （2026年1月13日在…上的讲话）
    delivered = re.compile(
        rf"(?:[—－–\-]{{1,3}}|(?P<open>[（(])|(?=\d{{4}}年)){sp}*(?P<date>{_DATE})?{sp}*在"
        rf"(?P<meeting>[^，。；,;（）()]{{4,60}}?)上(?:的[{HAN}]{{0,8}})?"
        rf"(?(open){sp}*[)）])"
    )
    # 刘捷（2026年1月13日） · 刘捷 2026年1月13日
    name_date = re.compile(
        rf"(?P<name>{_NAME}){sp}*(?:[（(](?P<date>{_DATE})[)）]|{sp}(?P<d2>{_DATE}))"
    )
    return speaker, delivered, name_date


def read_byline(line: str, i: int) -> Byline | None:
    """The byline ``line`` (a stripped line, index ``i``) is, or None."""
    if not line or len(line) > 80:
        return None
    speaker, delivered, name_date = _patterns()
    if m := speaker.fullmatch(line):
        prefix = m.group("prefix") or m.group("prefix2") or ""
        post = m.group("post") or m.group("post2")
        name = re.sub(f"[{HSPACE}]", "", m.group("name") or m.group("name2"))
        return Byline("speaker", line, i, name, prefix + post, prefix or None)
    if m := delivered.fullmatch(line):
        return Byline("delivered", line, i, date=m.group("date"), meeting=m.group("meeting"))
    # The delivery and the speaker on one line (2026年1月27日在…会议上 陕西省省长 赵刚).
    if (m := delivered.match(line)) and (who := speaker.fullmatch(line[m.end() :].strip())):
        prefix = who.group("prefix") or who.group("prefix2") or ""
        return Byline(
            "speaker",
            line,
            i,
            who.group("name") or who.group("name2"),
            prefix + (who.group("post") or who.group("post2")),
            prefix or None,
            date=m.group("date"),
            meeting=m.group("meeting"),
        )
    if m := name_date.fullmatch(line):
        return Byline("speaker", line, i, m.group("name"), date=m.group("date") or m.group("d2"))
    return None


def find_bylines(lines: list[str], n_han: Callable[[str], int]) -> list[Byline]:
    """Bylines among the page's lines above its first paragraphs (``lines`` stripped,
    ``n_han`` counts a line's Han characters)."""
    r = _rules()
    # The article starts with two long paragraphs in a row; one alone may be a site's blurb.
    # Lines are measured only until then: a long document's body is never counted here.
    first_long = end = prev = None  # prev: the line before, when it was long
    for i, line in enumerate(lines):
        if not line:
            continue
        if n_han(line) < r["first_paragraph_han"]:
            prev = None
            continue
        if prev is not None:
            end = prev
            break
        if first_long is None:
            first_long = i
        prev = i
    if end is None:
        end = first_long if first_long is not None else min(len(lines), int(r["head_lines"]))
    out = []
    for i in range(end):
        b = read_byline(lines[i], i)
        if b is not None:
            out.append(b)
    # A name alone on its line is a speaker only next to a delivery line or the speech's date
    # (讲话标题 / （2025年12月10日） / 习近平): alone, it may be a page's author tag.
    found = {b.line for b in out}
    delivered = {b.line for b in out if b.kind == "delivered"}
    for i in range(end):
        if i in found or not _RX_BARE_NAME.fullmatch(lines[i]):
            continue
        # Next to it, or past metadata lines (来源：湖南日报 / 时间：2026-02-24) between them.
        for j in (_near_past_metadata(lines, i, -1), _near_past_metadata(lines, i, 1)):
            if j is None:
                continue
            date = _RX_DATE_LINE.fullmatch(lines[j])
            if j in delivered or date:
                out.append(Byline("speaker", lines[i], i, lines[i], date=date and date.group(1)))
                break
    return sorted(out, key=lambda b: b.line)


def _near_past_metadata(lines: list[str], i: int, step: int) -> int | None:
    j = _near(lines, i, step)
    for _ in range(_NAME_REACH):
        if j is None or not _RX_METADATA_LIKE.search(lines[j]):
            return j
        j = _near(lines, j, step)
    return j


def _near(lines: list[str], i: int, step: int) -> int | None:
    j = i + step
    while 0 <= j < len(lines) and not lines[j]:
        j += step
    return j if 0 <= j < len(lines) else None


def post_of(byline: Byline) -> str | None:
    """The bare post of a speaker byline: 浙江省省长 → 省长."""
    if byline.post is None:
        return None
    return byline.post[len(byline.place or "") :]
