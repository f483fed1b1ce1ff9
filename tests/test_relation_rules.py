"""Each relation rule on hand-built spaCy Docs (words and entities given, no NER model).

A segmentation change in the NER model cannot break these: the Doc is written out by hand, the
way spaCy tests its own components (`Doc(vocab, words=..., ents=...)`).
"""

from __future__ import annotations

import pytest
from spacy.tokens import Doc
from spacy.vocab import Vocab

from pipeline.evaluate.relations import canonical_role, relation_key
from pipeline.extract.persons import PersonNames
from pipeline.extract.relations import Context, RelationExtractor
from pipeline.extract.relations.meetings import MeetingNames

_END = frozenset("。！？")


def make_doc(*parts: str | tuple[str, str]) -> Doc:
    """Words with optional labels: make_doc("省长", ("张三", "PERSON"), "。"). A sentence ends
    after 。/！/？. Multi-word entities are written as one word."""
    words = [p if isinstance(p, str) else p[0] for p in parts]
    labels = [None if isinstance(p, str) else p[1] for p in parts]
    ents = [f"B-{lab}" if lab else "O" for lab in labels]
    starts = [i == 0 or words[i - 1] in _END for i in range(len(words))]
    return Doc(Vocab(), words=words, spaces=[False] * len(words), ents=ents, sent_starts=starts)


@pytest.fixture(scope="module")
def ex() -> RelationExtractor:
    return RelationExtractor()


def facts(ex: RelationExtractor, doc: Doc, title: str | None = None, year: int | None = None):
    return {(r.relation, r.head, r.tail, r.role) for r in ex.extract(doc, title=title, year=year)}


P, ORG, POS, M, G, D, DOC = "PERSON", "ORG", "POSITION", "MEETING", "GPE", "DATE", "DOCUMENT"


# ---------------------------------------------------------------------------------------------
# locality


def test_title_locality_does_not_take_the_year(ex: RelationExtractor) -> None:
    ctx = Context()
    ex.localities.from_title(ctx, "2026年吉林省政府工作报告")
    assert ctx.localities["省"] == "吉林省"


@pytest.mark.parametrize("name", ["在全省", "的湖北省", "2026年湖北省", "本市"])
def test_register_ignores_non_places(ex: RelationExtractor, name: str) -> None:
    ctx = Context()
    ex.localities.register(ctx, name)
    assert not any(v.startswith(("年", "的", "在", "本", "2")) for v in ctx.localities.values())


def test_work_report_head_of_government(ex: RelationExtractor) -> None:
    doc = make_doc(("省长", POS), ("张三", P), "作", ("政府工作报告", DOC), "。")
    found = facts(ex, doc, title="2026年吉林省政府工作报告")
    assert ("holds_position", "张三", "吉林省人民政府", "省长") in found
    assert not any(f[2].startswith("年") for f in found)


def test_acting_mayor_of_the_city(ex: RelationExtractor) -> None:
    doc = make_doc(("代市长", POS), ("刘奇", P), "代表", ("宁波市人民政府", ORG), "作报告", "。")
    assert ("holds_position", "刘奇", "宁波市人民政府", "代市长") in facts(ex, doc)


# ---------------------------------------------------------------------------------------------
# posts


def test_compound_title_gives_three_bodies(ex: RelationExtractor) -> None:
    doc = make_doc(
        ("中共中央", ORG), ("总书记", POS), "、", ("国家主席", POS), "、", ("中央军委主席", POS),
        ("习近平", P), "出席", "。",
    )  # fmt: skip
    found = {f for f in facts(ex, doc) if f[0] == "holds_position"}
    assert found == {
        ("holds_position", "习近平", "中共中央", "总书记"),
        ("holds_position", "习近平", "中华人民共和国", "国家主席"),
        ("holds_position", "习近平", "中央军委", "中央军委主席"),
    }


def test_politburo_standing_member_belongs_to_the_politburo(ex: RelationExtractor) -> None:
    doc = make_doc(("中共", ORG), ("中央政治局常委", POS), "、", ("国务院", ORG), ("副总理", POS),
                   ("韩正", P), "。")  # fmt: skip
    found = facts(ex, doc)
    assert ("holds_position", "韩正", "中共中央政治局", "中央政治局常委") in found
    assert ("holds_position", "韩正", "国务院", "副总理") in found
    assert not any(f[2] == "中共中央" and f[3] == "副总理" for f in found)


def test_state_before_head_post(ex: RelationExtractor) -> None:
    doc = make_doc(("中华人民共和国", G), ("主席", POS), ("毛泽东", P), "。")
    assert ("holds_position", "毛泽东", "中华人民共和国", "主席") in facts(ex, doc)


def test_foreign_head_of_government_is_not_the_state_council(ex: RelationExtractor) -> None:
    doc = make_doc(("印度", G), ("总理", POS), ("莫迪", P), "。")
    assert not [f for f in facts(ex, doc) if f[2] == "国务院"]


