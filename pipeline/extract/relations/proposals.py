"""Generous proposals: rows the precise rules would not write, for the decider to judge.

The rules of `posts` and `events` were written for precision, one genre at a time, and each new
genre found them short (a list of 21 vice-chairs broken by one name the tagger read as an
organisation, "主持会议" with the meeting named only in the headline, a foreign president under a
Chinese body). The proposals here ask less of the text and propose more; `decider.py` keeps those
its learned features support. Each proposal names its kind in `rule` (`proposed_*`), so a row
says how it was found.

* `proposed_title_list`: a post followed by a run of names (`全国政协副主席胡春华、沈跃跃、…`),
  a run item being a PERSON span or, within such a run, a short Han item the tagger missed
  (`proposed_title_list/untagged`).
* `proposed_event_subject`: every name of the clause before an event trigger, up to the name of
  another act, with the meeting after the trigger, or the document's meeting when the trigger
  says only 会议/大会/开幕会 or nothing.
* `proposed_foreign_post`: a post of a state (总统, 总理, 外长 …) written with a foreign state
  (`哈萨克斯坦总统托卡耶夫`, `普京总统` in an item about Russia): the state is the tail.
* `proposed_session_role`: a session's 主席团常务主席 / 执行主席 / 秘书长 and the names after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import regex
from spacy.tokens import Doc, Span

from pipeline.core.vocabulary import RelationName
from pipeline.extract.relations.base import (
    Context,
    Relation,
    RelationFamily,
    confidence,
    family,
    foreign_states,
    rules,
    text_of,
)
from pipeline.nlp.known_persons import known_person_names

_EVENT_RELATIONS = (RelationName.CHAIRS, RelationName.ATTENDS, RelationName.ADDRESSES)


@family(order=4)
class Proposals(RelationFamily):
    relations = (
        RelationName.HOLDS_POSITION,
        RelationName.CHAIRS,
        RelationName.ATTENDS,
        RelationName.ADDRESSES,
    )

    def __init__(self, extractor: Any) -> None:
        super().__init__(extractor)
        p = rules()["proposals"]
        self.separators = regex.compile(p["list_separator"])
        self.list_lead = regex.compile(p["list_lead"])
        self.group_title = regex.compile(p["group_title"])
        self.untagged_item = regex.compile(p["untagged_name"])
        self.other_act = regex.compile(p["other_act"])
        self.foreign_posts = frozenset(p["foreign_posts"])
        self.international_bodies = frozenset(p["international_bodies"])
        self.session_role = regex.compile(p["session_role"])
        self.session_role_names = dict(p["session_role_names"])
        self.session_role_chain = regex.compile("、" + p["session_role"])
        self.session_officers = frozenset(p["session_officers"])
        self.presidium: str = p["presidium"]
        # the event rules' own triggers and meeting lead (a family may use those before it)
        events = extractor.events
        self.triggers = [(rel, p) for rel, p in events.triggers if rel in _EVENT_RELATIONS]
        self.trigger_lead = events.meeting_lead
        self.max_subject_gap: int = p["max_subject_gap"]
        self.max_agent_gap: int = p["max_agent_gap"]
        self.max_list_gap: int = p["max_list_gap"]
        self.clause_break = regex.compile(p["clause_break"])
        self.group_mark: str = p["group_mark"]
        self.group_after = regex.compile(p["group_after"])
        self.object_verbs = regex.compile(p["object_verbs"])

    # ------------------------------------------------------------------------------------------

    def prepare(self, ctx: Context, sent: Any, ents: list[Span]) -> None:
        states = foreign_states()
        for ent in ents:
            if ent.label_ in ("GPE", "LOC", "ORG") and ent.text in states:
                if ent.text not in ctx.foreign_states:
                    ctx.foreign_states.append(ent.text)

    def sentence(self, doc: Doc, sent: Any, ents: list[Span], ctx: Context) -> Iterator[Relation]:
        text = text_of(doc)
        yield from self.title_lists(text, sent, ents, ctx)
        yield from self.group_titles(text, sent, ents, ctx)
        yield from self.event_subjects(text, sent, ents, ctx)
        yield from self.foreign(text, ents, ctx)
        yield from self.session_roles(text, sent, ents, ctx)

    # ------------------------------------------------------------------------------------------

    def _run_after(
        self, text: str, pos: int, end: int, by_start: dict[int, Span]
    ) -> list[tuple[str, int, int, bool]]:
        """The names listed from `pos`: (name, start, end, tagged as PERSON)."""
        out: list[tuple[str, int, int, bool]] = []
        while pos < end:
            ent = by_start.get(pos)
            if ent is not None and ent.label_ == "PERSON":
                name, stop, tagged = ent.text, ent.end_char, True
            else:
                m = self.untagged_item.match(text, pos, end)
                if m is None or not out:
                    break  # an untagged item only inside a run that a tagged name began
                name, stop, tagged = m.group("name"), m.end("name"), False
            if not self.extractor.posts.is_name(name):
                break
            out.append((name, pos, stop, tagged))
            sep = self.separators.match(text, stop, end)
            if sep is None:
                break
            pos = sep.end()
        return out

    def title_lists(
        self, text: str, sent: Any, ents: list[Span], ctx: Context
    ) -> Iterator[Relation]:
        by_start = {e.start_char: e for e in ents}
        posts = self.extractor.posts
        for i, ent in enumerate(ents):
            if ent.label_ != "POSITION":
                continue
            lead = self.list_lead.match(text, ent.end_char, sent.end_char)
            run = self._run_after(
                text, lead.end() if lead else ent.end_char, sent.end_char, by_start
            )
            if len(run) < (1 if lead and lead.group() else 2):
                continue
            before = ents[i - 1] if i and ents[i - 1].end_char == ent.start_char else None
            org = before if before is not None and before.label_ in ("ORG", "GPE") else None
            if posts._past_term(text, (ent, org), ctx):
                continue  # 上届省政协副主席A、B: posts of a past term
            tail, how = posts.resolve_org(ent.text, org, ctx)
            if tail is None or tail in posts.abbreviated_heads:
                continue  # a generic head (委员会, 集团党委) of a body not resolved
            for name, _start, end, tagged in run:
                rule = "proposed_title_list" + ("" if tagged else "/untagged")
                yield Relation(
                    RelationName.HOLDS_POSITION, name, "PERSON", tail, "ORG", ent.text,
                    (org or ent).start_char, end, confidence(rule, how), rule, how,
                )  # fmt: skip

    def group_titles(
        self, text: str, sent: Any, ents: list[Span], ctx: Context
    ) -> Iterator[Relation]:
        """ "王兆国、李建国等副委员长出席": names, 等, then the post they share."""
        posts = self.extractor.posts
        for i, ent in enumerate(ents):
            if ent.label_ != "POSITION" or i == 0:
                continue
            m = self.group_title.search(text, sent.start_char, ent.start_char)
            if m is None or m.end() != ent.start_char:
                continue
            names = []
            j = i - 1
            edge = m.start()
            while j >= 0 and ents[j].label_ == "PERSON" and ents[j].end_char <= edge:
                between = text[ents[j].end_char : edge]
                if between and not self.separators.fullmatch(between):
                    break
                names.append(ents[j])
                edge = ents[j].start_char
                j -= 1
            tail, how = posts.resolve_org(ent.text, None, ctx)
            if tail is None:
                continue
            for person in names:
                rule = "proposed_group_title"
                yield Relation(
                    RelationName.HOLDS_POSITION, person.text, "PERSON", tail, "ORG", ent.text,
                    person.start_char, ent.end_char, confidence(rule, how), rule, how,
                )  # fmt: skip

    # ------------------------------------------------------------------------------------------

    def _meeting_after(self, text: str, t_end: int, ents: list[Span], ctx: Context) -> str | None:
        lead = self.trigger_lead.match(text, t_end)
        at = lead.end() if lead else t_end
        for e in ents:
            if e.label_ == "MEETING" and at <= e.start_char <= at + 2:
                return e.text
        main = ctx.main_meeting
        sitting = self.extractor.events.sittings.match(text, at)
        if sitting is not None and main:
            return self.extractor.events.sitting_of(main, sitting.group())
        generic = self.extractor.events.generic_meetings.match(text, at)
        if generic is not None:
            word = self.extractor.events.generic_prefix.sub("", generic.group())
            if main and self.extractor.events.sittings.fullmatch(word):
                return self.extractor.events.sitting_of(main, word)
            return main
        nxt = text[at : at + 1]
        return main if nxt in ("", "。", "，", "；", "并", ",", ";") else None

    def event_subjects(
        self, text: str, sent: Any, ents: list[Span], ctx: Context
    ) -> Iterator[Relation]:
        found = sorted(
            (m.start() + sent.start_char, m.end() + sent.start_char, rel)
            for rel, p in self.triggers
            for m in p.finditer(sent.text)
        )
        is_name = self.extractor.posts.is_name
        persons = [e for e in ents if e.label_ == "PERSON" and is_name(e.text)]
        for t_start, t_end, relation in found:
            meeting = self._meeting_after(text, t_end, ents, ctx)
            if meeting is None or self._not_an_act(text, sent, ents, t_start, t_end, ctx):
                continue
            if self.extractor.events._narrated(meeting, ctx):
                continue  # another, earlier meeting told of in a report on the title's
            for person in self._agents(text, persons, t_start):
                rule = "proposed_event_subject"
                yield Relation(
                    relation, person.text, "PERSON", meeting, "MEETING", None,
                    person.start_char, t_end, confidence(rule, None), rule, None,
                )  # fmt: skip

    def _not_an_act(
        self, text: str, sent: Any, ents: list[Span], t_start: int, t_end: int, ctx: Context
    ) -> bool:
        """The guards of the precise event rules: "毛主席的讲话" (a noun), "参加过", "主持…工作",
        and acts narrated from years before the document."""
        ev = self.extractor.events
        clause_start = ev._clause_start(text, sent.start_char, t_start)
        return bool(
            ev.nominal_before.search(text[max(clause_start, t_start - 4) : t_start])
            or ev.not_after.match(text, t_end)
            or ev._historical(text[clause_start:t_start], ents, clause_start, t_start, ctx)
        )

    def _agents(self, text: str, persons: list[Span], t_start: int) -> list[Span]:
        """The names acting: the nearest before the trigger with nothing between that makes
        it no agent ("，我主持", "会见了…，出席", "等获奖代表作报告"), and the names listed
        before it (titles, bodies and separators between, however long the list)."""
        ev = self.extractor.events
        before = [p for p in persons if p.end_char <= t_start]
        if not before:
            return []
        nearest = before[-1]
        gap0 = text[nearest.end_char : t_start]
        # "…等两岸各界人士共8000多人出席", "…等常委会组成人员出席": the names and a group.
        grouped = bool(self.group_after.fullmatch(gap0)) or bool(
            gap0.startswith(self.group_mark)
            and (ev.agent_group.match(gap0) or ev.agent_others.match(gap0))
        )
        # "…检察长张鼎丞，出席了": a list that opens its clause may end with a comma.
        list_end = gap0.strip() in ev.list_end_commas
        if not (grouped or list_end) and (
            len(gap0) > self.max_agent_gap
            or self.clause_break.search(gap0)
            or ev.agent_blockers.search(gap0)
        ):
            return []
        agents = [nearest]
        for person in reversed(before[:-1]):
            between = text[person.end_char : agents[-1].start_char]
            if (
                len(between) > self.max_list_gap
                or self.other_act.search(between)
                or ev.agent_blockers.search(between)
                or t_start - person.end_char > self.max_subject_gap
            ):
                break
            agents.append(person)
        if list_end and not grouped:
            # (only when nothing before the list makes it an object: "会见了张三、李四，出席")
            lead = text[ev._clause_start(text, 0, agents[-1].start_char) : agents[-1].start_char]
            if self.other_act.search(lead) or self.object_verbs.search(lead):
                return []
        return agents

    # ------------------------------------------------------------------------------------------

    def foreign(self, text: str, ents: list[Span], ctx: Context) -> Iterator[Relation]:
        states = foreign_states()
        # "尊敬的普京总统，尊敬的莫迪总理": holders of several states, one of them named
        holders = sum(
            1
            for a, b in zip(ents, ents[1:], strict=False)
            if a.label_ == "PERSON" and b.text in self.foreign_posts and a.end_char == b.start_char
        )
        for i, ent in enumerate(ents):
            if ent.label_ != "POSITION" or ent.text not in self.foreign_posts:
                continue
            prev = ents[i - 1] if i else None
            nxt = ents[i + 1] if i + 1 < len(ents) else None
            state = None
            if prev is not None and prev.text in states and ent.start_char - prev.end_char <= 1:
                state, how = prev.text, None
            person = None
            if nxt is not None and nxt.label_ == "PERSON" and nxt.start_char == ent.end_char:
                person = nxt
            elif prev is not None and prev.label_ == "PERSON" and prev.end_char == ent.start_char:
                person = prev  # 普京总统
                named = {e.text for e in ents if e.text in states}
                named -= self.international_bodies
                if (
                    state is None
                    and len(named) == 1
                    and holders == 1
                    and prev.text not in known_person_names()
                ):
                    # the one state its sentence names (not a summit of many: 莫迪总理 in a
                    # speech that names 俄罗斯); a Chinese leader (李克强总理) is known
                    state, how = named.pop(), "context"
            if person is None or state is None:
                continue
            rule = "proposed_foreign_post"
            yield Relation(
                RelationName.HOLDS_POSITION, person.text, "PERSON", state, "GPE", ent.text,
                min(ent.start_char, person.start_char), max(ent.end_char, person.end_char),
                confidence(rule, how), rule, how,
            )  # fmt: skip

    # ------------------------------------------------------------------------------------------

    def session_roles(
        self, text: str, sent: Any, ents: list[Span], ctx: Context
    ) -> Iterator[Relation]:
        main = ctx.main_meeting
        if not main:
            return
        by_start = {e.start_char: e for e in ents}
        pos = sent.start_char
        while (m := self.session_role.search(text, pos, sent.end_char)) is not None:
            # "大会主席团常务主席、执行主席李鸿忠、王东明…": each name holds every role listed.
            roles = [self.session_role_names[m.group("role")]]
            end = m.end()
            while (more := self.session_role_chain.match(text, end, sent.end_char)) is not None:
                roles.append(self.session_role_names[more.group("role")])
                end = more.end()
            pos = end
            run = self._run_after(text, end, sent.end_char, by_start)
            # the session itself, not its presidium's meeting or a sitting the item reports
            session = main.split(self.presidium)[0]
            session = self.extractor.events.sittings.sub("", session) or session
            for role in roles:
                tail = session if role in self.session_officers else session + self.presidium
                for name, _start, stop, tagged in run:
                    rule = "proposed_session_role" + ("" if tagged else "/untagged")
                    yield Relation(
                        RelationName.HOLDS_POSITION, name, "PERSON", tail, "ORG", role,
                        m.start(), stop, confidence(rule, "context"), rule, "context",
                    )  # fmt: skip
