"""Relations between entities: holds_position, chairs/attends/addresses/instructs, issues.

Rules run over the entity sequence of a spaCy Doc (PERSON, ORG, GPE/LOC, POSITION, MEETING,
DOCUMENT). Every row says which rule fired and, for organisations written in abbreviated form
("室", "省委", "省政府"), where the full name was resolved from. Trigger words and organisation
resolution tables are data (`resources/relation_rules.yaml`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regex
import yaml
from spacy.tokens import Doc, Span

RESOURCES = Path(__file__).parent / "resources"

_CLAUSE_END = frozenset("。；！？;!?\n")
# "财政部、税务总局在发布会前发布了": a time or place phrase between issuer and trigger.
_WHEN = regex.compile(r"(?:近日|日前|同日)?在[^，。；]{1,10}?(?:前|上|后|中|期间)")
# Verbs that appoint or elect the name that follows to the post after 为 ("任命王淑英为…主任").
_APPOINT = ("任命", "提名", "拟任", "选举", "推选")
# A department name after its parent body: Han characters ending in 司/局/处/室/中心.
_SUB_UNIT = regex.compile(r"\p{Han}{2,10}(?:司|局|处|室|中心)")
# "…会议(和…会议)精神": the meeting is referred to, not reported on.
_REFERRED = regex.compile(r"(?:[和、及与][^，。；]{0,30}?)?精神")


@dataclass
class Relation:
    relation: str
    head: str
    head_label: str
    tail: str
    tail_label: str
    role: str | None
    start: int
    end: int
    confidence: float
    rule: str
    resolved_from: str | None = None


@functools.cache
def _rules() -> dict[str, Any]:
    return yaml.safe_load((RESOURCES / "relation_rules.yaml").read_text(encoding="utf-8"))


@dataclass
class _Context:
    """What a document says about itself: its locality and its organisations so far."""

    localities: dict[
        str, str
    ]  # level suffix (省/市/区/县/自治区/镇) -> full name, e.g. 省 -> 湖北省
    main_meeting: str | None
    orgs_seen: list[str]
    meetings: list[str] = field(default_factory=list)

    def top_locality(self) -> str | None:
        for level in ("自治区", "省", "市", "区", "县"):
            if level in self.localities:
                return self.localities[level]
        return None


class RelationExtractor:
    def __init__(self) -> None:
        rules = _rules()
        self.event_triggers: list[tuple[str, regex.Pattern[str]]] = [
            (rel, regex.compile(pattern)) for rel, pattern in rules["event_triggers"].items()
        ]
        self.issue_trigger = regex.compile(rules["issue_trigger"])
        self.instruct_re = regex.compile(rules["instruct_pattern"])
        self.generic_meetings = regex.compile(rules["generic_meeting_words"])
        self.gov_posts: dict[str, str] = rules["government_posts"]
        self.party_department_posts = tuple(rules["party_department_posts"])
        self.abbreviated_heads: dict[str, list[str]] = dict(
            sorted(rules["abbreviated_heads"].items(), key=lambda kv: -len(kv[0]))
        )
        self.institution_posts = frozenset(rules["institution_posts"])
        self.generic_issuers = sorted(rules["generic_issuers"], key=len, reverse=True)
        self.sub_unit_suffixes = tuple(rules["sub_unit_suffixes"])
        self.parent_suffixes = tuple(rules["parent_body_suffixes"])
        self.institution_suffixes = tuple(rules["institution_suffixes"])
        self.body_expansions: dict[str, str] = rules["body_expansions"]
        self.levels: tuple[str, ...] = tuple(rules["locality_levels"])
        self.person_re = regex.compile(rules["person_name"])
        names = "|".join(sorted(rules["provinces"], key=len, reverse=True))
        # "湖北省", "佛山市南海区", "新疆维吾尔自治区"; not "在全市", "本县" or "召开全省".
        self.title_locality = regex.compile(
            rf"(?:{names})(?:省|市)?|[^\P{{Han}}召举开全本各该在对于和的了是为会议]{{2,7}}?"
            rf"(?:自治区|自治州|省|市|区|县)"
        )

    # -----------------------------------------------------------------------------------------

    def extract(self, doc: Doc, title: str | None = None) -> list[Relation]:
        ents = [e for e in doc.ents if e.text.strip()]
        ctx = _Context(localities={}, main_meeting=None, orgs_seen=[])
        if title:
            # The title names the document's locality, whether or not the text repeats it.
            matches = list(self.title_locality.finditer(title))
            for i, m in enumerate(matches):
                name = m.group()
                # Adjacent divisions name one place: "佛山市" + "南海区".
                if i > 0 and matches[i - 1].end() == m.start():
                    name = matches[i - 1].group() + name
                self._register_locality(ctx, name)
        rows: list[Relation] = []
        first = 0  # entities and sentences are both in document order: one pass over each
        for sent in doc.sents:
            while first < len(ents) and ents[first].start < sent.start:
                first += 1
            last = first
            while last < len(ents) and ents[last].end <= sent.end:
                last += 1
            sent_ents = ents[first:last]
            self._update_context(ctx, sent_ents)
            rows += self._holds_position(doc, sent, sent_ents, ctx)
            rows += self._appointments(doc, sent_ents, ctx)
            rows += self._events(doc, sent, sent_ents, ctx)
            rows += self._issues(doc, sent, sent_ents)
        return _dedupe(rows)

    def _update_context(self, ctx: _Context, ents: list[Span]) -> None:
        for i, ent in enumerate(ents):
            if ent.label_ in ("GPE", "LOC") or (ent.label_ == "ORG" and ent.text[-1] in "省市县区"):
                name = ent.text
                # "佛山市" + "南海区": adjacent divisions form one locality.
                if i > 0 and ents[i - 1].label_ in ("GPE", "LOC") and ents[i - 1].end == ent.start:
                    name = ents[i - 1].text + name
                self._register_locality(ctx, name)
            elif ent.label_ == "ORG":
                ctx.orgs_seen.append(ent.text)
                for level in self.levels:
                    idx = ent.text.find(level)
                    if idx > 0:
                        self._register_locality(ctx, ent.text[: idx + len(level)])
                        break
            elif ent.label_ == "MEETING":
                # "贯彻党的二十大精神" refers to a meeting; the report is about the one held.
                referred = bool(_REFERRED.match(_text(ent.doc), ent.end_char, ent.end_char + 40))
                # Organisations and places inside a meeting's name ("湖北省…调度会").
                ctx.orgs_seen += [t.text for t in ent if t.tag_ == "ORG"]
                for t in ent:
                    if t.tag_ == "LOC":
                        self._register_locality(ctx, t.text)
                if not referred:
                    ctx.meetings.append(ent.text)
                    if ctx.main_meeting is None:
                        ctx.main_meeting = ent.text
        return None

    def _register_locality(self, ctx: _Context, name: str) -> None:
        name = name.removeprefix("中共")
        if name[:1] in "全本各该我在":
            return
        for level in self.levels:
            if name.endswith(level) and len(name) > len(level):
                ctx.localities.setdefault(level, name)
                if level == "自治州":
                    ctx.localities.setdefault("州", name)
                # "佛山市南海区" also names the city it lies in.
                for outer in self.levels:
                    idx = name.find(outer)
                    if 0 < idx < len(name) - len(level):
                        ctx.localities.setdefault(outer, name[: idx + len(outer)])
                return
        # A bare province name ("湖北") names the province.
        if name in _rules()["provinces"]:
            ctx.localities.setdefault("省", name + _rules()["provinces"][name])

    # -----------------------------------------------------------------------------------------
    # holds_position

    def _holds_position(
        self, doc: Doc, sent: Span, ents: list[Span], ctx: _Context
    ) -> Iterator[Relation]:
        text = _text(doc)
        for i, ent in enumerate(ents):
            if ent.label_ != "PERSON" or not self._is_name(ent.text):
                continue
            j = i - 1
            boundary = ent.start_char
            # One title shared by several names: "副总理刘明远、张华东".
            while (
                j >= 0
                and ents[j].label_ == "PERSON"
                and _gap(text, ents[j].end_char, boundary) in ("、", "和")
            ):
                boundary = ents[j].start_char
                j -= 1
            # Walk left over "ORG? POSITION (、 ORG? POSITION)*" ending at the name; a layout
            # space between post and name is allowed ("省长 张明").
            posts: list[tuple[Span, Span | str | None]] = []
            while j >= 0 and ents[j].label_ == "POSITION":
                gap = _gap(text, ents[j].end_char, boundary)
                if gap != "" and not (gap == "、" and posts):
                    break
                position = ents[j]
                org: Span | str | None = None
                k = j - 1
                if (
                    k >= 0
                    and ents[k].label_ in ("ORG", "GPE", "LOC")
                    and ents[k].end_char == position.start_char
                ):
                    org = ents[k]
                    k -= 1
                    if (
                        k >= 0
                        and ents[k].label_ == "ORG"
                        and ents[k].end_char == org.start_char
                        and org.text.endswith(self.sub_unit_suffixes)
                    ):
                        # "民政部" + "养老服务司": the department with its ministry.
                        org = doc.char_span(ents[k].start_char, org.end_char, label="ORG")
                        k -= 1
                elif (
                    k >= 0
                    and ents[k].label_ == "ORG"
                    and _SUB_UNIT.fullmatch(text[ents[k].end_char : position.start_char])
                ):
                    # A department of the body just named: "生态环境部" + "土壤生态环境司" + 司长.
                    org = doc.char_span(
                        ents[k].start_char,
                        position.start_char,
                        label="ORG",
                        alignment_mode="expand",
                    )
                    k -= 1
                else:
                    # "室副主任", "学校党委书记", "委员会副主任": a generic head for a body
                    # named earlier.
                    before = text[
                        max(sent.start_char, position.start_char - 4) : position.start_char
                    ]
                    for head in self.abbreviated_heads:
                        if before.endswith(head):
                            org = head
                            break
                posts.append((position, org))
                if isinstance(org, Span):
                    boundary = org.start_char
                elif isinstance(org, str):
                    boundary = position.start_char - len(org)
                else:
                    boundary = position.start_char
                j = k
            # Resolve left to right: "成华区委副书记、区长" learns the district from the first post.
            resolved = [self._resolve_org(p.text, o, ctx) for p, o in reversed(posts)][::-1]
            # A post with no body of its own in a stack takes the nearest body written in the
            # stack ("国务委员、国务院秘书长", "教育部党组书记、部长").
            written = [r for r, (_, o) in zip(resolved, posts, strict=True) if o is not None]
            listed = self._list_head_org(ents, j, text, ctx) if not written else None
            for (position, org), (tail, how) in zip(posts, resolved, strict=True):
                if tail is None and written and written[0][0] is not None:
                    tail, how = written[0][0], "stack"
                elif tail is None and listed is not None:
                    tail, how = listed, "list"
                if tail is None:
                    continue
                start = org.start_char if isinstance(org, Span) else position.start_char
                yield Relation(
                    "holds_position",
                    ent.text,
                    "PERSON",
                    tail,
                    "ORG",
                    position.text,
                    start,
                    ent.end_char,
                    0.9 if how is None else 0.8,
                    "org_position_person" if org is not None else "position_person",
                    how,
                )

    def _appointments(self, doc: Doc, ents: list[Span], ctx: _Context) -> Iterator[Relation]:
        """ "任命王淑英为…委员会主任": the appointee holds the post (免去 does not)."""
        text = _text(doc)
        for i, ent in enumerate(ents):
            if ent.label_ != "PERSON" or not self._is_name(ent.text):
                continue
            if not text[max(0, ent.start_char - 3) : ent.start_char].endswith(_APPOINT):
                continue
            if not text.startswith("为", ent.end_char):
                continue
            for k in range(i + 1, len(ents)):
                between = text[ent.end_char : ents[k].start_char]
                if any(c in "，；。,;" for c in between) or len(between) > 30:
                    break
                if ents[k].label_ != "POSITION":
                    continue
                position = ents[k]
                org = (
                    ents[k - 1]
                    if ents[k - 1].end_char == position.start_char
                    and ents[k - 1].label_ in ("ORG", "GPE", "LOC")
                    else None
                )
                tail, how = self._resolve_org(position.text, org, ctx)
                if tail:
                    yield Relation(
                        "holds_position", ent.text, "PERSON", tail, "ORG", position.text,
                        ent.start_char, position.end_char, 0.85, "appointment", how,
                    )  # fmt: skip
                break

    def _list_head_org(self, ents: list[Span], j: int, text: str, ctx: _Context) -> str | None:
        """ "省人大常委会副主任欧阳红、吉家豪，秘书长文昌盛": a post without a body, right after a
        list of names that a body's post opens, belongs to that body."""
        if j < 0 or ents[j].label_ != "PERSON":
            return None
        boundary = ents[j + 1].start_char if j + 1 < len(ents) else len(text)
        if _gap(text, ents[j].end_char, boundary) not in ("、", "和", "，", ","):
            return None
        while j >= 0 and ents[j].label_ == "PERSON":
            j -= 1
            if j >= 0 and _gap(text, ents[j].end_char, ents[j + 1].start_char) not in (
                "",
                "、",
                "和",
            ):
                return None
        if j < 1 or ents[j].label_ != "POSITION" or ents[j - 1].label_ != "ORG":
            return None
        if ents[j - 1].end_char != ents[j].start_char:
            return None
        tail, _ = self._resolve_org(ents[j].text, ents[j - 1], ctx)
        return tail

    def _resolve_org(
        self, role: str, org: Span | str | None, ctx: _Context
    ) -> tuple[str | None, str | None]:
        """(full organisation, how it was resolved: None when written in full)."""
        if isinstance(org, Span):
            name = org.text
            if org.label_ in ("GPE", "LOC") or self._names_place_body(name, role):
                # A place before a post: the post says which of its bodies ("宜昌" + 市委书记).
                tail, how = self._body_of_place(name, role, ctx)
                if tail is not None:
                    self._register_locality(
                        ctx, tail.removesuffix("人民政府").removesuffix("党委").removesuffix("委")
                    )
                return tail, how
            if name in self.levels:
                # A bare level ("自治区" + 党委副书记): the document's own locality.
                locality = ctx.localities.get(name)
                return (
                    (self._body_of_place(locality, role)[0], "locality")
                    if locality
                    else (None, None)
                )
            if (
                name.endswith(self.sub_unit_suffixes)
                and not name.startswith(self.levels)
                and not any(p in name[:-1] for p in self.parent_suffixes)  # 民政部养老服务司
            ):
                # "宣传教育司" after "生态环境部" was named: a department of that ministry.
                for parent in reversed(ctx.orgs_seen):
                    if parent.endswith(self.parent_suffixes) and not name.startswith(parent):
                        return parent + name, "text"
            if name in ("中共", "中国共产党") and role.startswith("中央"):
                return "中共中央", None  # 中共中央政治局常委: the post is in the Central Committee
            tail, how = self._expand_abbreviation(name, ctx)
            # "狮山镇" + 党委书记 -> 狮山镇党委; a university's 党委书记 stays with the university.
            if role.startswith("党委") and tail[-1] in "省市县区镇乡" and not tail.endswith("党委"):
                tail += "党委"
            elif role.startswith(("工委", "党工委")) and not tail.endswith("工委"):
                tail += role[: role.index("工委") + 2]  # 海南省委教育 + 工委书记 -> …教育工委
            return tail, how
        if isinstance(org, str):
            # A generic head ("室", "学校", "委员会"): the last organisation seen of that kind.
            suffixes = tuple(self.abbreviated_heads[org])
            for name in reversed(ctx.orgs_seen):
                if name.endswith(suffixes) and len(name) > len(org):
                    return name, "text"
            return None, None
        # No organisation written: the post itself may say which body it belongs to.
        for level in self.levels:
            if role.startswith(level) and role[len(level) :].startswith(("委", "党委")):
                locality = ctx.localities.get(level)
                if locality:
                    return locality + ("党委" if level == "自治区" else "委"), "locality"
                return None, None
        if role in self.gov_posts:
            locality = ctx.localities.get(self.gov_posts[role])
            if locality:
                return locality + "人民政府", "locality"
            return None, None
        if role.endswith(self.party_department_posts):
            top = ctx.top_locality()
            if top:
                return top + ("党委" if top.endswith("自治区") else "委"), "locality"
        if role in self.institution_posts:
            # 校长, 董事长 with no body written: the university or company the document is about.
            for name in reversed(ctx.orgs_seen):
                if name.endswith(self.institution_suffixes):
                    return name, "context"
        return None, None

    def _names_place_body(self, name: str, role: str) -> bool:
        """An "ORG" that is only a place name ("福建", "成华") before 省委副书记 / 区长."""
        if name.endswith(("委", "府", "部", "厅", "局", "院", "会", "室", "办", "组")):
            return False
        committee = any(role.startswith((lv + "委", lv + "党委")) for lv in self.levels)
        return committee or role in self.gov_posts

    def _body_of_place(
        self, place: str, role: str, ctx: _Context | None = None
    ) -> tuple[str | None, str | None]:
        if role.startswith("党委"):
            return place + "党委", "locality"
        for level in self.levels:
            if role.startswith(level + "委") or role.startswith(level + "党委"):
                suffix = role[: role.index("委") + 1]
                stem = place if place.endswith(level) else place + level
                stem = self._with_outer_locality(stem, level, ctx)
                return stem + suffix[len(level) :], "locality"
        if (
            role in self.gov_posts
            or role.endswith(("长", "主席"))
            and role.startswith(("副", "常务"))
        ):
            stem = (
                place
                if place[-1] in "省市县区镇乡" or place.endswith("自治区")
                else place + self.gov_posts.get(role, "市")
            )
            return stem + "人民政府", "locality"
        return None, None

    @staticmethod
    def _with_outer_locality(stem: str, level: str, ctx: _Context | None) -> str:
        """ "成华区" in a Chengdu document -> "成都市成华区" (districts and counties only)."""
        if ctx is None or level not in ("区", "县"):
            return stem
        city = ctx.localities.get("市")
        if city and not stem.startswith(city) and not stem.endswith("市"):
            return city + stem
        return stem

    def _expand_abbreviation(self, name: str, ctx: _Context) -> tuple[str, str | None]:
        """ "省委" -> "湖北省委"; "省安委会" -> "四川省安全生产委员会" (seen earlier)."""
        for level in self.levels:
            if name.startswith(level) and len(name) > len(level):
                # Contracted names ("省安委会") only: two- and three-character ones such as 省委
                # would match unrelated bodies (省纪委监委).
                for full in reversed(ctx.orgs_seen if len(name) >= 4 else []):
                    if len(full) > len(name) + 1 and _abbreviates(name, full):
                        return full, "text"
                locality = ctx.localities.get(level)
                if locality:
                    rest = name[len(level) :]
                    return locality + self.body_expansions.get(rest, rest), "locality"
                return name, None
        return name, None

    def _is_name(self, text: str) -> bool:
        return bool(self.person_re.fullmatch(text))

    # -----------------------------------------------------------------------------------------
    # chairs / attends / addresses / instructs

    def _events(self, doc: Doc, sent: Span, ents: list[Span], ctx: _Context) -> Iterator[Relation]:
        text = sent.text
        base = sent.start_char
        for relation, pattern in self.event_triggers:
            for m in pattern.finditer(text):
                t_start = base + m.start()
                subjects = self._subjects_before(doc, ents, t_start)
                if not subjects:
                    continue
                if relation == "instructs":
                    target = self.instruct_re.search(text[: m.end()])
                    if not target:
                        continue
                    tail = target.group("target")
                    tail_label = "TOPIC"
                    if self.generic_meetings.fullmatch(tail) and ctx.main_meeting:
                        tail, tail_label = ctx.main_meeting, "MEETING"
                else:
                    tail = self._meeting_for(ents, base + m.end(), text[m.end() :], ctx)
                    tail_label = "MEETING"
                    if tail is None:
                        continue
                for person in subjects:
                    yield Relation(
                        relation,
                        person.text,
                        "PERSON",
                        tail,
                        tail_label,
                        None,
                        person.start_char,
                        base + m.end(),
                        0.85,
                        f"{relation}_trigger",
                    )

    def _subjects_before(self, doc: Doc, ents: list[Span], pos: int) -> list[Span]:
        """The person (or 、-joined persons) acting at `pos`: the nearest one before it in the
        same clause-chain, with no full stop between."""
        people = [
            e for e in ents if e.label_ == "PERSON" and e.end_char <= pos and self._is_name(e.text)
        ]
        if not people:
            return []
        last = people[-1]
        gap = _text(doc)[last.end_char : pos]
        if any(c in _CLAUSE_END for c in gap) or len(gap) > 40:
            return []
        # Another subject-like phrase in between ("会议", "省委") would take the action instead.
        if regex.search(r"[，,][^，,]*?(?:会议|会上|大会)", gap):
            return []
        group = [last]
        for prev in reversed(people[:-1]):
            between = _text(doc)[prev.end_char : group[0].start_char]
            # "副主任杨帆、沙振宇、李德明和秘书长白雪松出席": names joined by 、/和/，with
            # only posts and bodies between them act together.
            if regex.fullmatch(r"[、和及]", between) or (
                regex.fullmatch(r"[，,、和及][\p{Han}、]{0,20}", between)
                and all(
                    e.label_ in ("POSITION", "ORG", "GPE", "LOC")
                    for e in ents
                    if prev.end_char <= e.start_char < group[0].start_char
                )
            ):
                group.insert(0, prev)
            else:
                break
        return group

    def _meeting_for(self, ents: list[Span], t_end: int, after: str, ctx: _Context) -> str | None:
        # A named meeting right after the trigger ("主持召开省政府第四十二次常务会议").
        for ent in ents:
            if ent.label_ == "MEETING" and t_end <= ent.start_char <= t_end + 6:
                return ent.text
        # "主持座谈会", "出席开幕式", "参加会议": the meeting of that kind the document reports on.
        generic = self.generic_meetings.match(after)
        if generic:
            word = generic.group().removeprefix("这次").removeprefix("此次").removeprefix("本次")
            for name in reversed(ctx.meetings if word != "会议" else []):
                if name.endswith(word):
                    return name
        return ctx.main_meeting

    # -----------------------------------------------------------------------------------------
    # issues

    def _issues(self, doc: Doc, sent: Span, ents: list[Span]) -> Iterator[Relation]:
        for m in self.issue_trigger.finditer(sent.text):
            t_start = sent.start_char + m.start()
            t_end = sent.start_char + m.end()
            docs_after = [
                e
                for e in ents
                if e.label_ == "DOCUMENT"
                and e.start_char >= t_end
                and not any(c in _CLAUSE_END or c == "，" for c in _text(doc)[t_end : e.start_char])
            ]
            if not docs_after:
                continue
            document = docs_after[0]
            issuers: list[Span] = []
            boundary = t_start
            for ent in reversed([e for e in ents if e.end_char <= t_start]):
                gap = _text(doc)[ent.end_char : boundary]
                if ent.label_ in ("ORG",) and (
                    gap == "" or (issuers and gap == "、") or (not issuers and self._adverbial(gap))
                ):
                    issuers.insert(0, ent)
                    boundary = ent.start_char
                elif ent.label_ in ("DATE",) and not issuers and self._adverbial(gap):
                    boundary = ent.start_char
                else:
                    break
            heads = [org.text for org in issuers]
            if not heads:
                # "学校党委印发", "集团下发": a body written generically, kept as written.
                before = _text(doc)[max(sent.start_char, t_start - 6) : t_start]
                heads = [g for g in self.generic_issuers if before.endswith(g)][:1]
            for head in heads:
                yield Relation(
                    "issues",
                    head,
                    "ORG",
                    document.text,
                    "DOCUMENT",
                    None,
                    t_start - len(head),
                    document.end_char,
                    0.9,
                    "org_issue_document",
                )

    @staticmethod
    def _adverbial(gap: str) -> bool:
        return gap == "" or bool(_issue_adverbials().fullmatch(gap) or _WHEN.fullmatch(gap))


@functools.cache
def _issue_adverbials() -> regex.Pattern[str]:
    words = sorted(_rules()["issue_adverbials"], key=len, reverse=True)
    return regex.compile("(?:" + "|".join(map(regex.escape, words)) + ")+")


def _text(doc: Doc) -> str:
    """doc.text joins every token on each access; relations read it per sentence, so cache it."""
    cached = doc.user_data.get("tifa_text")
    if cached is None:
        cached = doc.user_data["tifa_text"] = doc.text
    return cached


def _gap(text: str, start: int, end: int) -> str:
    return text[start:end].strip(" \u3000")


def _abbreviates(short: str, full: str) -> bool:
    """True when `short` is `full` with characters left out, same first and last ("省安委会")."""
    it = iter(full[full.index(short[0]) :] if short[0] in full else "")
    return short[-1] == full[-1] and all(c in it for c in short)


def _dedupe(rows: list[Relation]) -> list[Relation]:
    seen = set()
    out = []
    for r in rows:
        key = (r.relation, r.head, r.tail, r.role)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


@functools.cache
def get_extractor() -> RelationExtractor:
    return RelationExtractor()
