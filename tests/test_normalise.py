"""Tests for pipeline.normalise (tables per step, seeds, dev-corpus round trip, properties)."""

from __future__ import annotations

import csv
import difflib
import json
import random
import re
import sys
from collections import Counter
from functools import cache
from pathlib import Path

import opencc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import normalise as N
from pipeline.normalise import (
    collapse_whitespace,
    fullwidth_to_halfwidth,
    join_spaced_names,
    normalise,
    normalise_punctuation,
    normalise_text,
    remove_control_chars,
    remove_pinyin_annotations,
    split_sentences,
    strip_page_chrome,
    to_simplified,
    unwrap_lines,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SEEDS = SHARED / "seeds"
DEV = SHARED / "corpora" / "dev"
T2S = opencc.OpenCC("t2s")
S2T = opencc.OpenCC("s2t")
HAN_RX = re.compile(f"[{N.HAN}]")


# ---------------------------------------------------------------------------------------------
# Step tables
@pytest.mark.parametrize(
    "text_in, text_out",
    [
        ("會(huì)議", "會議"),
        ("文獻(xiàn)", "文獻"),
        ("負(fù)責(zé)人", "負責人"),
        ("會（huì）議", "會議"),  # full-width parentheses
        ("会(hui4)议", "会议"),  # tone digit
        ("会(hui)议", "会议"),  # toneless multi-letter syllable
        ("綠(lǜ)色", "綠色"),
        ("会 (huì)议", "会议"),
        ("(湖北省委党史研究室 供稿)", "(湖北省委党史研究室 供稿)"),
        ("增长（同口径增长2.5%以上）", "增长（同口径增长2.5%以上）"),
        ("国内生产总值(GDP)", "国内生产总值(GDP)"),
        ("讲话（2018年2月12日）", "讲话（2018年2月12日）"),
        ("附件(a)", "附件(a)"),  # single letter, no annotation pattern in the document
        ("附件(a)和會(huì)", "附件和會"),  # ... unless the document clearly annotates
        ("条款(b)", "条款(b)"),  # not a syllable
        ("(huì)开头", "(huì)开头"),  # not after a Han char
        ("word(hui)", "word(hui)"),
        ("李(Li)", "李"),
        ("中国(China)", "中国(China)"),
    ],
)
def test_remove_pinyin_annotations(text_in: str, text_out: str) -> None:
    assert remove_pinyin_annotations(text_in) == text_out


@pytest.mark.parametrize(
    "text_in, text_out",
    [
        ("１９５５年", "1955年"),
        ("ＧＤＰ增长", "GDP增长"),
        ("增长２．５％", "增长2.5%"),
        ("，。：（）", "，。：（）"),  # Chinese punctuation stays full-width
        ("abc 123", "abc 123"),
    ],
)
def test_fullwidth_to_halfwidth(text_in: str, text_out: str) -> None:
    assert fullwidth_to_halfwidth(text_in) == text_out


@pytest.mark.parametrize(
    "text_in, text_out",
    [
        ("3月8日,湖北", "3月8日，湖北"),
        ("会议指出:要", "会议指出：要"),
        ("为什么?因为", "为什么？因为"),
        ("好!我们", "好！我们"),
        ("一是;二是", "一是；二是"),
        ("《意见》,明确", "《意见》，明确"),
        ("国内生产总值(GDP)增长", "国内生产总值（GDP）增长"),
        ("(湖北省委)", "（湖北省委）"),
        ("增长2.5%", "增长2.5%"),
        ("http://www.gov.cn/a,b", "http://www.gov.cn/a,b"),
        ("Hello, world! (see)", "Hello, world! (see)"),
        ("时间10:30", "时间10:30"),
        ("比例3:2", "比例3:2"),
    ],
)
def test_normalise_punctuation(text_in: str, text_out: str) -> None:
    assert normalise_punctuation(text_in) == text_out


@pytest.mark.parametrize(
    "text_in, text_out",
    [
        ("市长 张 明", "市长 张明"),
        ("总理 王 建 国，出席", "总理 王建国，出席"),
        ("市长 张 明 出席会议", "市长 张明 出席会议"),
        ("张 明 同志", "张明 同志"),
        ("抢抓机遇 踔厉奋发", "抢抓机遇 踔厉奋发"),  # real separator, not a name
        ("市长 张明", "市长 张明"),
        ("我 们 的", "我 们 的"),  # no title: leave alone
    ],
)
def test_join_spaced_names(text_in: str, text_out: str) -> None:
    assert join_spaced_names(text_in) == text_out


@pytest.mark.parametrize(
    "text_in, text_out",
    [
        ("  标题  \n\n\n 正文 ", "标题\n正文"),
        ("抢抓机遇　踔厉奋发", "抢抓机遇 踔厉奋发"),
        ("你好 ， 世界", "你好，世界"),
        ("留学生：　　你们好！", "留学生：\n你们好！"),
        ("a \t b", "a b"),
    ],
)
def test_collapse_whitespace(text_in: str, text_out: str) -> None:
    assert collapse_whitespace(text_in) == text_out


@pytest.mark.parametrize(
    "text_in, text_out",
    [
        ("a\r\nb\rc", "a\nb\nc"),
        ("中\u200b国\ufeff", "中国"),
        ("x\x00y\x07z", "xyz"),
    ],
)
def test_remove_control_chars(text_in: str, text_out: str) -> None:
    assert remove_control_chars(text_in) == text_out


def test_collapse_then_names_full_pipeline() -> None:
    assert normalise_text("总理　王　建　国") == "总理 王建国"


@pytest.mark.parametrize(
    "text_in, text_out",
    [
        ("正文。\n【打印本页】【关闭窗口】", "正文。"),
        ("扫一扫在手机打开当前页\n正文。", "正文。"),
        ("正文。\n分享到：", "正文。"),
        ("正文。\n责任编辑：张三", "正文。"),
        ("当前位置：首页 > 新闻中心\n正文。", "正文。"),
        ("【字体：大 中 小】\n正文。", "正文。"),
        ("正文。\n打印本页 关闭窗口", "正文。"),
        ("首页 > 新闻中心 > 正文\n正文。", "正文。"),
        ("正文【打印本页】后文。", "正文后文。"),
        ("正文。\n来源：湖北日报", "正文。"),
        ("正文。\n(湖北省委党史研究室 供稿)", "正文。"),
        ("我们要打印本页材料。", "我们要打印本页材料。"),  # body prose stays
        ("关闭窗口前请保存。", "关闭窗口前请保存。"),
    ],
)
def test_strip_page_chrome(text_in: str, text_out: str) -> None:
    assert strip_page_chrome(text_in) == text_out


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("标题\n来源：湖北日报\n正文。", {"source": "湖北日报"}),
        ("标题\n时间：2026-02-05\n正文。", {"published_at": "2026-02-05"}),
        ("标题\n发布时间:2024-03-12 10:30\n正文。", {"published_at": "2024-03-12"}),
        ("标题\n发布日期：2024年3月2日\n正文。", {"published_at": "2024-03-02"}),
        ("标题\n作者:李四  来源：新华社\n正文。", {"author": "李四", "source": "新华社"}),
        ("标题\n正文。\n（湖北省委党史研究室 供稿）", {"contributor": "湖北省委党史研究室"}),
    ],
)
def test_metadata_extraction(raw: str, expected: dict[str, str]) -> None:
    n = normalise(raw)
    for k, v in expected.items():
        assert n.metadata.get(k) == v
    assert n.text == "标题\n正文。"
    assert n.metadata["title"] == "标题"
    assert n.flags["chrome_lines_removed"] == 1


