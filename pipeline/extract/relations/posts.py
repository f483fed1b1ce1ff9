"""holds_position: ORG? POSITION (、ORG? POSITION)* PERSON, appointments, lists of names.

The body a post belongs to comes from, in order: the body written before it ("国务院" 副总理),
the post itself (`resources/post_bodies.tsv`: 国家主席 → 中华人民共和国), a body written for
another post in the same stack, the body a list of names opened with, or the document's
locality ("省长" → 湖北省人民政府). `resolved_from` records which.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import regex
from spacy.tokens import Doc, Span

from pipeline.core.resources import read_lines, read_table
from pipeline.core.vocabulary import RelationName
from pipeline.extract.relations.base import (
    RESOURCES,
    Context,
    Relation,
    RelationFamily,
    confidence,
    family,
    foreign_state_re,
    foreign_states,
    gap,
    rules,
    text_of,
    words,
)
from pipeline.nlp.docs import TITLE_STARTS


@dataclass(frozen=True)
class PostBody:
    body: str
    kind: str  # party / state / military / government / legislature / cppcc


@functools.cache
def post_bodies() -> dict[str, PostBody]:
    """Posts that name their own body (国家主席 → 中华人民共和国), from post_bodies.tsv."""
    table: dict[str, PostBody] = {}
    for row in read_table("post_bodies.tsv", ("post", "body", "kind")):
        table[row["post"]] = PostBody(row["body"], row["kind"])
    return table


@family(order=1)
class PostRules(RelationFamily):
    relations = (RelationName.HOLDS_POSITION,)

    def __init__(self, extractor: Any) -> None:
        super().__init__(extractor)
        r = rules()
        self.loc = extractor.localities
        self.bodies = post_bodies()
        self.known_bodies = frozenset(read_lines(RESOURCES / "organisations.txt"))
        self.envoy_posts = frozenset(r["envoy_posts"])
        self.envoy_mark: str = r["envoy_mark"]
        self.home_state: str = r["home_state"]
        self.deputy_prefix: str = r["deputy_prefix"]
        self.bare_title_openers = frozenset(r["bare_title_openers"])
        self.fused_ministry_posts = frozenset(r["fused_ministry_posts"])
        self.own_bodies = frozenset(b.body for b in self.bodies.values())
        self.parent_body_endings = tuple(r["full_name_parent_endings"])
        self.gov_posts: dict[str, str] = r["government_posts"]
        self.party_department_posts = tuple(r["party_department_posts"])
        self.unnamed_local_bodies: list[str] = sorted(
            r["unnamed_local_bodies"], key=len, reverse=True
        )
        self.abbreviated_heads: dict[str, list[str]] = dict(
            sorted(r["abbreviated_heads"].items(), key=lambda kv: -len(kv[0]))
        )
        self.institution_posts = frozenset(r["institution_posts"])
        self.sub_unit_suffixes = tuple(r["sub_unit_suffixes"])
        self.parent_suffixes = tuple(r["parent_body_suffixes"])
        self.institution_suffixes = tuple(r["institution_suffixes"])
        self.body_endings = tuple(r["body_endings"])
        self.person_re = regex.compile(r["person_name"])
        self.sub_unit = regex.compile(r["sub_unit_pattern"])
        self.appoint_verbs = words("appoint_verbs")
        self.appoint_links = tuple(r["appoint_links"])
        self.clause_openers = frozenset(r["appoint_clause_openers"])
        self.removal_verbs = tuple(r["removal_verbs"])
        self.resign_words = tuple(r["resign_words"])
        self.elected_links = tuple(r["elected_links"])
        levels = "|".join(map(regex.escape, r["locality_levels"]))
        self.term_prefix = regex.compile(rf"(?P<level>{levels})?{r['term_prefix']}")
        self.past_term_words = tuple(r["past_term_words"])
        self.membership_roles = frozenset(r["membership_roles"])
        self.name_note = regex.compile(r["name_note"])
        self.appoint_stops = frozenset(r["appoint_stops"])
        self.appoint_series = frozenset(r["appoint_series"])
        self.term_before = regex.compile(r["term_before_post"])
        self.session_number = regex.compile(r["meeting_names"]["number"])
        self.appoint_group = regex.compile(r["appoint_group"])
        self.state_suffixes = tuple(r["state_suffixes"])
        self.foreign_state_names = tuple(sorted(foreign_states(), key=len, reverse=True))
        self.foreign_before = foreign_state_re("{}" + f"(?:{r['foreign_body_words']})$")
        self.clause_marks = tuple(r["clause_end"]) + ("，", ",")
        self.dotted_tail = regex.compile(r["dotted_name_tail"])
        self.name_before_stops = frozenset(r["name_title_not_after"])
        self.state_head_posts = frozenset(r["state_head_posts"])
        self.name_joiners = frozenset(r["name_joiners"])
        self.list_joiners = frozenset(r["list_joiners"])
        self.stack_joiner: str = r["stack_joiner"]
        self.central_aliases: dict[str, str] = r["central_aliases"]
        self.central_role_prefix: str = r["central_role_prefix"]
        self.central_committee: str = r["central_committee"]
        b = r["bodies"]
        self.party_committee: str = b["party_committee"]
        self.committee: str = b["committee"]
        self.work_committees = tuple(b["work_committees"])
        self.work_committee: str = b["work_committee"]

    def is_name(self, text: str) -> bool:
        return bool(self.person_re.fullmatch(text))

    # -----------------------------------------------------------------------------------------

    def sentence(self, doc: Doc, sent: Span, ents: list[Span], ctx: Context) -> Iterator[Relation]:
        yield from self.holds_position(doc, sent, ents, ctx)
        yield from self.appointments(doc, ents, ctx)
        yield from self.name_then_title(doc, ents, ctx)

    def holds_position(
        self, doc: Doc, sent: Span, ents: list[Span], ctx: Context
    ) -> Iterator[Relation]:
        text = text_of(doc)
        for i, ent in enumerate(ents):
            if ent.label_ != "PERSON" or not self.is_name(ent.text):
                continue
            j = i - 1
            boundary = ent.start_char
            # One title shared by several names: "副总理刘明远、张华东".
            while (
                j >= 0
                and ents[j].label_ == "PERSON"
                and gap(text, ents[j].end_char, boundary) in self.name_joiners
            ):
                boundary = ents[j].start_char
                j -= 1
            posts, j = self._post_stack(doc, sent, ents, j, boundary)
            if posts and self._past_term(text, posts[-1], ctx):
                continue
            if posts and self._resigns(text, ents, i, sent.end_char):
                continue
            yield from self._rows(ent, posts, self._list_head_org(ents, j, text, ctx), ctx)

    def _post_stack(
        self, doc: Doc, sent: Span, ents: list[Span], j: int, boundary: int
    ) -> tuple[list[tuple[Span, Span | str | None]], int]:
        """Walk left over "ORG? POSITION (、 ORG? POSITION)*" ending at `boundary`; a layout
        space between post and name is allowed ("省长 张明")."""
        text = text_of(doc)
        posts: list[tuple[Span, Span | str | None]] = []
        while j >= 0 and ents[j].label_ == "POSITION":
            g = gap(text, ents[j].end_char, boundary)
            if g != "" and not (g == self.stack_joiner and posts):
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
                envoy = self._envoy(doc, ents, k, org, position)
                if envoy is not None:
                    # "中华人民共和国驻加拿大特命全权大使": the post is 驻加拿大特命全权大使 and
                    # its body the sending state (written before 驻, or China).
                    position, org, k = envoy
                whole = doc.user_data.get(TITLE_STARTS, {}).get(
                    (position.start_char, position.end_char)
                )
                if whole is not None and isinstance(org, Span) and org.start_char < whole:
                    # "辽宁省委|常委" as entities; the post as written is 省委常委 of 辽宁.
                    org = doc.char_span(org.start_char, whole, label=org.label_) or org
                    position = doc.char_span(whole, position.end_char, label="POSITION") or position
                if (
                    k >= 0
                    and isinstance(org, Span)
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
                and self.sub_unit.fullmatch(text[ents[k].end_char : position.start_char])
            ):
                # A department of the body just named: "生态环境部" + "土壤生态环境司" + 司长.
                org = doc.char_span(
                    ents[k].start_char, position.start_char, label="ORG", alignment_mode="expand"
                )
                k -= 1
            else:
                before = text[max(sent.start_char, position.start_char - 8) : position.start_char]
                for body in self.unnamed_local_bodies:
                    if before.endswith(body):
                        org = doc.char_span(
                            position.start_char - len(body), position.start_char, label="ORG"
                        )
                        if org is not None:
                            break
                if org is None:
                    org = self._foreign_before(doc, sent, position)
                if org is None:
                    # "室副主任", "学校党委书记", "委员会副主任": a generic head for a body
                    # named earlier.
                    for head in self.abbreviated_heads:
                        if before[-4:].endswith(head):
                            org = head
                            break
            posts.append((position, org))
            # One title for two bodies: "中共中央台办、国务院台办主任王毅" (a row for each).
            while (
                isinstance(org, Span)
                and org.label_ == "ORG"
                and k >= 0
                and ents[k].label_ == "ORG"
                and gap(text, ents[k].end_char, org.start_char) == self.stack_joiner
            ):
                org = ents[k]
                posts.append((position, org))
                k -= 1
            if isinstance(org, Span):
                boundary = org.start_char
            elif isinstance(org, str):
                boundary = position.start_char - len(org)
            else:
                boundary = position.start_char
            j = k
        return posts, j

    def _envoy(
        self, doc: Doc, ents: list[Span], k: int, place: Span, position: Span
    ) -> tuple[Span, Span | str | None, int] | None:
        text = text_of(doc)
        at = place.start_char - len(self.envoy_mark)
        if (
            position.text not in self.envoy_posts
            or at < 0
            or text[at : place.start_char] != self.envoy_mark
        ):
            return None
        post = doc.char_span(at, position.end_char, label="POSITION", alignment_mode="expand")
        if post is None:
            return None
        if k >= 0 and ents[k].label_ in ("ORG", "GPE", "LOC") and ents[k].end_char == at:
            return post, ents[k], k - 1
        return post, self.home_state, k

    def names_foreign_state(self, text: str, start: int, end: int) -> bool:
        """Whether the clause around text[start:end] names a foreign state."""
        left = max(text.rfind(c, 0, start) for c in self.clause_marks) + 1
        rights = [i for c in self.clause_marks if (i := text.find(c, end)) >= 0]
        clause = text[left : min(rights) if rights else len(text)]
        return foreign_state_re().search(clause) is not None

    def _foreign_before(self, doc: Doc, sent: Span, position: Span) -> Span | None:
        """ "越南政府总理": a foreign state and the words of its body the tagger left out."""
        text = text_of(doc)
        before = text[max(sent.start_char, position.start_char - 10) : position.start_char]
        m = self.foreign_before.search(before)
        if m is None:
            return None
        start = position.start_char - len(before) + m.start()
        return doc.char_span(start, position.start_char, label="ORG")

    def _foreign_body(self, org: Span) -> str | None:
        """越南国家主席, 越南政府总理, 俄罗斯外交部部长, 瑞典林雪平市市长: a body of a foreign
        state (written with it, or right after it), never a Chinese one."""
        if org.text.startswith(self.foreign_state_names):
            return org.text
        before = text_of(org.doc)[max(0, org.start_char - 12) : org.start_char]
        state = foreign_state_re("{}$").search(before)
        return state.group() + org.text if state is not None else None

    def _past_term(self, text: str, first: tuple[Span, Span | str | None], ctx: Context) -> bool:
        """ "十一届省政协副主席" in a document on the 十二届 session: a post of a past term."""
        position, org = first
        start = org.start_char if isinstance(org, Span) else position.start_char
        if text[max(0, start - 4) : start].endswith(self.past_term_words):
            return True  # "上届省政协副主席李元栋"
        m = self.term_before.search(text[max(0, start - 6) : start])
        if not m or not ctx.main_meeting:
            return False
        numbers = self.session_number.findall(ctx.main_meeting)
        return bool(numbers) and numbers[0] != m.group(1)

    def _rows(
        self,
        person: Span,
        posts: list[tuple[Span, Span | str | None]],
        listed_org: str | None,
        ctx: Context,
    ) -> Iterator[Relation]:
        # Resolve left to right: "成华区委副书记、区长" learns the district from the first post.
        resolved = [self.resolve_org(p.text, o, ctx) for p, o in reversed(posts)][::-1]
        # A post with no body of its own in a stack takes the nearest body written in the stack
        # ("国务委员、国务院秘书长", "教育部党组书记、部长"); posts that name their own body
        # (国家主席, 中央军委主席) never do.
        written = [r for r, (_, o) in zip(resolved, posts, strict=True) if o is not None]
        listed = listed_org if not written else None
        # "市委常委、组织部部长周立夫": a party department's head in a stack belongs to the
        # committee the stack named (扶余市委), not to the document's top locality.
        committee = next(
            (
                t
                for (t, h), (p, _) in zip(resolved, posts, strict=True)
                if t
                and h == "locality"
                and t.endswith(self.loc.committee)
                and not p.text.endswith(self.party_department_posts)
            ),
            None,
        )
        if committee is not None:
            resolved = [
                (committee, h)
                if h == "locality" and p.text.endswith(self.party_department_posts)
                else (t, h)
                for (t, h), (p, _) in zip(resolved, posts, strict=True)
            ]
        foreign = next(
            (t for t, _ in written if t and t.startswith(self.foreign_state_names)), None
        )
        if foreign is not None:
            # "越南共产党中央委员会总书记、国家主席苏林": a foreign office-holder's other posts
            # are of that state, never the Chinese bodies the bare posts name (中共中央).
            resolved = [(foreign, "stack") if h == "post" else (t, h) for t, h in resolved]
        for (position, org), (tail, how) in zip(posts, resolved, strict=True):
            if tail is None and written and written[0][0] is not None:
                tail, how = written[0][0], "stack"
            elif tail is None and listed is not None:
                tail, how = listed, "list"
            elif (
                tail is None
                and org is None
                and position.text.startswith(self.deputy_prefix)
                and self._bare(person.doc, position.start_char)
            ):
                # "主任颜建平主持会议，副主任刘海军、赵强出席": a deputy named, with nothing
                # before the title, after the head of a body in the same sentence is that
                # body's deputy ("…移植外科副主任朱震宇" is a deputy of a body not recognised).
                head = ctx.sentence_heads.get(position.text[len(self.deputy_prefix) :])
                if head is not None:
                    tail, how = head, "text"
            if tail is None:
                continue
            ctx.sentence_heads.setdefault(position.text, tail)
            start = org.start_char if isinstance(org, Span) else position.start_char
            rule = "org_position_person" if org is not None else "position_person"
            yield Relation(
                RelationName.HOLDS_POSITION, person.text, "PERSON", tail, "ORG", position.text,
                start, person.end_char, confidence(rule, how), rule, how,
            )  # fmt: skip

    def _resigns(self, text: str, ents: list[Span], i: int, sent_end: int) -> bool:
        """ "副省长徐世群…因任职年龄到限，请求辞去现任职务": the person is leaving the post (the
        first resignation word after the name in the sentence, no other name between)."""
        end = ents[i].end_char
        hits = [p for w in self.resign_words if (p := text.find(w, end, sent_end)) >= 0]
        if not hits:
            return False
        at = min(hits)
        return not any(e.label_ == "PERSON" and end <= e.start_char < at for e in ents[i + 1 :])

    def _bare(self, doc: Doc, start: int) -> bool:
        before = text_of(doc)[max(0, start - 1) : start]
        return not before or before in self.bare_title_openers

    def name_then_title(self, doc: Doc, ents: list[Span], ctx: Context) -> Iterator[Relation]:
        """ "栗战书委员长", "龚正市长代表上海市人民政府": a name followed by a post that names its
        own body (post_bodies.tsv) or a people's government post of the document's locality."""
        text = text_of(doc)
        for i, ent in enumerate(ents[:-1]):
            position = ents[i + 1]
            if (
                ent.label_ != "PERSON"
                or position.label_ != "POSITION"
                or position.start_char != ent.end_char
                or not self.is_name(ent.text)
            ):
                continue
            role = position.text
            if role not in self.bodies and role not in self.gov_posts:
                continue
            after = ents[i + 2] if i + 2 < len(ents) else None
            if after is not None and after.start_char == position.end_char:
                continue  # "…总书记习近平": the post opens the next name
            if text[max(0, ent.start_char - 1) : ent.start_char] in self.name_before_stops:
                continue  # "以胡锦涛同志为总书记的": not this form
            tail, how = self.resolve_org(role, None, ctx)
            if tail is None:
                continue
            yield Relation(
                RelationName.HOLDS_POSITION, ent.text, "PERSON", tail, "ORG", role, ent.start_char,
                position.end_char, confidence("person_position", how), "person_position", how,
            )  # fmt: skip

    def join_dotted(self, doc: Doc, ents: list[Span]) -> list[Span]:
        """ "艾力更|·依明巴海": a transliterated name cut at its middle dot is one PERSON."""
        text = text_of(doc)
        out: list[Span] = []
        skip_until = -1
        for ent in ents:
            if ent.start_char < skip_until:
                continue
            if ent.label_ == "PERSON":
                m = self.dotted_tail.match(text, ent.end_char)
                if m:
                    joined = doc.char_span(
                        ent.start_char, m.end(), label="PERSON", alignment_mode="expand"
                    )
                    if joined is not None and joined.end_char == m.end():
                        out.append(joined)
                        skip_until = m.end()
                        continue
            out.append(ent)
        return out

    def appointments(self, doc: Doc, ents: list[Span], ctx: Context) -> Iterator[Relation]:
        """ "任命王淑英为…委员会主任": the appointee holds the post (免去 does not). A series goes
        on after a comma: "选举刘少奇为中华人民共和国主席，宋庆龄、董必武为副主席，朱德为…委员长"
        gives one row per name; a post with no body of its own takes the previous item's."""
        text = text_of(doc)
        i = 0
        while i < len(ents):
            ent = ents[i]
            if not (
                ent.label_ == "PERSON"
                and self.is_name(ent.text)
                # "任命：\n陈毅兼外交部部长" (a list under its verb) as well as "任命王淑英为"
                and (
                    text[max(0, ent.start_char - 6) : ent.start_char]
                    .rstrip(" \n\t：:")
                    .endswith(self.appoint_verbs)
                    # "金湘军当选山西省人民政府省长"
                    or text.startswith(self.elected_links, ent.end_char)
                    # A decision's result: "根据表决结果，李岚清、钱其琛为国务院副总理",
                    # "会议通过决议，万里、姚依林继续任国务院副总理" (names opening a clause,
                    # then 为 and a post: `_appointees` and `_appointed_post` check the rest).
                    or self._opens_clause(text, ent.start_char)
                )
            ):
                i += 1
                continue
            previous: str | None = None
            while i < len(ents):
                names, k = self._appointees(ents, i, text)
                if not names:
                    break
                item = self._appointed_post(ents, k, text)
                if item is None:
                    break
                position, org, k = item
                if org is None and previous is not None:
                    # "…为第一届全国人大常委会委员长，宋庆龄等13人为副委员长": the same body.
                    tail, how = previous, "list"
                else:
                    tail, how = self.resolve_org(position.text, org, ctx)
                previous = tail or previous
                for name in names if tail else []:
                    yield Relation(
                        RelationName.HOLDS_POSITION, name.text, "PERSON", tail, "ORG",
                        position.text,
                        name.start_char, position.end_char, confidence("appointment", how),
                        "appointment", how,
                    )  # fmt: skip
                # The series goes on: "，宋庆龄、董必武为副主席", or on the next line of a list.
                if k >= len(ents) or text[position.end_char : ents[k].start_char].strip() not in (
                    self.appoint_series
                ):
                    break
                i = k
            i = max(i + 1, k) if names else i + 1

    def _opens_clause(self, text: str, start: int) -> bool:
        before = text[max(0, start - 4) : start].rstrip(" \t\u3000")
        if before and before[-1] not in self.clause_openers:
            return False
        # Not in a list of removals ("免去：\n周恩来兼任外交部部长职务，\n王鹤寿兼任…"): the
        # last appointing or removing verb before the names decides.
        window = text[max(0, start - 300) : start]
        removal = max(window.rfind(w) for w in self.removal_verbs)
        return removal < 0 or max(window.rfind(w) for w in self.appoint_verbs) > removal

    def _appointees(self, ents: list[Span], i: int, text: str) -> tuple[list[Span], int]:
        """Names joined by 、/和 (and "等13人") that 为 follows; the index after them."""
        names: list[Span] = []
        k = i
        while k < len(ents) and ents[k].label_ == "PERSON" and self.is_name(ents[k].text):
            names.append(ents[k])
            nxt = ents[k + 1].start_char if k + 1 < len(ents) else len(text)
            between = self.name_note.sub("", text[ents[k].end_char : nxt]).strip()
            k += 1
            if between in self.name_joiners and k < len(ents) and ents[k].label_ == "PERSON":
                continue
            rest = self.appoint_group.sub("", text[names[-1].end_char : nxt])
            rest = self.name_note.sub("", rest).lstrip()  # "谭玲(女)为副主任"
            if rest.startswith(self.appoint_links + self.elected_links):
                return names, k
            break
        return [], k

    def _appointed_post(
        self, ents: list[Span], k: int, text: str
    ) -> tuple[Span, Span | None, int] | None:
        """The ORG? POSITION after 为, within the clause."""
        start = ents[k - 1].end_char
        for j in range(k, len(ents)):
            between = text[start : ents[j].start_char]
            if any(c in self.appoint_stops for c in between) or len(between) > 30:
                return None
            if ents[j].label_ == "PERSON":
                return None
            if ents[j].label_ != "POSITION":
                continue
            position = ents[j]
            org: Span | None = None
            prev = ents[j - 1]
            if prev.label_ in ("ORG", "GPE", "LOC") and prev.end_char == position.start_char:
                org = prev
                envoy = self._envoy(prev.doc, ents, j - 2, prev, position)
                if envoy is not None:
                    post, sender, _ = envoy
                    return post, sender, j + 1  # type: ignore[return-value]
            elif prev.label_ == "ORG" and self.sub_unit.fullmatch(
                text[prev.end_char : position.start_char]
            ):
                # "全国人大" + 宪法和法律委员会 + 副主任委员
                org = prev.doc.char_span(
                    prev.start_char, position.start_char, label="ORG", alignment_mode="expand"
                )
            if org is not None and org.label_ == "ORG":
                org = self._with_term(org, ents[j - 2] if j >= 2 else None, text)
            return position, org, j + 1
        return None

    def _with_term(self, org: Span, before: Span | None, text: str) -> Span:
        """ "浙江省" + 十三届 + "人大常委会", "省十三届" + "人大常委会": the body of that term,
        named with its place (the term is part of the name as the text writes it)."""
        m = self.term_prefix.search(text, max(0, org.start_char - 12), org.start_char)
        if m is None:
            return org
        start = m.start()
        if (
            before is not None
            and before.label_ in ("GPE", "LOC")
            and before.end_char == m.start()
            and not m.group("level")
        ):
            start = before.start_char
        span = org.doc.char_span(start, org.end_char, label="ORG", alignment_mode="expand")
        return span if span is not None and span.end_char == org.end_char else org

    def _list_head_org(self, ents: list[Span], j: int, text: str, ctx: Context) -> str | None:
        """ "省人大常委会副主任欧阳红、吉家豪，秘书长文昌盛": a post without a body, right after a
        list of names that a body's post opens, belongs to that body."""
        if j < 0 or ents[j].label_ != "PERSON":
            return None
        boundary = ents[j + 1].start_char if j + 1 < len(ents) else len(text)
        if gap(text, ents[j].end_char, boundary) not in self.list_joiners:
            return None
        while j >= 0 and ents[j].label_ == "PERSON":
            j -= 1
            if j >= 0 and gap(text, ents[j].end_char, ents[j + 1].start_char) not in (
                self.name_joiners | {""}
            ):
                return None
        if j < 1 or ents[j].label_ != "POSITION" or ents[j - 1].label_ != "ORG":
            return None
        if ents[j - 1].end_char != ents[j].start_char:
            return None
        tail, _ = self.resolve_org(ents[j].text, ents[j - 1], ctx)
        return tail

    # -----------------------------------------------------------------------------------------

    def resolve_org(
        self, role: str, org: Span | str | None, ctx: Context
    ) -> tuple[str | None, str | None]:
        """(full organisation, how it was resolved: None when written in full)."""
        own = self.bodies.get(role)
        if org == self.home_state:
            return self.home_state, "envoy"
        if isinstance(org, Span):
            foreign = self._foreign_body(org)
            if foreign is not None:
                return foreign, None
        if isinstance(org, Span) and org.text in self.abbreviated_heads:
            org = org.text  # a generic head tagged as an organisation ("委员会副主任")
        if isinstance(org, Span):
            name = org.text
            central = name in self.central_aliases or (
                name in self.loc.party_prefixes and role.startswith(self.central_role_prefix)
            )
            if own is not None and (central or own.body.startswith(name)):
                # "中共" + 中央政治局常委, "中共中央" + 总书记: the post names its body.
                return own.body, None
            if central:
                return self.central_aliases.get(name, self.central_committee), None
            if name.endswith(self.state_suffixes) and role in self.state_head_posts:
                return name, None  # 中华人民共和国主席, 越南民主共和国主席: the state itself
            if (role in self.envoy_posts or role.startswith(self.envoy_mark)) and org.label_ in (
                "GPE",
                "LOC",
            ):
                return (
                    name,
                    None,
                )  # 多哥驻华大使, 中华人民共和国驻加拿大大使: the state it represents
            if (
                role in self.fused_ministry_posts
                and not name.endswith("部")
                and name + "部" in self.known_bodies
            ):
                return name + "部", None  # 外交部长: 外交 + 部长
            if org.label_ in ("GPE", "LOC") or self._names_place_body(name, role):
                # A place before a post: the post says which of its bodies ("宜昌" + 市委书记).
                tail, how = self.loc.body_of_place(name, role, ctx)
                if tail is not None:
                    self.loc.register(ctx, self._strip_body(tail))
                return tail, how
            if name in self.loc.levels:
                # A bare level ("自治区" + 党委副书记): the document's own locality.
                locality = ctx.localities.get(name)
                return (
                    (self.loc.body_of_place(locality, role)[0], "locality")
                    if locality
                    else (None, None)
                )
            if (
                name.endswith(self.sub_unit_suffixes)
                and not name.startswith(self.loc.levels)
                and not any(p in name[:-1] for p in self.parent_suffixes)  # 民政部养老服务司
            ):
                # "宣传教育司" after "生态环境部" was named: a department of that ministry.
                for parent in reversed(ctx.orgs_seen):
                    if parent.endswith(self.parent_suffixes) and not name.startswith(parent):
                        return parent + name, "text"
            full = self._named_in_full(name, ctx)
            if full is not None:
                return full, "text"
            tail, how = self.loc.expand_abbreviation(name, ctx)
            # "狮山镇" + 党委书记 -> 狮山镇党委; a university's 党委书记 stays with the university.
            if (
                role.startswith(self.party_committee)
                and tail.endswith(self.loc.place_endings)
                and not tail.endswith(self.party_committee)
            ):
                tail += self.party_committee
            elif role.startswith(self.work_committees) and not tail.endswith(self.work_committee):
                # 海南省委教育 + 工委书记 -> 海南省委教育工委
                tail += role[: role.index(self.work_committee) + len(self.work_committee)]
            return tail, how
        if isinstance(org, str):
            # A generic head ("室", "学校", "委员会"): the organisation of that kind the document
            # names most often, the first named on a tie (the one it is about): "室副主任" in a
            # report on 湖北省委党史研究室 that also names a visiting 纪检监察室.
            suffixes = tuple(self.abbreviated_heads[org])
            seen = [n for n in ctx.orgs_seen if n.endswith(suffixes) and len(n) > len(org)]
            if not seen:
                return None, None
            # A shorter form ending a longer one (省委党史研究室, 湖北省委党史研究室) is a
            # mention of the longer.
            counts = Counter({n: sum(n.endswith(x) for x in seen) for n in seen})
            first = {n: -i for i, n in reversed(list(enumerate(seen)))}
            return max(counts, key=lambda n: (counts[n], first[n])), "text"
        # No organisation written: the post itself may say which body it belongs to.
        if own is not None:
            return own.body, "post"
        for level in self.loc.levels:
            if role.startswith(level) and role[len(level) :].startswith(
                (self.committee, self.party_committee)
            ):
                locality = ctx.localities.get(level)
                if locality:
                    return self.loc.committee_of(locality), "locality"
                return None, None
        if role in self.gov_posts:
            locality = ctx.localities.get(self.gov_posts[role])
            if locality:
                return locality + self.loc.government, "locality"
            return None, None
        if role.endswith(self.party_department_posts):
            top = ctx.top_locality(self.loc.top_levels)
            if top:
                return self.loc.committee_of(top), "locality"
        if role in self.institution_posts:
            # 校长, 董事长 with no body written: the university or company the document is about.
            for name in reversed(ctx.orgs_seen):
                if name.endswith(self.institution_suffixes):
                    return name, "context"
        return None, None

    def _named_in_full(self, name: str, ctx: Context) -> str | None:
        """ "政务院" after "中央人民政府政务院" was named: the name the document gave the body in
        full, a parent body's name before it. Bodies that posts name themselves (国务院,
        中共中央) keep their usual form."""
        if name in self.own_bodies:
            return None
        for full in reversed(ctx.orgs_seen):
            if (
                len(full) > len(name)
                and full.endswith(name)
                and full[: -len(name)].endswith(self.parent_body_endings)
            ):
                return full
        return None

    def _strip_body(self, tail: str) -> str:
        for suffix in (self.loc.government, self.party_committee, self.committee):
            tail = tail.removesuffix(suffix)
        return tail

    def _names_place_body(self, name: str, role: str) -> bool:
        """An "ORG" that is only a place name ("福建", "成华") before 省委副书记 / 区长."""
        if name.endswith(self.body_endings):
            return False
        committee = any(
            role.startswith((lv + self.committee, lv + self.party_committee))
            for lv in self.loc.levels
        )
        return committee or role in self.gov_posts