def test_election_series(ex: RelationExtractor) -> None:
    doc = make_doc(
        "会议", "选举", ("刘少奇", P), "为", ("中华人民共和国", G), ("主席", POS), "，",
        ("宋庆龄", P), "、", ("董必武", P), "为", ("副主席", POS), "，",
        ("朱德", P), "为", ("全国人大常委会", ORG), ("委员长", POS), "。",
    )  # fmt: skip
    found = facts(ex, doc)
    assert {
        ("holds_position", "刘少奇", "中华人民共和国", "主席"),
        ("holds_position", "宋庆龄", "中华人民共和国", "副主席"),
        ("holds_position", "董必武", "中华人民共和国", "副主席"),
        ("holds_position", "朱德", "全国人大常委会", "委员长"),
    } <= found


def test_appointment_list_under_its_verb(ex: RelationExtractor) -> None:
    # A 议案 lists appointments one per line under "任命：", with 兼 for a concurrent post.
    doc = make_doc(
        "任命", "：", "\n", ("高志远", P), "兼", ("外交部", ORG), ("部长", POS), "，", "\n",
        ("林少川", P), "为", ("粮食部", ORG), ("部长", POS), "，", "\n",
        ("吴德明", P), "为", ("第二商业部", ORG), ("部长", POS), "。",
    )  # fmt: skip
    assert facts(ex, doc) == {
        ("holds_position", "高志远", "外交部", "部长"),
        ("holds_position", "林少川", "粮食部", "部长"),
        ("holds_position", "吴德明", "第二商业部", "部长"),
    }


def test_appointment_names_with_a_note_and_a_second_verb(ex: RelationExtractor) -> None:
    doc = make_doc(
        "大会", "选举", ("周立新", P), "为", ("全国人大常委会", ORG), ("委员长", POS), "，",
        "任命", ("何文", P), "、", ("陈小青", P), "(女)", "、", ("赵平", P), "为",
        ("外交部", ORG), ("副部长", POS), "。",
    )  # fmt: skip
    assert {
        ("holds_position", "周立新", "全国人大常委会", "委员长"),
        ("holds_position", "何文", "外交部", "副部长"),
        ("holds_position", "陈小青", "外交部", "副部长"),
        ("holds_position", "赵平", "外交部", "副部长"),
    } == facts(ex, doc)


def test_short_body_name_is_the_full_name_written_before(ex: RelationExtractor) -> None:
    doc = make_doc(
        ("中央人民政府政务院", ORG), ("总理", POS), ("孙文华", P), "以下", "，", "另设", "副总理",
        "。", "任命", ("钱立", P), "、", ("李长江", P), "为", ("政务院", ORG), ("副总理", POS),
        "。",
    )  # fmt: skip
    found = facts(ex, doc)
    assert ("holds_position", "钱立", "中央人民政府政务院", "副总理") in found
    assert ("holds_position", "李长江", "中央人民政府政务院", "副总理") in found
    # A body a post names itself keeps its usual form.
    doc = make_doc(
        ("中华人民共和国国务院", ORG), "发布", "公告", "。",
        "任命", ("钱立", P), "为", ("国务院", ORG), ("副秘书长", POS), "。",
    )  # fmt: skip
    assert ("holds_position", "钱立", "国务院", "副秘书长") in facts(ex, doc)


def test_elected_and_term_named_bodies(ex: RelationExtractor) -> None:
    doc = make_doc(
        ("钱立", P), "当选", ("山西省十四届人大常委会", ORG), ("主任", POS), "，",
        ("孙文华", P), "当选", ("山西省人民政府", ORG), ("省长", POS), "。",
        "选举", ("周新", P), "为", ("浙江省", G), "十三届", ("人大常委会", ORG), ("主任", POS),
        "，",
        ("李长江", P), "为", "省十三届", ("人大常委会", ORG), ("副主任", POS), "。",
    )  # fmt: skip
    assert facts(ex, doc, title="浙江省人大会议") >= {
        ("holds_position", "钱立", "山西省十四届人大常委会", "主任"),
        ("holds_position", "孙文华", "山西省人民政府", "省长"),
        ("holds_position", "周新", "浙江省十三届人大常委会", "主任"),
        ("holds_position", "李长江", "浙江省十三届人大常委会", "副主任"),
    }


def test_past_term_and_membership_are_not_posts(ex: RelationExtractor) -> None:
    doc = make_doc(
        "出席", "会议", "的", "有", "上届", ("省政协", ORG), ("副主席", POS), ("钱立", P), "、",
        ("孙文华", P), "，", ("政协委员", POS), ("李长江", P), "。",
    )  # fmt: skip
    assert not [f for f in facts(ex, doc, title="贵州省政协会议") if f[0] == "holds_position"]