def test_title_rules() -> None:
    assert "title" not in normalise("只有一行").metadata
    assert "title" not in normalise("这是一个句子。\n正文。").metadata
    assert "title" not in normalise("同志们：\n正文。").metadata
    assert normalise("抢抓机遇 踔厉奋发\n正文。").metadata["title"] == "抢抓机遇 踔厉奋发"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("20年月，党中央召开会议", True),
        ("抓住_一百年", True),
        ("××同志", True),
        ("XXX县委", True),
        ("2020年年鉴", False),
        ("近3年月均增长", False),
        ("2021年10月", False),
        ("二〇〇八年", False),
    ],
)
def test_has_redactions(text: str, expected: bool) -> None:
    assert N.has_redactions(text) is expected
    assert normalise(text).flags["has_redactions"] is expected


def test_to_simplified() -> None:
    assert to_simplified("湖北省黨史和文獻部門") == "湖北省党史和文献部门"
    simplified = "深入学习贯彻习近平新时代中国特色社会主义思想"
    assert to_simplified(simplified) is simplified  # no OpenCC call at all
    assert to_simplified("乾隆皇帝") == "乾隆皇帝"
    # protected: a plain simplified 坏 is not turned into 坯 even in a traditional document
    assert to_simplified("打坏了東西") == "打坏了东西"


