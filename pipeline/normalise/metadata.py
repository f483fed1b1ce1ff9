"""Page metadata, credits and titles.

* Metadata lines ("来源：…  发布时间：…", "(… 供稿)") leave the text; their fields go to
  ``metadata``.
* Credits and bylines (新华社记者 鞠鹏/摄, （记者 王晓明）, 责任编辑：X, 编辑：X 校对：Y,
  （完）) leave the text wherever they are, inside a paragraph or on a line of their own;
  their names go to ``author`` / ``photographer`` / ``editor``: a name in a credit is not a
  person the text is about, and must not become a PERSON mention.
* The title is the first heading-like line of the text (kept in the text: titles carry
  entities and formulations).
"""

from __future__ import annotations

import re

import regex

from pipeline.core.dates import parse_date
from pipeline.core.textutil import HAN, HSPACE, HSPACE_CHARS, SENT_FINAL, alternation
from pipeline.normalise.edits import Edit
from pipeline.normalise.steps import RULES

_MD_KEYS: dict[str, str] = {}
for _field_name, _keys in RULES["metadata_keys"].items():
    for _k in _keys:
        _MD_KEYS[_k] = _field_name
_MD_KEY_ALT = alternation(_MD_KEYS)
# A metadata line starts with a known key followed by a colon (optionally after a bracket).
_RX_MD_LINE = re.compile(rf"[{HSPACE}【\[（(|｜]*(?:{_MD_KEY_ALT})[{HSPACE}]*[:：]")
_RX_MD_FIELD = re.compile(
    rf"(?P<key>{_MD_KEY_ALT})[{HSPACE}]*[:：][{HSPACE}]*"
    rf"(?P<val>.*?)[{HSPACE}|｜】\]）)]*(?=(?:{_MD_KEY_ALT})[{HSPACE}]*[:：]|$)"
)
_RX_CONTRIB_LINE = re.compile(
    rf"[{HSPACE}]*[(（][{HSPACE}]*(?P<who>[^()（）\n]{{2,60}}?)[{HSPACE}]*"
    rf"(?:{alternation(RULES['contributor_markers'])})[{HSPACE}]*[)）][{HSPACE}]*$"
)
MAX_MD_LINE = 120
_RX_PROSE = re.compile(r"[。？！?!，,；;]")