def test_sitting_of_a_session_is_named_with_the_session(ex: RelationExtractor) -> None:
    """Conventions 2 (issue 27): the sitting the item reports is distinct from its session."""
    doc = make_doc(
        ("山西省十四届人大一次会议", M), "举行", ("第三次全体会议", M), "。",
        ("钱立", P), "主持", "会议", "。",
    )  # fmt: skip
    assert facts(ex, doc) == {("chairs", "钱立", "山西省十四届人大一次会议第三次全体会议", None)}


def test_session_with_no_sitting_written_is_the_session(ex: RelationExtractor) -> None:
    doc = make_doc(("山西省十四届人大一次会议", M), "举行", "。", ("钱立", P), "主持", "会议", "。")
    assert ("chairs", "钱立", "山西省十四届人大一次会议", None) in facts(ex, doc)


def test_dismissal_gives_no_post(ex: RelationExtractor) -> None:
    doc = make_doc("免去", ("何振华", P), "的", ("海南省发展和改革委员会", ORG), ("主任", POS),
                   "职务", "。")  # fmt: skip
    assert not facts(ex, doc)


def test_name_then_own_bodied_post(ex: RelationExtractor) -> None:
    doc = make_doc(("栗战书", P), ("委员长", POS), "主持", "闭幕会", "。")
    assert ("holds_position", "栗战书", "全国人大常委会", "委员长") in facts(ex, doc)


def test_name_then_ambiguous_post_gives_nothing(ex: RelationExtractor) -> None:
    doc = make_doc(("毛泽东", P), ("主席", POS), "接见", "代表", "。")
    assert not facts(ex, doc)


def test_transliterated_name_cut_at_the_dot_is_joined(ex: RelationExtractor) -> None:
    doc = make_doc(("全国人大常委会", ORG), ("副委员长", POS), ("王晨", P), "、", ("艾力更", P),
                   "·依明", ("巴海", "LOC"), "、", ("陈竺", P), "出席", "会议", "。")  # fmt: skip
    found = facts(ex, doc)
    assert ("holds_position", "艾力更·依明巴海", "全国人大常委会", "副委员长") in found
    assert ("holds_position", "陈竺", "全国人大常委会", "副委员长") in found


def test_function_word_glued_to_a_name_is_not_a_name(ex: RelationExtractor) -> None:
    doc = make_doc(("国务院", ORG), ("副秘书长", POS), ("的郭玮", P), "。")
    assert not facts(ex, doc)


# ---------------------------------------------------------------------------------------------
# events

_LEAD = (("全国教育工作会议", M), "在", ("北京", G), "召开", "。")


def test_attends_and_addresses_the_reported_meeting(ex: RelationExtractor) -> None:
    doc = make_doc(*_LEAD, ("部长", POS), ("黄启明", P), "出席", "会议", "并", "讲话", "。")
    found = facts(ex, doc)
    assert ("attends", "黄启明", "全国教育工作会议", None) in found
    assert ("addresses", "黄启明", "全国教育工作会议", None) in found


def test_no_meeting_reported_no_event(ex: RelationExtractor) -> None:
    doc = make_doc(("党的六大", M), "以来", "。", ("习近平", P), "主持", "会议", "并", "讲话", "。")
    assert not [f for f in facts(ex, doc) if f[0] in ("chairs", "addresses")]


@pytest.mark.parametrize(
    "parts",
    [
        (("毛主席", P), "的", "讲话", "和", "报告", "。"),  # a noun, not an act
        (("周总理", P), "负责", "，", "委托", ("邓小平", P), "主持", "中央", "日常工作", "。"),
        (("胡说", P), "参加过", "民主革命", "。"),  # 参加过: history, and no meeting
        ("四年前", "，", ("毛主席", P), "亲自", "主持召开", "了", ("党的十大", M), "。"),
        (("习近平", P), "，", "我", "主持召开", ("中央政治局常委会会议", M), "。"),
        ("尊敬的", ("古特雷斯", P), ("秘书长", POS), "先生", "：", "很高兴", "出席", "会议", "。"),
    ],
)
def test_not_an_event_of_the_named_person(ex: RelationExtractor, parts: tuple) -> None:
    doc = make_doc(*_LEAD, *parts)
    assert not [f for f in facts(ex, doc) if f[0] in ("chairs", "attends", "addresses")]


def test_year_long_before_the_document_is_history(ex: RelationExtractor) -> None:
    doc = make_doc(("2004年", D), "，", ("习近平", P), "出席", ("纪念大会", M), "。")
    assert not facts(ex, doc, year=2020)
    assert ("attends", "习近平", "纪念大会", None) in facts(ex, doc, year=2004)


def test_list_with_group_noun_acts_together(ex: RelationExtractor) -> None:
    doc = make_doc(*_LEAD, ("李鹏", P), "、", ("乔石", P), "等", "领导同志", "出席", "会议", "。")
    found = facts(ex, doc)
    assert ("attends", "李鹏", "全国教育工作会议", None) in found
    assert ("attends", "乔石", "全国教育工作会议", None) in found