def test_t2s_flags() -> None:
    n = normalise("會議在漢召開")
    assert n.text == "会议在汉召开"
    assert n.flags["converted_from_traditional"] is True
    assert n.flags["n_chars_converted"] == 4
    n = normalise("会议在汉召开")
    assert n.flags["converted_from_traditional"] is False
    assert n.flags["n_chars_converted"] == 0


# ---------------------------------------------------------------------------------------------
# Offsets
def _check_offsets(raw: str, n: N.Normalised) -> None:
    offs = list(n.raw_offsets)
    assert len(offs) == len(n.text) + 1
    assert offs[-1] == len(raw)
    assert all(0 <= o <= len(raw) for o in offs)
    assert all(a <= b for a, b in zip(offs, offs[1:], strict=False))
    for i in range(len(n.text)):
        assert offs[i] < len(raw)


def test_offsets_example() -> None:
    raw = "標題\n\n發布時間:2024-03-12\n3月8日,會(huì)議在漢召開。"
    n = normalise(raw)
    assert n.text == "标题\n3月8日，会议在汉召开。"
    _check_offsets(raw, n)
    i = n.text.index("会议")
    s, e = n.raw_span(i, i + 2)
    assert raw[s:e] == "會(huì)議"
    s, e = n.raw_span(0, 2)
    assert raw[s:e] == "標題"
    j = n.text.index("，")
    assert raw[n.raw_offsets[j]] == ","
    assert n.raw_span(3, 3)[0] == n.raw_span(3, 3)[1]


def test_offsets_length_changing_t2s(monkeypatch: pytest.MonkeyPatch) -> None:
    # The installed t2s tables are 1:1 in length, but OpenCC may ship length-changing phrases;
    # force that path with a fake converter that contracts and expands.
    class Fake:
        def convert(self, text: str) -> str:
            return T2S.convert(text).replace("国家", "国").replace("后续", "之后续")

    monkeypatch.setattr(N.steps, "_converter", lambda: Fake())
    raw = "前文。\n國家發展，後續內容。\n第三行國家"
    n = normalise(raw)
    assert n.text == "前文。\n国发展，之后续内容。\n第三行国"
    _check_offsets(raw, n)
    i = n.text.index("发展")
    assert raw[slice(*n.raw_span(i, i + 2))] == "發展"
    i = n.text.index("续内容")
    assert raw[slice(*n.raw_span(i, i + 3))] == "續內容"
    assert raw[n.raw_offsets[n.text.index("第三行")]] == "第"


# ---------------------------------------------------------------------------------------------
# Sentence splitting
def test_split_sentences_basic() -> None:
    text = "他说：“我们要坚持。”然后呢？好！\n第二段；还有内容"
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == [
        "他说：“我们要坚持。”",
        "然后呢？",
        "好！",
        "第二段；还有内容",
    ]


def test_split_sentences_line_ending_in_soft_punctuation_goes_on() -> None:
    text = "任命：\n高志远兼外交部部长，\n林少川为粮食部部长。\n免去：\n王明职务。\n标题\n正文。"
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "任命：\n高志远兼外交部部长，\n林少川为粮食部部长。",
        "免去：\n王明职务。",
        "标题",
        "正文。",
    ]


_WRAPPED = (
    "经过充分酝酿、广泛协商之后，中央人民政府委员会确定了各机构负责\n"
    "人名单。十月十九日，中央人民政府委员会举行会议，宣布各机构及委任\n"
    "名单如下：任命钱立、李长江、孙文华为政务院副总理，任命赵一民、黄绍\n"
    "宏为政务委员。\n"
    "政务院秘书长由周新担任；设副秘书长五人，委任许平、郭涛、孙起孟、辛\n"
    "志超担任。"
)