# ---------------------------------------------------------------------------------------------
# Credits. A name is 2–4 Han characters (a minority name may hold a middle dot); several names
# are separated by spaces, 、 or ，. Every pattern is anchored on the credit's own words (记者,
# 摄, 责任编辑 …) and ends where the credit visibly ends (摄, a closing bracket, the line end),
# so body text around an inline credit is never taken.
# A name may be spaced out by the layout (鞠 鹏).
_NAME = rf"(?:[{HAN}]{{2,4}}|[{HAN}](?: [{HAN}]){{1,3}})(?:[·・][{HAN}]{{1,6}})?"
_SP = f"[{HSPACE}]*"
# A following "key：" (编辑：张三 校对：李四) is the next credit, not one more name.
_NAMES = rf"{_NAME}(?:[{HSPACE}、，,]+{_NAME}(?!{_SP}[:：])){{0,7}}"
_AGENCY = alternation(RULES["credit_agencies"])
_EDITOR_KEYS = alternation(RULES["credit_editor_keys"])
_PHOTO = (
    # 新华社记者 鞠鹏/摄 · 记者 李学仁 摄 · （新华社记者 王晔 摄）
    rf"(?P<po>[（(]{_SP})?(?:(?:{_AGENCY}){_SP})?(?:特约|实习)?(?:记者|通讯员|摄影记者){_SP}"
    rf"(?P<photographer>{_NAMES}){_SP}[/／]?{_SP}摄(?:影)?(?(po){_SP}[)）])"
    # （鞠鹏 摄） · 鞠鹏/摄
    rf"|[（(]{_SP}(?P<photographer2>{_NAMES}){_SP}[/／]?{_SP}摄(?:影)?{_SP}[)）]"
    rf"|(?<![{HAN}])(?P<photographer3>{_NAME}){_SP}[/／]{_SP}摄(?![{HAN}])"
    # 摄影：X · 图/X （on a line of its own, see _RX_CREDIT_LINE)
)
_BYLINE = (
    # （记者 王晓明 李华） · （新华社记者 王某） · （总台记者 张倩） · （新华日报·交汇点记者 X）
    rf"[（(]{_SP}(?:[{HAN}·・]{{1,12}}?{_SP})?(?:特约|实习)?(?:记者|通讯员){_SP}"
    rf"(?P<author>{_NAMES}){_SP}(?:报道)?{_SP}[)）]"
)
_EDITOR = (
    # 责任编辑：X · （责编：X、Y） · 【责任编辑:X】 · 编辑：X 校对：Y
    rf"[（(【\[]?{_SP}(?:{_EDITOR_KEYS}){_SP}[:：]{_SP}(?P<editor>{_NAMES}){_SP}[)）】\]]?"
)
_END_MARK = r"[（(]{_SP}完{_SP}[)）]".replace("{_SP}", _SP)
# The credit patterns hold ~40 Han character classes, each ~1 ms for `re` to compile (0.10 s of
# every process's start-up); `regex` compiles them ~7x faster and matched the same spans and groups
# at every position of 1.1M characters of dev and test text.
RX_INLINE_CREDIT = regex.compile(f"{_PHOTO}|{_BYLINE}|{_END_MARK}", regex.V0)
# A line made only of credits: the inline ones plus the forms that are only safe on a line of
# their own (editor lines, 本报记者 X, 摄影：X, 图/X, 文/X).
_LINE_ONLY = (
    rf"(?:(?:{_AGENCY}|[{HAN}·・]{{2,12}}?){_SP}(?:特约|实习)?(?:记者|通讯员){_SP}"
    rf"|(?:特约|实习)?(?:记者|通讯员)[{HSPACE}]+)"
    rf"(?P<author2>{_NAMES})"
    rf"|(?:文|作者|撰文|撰稿){_SP}[/／:：]{_SP}(?P<author3>{_NAMES})"
    rf"|(?:摄影|图|图片|摄){_SP}[/／:：]{_SP}(?P<photographer4>{_NAMES})"
    rf"|{_EDITOR}"
)
_RX_CREDIT_PIECE = regex.compile(f"{_PHOTO}|{_BYLINE}|{_END_MARK}|{_LINE_ONLY}", regex.V0)
_RX_CREDIT_SEP = re.compile(rf"[{HSPACE}|｜/／，,；;□■●◆]*")
_ROLE_OF_GROUP = {
    "photographer": "photographer",
    "photographer2": "photographer",
    "photographer3": "photographer",
    "photographer4": "photographer",
    "author": "author",
    "author2": "author",
    "author3": "author",
    "editor": "editor",
}


_RX_LIST_SPLIT = re.compile(r"[、，,]+")


def _split_names(value: str) -> list[str]:
    """王晓明、李华 → two names; 王巍 陈章升 → two; 周 洁 (a name spaced out) → one."""
    out = []
    for piece in _RX_LIST_SPLIT.split(value):
        tokens = piece.split()
        if len(tokens) > 1 and all(len(t) == 1 for t in tokens):
            out.append("".join(tokens))
        else:
            out.extend(tokens)
    return [n for n in out if n]


def _add_names(credits: dict[str, list[str]], m: regex.Match[str]) -> None:
    for group, role in _ROLE_OF_GROUP.items():
        value = m.groupdict().get(group)
        if value:
            names = credits.setdefault(role, [])
            for name in _split_names(value):
                if name not in names:
                    names.append(name)


_RX_CREDIT_HINT = re.compile(r"记者|通讯员|摄|编|校|审|责|作者|撰|完|[文图]\s*[/／:：]|图片|监制")


def might_be_credit(line: str) -> bool:
    """A cheap test every credit line passes (most lines fail it)."""
    return _RX_CREDIT_HINT.search(line) is not None


