"""chairs / attends / addresses / instructs: a person acting at the meeting the text reports.

A row needs (1) the person as the grammatical agent of the trigger (主持/出席/讲话 …): the name
before it in the same clause with nothing between but posts, places, time and manner words
("习近平在北京出席", "李强总理在会上讲话"), not "毛主席的讲话", "由周总理负责", "我主持";
(2) the meeting: a MEETING written right after the trigger, a generic word right after it
(会议, 开幕式) that stands for the meeting the document reports on, the meeting of the previous
trigger joined by 并 ("出席会议并讲话"), or "在…会上讲话"; (3) no historical narration in the
clause ("四年前，…主持召开了…", "参加过"). Anything else gives no row: a missing row is
better than a wrong one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
    rules,
    text_of,
)

# Entities masked out of the text a rule reads: names (曾友成 is not 曾) and what may stand
# between an agent and the trigger (posts, bodies, places, dates).
_NAMES = frozenset({"PERSON", "ORG", "GPE", "LOC", "POSITION", "MEETING", "DOCUMENT"})
_BETWEEN = frozenset({"ORG", "GPE", "LOC", "POSITION", "DATE"})
_RUNS = regex.compile("_+")


@dataclass
class _Act:
    end: int
    subjects: list[Span]
    meeting: str | None
    how: str | None = None  # how the meeting was found: None (written), context, chain


def _relation_name(key: str) -> RelationName:
    try:
        return RelationName(key)
    except ValueError:
        from pipeline.core.resources import ResourceError

        known = ", ".join(RelationName)
        raise ResourceError(
            f"relation_rules.yaml: event_triggers names {key!r}, not a relation ({known})"
        ) from None


@family(order=2)
class EventRules(RelationFamily):
    relations = (
        RelationName.CHAIRS,
        RelationName.ATTENDS,
        RelationName.ADDRESSES,
        RelationName.INSTRUCTS,
    )

    def __init__(self, extractor: Any) -> None:
        super().__init__(extractor)
        r = rules()
        ev = r["events"]
        self.is_name: Callable[[str], bool] = extractor.posts.is_name
        self.triggers: list[tuple[RelationName, regex.Pattern[str]]] = [
            (_relation_name(rel), regex.compile(pattern))
            for rel, pattern in r["event_triggers"].items()
        ]
        self.instruct_re = regex.compile(r["instruct_pattern"])
        self.generic_meetings = regex.compile(r["generic_meeting_words"])
        self.sitting = regex.compile(r["meeting_sitting"])
        self.sittings = regex.compile(r["session_sittings"]["words"])
        self.plain_sitting: str = r["session_sittings"]["plain"]
        self.reported = regex.compile(r["session_sittings"]["reported"])
        self.split_meeting = regex.compile(r["split_meeting"])
        self.generic_prefix = regex.compile(ev["generic_meeting_prefix"])
        self.clause_end = frozenset(r["clause_end"])
        self.clause_marks = frozenset(ev["clause_marks"])
        self.agent_blockers = regex.compile(ev["agent_gap_blockers"])
        self.agent_comma = regex.compile(ev["agent_comma_continuation"])
        # "李鹏、乔石…等领导同志出席": the names and the group they stand for act together.
        self.agent_group = regex.compile(ev["agent_group"])
        self.agent_others = regex.compile(ev["agent_others"])
        self.list_end_commas = frozenset(ev["list_end_commas"])
        self.min_list_names: int = ev["min_list_names"]
        self.list_lead = regex.compile(ev["list_lead"])
        self.max_agent_gap: int = ev["max_agent_gap"]
        self.nominal_before = regex.compile(ev["nominal_before_trigger"])
        self.not_after = regex.compile(ev["not_after_trigger"])
        self.meeting_lead = regex.compile(ev["meeting_lead"])
        self.chain = regex.compile(ev["chain"])
        self.at_meeting = regex.compile(ev["at_meeting"])
        self.passive = regex.compile(ev["passive_marker"])
        self.historical = regex.compile(ev["historical_markers"])
        self.year_re = regex.compile(ev["year"])
        self.convened_before = regex.compile(ev["convened_before"])
        self.convened_after = regex.compile(ev["convened_after"])
        self.convening = regex.compile(ev["convening"])
        self.convening_lead: int = ev["convening_lead"]
        self.digits = {c: str(i) for i, c in enumerate(ev["chinese_digits"])}
        self.digits.update(ev.get("chinese_digit_variants", {}))
        self.subject_joiners = regex.compile(ev["subject_joiners"])
        self.subject_list = regex.compile(ev["subject_list"])
        self.subject_rival = regex.compile(ev["subject_rival"])
        self.plain_meeting: str = ev["plain_meeting"]
        self.bare_after = regex.compile(ev["bare_trigger_after"])
        self.listed_after = regex.compile(ev["listed_after_trigger"])
        self.bare_speech = regex.compile(ev["bare_speech"])
        self.title_min: int = ev["title_meeting_min_chars"]

    # -----------------------------------------------------------------------------------------
    # Which meeting the document reports on

    def observe(self, ctx: Context, ent: Span, referred: bool) -> None:
        """A MEETING mention: remember it, and take it as the document's own meeting when the
        title names it or the text says it was convened ("召开…会议", "…大会在京开幕")."""
        if referred:
            return
        ctx.meetings.append(ent.text)
        if ctx.main_meeting and self.sitting.fullmatch(ent.text):
            return  # a sitting of the session the document reports on
        text = text_of(ent.doc)
        if ctx.title and self._in_title(ent.text, ctx.title):
            if ctx.main_meeting is None or not self._in_title(ctx.main_meeting, ctx.title):
                ctx.main_meeting = ent.text
            return
        if ctx.main_meeting and ctx.title and self._in_title(ctx.main_meeting, ctx.title):
            return  # the title's meeting stays the document's
        before = text[max(0, ent.start_char - 8) : ent.start_char]
        after = text[ent.end_char : ent.end_char + 16]
        if self.convened_before.search(before) or self.convened_after.match(after):
            ctx.main_meeting = ent.text  # a new meeting convened: the text reports on it now

    def convened_unnamed(self, ctx: Context, sent: Span, ents: list[Span]) -> None:
        """ "召开“不忘初心、牢记使命”专题民主生活会": a meeting convened whose name is no MEETING
        span; "会议" after this is that meeting, which has no name here, not the previous one."""
        if ctx.title and ctx.main_meeting and self._in_title(ctx.main_meeting, ctx.title):
            return
        text = text_of(sent.doc)
        starts = {e.start_char for e in ents if e.label_ == "MEETING"}
        for m in self.convening.finditer(sent.text):
            after = sent.start_char + m.end()
            if any(0 <= s - after <= self.convening_lead for s in starts):
                continue
            generic = self.generic_meetings.match(text, after)
            if generic is None:
                ctx.main_meeting = None
                continue
            word = self.generic_prefix.sub("", generic.group())
            if ctx.main_meeting is None and word != self.plain_meeting:
                # "国务院总理赵紫阳今晚…举行招待会": an event the document reports on that has
                # no name is known by its kind (招待会, 座谈会); "会议" alone says too little.
                ctx.main_meeting = word

    def _in_title(self, name: str, title: str) -> bool:
        """ "苏州工业园区科技创新大会" is the meeting of "苏州工业园区召开科技创新大会"."""
        return any(name[k:] in title for k in range(len(name) - self.title_min + 1))

    # -----------------------------------------------------------------------------------------

    def joined_meeting(self, ctx: Context, text: str) -> None:
        """ "市十六届人大常委会举行第十次会议": the meeting the document reports on, its name
        split by the verb, when no meeting is known yet."""
        if ctx.main_meeting is not None:
            return
        m = self.split_meeting.search(text)
        if m is not None:
            ctx.main_meeting = m.group("body") + m.group("meeting")
            ctx.meetings.append(ctx.main_meeting)

    def prepare(self, ctx: Context, sent: Span, ents: list[Span]) -> None:
        self.convened_unnamed(ctx, sent, ents)
        self.joined_meeting(ctx, sent.text)
        for ent in ents:
            if ent.label_ == "MEETING":
                self.observe(ctx, ent, self.extractor.localities.is_referred(ent))

    def sentence(self, doc: Doc, sent: Span, ents: list[Span], ctx: Context) -> Iterator[Relation]:
        return self.events(doc, sent, ents, ctx)

    def events(self, doc: Doc, sent: Span, ents: list[Span], ctx: Context) -> Iterator[Relation]:
        text = sent.text
        base = sent.start_char
        found = sorted(
            ((m.start(), m.end(), rel) for rel, p in self.triggers for m in p.finditer(text)),
            key=lambda t: (t[0], -t[1]),
        )
        last: _Act | None = None
        taken_until = -1
        for start, end, relation in found:
            if start < taken_until:
                continue  # overlapping trigger ("作了…报告" inside a longer one)
            taken_until = end
            t_start, t_end = base + start, base + end
            if relation == RelationName.INSTRUCTS:
                yield from self._instructs(doc, ents, text[:end], t_start, t_end, ctx)
                continue
            act = self._act(doc, sent, ents, relation, t_start, t_end, ctx, last)
            if act is None:
                continue
            last = act
            if act.meeting is None:
                continue
            how = act.how
            for person in act.subjects:
                # (a person listed after the trigger: "出席大会的有：A，B")
                yield Relation(
                    relation, person.text, "PERSON", act.meeting, "MEETING", None,
                    min(person.start_char, t_start), max(t_end, person.end_char),
                    confidence(f"{relation}_trigger", how), f"{relation}_trigger", how,
                )  # fmt: skip

    def _act(
        self,
        doc: Doc,
        sent: Span,
        ents: list[Span],
        relation: str,
        t_start: int,
        t_end: int,
        ctx: Context,
        last: _Act | None,
    ) -> _Act | None:
        full = text_of(doc)
        after = full[t_end : sent.end_char]
        if self.not_after.match(after):
            return None  # 参加过, 主持制定, 主持…工作: not a meeting
        clause_start = self._clause_start(full, sent.start_char, t_start)
        clause = self._masked(full, ents, clause_start, t_start, _NAMES)
        if self._historical(clause, ents, clause_start, t_start, ctx):
            return None
        named = self._meeting_after(ents, full, t_end, sent.end_char, ctx)
        if named and self._narrated(named[0], ctx):
            return None
        # "出席会议并讲话": the second trigger shares the first one's people and meeting.
        if last is not None and self.chain.fullmatch(full[last.end : t_start]):
            if named:
                return _Act(t_end, last.subjects, named[0], named[1])
            return _Act(t_end, last.subjects, last.meeting, "chain")
        if self.nominal_before.search(full[max(clause_start, t_start - 4) : t_start]):
            return None  # 毛主席的讲话, 在…上的讲话
        passive = (
            self._passive(doc, ents, t_start, ctx) if relation == RelationName.CHAIRS else None
        )
        if passive is not None:
            return passive
        subjects = self.subjects_before(doc, ents, t_start, clause_start)
        if not subjects:
            return self._listed_after(ents, named, after, t_end, sent.end_char)
        g = full[subjects[-1].end_char : t_start]
        meeting = named
        if meeting is None and relation == RelationName.ADDRESSES:
            meeting = self._meeting_in_gap(ents, g, subjects[-1].end_char, t_start, ctx)
        if meeting is None and ctx.main_meeting is not None:
            if self.bare_after.match(after) or (
                relation == RelationName.ADDRESSES and self.bare_speech.match(full[t_start:t_end])
            ):
                meeting = ctx.main_meeting, "context"
        return _Act(t_end, subjects, *(meeting or (None, None)))

    def _listed_after(
        self,
        ents: list[Span],
        named: tuple[str, str | None] | None,
        after: str,
        t_end: int,
        sent_end: int,
    ) -> _Act | None:
        """ "应邀出席大会的省领导有：A，B…", "参加晚会的还有丁关根、李铁映…": the people
        listed after the meeting attended it (the meeting named or stood for right after the
        trigger: "参加会见的有" is no meeting)."""
        m = self.listed_after.match(after)
        if m is None or named is None:
            return None
        start = t_end + m.end()
        people = [
            e
            for e in ents
            if e.label_ == "PERSON"
            and start <= e.start_char
            and e.end_char <= sent_end
            and self.is_name(e.text)
        ]
        return _Act(t_end, people, *named) if people else None

    @staticmethod
    def _masked(text: str, ents: list[Span], start: int, end: int, labels: frozenset[str]) -> str:
        """text[start:end] with the entities of `labels` inside it written as "_" (a name such
        as 曾友成 is not the word 曾)."""
        chars = list(text[start:end])
        for e in ents:
            if e.label_ in labels and start <= e.start_char and e.end_char <= end:
                chars[e.start_char - start : e.end_char - start] = "_" * (e.end_char - e.start_char)
        return "".join(chars)

    def _narrated(self, meeting: str, ctx: Context) -> bool:
        """A document about the meeting its title names ("在中国共产党第九次全国代表大会上的
        报告") that says "毛主席主持召开了党的八届十一中全会" narrates another, earlier meeting."""
        main = ctx.main_meeting
        if not (main and ctx.title and self._in_title(main, ctx.title)):
            return False
        return meeting != main and not (
            main.endswith(meeting) or meeting.endswith(main) or meeting.startswith(main)
        )  # (…会议开幕会: a sitting of the main meeting, no other meeting)

    def _clause_start(self, text: str, sent_start: int, pos: int) -> int:
        i = pos
        while i > sent_start and text[i - 1] not in self.clause_end:
            i -= 1
        return i

    def _historical(
        self, clause: str, ents: list[Span], start: int, end: int, ctx: Context
    ) -> bool:
        """ "四年前，…", "早在…", or a year two or more years before the document's."""
        if self.historical.search(clause):
            return True
        if ctx.year is None:
            return False
        for ent in ents:
            if ent.label_ == "DATE" and start <= ent.start_char < end:
                year = self._year(ent.text)
                if year is not None and year < ctx.year - 1:
                    return True
        return False

    def _year(self, text: str) -> int | None:
        m = self.year_re.search(text)
        if not m:
            return None
        digits = "".join(self.digits.get(c, c) for c in m.group("y"))
        return int(digits) if digits.isdigit() and len(digits) == 4 else None

    def _meeting_after(
        self, ents: list[Span], text: str, t_end: int, sent_end: int, ctx: Context
    ) -> tuple[str, str | None] | None:
        """The meeting named right after the trigger, or a generic word standing for it."""
        for ent in ents:
            if ent.label_ == "MEETING" and t_end <= ent.start_char <= t_end + 8:
                if self.meeting_lead.fullmatch(text[t_end : ent.start_char]):
                    return ent.text, None
        generic = self.generic_meetings.match(text, t_end, sent_end)
        if generic:
            return self._generic(generic.group(), ctx)
        return None

    def _generic(self, word: str, ctx: Context) -> tuple[str, str | None] | None:
        """ "会议", "这次大会", "开幕式": the meeting of that kind the document reports on."""
        word = self.generic_prefix.sub("", word)
        for name in reversed(ctx.meetings if word != self.plain_meeting else []):
            if name.endswith(word):
                return name, "context"
        if ctx.main_meeting is not None:
            if self.sittings.fullmatch(word):
                return self.sitting_of(ctx.main_meeting, word), "context"
            return ctx.main_meeting, "context"
        if ctx.title_meeting is not None:
            return ctx.title_meeting, "title"
        return None

    def reported_sitting(self, ctx: Context, text: str) -> str | None:
        """The sitting of the numbered session the document is about that its title or text
        writes first ("开幕会", "主席团第一次会议"), or None."""
        main = ctx.main_meeting
        if not main or self.extractor.meeting_names.key(main) is None:
            return None
        if self.sittings.search(main):
            return None
        m = self.reported.search(ctx.title) or self.reported.search(text)
        if m is None:
            return None
        return m.group("sitting") or m.group("presidium") + m.group("number")

    def sitting_of(self, session: str, word: str) -> str:
        """ "开幕会" of the session the item reports: named with it ("…第二次会议开幕会"), a
        sitting distinct from its session; an unnumbered 全体会议 is the session."""
        if (
            word == self.plain_sitting
            or session.endswith(word)
            or self.extractor.meeting_names.key(session) is None  # a forum, no session
        ):
            return session
        return session + word

    def _meeting_in_gap(
        self, ents: list[Span], gap_text: str, start: int, end: int, ctx: Context
    ) -> tuple[str, str | None] | None:
        """ "在大会上讲话", "在第三届…论坛上致辞": the meeting the speech was given at."""
        if not self.at_meeting.search(gap_text):
            return None
        for ent in ents:
            if ent.label_ == "MEETING" and start <= ent.start_char and ent.end_char <= end:
                return ent.text, None
        if ctx.main_meeting is not None:
            return ctx.main_meeting, "context"
        return None

    def _passive(self, doc: Doc, ents: list[Span], t_start: int, ctx: Context) -> _Act | None:
        """ "开幕会由汪鸿雁主持": the meeting before 由 was chaired by the name after it."""
        text = text_of(doc)
        people = [
            e
            for e in ents
            if e.label_ == "PERSON" and e.end_char == t_start and self.is_name(e.text)
        ]
        if not people:
            return None
        m = self.passive.search(text[max(0, people[0].start_char - 12) : people[0].start_char])
        if not m:
            return None
        meeting: tuple[str, str | None] | None = None
        for ent in ents:
            if ent.label_ == "MEETING" and ent.end_char == people[0].start_char - len(m.group()):
                meeting = (ent.text, None)
        if meeting is None and m.group("generic"):
            meeting = self._generic(m.group("generic"), ctx)
        return _Act(t_start, people, *(meeting or (None, None)))

    # -----------------------------------------------------------------------------------------

    def subjects_before(
        self, doc: Doc, ents: list[Span], pos: int, clause_start: int
    ) -> list[Span]:
        """The person (or 、-joined persons) acting at `pos`: the nearest name before it in
        the same clause, with only posts, places, times and manner words between."""
        text = text_of(doc)
        people = [
            e for e in ents if e.label_ == "PERSON" and e.end_char <= pos and self.is_name(e.text)
        ]
        if not people:
            return []
        last = people[-1]
        g = text[last.end_char : pos]
        if any(c in self.clause_end for c in g):
            return []
        # Entities between (posts, places, dates) are fine; read the rest of the gap only.
        plain = self.agent_group.sub("", self._masked(text, ents, last.end_char, pos, _BETWEEN))
        # "…，国务委员姬鹏飞，党政军有关部门负责人和各界人士，出席了招待会": others who act
        # with the named list, not a rival subject.
        plain = self.agent_others.sub("", plain)
        # (how far is measured without them: "…罗干等党和国家领导人，各民主党派、无党派人士，
        # 孙中山先生的亲属及海外来宾，首都各界代表等两千余人出席大会")
        if len(plain) > self.max_agent_gap:
            return []
        # "在今天的会上": where the act happens, not another subject.
        plain = self.at_meeting.sub("_", plain)
        # "…，最高人民检察院检察长张鼎丞，出席了会议的开幕式": a comma closes a long list of
        # names that opens the sentence (checked below, once the list is known).
        list_comma = plain in self.list_end_commas
        if list_comma:
            plain = ""  # ("等，" closes the list: no rival subject, no blocker)
        if any(c in self.clause_marks for c in plain) and not self.agent_comma.search(plain):
            return []
        if self.agent_blockers.search(plain):
            return []
        if self.subject_rival.search(plain):
            return []
        # The name itself must not be an object or a possessor ("感谢X", "X的"): it opens the
        # clause or follows a post, a place, a time or a list of names.
        group = [last]
        for prev in reversed(people[:-1]):
            # (posts and bodies between count as one character: "，中华人民共和国全国人民
            # 代表大会常务委员会副委员长宋庆龄" is one more item of a list)
            between = _RUNS.sub(
                "_", self._masked(text, ents, prev.end_char, group[0].start_char, _BETWEEN)
            )
            # "副主任杨帆、沙振宇、李德明和秘书长白雪松出席": names joined by 、/和/，with
            # only posts and bodies between them act together.
            if self.subject_joiners.fullmatch(between) or (
                self.subject_list.fullmatch(between)
                and all(
                    e.label_ in ("POSITION", "ORG", "GPE", "LOC")
                    for e in ents
                    if prev.end_char <= e.start_char < group[0].start_char
                )
            ):
                group.insert(0, prev)
            else:
                break
        if list_comma and not self._list_opens_sentence(text, ents, group, clause_start):
            return []
        return group

    def _list_opens_sentence(
        self, text: str, ents: list[Span], group: list[Span], clause_start: int
    ) -> bool:
        """At least `min_list_names` names and nothing but posts, bodies and places before
        them in the sentence ("会见了张三，出席了…": 张三 is an object, not a list)."""
        if len(group) < self.min_list_names:
            return False
        before = self._masked(text, ents, clause_start, group[0].start_char, _BETWEEN)
        return self.list_lead.fullmatch(before) is not None

    def _instructs(
        self, doc: Doc, ents: list[Span], upto: str, t_start: int, t_end: int, ctx: Context
    ) -> Iterator[Relation]:
        """ "对X作出批示": the person instructs on X (the meeting when X is 会议)."""
        clause_start = self._clause_start(text_of(doc), 0, t_start)
        people = [
            e
            for e in ents
            if e.label_ == "PERSON" and e.end_char <= t_start and self.is_name(e.text)
        ]
        if not people or people[-1].end_char < clause_start:
            return
        g = text_of(doc)[people[-1].end_char : t_start]
        if len(g) > 40:
            return
        target = self.instruct_re.search(upto)
        if not target:
            return
        tail, tail_label = target.group("target"), "TOPIC"
        if self.generic_meetings.fullmatch(tail) and ctx.main_meeting:
            tail, tail_label = ctx.main_meeting, "MEETING"
        person = people[-1]
        yield Relation(
            RelationName.INSTRUCTS, person.text, "PERSON", tail, tail_label, None,
            person.start_char, t_end,
            confidence("instructs_trigger", None), "instructs_trigger",
        )  # fmt: skip