@pytest.mark.parametrize(
    "text_in, text_out",
    [
        # A page typed at a fixed line length: breaks inside words and names go.
        (
            _WRAPPED,
            "经过充分酝酿、广泛协商之后，中央人民政府委员会确定了各机构负责人名单。十月十九日，"
            "中央人民政府委员会举行会议，宣布各机构及委任名单如下：任命钱立、李长江、孙文华为"
            "政务院副总理，任命赵一民、黄绍宏为政务委员。\n"
            "政务院秘书长由周新担任；设副秘书长五人，委任许平、郭涛、孙起孟、辛志超担任。",
        ),
        # An indented line starts a paragraph even after a full line.
        (
            "第一行文字写得很长很长很长一直写到这一行的末尾为止还没有结束的\n"
            "第二行文字写得很长很长很长一直写到这一行的末尾为止还没有结束的\n"
            "第三行文字写得很长很长很长一直写到这一行的末尾为止还没有结束的\n"
            "　　新的段落从这里开始。",
            "第一行文字写得很长很长很长一直写到这一行的末尾为止还没有结束的"
            "第二行文字写得很长很长很长一直写到这一行的末尾为止还没有结束的"
            "第三行文字写得很长很长很长一直写到这一行的末尾为止还没有结束的\n"
            "　　新的段落从这里开始。",
        ),
        # Headings of different lengths with one long paragraph: not a wrapped page.
        (
            "中共八大：周恩来作关于第二个五年计划的建议的报告\n"
            "中国共产党第八次全国代表大会：关于政治报告的决议\n"
            "中共八大：关于在莫斯科举行的各国共产党和工人党代表会议的决议\n"
            "中国共产党第八次全国代表大会简介\n" + "会议在北京举行。" * 40,
            None,
        ),
        # Paragraphs of similar length that end their sentences: ordinary text.
        (
            "今年以来，全省经济运行总体平稳，主要指标好于预期，发展质量稳步提升。\n"
            "全年地区生产总值增长百分之五点二，城乡居民收入增长快于经济增长。\n"
            "科技创新能力持续增强，研发经费投入强度提高到百分之二点五以上。\n",
            None,
        ),
        # Short lines (a poem, a list) never count.
        ("春眠不觉晓\n处处闻啼鸟\n夜来风雨声\n花落知多少", None),
    ],
)
def test_unwrap_lines(text_in: str, text_out: str | None) -> None:
    assert unwrap_lines(text_in) == (text_in if text_out is None else text_out)


def test_unwrap_keeps_offsets_to_raw() -> None:
    result = normalise(_WRAPPED)
    assert "黄绍宏" in result.text and "\n" in result.text
    start = result.text.index("黄绍宏")
    raw_start, raw_end = result.raw_span(start, start + 3)
    assert _WRAPPED[raw_start:raw_end] == "黄绍\n宏"


def test_split_sentences_closing_brackets() -> None:
    text = "（这是括号里的话。）下一句。"
    assert [text[s:e] for s, e in split_sentences(text)] == ["（这是括号里的话。）", "下一句。"]


def test_split_sentences_long() -> None:
    text = "，".join(["我们要坚持改革开放"] * 60) + "。"
    spans = split_sentences(text, max_len=50)
    assert all(e - s <= 50 for s, e in spans)
    assert all(text[e - 1] == "，" for s, e in spans[:-1])
    assert "".join(text[s:e] for s, e in spans) == text
    hard = "中" * 120
    spans = split_sentences(hard, max_len=50)
    assert [e - s for s, e in spans] == [50, 50, 20]
    words = "x " + "abcdefghij" * 3  # no boundary except the leading space
    spans = split_sentences(words, max_len=10)
    assert all(e - s <= 10 for s, e in spans)


def _covers_all(text: str, spans: list[tuple[int, int]], max_len: int) -> None:
    covered = [False] * len(text)
    last = 0
    for s, e in spans:
        assert last <= s < e <= len(text)
        assert e - s <= max_len
        assert not text[s].isspace() and not text[e - 1].isspace()
        for i in range(s, e):
            covered[i] = True
        last = e
    assert all(covered[i] or text[i].isspace() for i in range(len(text)))