def credit_line(text: str, ls: int, le: int, credits: dict[str, list[str]]) -> bool:
    """True (and names added to ``credits``) when the line [ls, le) holds only credits."""
    pos = ls
    found: list[regex.Match[str]] = []
    while pos < le:
        sep = _RX_CREDIT_SEP.match(text, pos, le)
        if sep is not None:
            pos = sep.end()
        if pos >= le:
            break
        m = _RX_CREDIT_PIECE.match(text, pos, le)
        if m is None or m.end() == pos:
            return False
        found.append(m)
        pos = m.end()
    if not found:
        return False
    for m in found:
        _add_names(credits, m)
    return True


_RX_CREDIT_KEY_ONLY = re.compile(
    rf"[（(【\[]?{_SP}(?P<key>{_EDITOR_KEYS}|记者|作者|摄影){_SP}[:：]?{_SP}"
)
_RX_NAME_LINE = regex.compile(rf"{_NAMES}", regex.V0)
_RX_CLOSER_LINE = re.compile(r"[)）】\]]")


def split_credit(lines: list[str], i: int, credits: dict[str, list[str]]) -> list[int] | None:
    """A credit the scraper split over lines ("责任编辑：" / "尹世杰", "（责任编辑：" / "黄帅" /
    "）"): the indices of its lines, names added to ``credits``; None when line ``i`` does not
    open one."""
    line = lines[i]
    if not line.endswith(("：", ":")) or len(line) > 12:
        return None
    m = _RX_CREDIT_KEY_ONLY.fullmatch(line)
    if m is None:
        return None
    j = i + 1
    while j < len(lines) and not lines[j]:
        j += 1
    if j >= len(lines) or not _RX_NAME_LINE.fullmatch(lines[j]):
        return None
    role = (
        "editor"
        if m["key"] not in ("记者", "作者", "摄影")
        else ("photographer" if m["key"] == "摄影" else "author")
    )
    names = credits.setdefault(role, [])
    for name in _split_names(lines[j]):
        if name not in names:
            names.append(name)
    out = [i, j]
    k = j + 1
    while k < len(lines) and not lines[k]:
        k += 1
    if k < len(lines) and _RX_CLOSER_LINE.fullmatch(lines[k]):
        out.append(k)
    return out


# Every inline credit holds one of these words; the full pattern (optional prefixes first) is
# only tried around them, which keeps it off the bulk of the text.
# One character class scans at memchr speed; an alternation of words does not.
_RX_CREDIT_TRIGGER = re.compile("[摄记讯完]")
_CREDIT_WINDOW = 48


def _inline_credits(text: str) -> list[regex.Match[str]]:
    found: list[regex.Match[str]] = []
    done = 0
    for t in _RX_CREDIT_TRIGGER.finditer(text):
        if t.start() < done:
            continue
        c = t.group()
        if c == "记" and text[t.start() : t.start() + 2] != "记者":
            continue
        if c == "讯" and text[t.start() - 1 : t.start() + 2] != "通讯员":
            continue
        if c == "完" and text[t.start() - 1 : t.start()] not in ("（", "(", " ", "\u3000"):
            continue
        lo = max(done, t.start() - _CREDIT_WINDOW)
        start = max(lo, text.rfind("\n", lo, t.start()) + 1)
        hi = min(len(text), t.end() + _CREDIT_WINDOW)
        end = text.find("\n", t.end(), hi)
        end = hi if end < 0 else end
        for m in RX_INLINE_CREDIT.finditer(text, start, end):
            if m.start() <= t.start() < m.end():
                found.append(m)
                done = m.end()
                break
    return found