def test_others_after_the_name_block_it(ex: RelationExtractor) -> None:
    doc = make_doc(*_LEAD, ("朱震宇", P), "等", "获奖", "个人", "代表", "作了", "事迹报告", "。")
    assert not [f for f in facts(ex, doc) if f[1] == "朱震宇" and f[0] != "holds_position"]


def test_passive_chair(ex: RelationExtractor) -> None:
    doc = make_doc(*_LEAD, "开幕会", "由", ("汪鸿雁", P), "主持", "。")
    assert ("chairs", "汪鸿雁", "全国教育工作会议", None) in facts(ex, doc)


def test_named_meeting_after_trigger(ex: RelationExtractor) -> None:
    doc = make_doc(("习近平", P), "在", ("北京", G), "主持召开", ("专家学者座谈会", M), "并",
                   "发表", "重要讲话", "。")  # fmt: skip
    found = facts(ex, doc)
    assert ("chairs", "习近平", "专家学者座谈会", None) in found
    assert ("addresses", "习近平", "专家学者座谈会", None) in found


def test_event_tail_is_the_fullest_name(ex: RelationExtractor) -> None:
    doc = make_doc(
        ("湖北省十一届人大一次会议", M), "开幕", "。", ("代省长", POS), ("李鸿忠", P), "作",
        "报告", "。", ("湖北省第十一届人民代表大会第一次会议", M), "。",
    )  # fmt: skip
    found = facts(ex, doc)
    assert ("addresses", "李鸿忠", "湖北省第十一届人民代表大会第一次会议", None) in found


def test_meeting_names_same_session() -> None:
    names = MeetingNames()
    assert names.key("省政协十二届四次会议") == names.key("政协第十二届山西省委员会第四次会议")
    assert names.key("十一届三中全会") != names.key("十一届人大三次会议")
    assert names.from_title("政协第十二届山西省委员会第四次会议开幕") == [
        "政协第十二届山西省委员会第四次会议"
    ]


# ---------------------------------------------------------------------------------------------
# issues


def test_issue_by_joint_bodies(ex: RelationExtractor) -> None:
    doc = make_doc(("财政部", ORG), "、", ("税务总局", ORG), "近日", "发布", "了",
                   ("《关于延续实施有关税费优惠政策的公告》", DOC), "。")  # fmt: skip
    found = facts(ex, doc)
    assert ("issues", "财政部", "《关于延续实施有关税费优惠政策的公告》", None) in found
    assert ("issues", "税务总局", "《关于延续实施有关税费优惠政策的公告》", None) in found


def test_no_issue_without_a_document(ex: RelationExtractor) -> None:
    doc = make_doc(("国务院", ORG), "发布", "消息", "。")
    assert not facts(ex, doc)


# ---------------------------------------------------------------------------------------------
# confidence, persons, scoring


def test_confidence_follows_the_rule(ex: RelationExtractor) -> None:
    doc = make_doc(*_LEAD, ("国务院", ORG), ("副总理", POS), ("孙春兰", P), "出席", "会议", "。")
    rows = {r.relation: r for r in ex.extract(doc)}
    assert 0 < rows["attends"].confidence <= 1
    assert rows["holds_position"].rule == "org_position_person"
    assert rows["holds_position"].confidence >= 0.8


def test_person_names_merge_aliases_and_titles() -> None:
    names = PersonNames().resolve(
        ["毛主席", "毛泽东", "毛泽东同志", "周总理", "小平同志", "习近平总书记", "李强总理",
         "李强", "李书记", "王书记", "王伟", "王刚"],
        [("王伟", "市委书记")],
    )  # fmt: skip
    assert names["毛主席"] == names["毛泽东"] == names["毛泽东同志"] == "毛泽东"
    assert names["周总理"] == "周恩来" and names["小平同志"] == "邓小平"
    assert names["习近平总书记"] == "习近平" and names["李强总理"] == "李强"
    assert names["李书记"] == "李强"  # the one 李 the document names
    assert names["王书记"] == "王伟"  # two 王: the one holding a 书记 post
    assert names["王刚"] == "王刚"


def test_surname_form_stays_when_ambiguous() -> None:
    names = PersonNames().resolve(["王书记", "王伟", "王刚"])
    assert names["王书记"] == "王书记"


def test_scoring_conventions() -> None:
    assert canonical_role("国务院总理", "中华人民共和国国务院") == "总理"
    assert canonical_role("委员长", "全国人民代表大会常务委员会") == "委员长"
    gold = {"doc_id": "d", "relation": "holds_position", "head": "周恩來", "tail": "國務院",
            "role": "總理"}  # fmt: skip
    pred = {"doc_id": "d", "relation": "holds_position", "head": "周恩来", "tail": "国务院",
            "role": "国务院总理"}  # fmt: skip
    assert relation_key(gold) == relation_key(pred)


