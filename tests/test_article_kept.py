"""Cleaning never loses the article (issue 24): long documents keep every body paragraph,
speaker lines become data, and a run says when a document lost prose to cleaning.

The page below is laid out as the scraped 2026 provincial work reports were (a site header, the
title, the delivery and speaker lines, the report broken into runs of paragraphs by a widget and
a sub-head repeated across the site's reports, then the page's own links and footer); its
paragraphs are written after the reports' own wording. Before this change it lost the first
half of the report (chrome:outside-article) and the speaker line (chrome:header).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.core.document import Document
from pipeline.normalise import PROSE_LOSS_ALARM, normalise
from pipeline.normalise.boilerplate import line_key
from pipeline.normalise.bylines import read_byline
from pipeline.run.batch import RunContext, process_batch
from pipeline.run.config import RunConfig

HEADER = ["首页", "|", "新闻", "|", "政务", "|", "服务", "|", "互动"]
REVIEW = [
    "过去一年，面对复杂严峻的外部环境，在省委坚强领导下，全省上下坚持稳中求进工作总基调，"
    "经济社会发展取得新成效。",
    "全省地区生产总值增长5.5%，一般公共预算收入增长3.2%，城乡居民人均可支配收入分别增长"
    "4.5%和6.3%。",
    "我们坚持创新驱动发展，科技创新能力持续增强，数字经济核心产业增加值增长7.1%，新增高新技术"
    "企业4000家。",
    "我们坚持扩大内需，消费和投资稳步回升，社会消费品零售总额增长4.1%，固定资产投资增长3.6%。",
]
PLAN = [
    "做好今年工作，必须坚持以习近平新时代中国特色社会主义思想为指导，全面贯彻党的二十大和二十"
    "届历次全会精神。",
    "扎实做好“三农”工作，全面推进乡村振兴，稳定粮食播种面积，加快建设农业强省，提高农民收入。",
    "深入实施科技创新和人才强省战略，加快建设高水平创新型省份，推动教育科技人才一体发展。",
    "持续保障和改善民生，健全社会保障体系，推进基本公共服务均等化，让发展成果更多更公平惠及全体"
    "人民。",
    "加强生态文明建设，深入打好污染防治攻坚战，推动发展方式绿色转型，建设美丽浙江。",
]
SUBHEAD = "二、2026年工作安排"  # the same in every report of the site: boilerplate by count
DELIVERY = "——2026年1月13日在浙江省第十四届人民代表大会第四次会议上"
SPEAKER = "浙江省省长 刘捷"
LINKS = ["相关新闻", "2026-01-10", "2026-01-11"]
FOOTER = ["【关闭窗口】", "版权所有：浙江省人民政府办公厅", "浙ICP备05000000号"]


def report_page(
    review: list[str] = REVIEW,
    between: list[str] = ("【打印本页】", SUBHEAD),  # type: ignore[assignment]
    plan: list[str] = PLAN,
    after: list[str] = (),  # type: ignore[assignment]
    speaker: str = SPEAKER,
) -> str:
    return "\n".join(
        [
            *HEADER,
            "政府工作报告",
            DELIVERY,
            speaker,
            "各位代表：",
            *review,
            *between,
            *plan,
            *after,
            *LINKS,
            *FOOTER,
        ]
    )


TABLE = ["附件：先进个人名单", "序号", "姓名", "单位", "职务", "1", "张三", "省发展改革委", "处长"]
SIGN_OFF = [
    "附件：1.2025年度先进集体名单",
    "2.2025年度先进个人名单",
    "浙江省人民政府办公厅",
    "2026年1月5日",
    "（此件公开发布）",
]
CHAPTERS = ["第一章 总则", "第二章 监督管理", "第三章 附则"]
ARTICLES = [
    "第一条 为了规范政府信息公开工作，保障公民、法人和其他组织依法获取政府信息，制定本条例。",
    "第二条 本条例所称政府信息，是指行政机关在履行行政管理职能过程中制作或者获取的信息。",
    "第三条 各级人民政府应当加强对政府信息公开工作的组织领导，建立健全工作机制。",
]
LAW = "\n".join(
    [
        *HEADER,
        "浙江省政府信息公开条例",
        "目录",
        *CHAPTERS,
        CHAPTERS[0],
        *ARTICLES,
        CHAPTERS[1],
        *(a.replace("第", "第1", 1) for a in ARTICLES),
        CHAPTERS[2],
        "第十条 本条例自2026年3月1日起施行，各级行政机关应当认真贯彻执行，确保落到实处。",
        *FOOTER,
    ]
)
BOILER = frozenset({line_key(SUBHEAD)})
TITLE = "2026年浙江省政府工作报告"


def _clean(raw: str) -> str:
    return normalise(raw, boilerplate=BOILER, title_hint=TITLE).text


# ---------------------------------------------------------------------------------------------
# Prose that must survive, wherever the page puts chrome around it.
@pytest.mark.parametrize(
    "page, line",
    [
        # The larger half of a report after a widget and a repeated sub-head keeps the smaller
        # half before them (the class that lost 121 paragraphs of 4 reports).
        (report_page(), REVIEW[0]),
        (report_page(), REVIEW[-1]),
        # ... and the other way round: a longer first half keeps the second.
        (report_page(review=REVIEW + PLAN[:3], plan=PLAN[3:]), PLAN[3]),
        (report_page(review=REVIEW + PLAN[:3], plan=PLAN[3:]), PLAN[4]),
        # A pager or a picture caption between the runs is no end of the article.
        (report_page(between=["上一页", "1", "2", "下一页"]), REVIEW[1]),
        (report_page(between=["【打印本页】", "【关闭窗口】", SUBHEAD]), REVIEW[2]),
        # A single paragraph next to the article behind one widget reads as the article.
        (report_page(after=["【打印本页】", PLAN[0]]), PLAN[0]),
        # Speaker and delivery lines stay (and are data: see below); the salutation stays.
        (report_page(), SPEAKER),
        (report_page(), DELIVERY),
        (report_page(speaker="省长 胡玉亭"), "省长 胡玉亭"),
        (report_page(speaker="自治区主席 韦韬"), "自治区主席 韦韬"),
        (report_page(), "各位代表："),
        (report_page(), "政府工作报告"),
        # The repeated sub-head inside the article is the article's.
        (report_page(), SUBHEAD),
        # A table's header row inside the article is no toolbar: numbered cells follow it.
        (report_page(between=TABLE), "姓名"),
        (report_page(between=TABLE), "省发展改革委"),
        # An official document's sign-off: attachments, issuer, date, a note on publication.
        (report_page(after=SIGN_OFF), "附件：1.2025年度先进集体名单"),
        (report_page(after=SIGN_OFF), "浙江省人民政府办公厅"),
        (report_page(after=SIGN_OFF), "2026年1月5日"),
        (report_page(after=SIGN_OFF), "（此件公开发布）"),
        # A law's table of contents: the chapters it lists are printed again below.
        (LAW, "第二章 监督管理"),
        (LAW, "第三章 附则"),
    ],
)
def test_prose_survives(page: str, line: str) -> None:
    assert line in _clean(page).split("\n")


# Chrome that must still go: named by a pattern, repeated across the site's documents, or
# outside the article with nothing that reads as running text.
@pytest.mark.parametrize(
    "page, line",
    [
        (report_page(), "首页"),
        (report_page(), "【打印本页】"),
        (report_page(), "相关新闻"),
        (report_page(), "2026-01-10"),
        (report_page(), "版权所有：浙江省人民政府办公厅"),
        (report_page(), "浙ICP备05000000号"),
        # A link list: headlines (no sentence end) after the article.
        (
            report_page(
                after=["相关新闻", "浙江：打好经济稳进提质攻坚战", "杭州：加快建设世界一流"]
            ),
            "浙江：打好经济稳进提质攻坚战",
        ),
        # A site's copyright notice, even as several full sentences.
        (
            report_page(
                after=[
                    "凡本网注明“来源：浙江在线”的所有作品，版权均属于本网，未经授权不得转载。",
                    "凡本网注明“来源：XXX”的作品，均转载自其它媒体，不代表本网赞同其观点。",
                    "如因作品内容、版权和其它问题需要同本网联系的，请在30日内进行。",
                ]
            ),
            "如因作品内容、版权和其它问题需要同本网联系的，请在30日内进行。",
        ),
        # A toolbar row.
        (report_page(between=["字号 大 中 小", SUBHEAD]), "字号 大 中 小"),
    ],
)
def test_chrome_goes(page: str, line: str) -> None:
    assert line not in _clean(page).split("\n")


def test_whole_report_kept_and_nothing_counted_as_lost() -> None:
    n = normalise(report_page(), boilerplate=BOILER, title_hint=TITLE)
    for line in REVIEW + PLAN:
        assert line in n.text
    assert n.flags["prose_chars"] > 0
    assert not [k for k in n.flags if k.startswith("prose_removed:")]


# ---------------------------------------------------------------------------------------------
# Bylines are data.
@pytest.mark.parametrize(
    "line, kind, person, post, place",
    [
        ("浙江省省长 刘捷", "speaker", "刘捷", "浙江省省长", "浙江省"),
        ("上海市市长 龚正", "speaker", "龚正", "上海市市长", "上海市"),
        ("自治区主席 韦韬", "speaker", "韦韬", "自治区主席", "自治区"),
        ("省长 胡玉亭", "speaker", "胡玉亭", "省长", None),
        ("上海市市长 龚 正", "speaker", "龚正", "上海市市长", "上海市"),
        ("浙江省省长刘捷", "speaker", "刘捷", "浙江省省长", "浙江省"),
        (
            "贵州省人民政府副省长 吴启东",
            "speaker",
            "吴启东",
            "贵州省人民政府副省长",
            "贵州省人民政府",
        ),
        ("刘捷（2026年1月13日）", "speaker", "刘捷", None, None),
        (DELIVERY, "delivered", None, None, None),
        ("——在中国共产党第二十次全国代表大会上的报告", "delivered", None, None, None),
        # Not bylines: a sub-head holding a post, a salutation, a sentence.
        ("加强市长热线建设", None, None, None, None),
        ("市长热线", None, None, None, None),
        ("各位代表：", None, None, None, None),
        ("省长胡玉亭主持会议。", None, None, None, None),
    ],
)
def test_read_byline(
    line: str, kind: str | None, person: str | None, post: str | None, place: str | None
) -> None:
    b = read_byline(line, 0)
    if kind is None:
        assert b is None
        return
    assert b is not None
    assert (b.kind, b.person, b.post, b.place) == (kind, person, post, place)


def test_a_name_alone_is_a_speaker_only_beside_a_date_or_delivery_line() -> None:
    speech = [*HEADER, "在全省经济工作会议上的讲话", "（2025年12月10日）", "王浩", "同志们："]
    n = normalise("\n".join([*speech, *REVIEW, *FOOTER]), title_hint="在全省经济工作会议上的讲话")
    assert n.metadata["speaker"] == "王浩"
    assert "王浩" in n.text.split("\n")
    assert [b.date for b in n.bylines] == ["2025年12月10日"]
    # A page's author tag under the title is no speaker.
    tagged = [*HEADER, "在全省经济工作会议上的讲话", "王浩", *REVIEW, *FOOTER]
    assert "speaker" not in normalise("\n".join(tagged)).metadata


def test_bylines_carry_raw_offsets() -> None:
    raw = report_page()
    n = normalise(raw, boilerplate=BOILER, title_hint=TITLE)
    assert n.metadata["speaker"] == "刘捷"
    assert n.metadata["speaker_post"] == "浙江省省长"
    kinds = {b.kind: b for b in n.bylines}
    assert raw[kinds["speaker"].raw_start : kinds["speaker"].raw_end] == SPEAKER
    assert raw[kinds["delivered"].raw_start : kinds["delivered"].raw_end] == DELIVERY
    assert kinds["delivered"].meeting == "浙江省第十四届人民代表大会第四次会议"


REPORTS = [
    # doc id, title, delivery meeting, speaker line, (person, role, body)
    ("zj", "政府工作报告", "浙江省第十四届人民代表大会第四次会议", "浙江省省长 刘捷",
     ("刘捷", "省长", "浙江省人民政府")),
    ("jl", "政府工作报告", "吉林省第十四届人民代表大会第五次会议", "省长 胡玉亭",
     ("胡玉亭", "省长", "吉林省人民政府")),
    ("sh", "2026年上海市政府工作报告", "上海市第十六届人民代表大会第四次会议", "上海市市长 龚正",
     ("龚正", "市长", "上海市人民政府")),
    ("gx", "2026年广西壮族自治区政府工作报告", "广西壮族自治区第十四届人民代表大会第五次会议",
     "自治区主席 韦韬", ("韦韬", "自治区主席", "广西壮族自治区人民政府")),
]  # fmt: skip


@pytest.fixture(scope="module")
def report_rows() -> dict[str, list[dict]]:
    docs = []
    for doc_id, title, meeting, speaker, _ in REPORTS:
        raw = report_page(speaker=speaker).replace(DELIVERY, f"——2026年1月13日在{meeting}上")
        docs.append(Document(doc_id=doc_id, source_file="reports.jsonl", raw_text=raw, title=title))
    result = process_batch(docs, RunConfig(), RunContext(run_id="t"))
    assert not result.rows.get("errors")
    return result.rows


@pytest.mark.parametrize("doc_id, title, meeting, speaker, fact", REPORTS)
def test_work_report_speaker_holds_the_post(
    report_rows: dict[str, list[dict]],
    doc_id: str,
    title: str,
    meeting: str,
    speaker: str,
    fact: tuple[str, str, str],
) -> None:
    facts = {
        (r["head"], r["role"], r["tail"])
        for r in report_rows["relations"]
        if r["doc_id"] == doc_id and r["relation"] == "holds_position"
    }
    assert fact in facts
    row = next(r for r in report_rows["documents"] if r["doc_id"] == doc_id)
    assert row["speaker"] == fact[0]
    assert row["speaker_post"] == speaker.split()[0]
    assert [b["kind"] for b in row["bylines"]] == ["delivered", "speaker"]
    assert row["prose_removed_share"] == 0.0


def test_byline_rule_names_the_body_by_itself() -> None:
    """The byline rule alone (the text rules may also read the kept line): the place written,
    the title's place, the delivery meeting's place."""
    from pipeline.extract.relations import get_extractor
    from pipeline.nlp.build import annotate, get_nlp

    nlp = get_nlp()
    cases = [
        ("浙江省省长 刘捷", None, None, "浙江省人民政府", None),
        ("省长 胡玉亭", "2026年吉林省政府工作报告", None, "吉林省人民政府", "locality"),
        ("省长 胡玉亭", "政府工作报告", "吉林省第十四届人民代表大会第五次会议", "吉林省人民政府",
         "locality"),
        ("自治区主席 韦韬", "2026年广西壮族自治区政府工作报告", None, "广西壮族自治区人民政府",
         "locality"),
        ("湖北省人民政府省长 周建平", None, None, "湖北省人民政府", None),
        ("省长 胡玉亭", "政府工作报告", None, None, None),  # no place anywhere: no row
    ]  # fmt: skip
    for line, title, meeting, body, resolved in cases:
        text = f"{line}\n各位代表：现在，我代表省人民政府，向大会报告工作，请予审议。"
        b = read_byline(line, 0)
        assert b is not None
        if meeting:
            from dataclasses import replace

            delivered = replace(read_byline(f"——在{meeting}上", 1), raw_start=0)  # type: ignore[arg-type]
            spans = [(delivered, 0, 0), (b, 0, len(line))]
        else:
            spans = [(b, 0, len(line))]
        sdoc = next(iter(annotate(nlp, [text])))
        rows = get_extractor().bylines.holds_position(sdoc, spans, title)
        if body is None:
            assert rows == []
            continue
        assert [(r.head, r.tail, r.rule, r.resolved_from) for r in rows] == [
            (b.person, body, "byline", resolved)
        ]


# ---------------------------------------------------------------------------------------------
# The loss alarm: a page built so that cleaning removes prose (a teaser of another story under
# the article's related links) shows in the run summary and in the report.
def test_loss_alarm_in_summary_and_report(tmp_path: Path) -> None:
    teaser = [
        "省政府召开常务会议，研究部署安全生产和防汛工作，要求各地压实责任、细化措施，确保人民群众"
        "生命财产安全。",
        "会议还研究了其他事项，强调要加强统筹协调，抓好政策落实，推动各项工作取得实效。",
    ]
    lossy = "\n".join(
        [*HEADER, "全省经济运行稳中向好", *REVIEW, *FOOTER[:1], *LINKS, "2026-01-12", *teaser]
    )
    inputs = tmp_path / "in"
    inputs.mkdir()
    records = [
        {"id": "lossy", "title": "全省经济运行稳中向好", "text": lossy},
        {"id": "whole", "title": TITLE, "text": report_page()},
    ]
    (inputs / "pages.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(inputs), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "loss alarm: 1 documents lost more than 2%" in flat
    assert "lossy:" in flat and "chrome:outside-article" in flat
    assert "whole:" not in flat

    docs = pq.read_table(out / "documents").to_pylist()
    share = {d["doc_id"]: d["prose_removed_share"] for d in docs}
    assert share["lossy"] > PROSE_LOSS_ALARM
    assert share["whole"] == 0.0
    # removed_lines stays the audit: every removed teaser line is there.
    removed = {r["text"] for r in pq.read_table(out / "removed_lines").to_pylist()}
    assert set(teaser) <= removed

    html = next((out / "reports").glob("2*.html")).read_text(encoding="utf-8")
    assert "Loss alarm" in html
    assert "lossy" in html and "chrome:outside-article" in html


def test_removal_with_evidence_is_listed_but_raises_no_alarm() -> None:
    """A licence trailer repeated under every document of the source goes (by repetition), is
    named among the reasons, and is no loss: the alarm is for what shape rules take."""
    from pipeline.normalise import BoilerplateCounter, boilerplate_lines

    licence = "本作品在全世界都属于公有领域，因为作者逝世已经超过100年，并于1929年前出版。"
    # Three reports of one source, each with its own text (in no more than two of them).
    texts = [(REVIEW, PLAN), (PLAN[:2], REVIEW[:2]), (REVIEW[2:], PLAN[2:])]
    raws = [report_page(review=a, plan=b) + "\n" + licence for a, b in texts]
    counter = BoilerplateCounter()
    for raw in raws:
        counter.add("reports.jsonl", boilerplate_lines(raw))
    ctx = RunContext(run_id="t", boilerplate=counter.result())
    docs = [
        Document(doc_id=str(k), source_file="reports.jsonl", raw_text=raw, title=TITLE)
        for k, raw in enumerate(raws)
    ]
    rows = process_batch(docs, RunConfig(), ctx).rows["documents"]
    for row in rows:
        assert row["prose_removed_reasons"].startswith("chrome:repeated ")
        assert row["prose_removed_share"] == 0.0


LONG = Path(__file__).parent / "data" / "scraped_pages" / "long"


def test_long_work_reports_give_their_speakers_post() -> None:
    """The real 2026 work reports of tests/data/scraped_pages/long: the speaker in documents and
    holds_position(person, 省长/自治区主席, <province>人民政府) for every one of them."""
    gold = [json.loads(line) for line in open(LONG / "gold.jsonl", encoding="utf-8")]
    reports = [g for g in gold if g.get("speaker") and g["speaker"]["body"].endswith("人民政府")]
    assert len(reports) >= 8
    docs = [
        Document(
            doc_id=g["file"],
            source_file=f"{g['site']}.jsonl",
            raw_text=(LONG / g["file"]).read_text(encoding="utf-8"),
            title=g["title"],
        )
        for g in reports
    ]
    rows = process_batch(docs, RunConfig(), RunContext(run_id="t")).rows
    speakers = {r["doc_id"]: r["speaker"] for r in rows["documents"]}
    posts = {
        (r["doc_id"], r["head"], r["tail"])
        for r in rows["relations"]
        if r["relation"] == "holds_position"
    }
    for g in reports:
        person, body = g["speaker"]["person"], g["speaker"]["body"]
        assert speakers[g["file"]] == person, g["file"]
        assert (g["file"], person, body) in posts, g["file"]