def inline_credit_edits(
    text: str, credits: dict[str, list[str]], skip: set[int]
) -> list[tuple[Edit, str]]:
    """Deletions of credits inside paragraphs, with the reason for the audit; names go to
    ``credits``. Lines starting at a position in ``skip`` are already being removed."""
    out: list[tuple[Edit, str]] = []
    for m in _inline_credits(text):
        ls = text.rfind("\n", 0, m.start()) + 1
        if ls in skip:
            continue
        s, e = m.span()
        # The space that set the credit off from the caption goes with it.
        while s > ls and text[s - 1] in " \u3000":
            s -= 1
        _add_names(credits, m)
        role = next((r for g, r in _ROLE_OF_GROUP.items() if m.groupdict().get(g)), "end mark")
        out.append(((s, e, ""), f"credit:{role}"))
    return out


# A dateline or edition line standing alone:
# （新华社北京5月18日电） · 《人民日报》（2020年05月19日 01 版）
_RX_SOURCE_LINE = re.compile(
    rf"[（(]{{0,1}}(?P<src>[{HAN}]{{2,8}}社)[{HAN}]{{0,10}}\d{{1,2}}月\d{{1,2}}日电[)）]?"
    rf"|《(?P<paper>[^》]{{2,16}})》[（(]{_SP}(?P<ed>\d{{4}}年\d{{1,2}}月\d{{1,2}}日){_SP}"
    rf"\d{{0,3}}{_SP}版{_SP}[)）]"
)


def metadata_line(text: str, ls: int, le: int, md: dict[str, str]) -> bool:
    """True (and fields added to ``md``) when the line [ls, le) is a metadata line."""
    if le - ls > MAX_MD_LINE:
        return False
    # "记者：首先欢迎你…？" is an interview question, not a byline: field values are not sentences.
    if _RX_MD_LINE.match(text, ls, le) and not _RX_PROSE.search(text, ls, le):
        for f in _RX_MD_FIELD.finditer(text, ls, le):
            name = _MD_KEYS[f["key"]]
            val = f["val"].strip(HSPACE_CHARS + "|｜")
            if not val or name == "ignored":
                continue
            if name == "published_at":
                parsed = parse_date(val)
                if parsed.published_at is not None:
                    md.setdefault("published_at", parsed.published_at.isoformat())
                elif parsed.problem:
                    md.setdefault("date_problem", parsed.problem)
            else:
                md.setdefault(name, val)
        return True
    if (c := _RX_CONTRIB_LINE.match(text, ls, le)) is not None:
        md.setdefault("contributor", c["who"].strip())
        return True
    line = text[ls:le].strip(HSPACE_CHARS)
    if len(line) <= 40 and (c := _RX_SOURCE_LINE.fullmatch(line)) is not None:
        md.setdefault("source", c["src"] or c["paper"])
        if c["ed"]:
            parsed = parse_date(c["ed"])
            if parsed.published_at is not None:
                md.setdefault("published_at", parsed.published_at.isoformat())
        return True
    return False


# ---------------------------------------------------------------------------------------------
# Titles
_TITLE_BAD_END = frozenset("。！？!?：:；;，,、")
MAX_TITLE = 60
_RX_HAN = re.compile(f"[{HAN}]")
_RX_DATE_LINE = re.compile(r"^[（(]?[\d年月日\s\-/.:：]+[)）]?$")
_TITLE_LOOKAHEAD = 3


def heading_like(line: str) -> bool:
    """A line shaped like a heading: short, no sentence inside, not ending in a comma or colon,
    holding Han characters."""
    line = line.strip()
    return (
        0 < len(line) <= MAX_TITLE
        and line[-1] not in _TITLE_BAD_END
        and not any(c in line for c in SENT_FINAL)
        and _RX_HAN.search(line) is not None
    )


def detect_title(text: str) -> str | None:
    """The first heading-like line among the first lines of the text, skipping date lines
    ("（2020年1月8日）"); None when the text starts with prose."""
    lines = text.split("\n", _TITLE_LOOKAHEAD + 1)
    if len(lines) < 2:
        return None
    for line in lines[:_TITLE_LOOKAHEAD]:
        line = line.strip()
        if not line or _RX_DATE_LINE.match(line):
            continue
        return line if heading_like(line) else None
    return None