def test_meeting_convened_without_a_name_is_not_the_previous_one(ex: RelationExtractor) -> None:
    doc = make_doc(
        *_LEAD, ("中共中央政治局", ORG), "召开", "“", "不忘初心", "”", "专题民主生活会", "，",
        ("习近平", P), "主持", "会议", "。",
    )  # fmt: skip
    assert not [f for f in facts(ex, doc) if f[0] == "chairs"]
    later = make_doc(*_LEAD, ("习近平", P), "主持", "会议", "。")
    assert ("chairs", "习近平", "全国教育工作会议", None) in facts(ex, later)


def test_other_meeting_in_a_report_on_the_title_meeting_is_narrated(ex: RelationExtractor) -> None:
    doc = make_doc(
        ("中国共产党第九次全国代表大会", M), "开幕", "。", ("毛主席", P), "主持召开", "了",
        ("党的八届十一中全会", M), "。",
    )  # fmt: skip
    title = "在中国共产党第九次全国代表大会上的报告"
    assert not [f for f in facts(ex, doc, title=title) if f[0] == "chairs"]
    assert ("chairs", "毛主席", "党的八届十一中全会", None) in facts(ex, doc)


def test_speeches_by_a_counted_list_at_the_meeting(ex: RelationExtractor) -> None:
    doc = make_doc(
        *_LEAD, ("毛泽东", P), "向", "大会", "致开幕词", "。", ("黄炎培", P), "、",
        ("李立三", P), "等", "十二人", "在", "今天", "的", "会上", "相继", "发表讲演", "。",
    )  # fmt: skip
    found = facts(ex, doc)
    for name in ("毛泽东", "黄炎培", "李立三"):
        assert ("addresses", name, "全国教育工作会议", None) in found


# ---------------------------------------------------------------------------------------------
# relations_blind6 classes: bodies written short before the text names their place, decisions
# without an appointing verb before the names, removal lists


@pytest.mark.parametrize("name", ["经县", "由市", "对区"])
def test_a_preposition_is_no_one_character_place(ex: RelationExtractor, name: str) -> None:
    """经县委同意, 由市政府: the preposition and the level are no place (经县 → 经县县委)."""
    ctx = Context()
    ex.localities.register(ctx, name)
    assert ctx.localities == {}


@pytest.mark.parametrize(
    "post, place, expected",
    [
        ("县委书记", "户县", "户县县委"),
        ("县委书记", "海安县", "海安县委"),
        ("市委书记", "津市", "津市市委"),
    ],
)
def test_one_character_place_repeats_its_level(
    ex: RelationExtractor, post: str, place: str, expected: str
) -> None:
    """户县 + 县委书记 → 户县县委 (not 户县委); named after the post, in the same text."""
    doc = make_doc((post, POS), ("张三", P), "在", (place, G), "调研", "。")
    tails = {t for r, h, t, _ in facts(ex, doc) if r == "holds_position" and h == "张三"}
    assert tails == {expected}


def test_body_written_short_before_the_text_names_its_place(ex: RelationExtractor) -> None:
    """ "区人大常委会主任颜建平主持会议" in the lead, 虹口区 named two paragraphs on."""
    doc = make_doc(
        ("区人大常委会", ORG), ("主任", POS), ("颜建平", P), "主持", "会议", "。",
        "会议", "任命", ("杨鼎忠", P), "为", ("虹口区人民政府办公室", ORG), ("主任", POS),
        "。",
    )  # fmt: skip
    found = facts(ex, doc)
    assert ("holds_position", "颜建平", "虹口区人大常委会", "主任") in found
    assert ("holds_position", "杨鼎忠", "虹口区人民政府办公室", "主任") in found


@pytest.mark.parametrize(
    "parts",
    [
        ("根据", "表决结果", "，", ("李岚清", P), "、", ("钱其琛", P), "为", ("国务院", ORG),
         ("副总理", POS), "。"),
        ("会议", "通过", "决议", "，", ("李岚清", P), "、", ("钱其琛", P), "继续任",
         ("国务院", ORG), ("副总理", POS), "；"),
    ],
)  # fmt: skip
def test_decision_without_a_verb_before_the_names(ex: RelationExtractor, parts: tuple) -> None:
    found = facts(ex, make_doc(*parts))
    for name in ("李岚清", "钱其琛"):
        assert ("holds_position", name, "国务院", "副总理") in found


def test_names_in_a_removal_list_lose_the_post(ex: RelationExtractor) -> None:
    doc = make_doc(
        "免去", "：", "\n", ("周恩来", P), "兼任", ("外交部", ORG), ("部长", POS), "职务", "，",
        "\n", ("王鹤寿", P), "兼任", ("国家建设委员会", ORG), ("主任", POS), "职务", "。",
    )  # fmt: skip
    assert not {f for f in facts(ex, doc) if f[0] == "holds_position"}


def test_others_named_as_a_group_after_the_list_act_with_it(ex: RelationExtractor) -> None:
    doc = make_doc(
        *_LEAD, ("副委员长", POS), ("彭冲", P), "，", ("国务委员", POS), ("姬鹏飞", P), "，",
        "党政军", "有关部门", "负责人", "和", "各界人士", "，", "出席", "了", "会议", "。",
    )  # fmt: skip
    found = facts(ex, doc)
    assert ("attends", "彭冲", "全国教育工作会议", None) in found
    assert ("attends", "姬鹏飞", "全国教育工作会议", None) in found