# ---------------------------------------------------------------------------------------------
# Seeds
def _seed(prefix: str) -> str:
    if not SEEDS.exists():
        pytest.skip("shared seeds not available")
    files = sorted(SEEDS.glob(f"{prefix}_*.txt"))
    if not files:
        pytest.skip(f"seed {prefix} not available")
    return files[0].read_text(encoding="utf-8")


def test_seed_000_traditional_pinyin_scrape() -> None:
    raw = _seed("000")
    n = normalise(raw)
    assert not re.search(r"[(（][a-zA-Zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü]+[)）]", n.text)
    assert T2S.convert(n.text) == n.text
    assert n.metadata["title"] == "湖北省党史和文献部门主要负责人会议在汉召开"
    assert n.metadata["published_at"] == "2024-03-12"
    assert n.metadata["contributor"] == "湖北省委党史研究室"
    assert n.flags["had_pinyin_annotations"] is True
    assert n.flags["converted_from_traditional"] is True
    assert n.flags["n_chars_converted"] > 100
    assert n.flags["has_redactions"] is False
    assert "分享到" not in n.text and "供稿" not in n.text and "发布时间" not in n.text
    assert n.text.startswith("湖北省党史和文献部门主要负责人会议在汉召开\n3月8日，湖北省")
    assert "《抢抓机遇 踔厉奋发 在湖北先行区建设中" in n.text
    _check_offsets(raw, n)
    # every output Han char comes from a raw char that t2s-converts to it (1:1 here)
    for i, c in enumerate(n.text):
        if HAN_RX.match(c):
            assert T2S.convert(raw[n.raw_offsets[i]]) == c or c in T2S.convert(
                raw[n.raw_offsets[i] : n.raw_offsets[i] + 4]
            )
    _covers_all(n.text, split_sentences(n.text), 250)


def test_seed_004_redactions() -> None:
    raw = _seed("004")
    n = normalise(raw)
    assert n.flags["has_redactions"] is True
    assert n.flags["converted_from_traditional"] is False
    assert n.flags["had_pinyin_annotations"] is False
    _check_offsets(raw, n)


# ---------------------------------------------------------------------------------------------
# Dev corpus
@cache
def _dev_docs() -> tuple[str, ...]:
    docs: list[str] = []
    jl = DEV / "cpc_congress_reports.jsonl"
    cs = DEV / "xi_speeches_2020.csv"
    if not jl.exists() and not cs.exists():
        return ()
    if jl.exists():
        with jl.open(encoding="utf-8") as f:
            docs += [json.loads(line)["content"] for line in f if line.strip()]
    if cs.exists():
        csv.field_size_limit(sys.maxsize)
        with cs.open(encoding="utf-8", newline="") as f:
            docs += [row["Text"] for row in csv.DictReader(f)]
    return tuple(docs)


def _simplified_dev_docs() -> list[str]:
    docs = _dev_docs()
    if not docs:
        pytest.skip("dev corpus not available")
    # The early congress reports are traditional; t2s them first so they count as simplified.
    return [d if not N.needs_t2s(d) else T2S.convert(d) for d in docs]


def _mangle(text: str, rng: random.Random) -> str:
    from pypinyin import Style, pinyin

    trad = S2T.convert(text)
    out = []
    for c in trad:
        if c == "，" and rng.random() < 0.3:
            out.append(",")
            continue
        out.append(c)
        if HAN_RX.match(c) and rng.random() < 0.1:
            py = pinyin(c, style=Style.TONE, heteronym=False)[0][0]
            if py != c:
                out.append(f"({py})")
    return "".join(out)


def test_round_trip_dev_corpus() -> None:
    docs = _simplified_dev_docs()
    rng = random.Random(20240312)
    sample = rng.sample(docs, len(docs))
    total = same = 0
    for doc in sample:
        if total >= 300_000:
            break
        expected = normalise_text(doc)
        got = normalise(_mangle(doc, rng))
        sm = difflib.SequenceMatcher(None, expected, got.text, autojunk=False)
        same += sum(b.size for b in sm.get_matching_blocks())
        total += max(len(expected), len(got.text))
    ratio = same / total
    print(f"\nround-trip identity over {total} chars: {ratio:.5%}")
    assert total >= 200_000
    assert ratio >= 0.9999


