"""Page chrome: what a web page wraps around the article, found three ways.

1. **By name** (``resources/chrome_patterns.txt``): known widgets and footers ("【打印本页】",
   "扫一扫在手机打开当前页", "京ICP备…"), removed wherever they are.
2. **By shape**: the article is the stretch of the page between its first and last paragraph
   (a line holding a sentence). Before the first paragraph a page has breadcrumbs, toolbars and
   the title; after the last one, share bars, "相关报道" lists and footers. There, runs of short
   lines without sentence punctuation are chrome: lines before the title, toolbar rows (button
   labels, one per line or several on a line), link lists (a run of headline-like lines, or a
   short header followed by headlines to the end of the page), and anything caught between two
   chrome lines. A short signature after the last paragraph (中共中央\\n2023年5月6日), a
   speaker's name under the title, and lines continuing a paragraph that ends in "：" stay.
3. **By repetition**: a line that recurs in many documents of the same site or file within a
   run is boilerplate (web-corpus filters do the same). ``BoilerplateCounter`` counts lines
   across the run's documents before processing; ``Boilerplate`` is the frozen result that
   every worker receives. Repeated lines are only removed at the edges of the article: a
   sentence repeated inside many articles ("同志们：") is content.

Every removed line or fragment is reported as a ``Removal`` (raw offsets, text, reason) for
the audit table, so an analyst can see what was cut and why.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass, replace

from pipeline.core.resources import read_lines
from pipeline.core.textutil import HAN, HSPACE, HSPACE_CHARS
from pipeline.normalise.boilerplate import line_key
from pipeline.normalise.bylines import Byline, find_bylines
from pipeline.normalise.edits import (
    Edit,
    Offsets,
    apply_edits,
    line_bounds,
    line_delete_edit,
    merge_edits,
    short_lines,
)
from pipeline.normalise.metadata import (
    credit_line,
    heading_like,
    inline_credit_edits,
    metadata_line,
    might_be_credit,
    split_credit,
)

_CHROME_PATTERNS = read_lines("chrome_patterns.txt")
# Fragments (unanchored) are searched over the whole text: each starts with a literal, so the
# alternation scans fast. Line patterns (^...$) are only tried on short lines.
_RX_CHROME_FRAG = re.compile("|".join(f"(?:{p})" for p in _CHROME_PATTERNS if p[0] != "^"))
_RX_CHROME_LINE = re.compile("|".join(f"(?:{p})" for p in _CHROME_PATTERNS if p[0] == "^"), re.M)
_MAX_CHROME_LINE = 200
# What may remain on a line after chrome removal for the line to count as pure chrome.
_RX_CHROME_RESIDUE = re.compile(rf"[{HSPACE}|｜/\\·•>›»＞【】\[\]()（）:：\-_=*]*")


# Loss alarm: a document that loses more than this share of its prose characters to cleaning by
# position or shape alone is flagged in the run summary and the report
# (documents.prose_removed_share, with the reasons).
PROSE_LOSS_ALARM = 0.02
# Removals with positive evidence (a pattern names the line, or it recurs across the documents of
# its source: the wikisource licence under every congress report) are listed among the reasons
# but are no loss: the alarm is for article text that shape rules may have taken.
PROSE_LOSS_EVIDENCE = frozenset({"chrome:pattern", "chrome:repeated"})
# Prefix of the flags counting prose characters removed, one per reason (summed across the
# chunks of a huge document like every count flag).
PROSE_REMOVED = "prose_removed:"

CUT = "\ue000"  # stands in for a line removed by name, so its place still shows as chrome


@dataclass(frozen=True)
class Removal:
    """A piece of the raw text that normalisation removed, and why."""

    raw_start: int
    raw_end: int
    text: str
    reason: str


def _raw(offs: Offsets, s: int, e: int) -> tuple[int, int]:
    if offs is None:
        return -1, -1
    return offs[s], (offs[e - 1] + 1 if e > s else offs[s])


def _record(
    removed: list[Removal] | None, text: str, offs: Offsets, s: int, e: int, why: str
) -> None:
    if removed is not None:
        piece = text[s:e].strip("\n")
        if piece.strip():
            rs, re_ = _raw(offs, s, e)
            removed.append(Removal(rs, re_, piece, why))


# ---------------------------------------------------------------------------------------------
# 1. By name
def pattern_chrome(
    text: str, offs: Offsets, removed: list[Removal] | None = None
) -> tuple[str, Offsets, int]:
    """Remove known chrome fragments and lines; returns the number of whole lines removed."""
    n_removed = 0
    # Removing a fragment can glue two pieces into a new match; repeat until stable (rare).
    for _ in range(3):
        edits: list[Edit] = []
        by_line: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for m in _RX_CHROME_FRAG.finditer(text):
            if m.end() > m.start():
                by_line.setdefault(line_bounds(text, m.start(), m.end()), []).append(m.span())
        for ls, le in short_lines(text, _MAX_CHROME_LINE):
            if _RX_CHROME_LINE.match(text, ls, le):
                by_line[line_bounds(text, ls, le)] = [(ls, le)]
        for (ls, le), spans in by_line.items():
            line_end = le - 1 if text[le - 1 : le] == "\n" else le
            pieces = []
            last = ls
            for s, e in spans:
                pieces.append(text[last:s])
                last = e
            pieces.append(text[last:line_end])
            if _RX_CHROME_RESIDUE.fullmatch("".join(pieces)):
                # The line becomes a CUT marker (deleted with its newline by page_lines), so
                # the shape test still sees chrome at this place of the page.
                edits.append((ls, line_end, CUT))
                _record(removed, text, offs, ls, line_end, "chrome:pattern")
                n_removed += 1
            else:
                edits.extend((s, e, "") for s, e in spans)
                for s, e in spans:
                    _record(removed, text, offs, s, e, "chrome:pattern")
        if not edits:
            break
        text, offs = apply_edits(text, offs, merge_edits(edits))
    return text, offs, n_removed


# ---------------------------------------------------------------------------------------------
# 3. By repetition
# ---------------------------------------------------------------------------------------------
# 2. By shape (and repetition), over the lines left after patterns, metadata and credits.
# The article is found the way boilerplate removers (jusText, boilerpipe) find it: prose lines
# (enough Han characters and a sentence mark) are grouped into blocks, a block ending where
# the page shows chrome between two prose lines (a known widget, a repeated line, separator
# lines, a run of menu items); the block with the most prose is the article. Around it: the
# title (the input's title, else the best heading-like line just above the article), a short
# signature that ends in a date, lines continuing a paragraph that ends in "：". The rest of the
# page is chrome.
_RX_SENTENCE = re.compile(r"[。！？!?；;，,：:]")
_RX_PROSE_MARK = re.compile(r"[。！？!?；;，,]")
_RX_DATE_ONLY = re.compile(
    r"\d{4}[-/.年]\d{1,2}(?:[-/.月]\d{1,2}日?)?(?:\s+\d{1,2}[:：]\d\d(?:[:：]\d\d)?)?"
    r"|\d{1,2}[:：]\d\d(?:[:：]\d\d)?|\d+(?:天|小时|分钟)前"
)
_RX_DATELINE = re.compile(f"[{HAN}]{{0,12}}(?:讯|电)")
_RX_BRACKETS_ONLY = re.compile(r"[\[\]【】()（）]+")
# A note under an official document's date: (此件公开发布), (联系人：王明，电话：88000000).
# A numbered heading of the document's own structure (第一章 总 则, 一、…, （一）…): text, not a
# menu item, wherever it stands (resources/structure_headings.txt).
_RX_HEADING = re.compile("|".join(f"(?:{p})" for p in read_lines("structure_headings.txt")))
_RX_NOTE = re.compile(r"[（(][^（()）]{2,40}[)）]")
# Counters and pagination under an article: 9, +1, [2], 【3】.
_RX_COUNTER = re.compile(r"[+＋]?\d{1,4}|[\[【]\d{1,3}[\]】]")
_RX_WIDGET_LABEL = re.compile(f"[{HAN}]{{2,6}}")
_RX_COLUMN_TAG = re.compile(f"【[{HAN}·・]{{2,12}}】")
_RX_END_SENTENCE = re.compile(r"[。！？!?][”’」』）)]*$")
# The end of a paragraph of running text (a headline may end in ！ or ？, rarely in 。), before
# any closing quotes.
_PARAGRAPH_ENDS = "。；;"
_CLOSERS = "”’」』）)"
_RX_NOT_HAN = re.compile(f"[^{HAN}]+")
_RX_DIGIT = re.compile(r"\d")
# Breadcrumbs and <title> texts: 首页 > 要闻, 标题_栏目_网站, 标题--文化--人民网, 标题 - 网站.
_RX_SEPARATORS = re.compile(r"[>›»＞|｜丨]|->|→|--|_(?=\S)|\s[-–—|]\s")
_RX_SEPARATOR_ONLY = re.compile(r"[\s|｜>›»＞<‹«/\\·•\-_=*]+")
_RX_DATE_END = re.compile(
    r"(?:\d{1,2}|[〇○一二三四五六七八九十]{1,3})日[)）]?$|^\d{4}[-./]\d{1,2}[-./]\d{1,2}$"
)
_RX_SPLIT = re.compile(f"[{HSPACE}]+")
_BUTTON_MAX = 6  # characters of a menu item or toolbar button (下载, 打印, 时政, 字号+)
_PROSE_MIN_HAN = 12  # Han characters of a prose line (with a sentence mark)
_LONG_MIN_HAN = 40  # Han characters that make a line prose even without a sentence mark
_PROSE_NO_END_HAN = 20  # Han characters of prose that does not end like a sentence
_MENU_RUN = 5  # menu items in a row that make a break between blocks
_TITLE_MIN_HAN = 5
_TITLE_LINE_MIN_HAN = 8  # Han characters of the first line of a title on two lines
_TITLE_LOOKBACK = 15  # lines above the article searched for its title
_ABOVE_TITLE_MAX = 12  # characters of a menu item, site name or date bar above the title
_PAGE_HEADER = 8  # lines above the title that make it a web page's header, chrome entirely
_DECK_MIN_HAN = 8  # Han characters of a deck/subtitle line kept between title and article
_PAGE_WIDGETS = 3  # known widgets and separator lines that make a text a web page
_STRONG_BREAK = 2  # chrome weight that separates prose above the article from it
_TOOLBAR_MAX = 6  # buttons of a widget row inside an article; a longer column is a table's
_TABLE_NEAR = 3  # lines either side of a label row looked at for a table's numbers
_RUN_PARAGRAPHS = 3  # full paragraphs in one block that make it article text wherever it is
_MIN_COPIES = 3  # repeated paragraphs that make a second rendering of the article
_SIGNATURE_MAX = 3  # lines of a signature after the article (issuer, date)
_SIGNATURE_WINDOW = 8  # lines of attachments, issuer and date an official document ends with
_NOTE_LINES = 2  # bracketed notes under the date ((此件公开发布))
_SHORT_BETWEEN = 8  # characters of the lines allowed between two copies of the headline
_NEAR_BETWEEN = 6  # lines allowed between two copies of the headline


_HAN_SAMPLE = 80
_MAX_CREDIT_LINE = 80  # characters of a line that holds only credits


def _n_han(line: str) -> int:
    # Only thresholds up to 40 characters and block sizes need this: a long line's count is
    # estimated from its first characters (counting every character of every long line was
    # a quarter of normalisation time).
    # Deleting the runs of other characters is ~3x faster than finding each Han one.
    if len(line) <= _HAN_SAMPLE:
        return len(_RX_NOT_HAN.sub("", line))
    return len(_RX_NOT_HAN.sub("", line[:_HAN_SAMPLE])) * len(line) // _HAN_SAMPLE


def _is_prose(line: str, n: int | None = None) -> bool:
    if len(line) <= _HAN_SAMPLE and _RX_SEPARATORS.search(line):
        return False  # 人民论坛网评 | 铭记历史，汲取奋进力量: a link, not a sentence
    n = _n_han(line) if n is None else n
    if n >= _LONG_MIN_HAN:
        return True
    # A headline may hold a comma (销量大增，新能源车持续火爆); a sentence ends like one, or
    # runs longer than headlines do.
    return (
        n >= _PROSE_MIN_HAN
        and _RX_PROSE_MARK.search(line) is not None
        and (n >= _PROSE_NO_END_HAN or _RX_END_SENTENCE.search(line) is not None)
    )


def _is_paragraph(line: str) -> bool:
    return len(line) >= 10 and _RX_SENTENCE.search(line) is not None


def _is_button(line: str) -> bool:
    return (
        0 < len(line) <= _BUTTON_MAX
        and _RX_SENTENCE.search(line) is None
        and _RX_DIGIT.search(line) is None
        and "（" not in line
        and "(" not in line
        and "【" not in line  # a column tag (【新春走基层】) opens an article
        and "[" not in line  # a footnote mark ([1]) is part of the text
        and "]" not in line
    )


def _neighbour(lines: list[str], i: int, step: int) -> str:
    """The nearest non-blank line before (step -1) or after (step 1) line ``i``."""
    j = i + step
    while 0 <= j < len(lines) and not lines[j]:
        j += step
    return lines[j] if 0 <= j < len(lines) else ""


def _is_repeated_label(line: str, i: int, repeated: set[int]) -> bool:
    """A repeated label (相关新闻, 网站首页) is chrome; a repeated sentence (同志们！) or a
    footnote mark ([, ↑) repeated across a collection's documents is not."""
    return i in repeated and _n_han(line) >= 2 and _RX_SENTENCE.search(line) is None


def _is_nav_tab(line: str) -> bool:
    """A navigation tab or breadcrumb: "| 最新", "首页 > 要闻"."""
    return len(line) <= _ABOVE_TITLE_MAX and _RX_SEPARATORS.search(line) is not None


def _is_headline(line: str) -> bool:
    return heading_like(line) and _n_han(line) >= _TITLE_LINE_MIN_HAN


def _is_separator(line: str) -> bool:
    return line == CUT or _RX_SEPARATOR_ONLY.fullmatch(line) is not None


def _is_toolbar_row(line: str) -> bool:
    """Several button labels on one line: "字号 大 中 小", "分享到 微信 微博 QQ"."""
    tokens = [t for t in _RX_SPLIT.split(line) if t]
    # Single characters only are a spaced-out name (习 近 平), not buttons.
    return (
        len(tokens) >= 3
        and any(len(t) > 1 for t in tokens)
        and all(len(t) <= 3 and _is_button(t) for t in tokens)
    )


def _in_widget_row(lines: list[str], i: int) -> bool:
    """A button next to another button, a separator or a known widget."""
    near = (_neighbour(lines, i, -1), _neighbour(lines, i, 1))
    return any(x == CUT or _is_separator(x) or _is_button(x) for x in near)


def _title_score(line: str) -> int:
    if not heading_like(line) or _RX_SEPARATORS.search(line):
        return 0
    n_han = _n_han(line)
    return n_han if n_han >= _TITLE_MIN_HAN else 0


def _find_title(
    lines: list[str], candidates: list[int], hint: str | None, repeated: set[int]
) -> int | None:
    if hint:
        # The last match: the headline right above the article, not its copy in the menus.
        for i in reversed(candidates):
            if lines[i] == hint or (len(lines[i]) >= 6 and lines[i] in hint):
                return i
    best, best_score = None, 0
    for i in candidates:
        # The site's name above every page is not this page's title.
        score = 0 if i in repeated else _title_score(lines[i])
        if score > best_score:
            best, best_score = i, score
    return best


def _chrome_between(
    lines: list[str], gap: list[int], repeated: set[int], after: str, skip: set[int]
) -> int:
    """How much chrome the page shows between two prose lines (the lines of ``gap``): 0 none,
    1 a single widget or label, 2 or more a menu, a list of links, several widgets."""
    if after.endswith(("：", ":")):
        return 0  # a list introduced by a colon (出席会议的有：) belongs to the text
    weight = 0
    run = 0
    n_separators = 0
    n_dates = 0
    for i in gap:
        line = lines[i]
        if not line:
            continue
        if line == CUT:
            weight += 1
        elif _is_repeated_label(line, i, repeated):
            weight += 1
        elif _is_separator(line):
            n_separators += 1
            weight += n_separators % 2 == 0  # two separator lines count as one widget
        elif _is_nav_tab(line):
            weight += 1
        run = run + 1 if _is_button(line) else 0
        if run == _MENU_RUN:
            weight += 2
        if _RX_DATE_ONLY.fullmatch(line):
            n_dates += 1  # a list of dated links (headline / 2019-09-30 / headline …)
            weight += 2 if n_dates == 2 else 0
    # A list header (最新动态, 相关阅读) followed by headlines.
    texts = [lines[i] for i in gap if lines[i] and i not in skip]
    for k, line in enumerate(texts):
        if _is_button(line) and sum(map(_is_headline, texts[k + 1 : k + 4])) >= 3:
            weight += 2
            break
    return weight


def _tail_signal(lines: list[str], tail: list[int], k: int, repeated: set[int]) -> bool:
    i = tail[k]
    line = lines[i]
    nxt = lines[tail[k + 1]] if k + 1 < len(tail) else ""
    return bool(
        _is_repeated_label(line, i, repeated)
        or _is_separator(line)
        or _is_nav_tab(line)
        or _is_toolbar_row(line)
        or _RX_COUNTER.fullmatch(line)
        or (
            _is_button(line)
            and (_is_button(nxt) or _is_headline(nxt) or _RX_COUNTER.fullmatch(nxt))
        )
    )


def _lenient_tail(
    lines: list[str], tail: list[int], last: int, repeated: set[int], skip: set[int]
) -> int:
    """Index in ``tail`` of the first chrome line of a plain document (len(tail): none)."""
    prev = last
    for k, i in enumerate(tail):
        gap = list(range(prev + 1, i))
        if _chrome_between(lines, gap, repeated, "", skip) or _tail_signal(
            lines, tail, k, repeated
        ):
            return k
        prev = i
    return len(tail)


def _strict_tail(lines: list[str], tail: list[int], last: int, repeated: set[int]) -> int:
    """Index in ``tail`` of the first chrome line of a web page: after a list the last
    paragraph opens with a colon, or a short signature ending in a date."""
    if lines[last].endswith(("：", ":")):
        for k, i in enumerate(tail):
            if i in repeated or _is_separator(lines[i]) or _neighbour(lines, i, -1) == CUT:
                return k
            if _is_button(lines[i]) and k + 1 < len(tail) and _is_headline(lines[tail[k + 1]]):
                return k  # a list header (最新动态) and its headlines
        return len(tail)
    if tail and CUT in lines[last + 1 : tail[0]]:
        return 0  # a widget right under the article: what follows is the page's, not a signature
    # An official document signs off with its attachments, issuer and date (附件：1.… / 2.… /
    # 浙江省人民政府办公厅 / 2026年1月5日), and may note how it is published under the date
    # ((此件公开发布)); a short run of lines ending in a date, with no chrome among them.
    prev = last
    for k, i in enumerate(tail[:_SIGNATURE_WINDOW]):
        line = lines[i]
        if (
            i in repeated
            or _is_separator(line)
            or _RX_SEPARATORS.search(line)
            or CUT in lines[prev + 1 : i]
            or (k >= _SIGNATURE_MAX and _tail_signal(lines, tail, k, repeated))
        ):
            break
        if _RX_DATE_END.search(line):
            end = k + 1
            while (
                end < len(tail)
                and end - k <= _NOTE_LINES
                and _RX_NOTE.fullmatch(lines[tail[end]])
                and CUT not in lines[tail[end - 1] + 1 : tail[end]]
            ):
                end += 1
            return end
        prev = i
    return 0


def _page_breaks(
    lines: list[str], inside: list[int], marks: dict[int, str], outside: set[str]
) -> None:
    """Inside the article, what a page puts where it breaks the text into pages: a pager
    (上一页 / 1 / 2 / 3 / 下一页: numbers between two known widgets) and the site's banner
    printed under it each time (新华网 / 让新闻离你更近: short lines the page repeats, every time
    right after such chrome)."""
    for k, i in enumerate(inside):
        if i in marks or not _RX_COUNTER.fullmatch(lines[i]):
            continue
        j = k
        while j < len(inside) and _RX_COUNTER.fullmatch(lines[inside[j]]):
            j += 1
        run = inside[k:j]
        before = _neighbour(lines, run[0], -1) == CUT
        after = _neighbour(lines, run[-1], 1) == CUT
        # A first page has no 上一页: then the numbers must count 1, 2, 3 … to the widget.
        counting = len(run) >= 2 and [lines[x] for x in run] == [
            str(n) for n in range(1, len(run) + 1)
        ]
        if (before and after) or ((before or after) and counting):
            for x in run:
                marks[x] = "chrome:pager"
    # Short lines next to such chrome (before or after it, directly or through one another)
    # are the site's banner when the page prints them again: inside the article each time
    # next to chrome, or in the page's own chrome outside the article.
    seen = Counter(lines[i] for i in inside)
    short = [
        i
        for i in inside
        if i not in marks
        and len(lines[i]) <= _ABOVE_TITLE_MAX
        and not _RX_SENTENCE.search(lines[i])
    ]
    banner: dict[str, list[int]] = {}
    grown = True
    while grown:
        grown = False
        for i in short:
            if i in marks:
                continue
            near = (_neighbour_at(lines, i, -1), _neighbour_at(lines, i, 1))
            if any(j is not None and (lines[j] == CUT or j in marks) for j in near):
                marks[i] = "chrome:page-break"  # provisional: kept below when repeated
                banner.setdefault(lines[i], []).append(i)
                grown = True
    for line, where in banner.items():
        if line not in outside and (len(where) < 2 or len(where) < seen[line]):
            for i in where:
                del marks[i]


def _neighbour_at(lines: list[str], i: int, step: int) -> int | None:
    """The index of the nearest non-blank line before (step -1) or after (step 1) ``i``."""
    j = i + step
    while 0 <= j < len(lines) and not lines[j]:
        j += step
    return j if 0 <= j < len(lines) else None


def _table_cells(
    lines: list[str], live: list[int], live_at: dict[int, int], run: list[int]
) -> bool:
    """A run of short labels that is a table's row (序号 / 姓名 / 单位 / 职务 then 1 / 张三 …),
    not a widget row: it is long, or numbers stand next to it."""
    if len(run) > _TOOLBAR_MAX:
        return True
    a, b = live_at[run[0]], live_at[run[-1]]
    near = live[max(a - _TABLE_NEAR, 0) : a] + live[b + 1 : b + 1 + _TABLE_NEAR]
    return any(_RX_DIGIT.search(lines[i]) or _RX_HEADING.match(lines[i]) for i in near)


def _is_full_paragraph(line: str, n_han: int) -> bool:
    """A paragraph of running text: enough Han characters and the end of a sentence
    (headlines, teasers and link texts end without one)."""
    # The last character, past closing quotes (a $-anchored search scans the whole line).
    return n_han >= _PROSE_NO_END_HAN and line.rstrip(_CLOSERS)[-1:] in _PARAGRAPH_ENDS


def _article_span(
    lines: list[str], blocks: list[list[int]], breaks: list[int], k: int, han: dict[int, int]
) -> tuple[int, int]:
    """The first and last block of the article: block ``k`` (the largest) widened to every
    block that reads as article text (see shape_marks) and everything between them."""
    if len(blocks) == 1:
        return 0, 0
    full = [sum(_is_full_paragraph(lines[i], han[i]) for i in blk) for blk in blocks]
    text = {j for j, f in enumerate(full) if j == k or f >= _RUN_PARAGRAPHS}
    # Growing only reaches neighbours: one sweep each way (not a loop to a fixed point, which
    # is quadratic in the blocks of a long page).
    for j in range(1, len(blocks)):
        if j - 1 in text and breaks[j - 1] <= _STRONG_BREAK and full[j] == len(blocks[j]):
            text.add(j)
    for j in range(len(blocks) - 2, -1, -1):
        if j + 1 in text and breaks[j] <= _STRONG_BREAK and full[j] == len(blocks[j]):
            text.add(j)
    return min(text), max(text)


def shape_marks(
    lines: list[str],
    removed_before: set[int],
    boiler: frozenset[int],
    hint: str | None,
    keep: frozenset[int] = frozenset(),
) -> dict[int, str]:
    """Line index -> reason, for the lines of the page that are chrome by shape or repetition.

    ``lines`` are stripped; ``removed_before`` are lines already going (metadata, credits);
    ``keep`` are lines that are data whatever their shape (bylines: 浙江省省长 刘捷); a line
    equal to ``CUT`` is where a known chrome line was removed.
    """
    n = len(lines)
    live = [
        i
        for i in range(n)
        if lines[i] and lines[i] != CUT and i not in removed_before and i not in keep
    ]
    repeated = {i for i in live if line_key(lines[i]) in boiler} if boiler else set()
    # The input's title is the title, even when it reads like prose (女儿出嫁，郑板桥…).
    titled = {i for i in live if hint and lines[i] == hint}
    marks: dict[int, str] = {}
    # A page may render its article twice (a mobile or elderly-mode copy): the text is kept
    # once, at its first rendering.
    seen: set[str] = set()
    prose = []
    copies = []
    han = {i: _n_han(lines[i]) for i in live}
    for i in live:
        line = lines[i]
        if i in repeated or i in titled or not _is_prose(line, han[i]):
            continue
        if line in seen:
            copies.append(i)
        seen.add(line)
        prose.append(i)
    # A second rendering copies many paragraphs; one repeated sentence (a slogan quoted twice)
    # is the text's own.
    if len(copies) >= _MIN_COPIES:
        for i in copies:
            marks[i] = "chrome:duplicate"
        prose = [i for i in prose if i not in marks]
    if not prose:
        # No prose at all (a list, a table, a title-only item): nothing tells the page's
        # chrome from its content by shape, so only lines repeated across documents go, and
        # only when something else is left (short notices may all say the same thing).
        if any(i not in repeated and _n_han(lines[i]) for i in live):
            for i in repeated:
                marks[i] = "chrome:repeated"
        return marks
    live = [i for i in live if i not in marks]

    blocks = [[prose[0]]]
    breaks = []
    for a, b in itertools.pairwise(prose):
        weight = _chrome_between(lines, list(range(a + 1, b)), repeated, lines[a], removed_before)
        if weight:
            blocks.append([b])
            breaks.append(weight)
        else:
            blocks[-1].append(b)
    k = max(range(len(blocks)), key=lambda j: sum(han[i] for i in blocks[j]))
    # Prose above the article joins it unless a menu or several widgets stand between: a lead
    # paragraph may be followed by a link line (相关链接:http://…) before the rest.
    while k > 0 and breaks[k - 1] < _STRONG_BREAK:
        blocks[k - 1 : k + 1] = [blocks[k - 1] + blocks[k]]
        del breaks[k - 1]
        k -= 1
    # The largest block is not the whole article when the page breaks a long text into
    # several runs of paragraphs (a sub-head repeated across a site's reports, a picture, a
    # pager between them): a run of full paragraphs is article text wherever it is, and so is
    # a block of full paragraphs next to the article behind a weak break. Only the blocks
    # with no such evidence are chrome (comments, headline lists, one-line teasers).
    lo, hi = _article_span(lines, blocks, breaks, k, han)
    article = [i for blk in blocks[lo : hi + 1] for i in blk]
    first, last = article[0], article[-1]

    n_widgets = sum(1 for x in lines if x == CUT or _is_separator(x))
    is_page = n_widgets >= _PAGE_WIDGETS

    # Above the article: the title, and what a page puts above it.
    head = [i for i in live if i < first]
    title = _find_title(lines, head[-_TITLE_LOOKBACK:], hint, repeated)
    if title is not None and hint:
        # Some pages print the headline twice: in the page header and again at the top of the
        # article. An earlier copy with only short lines (a source, a share icon) before the
        # later one is the title; the later copy is then the article's own first line.
        for e in reversed([i for i in head if i < title and lines[i] == lines[title]]):
            between = [i for i in head if e < i < title]
            boxed = _neighbour(lines, e, -1) == CUT and _neighbour(lines, e, 1) == CUT
            if (
                not boxed
                and len(between) <= _NEAR_BETWEEN
                and all(len(lines[i]) <= _SHORT_BETWEEN for i in between)
            ):
                title = e
            break
    if title is not None:
        top = title
        # A title may take two lines (决胜全面建成小康社会\n夺取新时代…伟大胜利).
        while top - 1 in live and top - 1 not in repeated:
            if _title_score(lines[top - 1]) < _TITLE_LINE_MIN_HAN:
                break
            top -= 1
        above = [i for i in head if i < top]
        page_header = len(above) >= _PAGE_HEADER
        for i in above:
            line = lines[i]
            # A document's own first lines (an editor's note) may sit above a short header;
            # a web page's header (menus, login, breadcrumbs) is chrome whatever its lines.
            if (
                page_header
                or i in repeated
                or _RX_SEPARATORS.search(line)
                or (_is_button(line) and _in_widget_row(lines, i))
                or (is_page and len(line) <= _ABOVE_TITLE_MAX)
            ):
                marks[i] = "chrome:before-title"
        # A line the article prints again is the text's own: a table of contents (第一章 总则)
        # between the title and the chapters it lists.
        in_article = {lines[i] for i in live if first <= i <= last}
        for i in head:
            if i <= title:
                continue
            line = lines[i]
            # Between title and article: a deck, a date or meeting note, a speaker stay.
            if line.endswith(("：", ":")) or _RX_PROSE_MARK.search(line):
                continue  # a salutation (女士们、先生们：) or a sentence opens the text
            if line in in_article or _RX_HEADING.match(line):
                continue  # the text's own structure (第一章 总 则 above 第一条)
            if _RX_COLUMN_TAG.fullmatch(line) or _RX_DATELINE.fullmatch(line):
                continue  # the column the article runs in (【新春走基层】), a dateline (本站讯)
            if _neighbour(lines, i, -1) == CUT and _neighbour(lines, i, 1) == CUT:
                marks[i] = "chrome:header"  # caught between two widgets (a share box's title)
                continue
            if (
                (i in repeated and not _RX_BRACKETS_ONLY.fullmatch(line))
                or _is_separator(line)
                or _is_toolbar_row(line)
            ):
                marks[i] = "chrome:header"
            elif (page_header and (_is_button(line) or line.isdigit())) or (
                _is_button(line) and _in_widget_row(lines, i)
            ):
                # A caption (图为八大会址), a speaker (王沪宁主持) alone under a title stay.
                marks[i] = "chrome:header"
            elif (
                page_header
                and _n_han(line) < _DECK_MIN_HAN
                and not _RX_DIGIT.search(line)
                and not _RX_BRACKETS_ONLY.fullmatch(line)  # footnote marks ([, ])
            ):
                marks[i] = "chrome:header"
    else:
        page_header = len(head) >= _PAGE_HEADER
        for i in head:
            line = lines[i]
            if (page_header and not _is_paragraph(line)) or _is_separator(line):
                marks[i] = "chrome:header"
            elif i in repeated and _RX_SENTENCE.search(line) is None:
                marks[i] = "chrome:repeated"

    # Prose outside the article (related stories, comments, footers).
    live_at = {i: k for k, i in enumerate(live)}
    for j, blk in enumerate(blocks):
        if j < lo or j > hi:
            for i in live[live_at[blk[0]] : live_at[blk[-1]] + 1]:
                marks[i] = "chrome:outside-article"

    # Inside the article: a row of three or more buttons (在线荐稿/记者博客/联系记者) is a widget.
    run: list[int] = []
    inside = [i for i in live if first <= i <= last and i not in marks]
    for i in [*inside, None]:
        # Only whole words (在线荐稿/记者博客/联系记者): fragments of a sentence broken by inline
        # markup (宪法 / 和 / 基本法, “ / 、) are text.
        if (
            i is not None
            and _RX_WIDGET_LABEL.fullmatch(lines[i])
            and not lines[i - 1].endswith(("：", ":"))
        ):
            run.append(i)
            continue
        # Three labels in a row, or two next to a known widget (【字体：大 中 小】 / 打印 / 收藏).
        at_widget = bool(run) and CUT in (
            _neighbour(lines, run[0], -1),
            _neighbour(lines, run[-1], 1),
        )
        # (Two labels at a widget need no table test: a table's row has more cells.)
        if (len(run) >= 2 and at_widget and len(run) <= _TOOLBAR_MAX) or (
            len(run) >= 3 and not _table_cells(lines, live, live_at, run)
        ):
            for j in run:
                marks[j] = "chrome:toolbar"
        run = []
    _page_breaks(lines, inside, marks, {lines[i] for i in live if i < first or i > last})

    # Below the article: sentences that end the text (预祝大会圆满成功！) before any chrome.
    tail = [i for i in live if i > last and i not in marks]
    for k in range(len(tail) - 1, -1, -1):
        # Footnotes and closing sentences (预祝大会圆满成功！) run on to the last sentence that
        # no chrome separates from the article.
        i = tail[k]
        if _RX_END_SENTENCE.search(lines[i]) and not _chrome_between(
            lines, list(range(last + 1, i)), repeated, lines[last], removed_before
        ):
            last = i
            tail = tail[k + 1 :]
            break
    # A web page (several widgets, separators or a header of menus) puts its links, share bars
    # and footers below the article: everything there is chrome but a signature that ends in a
    # date or a list the last paragraph opens with a colon. A plain document (a report, a
    # transcript) may end with captions or notes: there, what follows the article stays until
    # the text shows chrome.
    if page_header or is_page:
        first_chrome = _strict_tail(lines, tail, last, repeated)
    else:
        first_chrome = _lenient_tail(lines, tail, last, repeated, removed_before)
    for i in tail[first_chrome:]:
        marks[i] = "chrome:repeated" if i in repeated else "chrome:after-article"
    return marks


def _n_chars(text: str) -> int:
    """Characters other than spaces and line breaks (a few C-speed passes, no regex)."""
    return len(text) - text.count("\n") - text.count(" ")


def prose_counts(text: str, removed: list[Removal]) -> dict[str, int]:
    """The loss alarm's counts: characters of the clean ``text`` plus those of the prose lines
    removed (``prose_chars``), and of the prose removed by each reason
    (``prose_removed:<reason>``); spaces and line breaks are not counted. A second rendering of
    the article (chrome:duplicate) is no loss: its text stays once. What is kept is counted
    whole, not line by line, so a huge document's chunks (which may cut a line) add up to the
    whole document's counts."""
    total = _n_chars(text)
    out: dict[str, int] = {}
    for r in removed:
        if r.reason == "chrome:duplicate":
            continue
        n = 0
        for line in r.text.split("\n"):
            line = line.strip(HSPACE_CHARS)
            if line and _is_prose(line):
                n += _n_chars(line)
        if n:
            key = f"{PROSE_REMOVED}{r.reason}"
            out[key] = out.get(key, 0) + n
            total += n
    return {"prose_chars": total, **out}


_MAX_PAGE_TITLE = 200
_RX_TITLE_PARTS = re.compile(r"_+|\s+[-–—|｜]\s+|--+|(?<=\S)[|｜](?=\S)")


def _title_from_head(lines: list[str]) -> str | None:
    """The headline, read from the page's <title> text a scraper puts first ("标题_栏目_网站"):
    the first part of it that the page also prints on a line of its own."""
    first = next((x for x in lines if x and x != CUT), "")
    if len(first) > _MAX_PAGE_TITLE:
        return None  # prose, not a <title>
    parts = [p.strip() for p in _RX_TITLE_PARTS.split(first)]
    if len(parts) < 2:
        return None
    present = set(lines)
    for part in parts:
        if _n_han(part) >= _TITLE_MIN_HAN and part in present and part != first:
            return part
    return None


def page_lines(
    text: str,
    offs: Offsets,
    md: dict[str, str],
    credits: dict[str, list[str]],
    boiler: frozenset[int] = frozenset(),
    title_hint: str | None = None,
    removed: list[Removal] | None = None,
    bylines: list[Byline] | None = None,
) -> tuple[str, Offsets, int]:
    """Remove metadata lines, credit lines and inline credits, then chrome by shape and
    repetition; fill ``md`` and ``credits``, and ``bylines`` (speaker and delivery lines,
    which stay in the text). Returns the number of whole lines removed."""
    starts = [0]
    for m in re.finditer("\n", text):
        starts.append(m.end())
    ends = [s - 1 for s in starts[1:]] + [len(text)]
    lines = [text[s:e].strip(HSPACE_CHARS) for s, e in zip(starts, ends, strict=True)]
    reasons: dict[int, str] = {}
    cut = {i for i, line in enumerate(lines) if line == CUT}
    found = find_bylines(lines, _n_han)
    keep = frozenset(b.line for b in found)
    if bylines is not None:
        for b in found:
            rs, re_ = _raw(offs, starts[b.line], ends[b.line])
            bylines.append(replace(b, raw_start=rs, raw_end=re_))
    for i, (s, e) in enumerate(zip(starts, ends, strict=True)):
        if not lines[i] or i in cut or i in reasons or i in keep:
            continue
        short = e - s <= _MAX_CREDIT_LINE
        if short and might_be_credit(lines[i]) and credit_line(text, s, e, credits):
            reasons[i] = "credit"
        elif short and (names := split_credit(lines, i, credits)) is not None:
            for j in names:
                reasons[j] = "credit"
        elif metadata_line(text, s, e, md):
            reasons[i] = "metadata"
    hint = title_hint or _title_from_head(lines)
    reasons.update(shape_marks(lines, set(reasons), boiler, hint, keep))

    edits: list[Edit] = []
    for i in sorted(cut | set(reasons)):
        s, e = starts[i], ends[i]
        edits.append(line_delete_edit(text, s, e + 1 if e < len(text) else e))
        if i in reasons:
            _record(removed, text, offs, s, e, reasons[i])
    for edit, why in inline_credit_edits(text, credits, {starts[i] for i in reasons}):
        edits.append(edit)
        _record(removed, text, offs, edit[0], edit[1], why)
    if edits:
        text, offs = apply_edits(text, offs, merge_edits(edits))
    return text, offs, len(reasons)