def test_title_naming_who_attended_names_the_meeting_after_the_verb() -> None:
    names = MeetingNames()
    assert names.from_title("八千台胞参加首届海峡论坛") == ["首届海峡论坛"]
    assert names.from_title("政协第十二届山西省委员会第四次会议开幕") == [
        "政协第十二届山西省委员会第四次会议"
    ]


_TWO_BODIES = (("中共中央台办", ORG), "、", ("国务院台办", ORG), ("主任", POS), ("王毅", P), "。")
_FUSED = (("外交", ORG), ("部长", POS), ("李肇星", P), "出席", "。")
_ENVOY = (("多哥", G), ("驻华大使", POS), ("塔·阿马", P), "致辞", "。")
_ALTERNATE = (
    ("中共中央政治局", ORG), ("候补委员", POS), "、", ("国务委员", POS), ("陈慕华", P), "。",
)  # fmt: skip


@pytest.mark.parametrize(
    "parts, expected",
    [
        # one title for two bodies: a row for each
        (_TWO_BODIES, {("王毅", "中共中央台办", "主任"), ("王毅", "国务院台办", "主任")}),
        # a ministry's head written fused: 外交 + 部长
        (_FUSED, {("李肇星", "外交部", "部长")}),
        # a state's envoy
        (_ENVOY, {("塔·阿马", "多哥", "驻华大使")}),
        # alternate members
        (_ALTERNATE, {("陈慕华", "中共中央政治局", "候补委员"), ("陈慕华", "国务院", "国务委员")}),
    ],
)
def test_posts_of_unseen_kinds(ex: RelationExtractor, parts: tuple, expected: set) -> None:
    found = {(h, t, r) for rel, h, t, r in facts(ex, make_doc(*parts)) if rel == "holds_position"}
    assert found == expected


def test_deputy_after_the_head_shares_the_body(ex: RelationExtractor) -> None:
    doc = make_doc(
        ("国家统计局", ORG), ("局长", POS), ("宋立强", P), "作", "报告", "，", ("副局长", POS),
        ("马晓燕", P), "主持", "会议", "，", "移植外科", ("副局长", POS), ("朱震宇", P), "。",
    )  # fmt: skip
    found = {(h, t, r) for rel, h, t, r in facts(ex, doc) if rel == "holds_position"}
    assert ("马晓燕", "国家统计局", "副局长") in found
    # a deputy title right after other words belongs to a body not recognised, not the head's
    assert not any(h == "朱震宇" for h, _, _ in found)


def test_region_head_and_short_local_courts(ex: RelationExtractor) -> None:
    doc = make_doc(
        ("香港特别行政区", G), ("行政长官", POS), ("梁振英", P), "出席", "。",
        ("区法院", ORG), ("副院长", POS), ("沈品培", P), "列席", "。",
        "会议", "任命", ("杨鼎忠", P), "为", ("虹口区人民政府办公室", ORG), ("主任", POS), "。",
    )  # fmt: skip
    found = {(h, t, r) for rel, h, t, r in facts(ex, doc) if rel == "holds_position"}
    assert ("梁振英", "香港特别行政区", "行政长官") in found
    assert ("沈品培", "虹口区人民法院", "副院长") in found


@pytest.mark.parametrize("lead", [("还", "有"), ("的", "省领导", "有", "：")])
def test_people_listed_after_the_meeting_attended_it(ex: RelationExtractor, lead: tuple) -> None:
    """ "应邀出席大会的省领导有：A，B等", "参加会议的还有A、B"."""
    words = ("的", *lead) if lead[0] == "还" else lead
    doc = make_doc(
        *_LEAD, "应邀", "出席", "大会", *words, ("省委书记", POS), ("石宗源", P), "，",
        ("省长", POS), ("石秀诗", P), "等", "。",
    )  # fmt: skip
    found = facts(ex, doc)
    assert ("attends", "石宗源", "全国教育工作会议", None) in found
    assert ("attends", "石秀诗", "全国教育工作会议", None) in found


def test_people_listed_after_a_non_meeting_did_not_attend_one(ex: RelationExtractor) -> None:
    doc = make_doc(*_LEAD, "参加", "会见", "的", "有", "：", ("国务委员", POS), ("张发强", P), "。")
    assert not {f for f in facts(ex, doc) if f[0] == "attends"}