def test_dev_corpus_loses_no_han_char_silently() -> None:
    # Every Han character of the raw text is either in the clean text or in a removal listed
    # for the audit table.
    docs = _simplified_dev_docs()
    for doc in docs:
        n = normalise(doc)
        before = Counter(HAN_RX.findall(T2S.convert(doc)))
        kept = "".join(HAN_RX.findall(T2S.convert(n.text)))
        cut = "".join(HAN_RX.findall(T2S.convert("".join(r.text for r in n.removed))))
        assert Counter(kept + cut) == before
        for r in n.removed:
            assert T2S.convert(doc[r.raw_start : r.raw_end]).strip() != ""


def test_dev_corpus_offsets_and_sentences() -> None:
    docs = _simplified_dev_docs()
    for doc in docs[:: max(1, len(docs) // 15)]:
        n = normalise(doc)
        _check_offsets(doc, n)
        _covers_all(n.text, split_sentences(n.text), 250)
        assert normalise_text(n.text) == n.text


# ---------------------------------------------------------------------------------------------
# Properties
_HAN_CHARS = "会议党史文献湖北省委中国會議黨史文獻負責人張明市长总理王建国一二三坏乾"
_PINYIN = ["(huì)", "(yì)", "（dǎng）", "(a)", "(hui)", "(GDP)", "（2018年）", "(e)", "(lǜ)"]
_PUNCT = list("，。！？；：、“”《》（）,.;:?!()【】") + ["……", "——"]
_SPACES = [" ", "  ", "\u3000", "\u3000\u3000", "\n", "\n\n", "\t", "\r\n", "\u200b"]
_OTHER = ["１９５５", "ＧＤＰ", "2.5%", "abc", "XX", "_", "来源：", "打印本页", "市长"]

mixed_text = st.lists(
    st.one_of(
        st.sampled_from(list(_HAN_CHARS)),
        st.sampled_from(_PINYIN),
        st.sampled_from(_PUNCT),
        st.sampled_from(_SPACES),
        st.sampled_from(_OTHER),
        st.text(max_size=3),
    ),
    max_size=60,
).map("".join)

PROP = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROP
@given(st.text())
def test_never_raises_on_arbitrary_text(raw: str) -> None:
    n = normalise(raw)
    _check_offsets(raw, n)
    _covers_all(n.text, split_sentences(n.text), 250)


@PROP
@given(mixed_text)
def test_offsets_properties(raw: str) -> None:
    n = normalise(raw)
    _check_offsets(raw, n)
    for s in range(0, len(n.text) + 1, 3):
        rs, re_ = n.raw_span(s, min(len(n.text), s + 2))
        assert 0 <= rs <= re_ <= len(raw)


@PROP
@given(mixed_text)
def test_idempotent(raw: str) -> None:
    once = normalise_text(raw)
    assert normalise_text(once) == once
    assert normalise(raw).text == once


@PROP
@given(st.one_of(mixed_text, st.text()), st.integers(min_value=1, max_value=40))
def test_split_sentences_properties(raw: str, max_len: int) -> None:
    text = normalise_text(raw)
    _covers_all(text, split_sentences(text, max_len=max_len), max_len)


# ---------------------------------------------------------------------------------------------
# Real scraped pages (tests/data/scraped_pages: dev, and two sets first run blind)
SCRAPED = Path(__file__).parent / "data" / "scraped_pages"


@pytest.mark.parametrize("part, min_sites", [("dev", 5), ("blind", 15), ("blind2", 8)])
def test_scraped_pages_lose_chrome_not_body(part: str, min_sites: int) -> None:
    from pipeline.evaluate.pages import evaluate_page_cleaning

    report = evaluate_page_cleaning(SCRAPED / part)
    assert report["sites"] >= min_sites
    assert report["body_removed"] == []
    assert report["chrome_left"] == []
    assert report["audit_complete"]
    credits = report["credits"]
    assert credits["tp"] >= 2 * credits["fp"]


def test_long_pages_keep_every_paragraph() -> None:
    """tests/data/scraped_pages/long: 14 long documents (work reports, the 19th congress report,
    notices with tables and signatures, regulations), labelled blind. First run: 0 of 1,350
    prose paragraphs lost, 32 chrome lines left (2.3 a page), 2 speaker lines lost."""
    from pipeline.evaluate.pages import evaluate_page_cleaning

    report = evaluate_page_cleaning(SCRAPED / "long")
    counts = report["counts"]
    assert counts["prose_paragraphs"] >= 1300
    assert counts.get("prose_paragraphs_removed", 0) == 0
    assert report["chrome_left_per_page"] <= 1.0
    assert counts.get("body_removed", 0) == 0
    assert counts.get("speaker_removed", 0) == 0
    assert counts["speaker_as_data"] >= 16
    assert report["audit_complete"]


def test_a_second_blind_long_set_keeps_every_paragraph() -> None:
    """tests/data/scraped_pages/long2: 5 city and provincial 2026 work reports from sites not in
    `long`, labelled blind after the fixes made on `long`. First run (before the two chrome
    patterns named below): 0 of 434 prose paragraphs lost, 32 chrome lines left (6.4 a page: a
    pager on one line, "相关报道：" and the related headlines under it), 1 of 10 speaker lines
    lost (上海市市长 龚 正, the name spaced out). With the one-line pager and 相关报道： named:
    12 left (2.4 a page), the related headlines written as full sentences kept as prose. The
    goal of one chrome line a page is not met on this set: the floor below keeps what is."""
    from pipeline.evaluate.pages import evaluate_page_cleaning

    report = evaluate_page_cleaning(SCRAPED / "long2")
    counts = report["counts"]
    assert counts["prose_paragraphs"] >= 430
    assert counts.get("prose_paragraphs_removed", 0) == 0
    assert counts.get("body_removed", 0) == 0
    assert report["chrome_left_per_page"] <= 2.4
    assert counts["speaker_as_data"] >= 9


def test_scraped_pages_without_their_titles() -> None:
    # As .txt files: the title comes from the page's own <title> line or its shape.
    from pipeline.evaluate.pages import evaluate_page_cleaning

    report = evaluate_page_cleaning(SCRAPED / "dev", use_titles=False)
    assert report["body_removed"] == []
    assert len(report["chrome_left"]) <= 1


@pytest.mark.parametrize(
    "raw, text, credits",
    [
        (
            "标题\n习近平同茶农交谈。 新华社记者 谢环驰/摄第一，加强组织领导。",
            "标题\n习近平同茶农交谈。第一，加强组织领导。",
            {"photographer": "谢环驰"},
        ),
        (
            "标题\n新华社北京5月6日电（记者 王晓明、李华）会议召开。",
            "标题\n新华社北京5月6日电会议召开。",
            {"author": "王晓明、李华"},
        ),
        ("标题\n会议召开。\n责任编辑：王某", "标题\n会议召开。", {"editor": "王某"}),
        ("标题\n会议召开。\n编辑：张三  校对：李四", "标题\n会议召开。", {"editor": "张三、李四"}),
        ("标题\n会议召开。\n（责任编辑：\n黄帅\n）", "标题\n会议召开。", {"editor": "黄帅"}),
        ("标题\n□ 本报记者 葛灵丹\n会议召开。", "标题\n会议召开。", {"author": "葛灵丹"}),
        ("标题\n会议召开。（完）", "标题\n会议召开。", {}),
        # Not credits: an interview question, a sentence about reporters.
        ("标题\n记者：你怎样看待补贴问题？", "标题\n记者：你怎样看待补贴问题？", {}),
        ("标题\n记者节快乐。", "标题\n记者节快乐。", {}),
    ],
)
def test_credits_leave_the_text_for_their_columns(
    raw: str, text: str, credits: dict[str, str]
) -> None:
    n = normalise(raw)
    assert n.text == text
    for role in ("author", "photographer", "editor"):
        assert n.metadata.get(role) == credits.get(role)


def test_dev_speeches_photo_credits_leave_no_name_in_the_text() -> None:
    # 新华社记者 鞠鹏/摄 was the 11th most frequent PERSON on the dev corpora: every photo credit
    # must leave the text (so the NER never sees it) and land in the photographer column.
    path = DEV / "xi_speeches_2020.csv"
    if not path.exists():
        pytest.skip("dev corpora not available")
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    photographers: set[str] = set()
    for row in rows:
        n = normalise(row["Text"])
        assert not re.search(r"记者\s*\S{2,3}\s*/?\s*摄", n.text)
        photographers.update(filter(None, n.metadata.get("photographer", "").split("、")))
        for name in photographers:
            assert f"{name}/摄" not in n.text and f"{name} 摄" not in n.text
    assert {"鞠鹏", "谢环驰", "庞兴雷"} <= photographers


@pytest.mark.parametrize(
    "raw, kept",
    [
        # A title on two lines, a speaker's spaced-out name: all content.
        (
            "决胜全面建成小康社会\n夺取新时代中国特色社会主义伟大胜利\n习 近 平\n"
            "同志们：现在，我代表第十八届中央委员会向大会作报告。",
            4,
        ),
        # A signature ending in a date after the last paragraph stays.
        (
            "通知\n各单位要认真贯彻落实本通知精神，确保各项工作落到实处。\n"
            "中共某某市委办公厅\n2023年5月6日",
            4,
        ),
        # A list opened by a colon stays.
        ("会议召开\n出席会议的有：\n张三\n李四\n王五\n赵六\n钱七", 7),
    ],
)
def test_shape_rules_keep_document_structure(raw: str, kept: int) -> None:
    assert len(normalise(raw).text.split("\n")) == kept


def test_dev_corpora_keep_their_text_when_cleaned_as_a_run() -> None:
    # The congress reports and speeches are documents, not web pages: with the run's
    # repetition counts, only the wikisource licence trailer, credits and source lines go.
    from pipeline.normalise import BoilerplateCounter, boilerplate_lines

    docs = _simplified_dev_docs()
    if not docs:
        pytest.skip("dev corpora not available")
    counter = BoilerplateCounter()
    for doc in docs:
        counter.add("dev", boilerplate_lines(doc))
    boilerplate = counter.result().for_group("dev")
    reasons: Counter[str] = Counter()
    for doc in docs:
        n = normalise(doc, boilerplate=boilerplate)
        for r in n.removed:
            reasons[r.reason] += 1
            if r.reason.startswith("chrome:") and r.reason != "chrome:repeated":
                # the 1931 licence of the two first-congress reports is the only such cut
                assert "。" not in r.text, r
    for reason in ("chrome:outside-article", "chrome:duplicate", "chrome:toolbar"):
        assert reasons[reason] == 0, reasons
    assert reasons["chrome:repeated"] >= 200  # the licence trailer of every report


def test_news_documents_of_the_relation_sets_keep_their_text() -> None:
    # 117 news items and reports (relation gold sets): only known widgets, metadata lines and
    # credits may leave; no paragraph, caption, speaker line or closing note.
    data = Path(__file__).parent / "data"
    n_docs = 0
    for path in sorted(data.glob("relations*_docs.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            doc = json.loads(line)
            n = normalise(doc["text"], title_hint=doc.get("title"))
            n_docs += 1
            for r in n.removed:
                assert r.reason in ("chrome:pattern", "metadata", "credit") or r.reason.startswith(
                    "credit:"
                ), (doc["id"], r)
    assert n_docs >= 100


def test_repetition_never_empties_a_document() -> None:
    # Three notices of one file that say the same single sentence: repeated, but content.
    from pipeline.normalise import BoilerplateCounter, boilerplate_lines

    docs = [
        "国务院常务会议。",
        "国务院常务会议。",
        "国务院常务会议。",
        "另一份通知。\n国务院常务会议。",
    ]
    counter = BoilerplateCounter()
    for doc in docs:
        counter.add("f", boilerplate_lines(doc))
    boilerplate = counter.result().for_group("f")
    assert boilerplate  # the line is boilerplate by count
    assert normalise(docs[0], boilerplate=boilerplate).text == "国务院常务会议。"


def test_a_joined_spaced_name_keeps_the_offsets_of_its_characters() -> None:
    """ "龚 正" -> "龚正": 正 maps to the raw 正, not to the space taken out (issue 24: the
    speaker line's raw span then covers the whole line)."""
    from pipeline.normalise import normalise

    raw = (
        "政府工作报告\n上海市市长 龚 正\n各位代表：现在我代表市人民政府，向大会报告工作，请予审议。"
    )
    n = normalise(raw)
    i = n.text.index("龚正")
    assert [raw[n.raw_offsets[k]] for k in (i, i + 1)] == ["龚", "正"]
    (speaker,) = [b for b in n.bylines if b.kind == "speaker"]
    assert raw[speaker.raw_start : speaker.raw_end] == "上海市市长 龚 正"