def test_long_list_opening_the_sentence_may_end_with_a_comma(ex: RelationExtractor) -> None:
    """ "中华人民共和国主席毛泽东、副主席朱德，…最高人民检察院检察长张鼎丞，出席了会议的开幕式"."""
    doc = make_doc(
        *_LEAD, ("中华人民共和国", G), ("主席", POS), ("毛泽东", P), "、", ("副主席", POS),
        ("朱德", P), "，", ("中华人民共和国全国人民代表大会常务委员会", ORG), ("副委员长", POS),
        ("宋庆龄", P), "、", ("林伯渠", P), "，", ("最高人民检察院", ORG), ("检察长", POS),
        ("张鼎丞", P), "，", "出席", "了", "会议", "的", "开幕式", "。",
    )  # fmt: skip
    attended = {h for rel, h, _, _ in facts(ex, doc) if rel == "attends"}
    assert attended == {"毛泽东", "朱德", "宋庆龄", "林伯渠", "张鼎丞"}


def test_an_object_before_a_comma_is_no_list(ex: RelationExtractor) -> None:
    doc = make_doc(
        *_LEAD, ("李克强", P), "会见", "了", ("张三", P), "、", ("李四", P), "、", ("王五", P),
        "，", "出席", "了", "会议", "。",
    )  # fmt: skip
    attended = {h for rel, h, _, _ in facts(ex, doc) if rel == "attends"}
    assert not attended & {"张三", "李四", "王五"}


def test_title_locality_starts_at_a_province_inside_it(ex: RelationExtractor) -> None:
    ctx = Context()
    ex.localities.from_title(ctx, "栗战书任黑龙江省代理省长 杜家毫孙尧黄建盛任副省长")
    assert ctx.localities["省"] == "黑龙江省"


@pytest.mark.parametrize(
    "a, b",
    [
        ({"tail": "浙江大学", "role": "党委书记"}, {"tail": "浙江大学党委", "role": "书记"}),
        ({"tail": "教育部", "role": "党组书记"}, {"tail": "教育部党组", "role": "书记"}),
    ],
)
def test_scorer_reads_a_committee_in_the_role_or_the_tail_alike(a: dict, b: dict) -> None:
    base = {"doc_id": "d", "relation": "holds_position", "head": "张曦"}
    assert relation_key({**base, **a}) == relation_key({**base, **b})


def test_notice_heading_names_its_issuers(ex: RelationExtractor) -> None:
    doc = make_doc(
        ("成都市发展和改革委员会", ORG), " ", ("中共成都市委社会工作部", ORG), " ", "关于", "印发",
        "成都市", "实施方案", "的", "通知", "\n", "现", "将", ("《成都市实施方案》", DOC), "印发",
        "给", "你们", "。",
    )  # fmt: skip
    found = {(r, h, t) for r, h, t, _ in facts(ex, doc) if r == "issues"}
    assert found == {
        ("issues", "成都市发展和改革委员会", "《成都市实施方案》"),
        ("issues", "中共成都市委社会工作部", "《成都市实施方案》"),
    }


def test_a_sentence_with_guanyu_yinfa_is_no_heading(ex: RelationExtractor) -> None:
    doc = make_doc(
        ("省政府", ORG), "近日", "召开", "会议", "研究", "关于", "印发", "方案", "的", "通知", "。"
    )
    assert not {f for f in facts(ex, doc) if f[0] == "issues"}


def test_scorer_reads_brackets_of_either_width_alike() -> None:
    base = {"doc_id": "d", "relation": "issues", "head": "牟定县人民政府办公室", "role": None}
    a = relation_key({**base, "tail": "《牟定县突发环境事件应急预案（试行）》"})
    assert a == relation_key({**base, "tail": "《牟定县突发环境事件应急预案(试行)》"})


def test_an_unnamed_event_is_known_by_its_kind(ex: RelationExtractor) -> None:
    doc = make_doc(
        ("国务院", ORG), ("总理", POS), ("赵紫阳", P), "今晚", "举行", "招待会", "。",
        ("国务委员", POS), ("姬鹏飞", P), "出席", "了", "招待会", "。",
    )  # fmt: skip
    assert ("attends", "姬鹏飞", "招待会", None) in facts(ex, doc)
    plain = make_doc(("张三", P), "召开", "会议", "。", ("李四", P), "出席", "会议", "。")
    assert not {f for f in facts(ex, plain) if f[0] == "attends"}


def test_list_closed_by_deng_and_a_comma(ex: RelationExtractor) -> None:
    """ "国务院副总理姚依林、田纪云，国务委员吴学谦、陈慕华等，出席了会议"."""
    doc = make_doc(
        *_LEAD, ("国务院", ORG), ("副总理", POS), ("姚依林", P), "、", ("田纪云", P), "，",
        ("国务委员", POS), ("吴学谦", P), "、", ("陈慕华", P), "等", "，", "出席", "会议", "。",
    )  # fmt: skip
    attended = {h for rel, h, _, _ in facts(ex, doc) if rel == "attends"}
    assert attended == {"姚依林", "田纪云", "吴学谦", "陈慕华"}


def test_a_meeting_written_short_is_the_same_meeting() -> None:
    assert MeetingNames().fullest("总理办公会", ["总理办公会议"]) == "总理办公会议"


def test_a_person_resigning_in_the_sentence_is_leaving_the_post(ex: RelationExtractor) -> None:
    doc = make_doc(
        ("副省长", POS), ("徐世群", P), "因", "任职", "年龄", "到限", "，", "请求", "辞去", "现任",
        "职务", "。", ("国务院", ORG), ("总理", POS), ("张三", P), "主持", "会议", "，",
        ("李四", P), "辞职", "。",
    )  # fmt: skip
    holders = {h for rel, h, _, _ in facts(ex, doc) if rel == "holds_position"}
    assert "徐世群" not in holders
    assert "张三" in holders  # another name before the resignation: not his


def test_title_locality_never_takes_a_deputy_title(ex: RelationExtractor) -> None:
    ctx = Context()
    ex.localities.from_title(ctx, "市人大常委会举行第32次会议 决定任命王书坚为市政府副市长")
    assert "市" not in ctx.localities


def test_a_body_written_short_is_not_the_body_of_one_term(ex: RelationExtractor) -> None:
    doc = make_doc(
        ("黑河市四届人大常委会", ORG), "召开", "会议", "。",
        ("市人大常委会", ORG), ("主任", POS), ("刘刚", P), "主持", "会议", "。",
    )  # fmt: skip
    assert ("holds_position", "刘刚", "黑河市人大常委会", "主任") in facts(ex, doc)


# ---------------------------------------------------------------------------------------------
# Issue 27: foreign posts, envoys, session roles, lists


def test_foreign_head_of_state_is_at_the_foreign_state(ex: RelationExtractor) -> None:
    doc = make_doc(
        ("越南", G), ("国家主席", POS), ("梁强", P), "会见", "了", ("中国", G), "客人", "。",
        ("国家主席", POS), ("梁强", P), "表示", "欢迎", "。",
    )  # fmt: skip
    found = {f for f in facts(ex, doc) if f[0] == "holds_position"}
    assert found == {("holds_position", "梁强", "越南", "国家主席")}


def test_a_foreign_body_the_tagger_left_out(ex: RelationExtractor) -> None:
    doc = make_doc(("越南", G), "政府", ("总理", POS), ("范明政", P), "主持", "仪式", "。")
    assert ("holds_position", "范明政", "越南政府", "总理") in facts(ex, doc)


def test_envoy_is_a_post_of_the_sending_state(ex: RelationExtractor) -> None:
    doc = make_doc(
        "任命", ("卢沙野", P), "为", ("中华人民共和国", G), "驻", ("加拿大", G),
        ("特命全权大使", POS), "。",
    )  # fmt: skip
    assert facts(ex, doc) == {
        ("holds_position", "卢沙野", "中华人民共和国", "驻加拿大特命全权大使")
    }


def test_holders_of_several_states_get_no_state_from_context(ex: RelationExtractor) -> None:
    doc = make_doc(
        "尊敬的", ("普京", P), ("总统", POS), "，", "尊敬的", ("莫迪", P), ("总理", POS),
        "：", "感谢", ("俄罗斯", G), "政府", "。",
    )  # fmt: skip
    assert not [f for f in facts(ex, doc) if f[1] == "莫迪"]


def test_session_roles_listed_together(ex: RelationExtractor) -> None:
    doc = make_doc(
        ("十四届全国人大二次会议", M), "在", ("北京", G), "开幕", "。",
        "大会主席团常务主席、执行主席", ("李鸿忠", P), "、", ("王东明", P), "就座", "。",
    )  # fmt: skip
    found = facts(ex, doc)
    for name in ("李鸿忠", "王东明"):
        assert ("holds_position", name, "十四届全国人大二次会议主席团", "常务主席") in found
        assert ("holds_position", name, "十四届全国人大二次会议主席团", "执行主席") in found


def test_names_then_their_shared_post(ex: RelationExtractor) -> None:
    doc = make_doc(
        *_LEAD, ("王兆国", P), "、", ("李建国", P), "等", ("副委员长", POS), "出席", "会议", "。"
    )
    found = facts(ex, doc)
    assert ("holds_position", "王兆国", "全国人大常委会", "副委员长") in found
    assert ("holds_position", "李建国", "全国人大常委会", "副委员长") in found


def test_names_under_a_post_heading(ex: RelationExtractor) -> None:
    doc = make_doc(
        ("最高人民法院", ORG), ("副庭长", POS), "：", ("王五", P), "、", ("赵六", P), "。"
    )
    found = facts(ex, doc)
    assert ("holds_position", "王五", "最高人民法院", "副庭长") in found
    assert ("holds_position", "赵六", "最高人民法院", "副庭长") in found


def test_a_session_named_across_its_verb_is_the_reported_meeting(ex: RelationExtractor) -> None:
    doc = make_doc("市十六届人大常委会举行第十次会议", "。", ("陈汉夫", P), "主持", "会议", "。")
    assert ("chairs", "陈汉夫", "市十六届人大常委会第十次会议", None) in facts(ex, doc)
