"""Relations between entities: holds_position, chairs/attends/addresses/instructs, issues.

Rules run over the entity sequence of a spaCy Doc (PERSON, ORG, GPE/LOC, POSITION, MEETING,
DOCUMENT), one small module per kind: `locality` (which place the document is about),
`posts` (holds_position), `events` (chairs/attends/addresses/instructs), `issues`. Every row says
which rule fired, how an abbreviated organisation or a generic meeting word was resolved, and a
confidence calibrated on the gold sets. Rule words are data (`resources/relation_rules.yaml`,
`resources/post_bodies.tsv`).
"""

from __future__ import annotations

import functools
from typing import Any

from spacy.tokens import Doc

from pipeline.extract.relations.base import (
    FAMILIES,
    Context,
    Relation,
    RelationFamily,
    dedupe,
    sentences,
    text_of,
)
from pipeline.extract.relations.bylines import BylineRules
from pipeline.extract.relations.decider import RelationDecider, get_decider
from pipeline.extract.relations.events import EventRules
from pipeline.extract.relations.issues import IssueRules
from pipeline.extract.relations.locality import Localities
from pipeline.extract.relations.meetings import MeetingNames
from pipeline.extract.relations.posts import PostRules
from pipeline.extract.relations.proposals import Proposals
from pipeline.nlp.docs import entities, span_text
from pipeline.nlp.known_persons import known_person_names

__all__ = ["Context", "Relation", "RelationExtractor", "get_extractor"]


class RelationExtractor:
    def __init__(self) -> None:
        self.localities = Localities()
        self.meeting_names = MeetingNames()
        # Speaker lines (浙江省省长 刘捷) read by normalisation, not sentences of the Doc.
        self.bylines = BylineRules(self.localities)
        self.families: list[RelationFamily] = []
        for order in sorted(FAMILIES):  # a family may use those before it (events: posts)
            self.families.append(FAMILIES[order](self))
        # Whether the learned decider judges the proposed rows (training switches it off).
        self.decide = True

    @property
    def decider(self) -> RelationDecider | None:
        """The packaged decider (loaded on first use), or None while deciding is off."""
        return get_decider() if self.decide else None

    def family(self, cls: type[RelationFamily]) -> Any:
        return next(f for f in self.families if isinstance(f, cls))

    @property
    def posts(self) -> PostRules:
        return self.family(PostRules)

    @property
    def events(self) -> EventRules:
        return self.family(EventRules)

    @property
    def proposals(self) -> Proposals:
        return self.family(Proposals)

    @property
    def issues(self) -> IssueRules:
        return self.family(IssueRules)

    def extract(
        self,
        doc: Doc,
        title: str | None = None,
        year: int | None = None,
        context: Context | None = None,
    ) -> list[Relation]:
        """Relations of `doc`. `context`: the running context of the text before it (the
        chunks before this one of a huge document, `pipeline/run/huge.py`), carried on."""
        posts = self.posts
        ents = posts.join_dotted(doc, [e for e in entities(doc) if span_text(e).strip()])
        if context is None:
            ctx = Context(title=title or "", year=year)
            # The text's own form of a split meeting name first (the convention's tail).
            self.events.joined_meeting(ctx, text_of(doc))
            if title:
                self.localities.from_title(ctx, title)
                self.events.joined_meeting(ctx, title)
                # The headline's meeting ("…会商会议举行"): the one a bare 会议 stands for when
                # the text names none.
                named = self.meeting_names.from_title(title)
                ctx.title_meeting = named[0] if named else None
            self.localities.from_document(ctx, ents)
        else:
            ctx = context
        rows: list[Relation] = []
        first = 0  # entities and sentences are both in document order: one pass over each
        for sent in sentences(doc):
            while first < len(ents) and ents[first].start < sent.start:
                first += 1
            last = first
            while last < len(ents) and ents[last].end <= sent.end:
                last += 1
            sent_ents = ents[first:last]
            ctx.sentence_heads.clear()
            self.localities.update(ctx, sent_ents)
            for fam in self.families:
                fam.prepare(ctx, sent, sent_ents)
            for fam in self.families:
                rows += fam.sentence(doc, sent, sent_ents, ctx)
        for fam in self.families:
            rows += fam.document(doc, ents, ctx)
        # A foreign office-holder (越南国家主席梁强) named again by a bare post (国家主席梁强,
        # 苏林总书记) holds it in the foreign state, not in the Chinese body the post names.
        foreign = posts.foreign_state_names
        abroad = {r.head for r in rows if r.tail_label != "MEETING" and r.tail.startswith(foreign)}
        rows = [r for r in rows if not (r.head in abroad and r.resolved_from == "post")]
        # A bare post (总书记, 总理) of someone no list knows, in a sentence about a foreign
        # state (朝鲜劳动党总书记金正日): not the Chinese body the post names.
        text = text_of(doc)
        known = known_person_names()
        rows = [
            r
            for r in rows
            if not (
                r.resolved_from == "post"
                and r.head not in known
                and posts.names_foreign_state(text, r.start, r.end)
            )
        ]
        # 政协委员, 人大代表: membership of a body, not a post in it.
        rows = [r for r in rows if r.role not in posts.membership_roles]
        # "刘少奇委员长" after "…委员会委员长刘少奇": the body the text wrote wins.
        written = {(r.head, r.role) for r in rows if r.rule != "person_position"}
        rows = [r for r in rows if r.rule != "person_position" or (r.head, r.role) not in written]
        # One meeting, one name: the fullest the document or its title gives.
        mentions = [e.text for e in ents if e.label_ == "MEETING"]
        if context is not None:
            known = set(ctx.meeting_names)
            new = [m for m in dict.fromkeys(mentions) if m not in known]
            mentions = ctx.meeting_names + mentions
            ctx.meeting_names.extend(new)
        mentions += self.meeting_names.from_title(title or "")
        reported = self.events.reported_sitting(ctx, text_of(doc))
        for row in rows:
            if row.tail_label == "MEETING":
                if reported and row.tail == ctx.main_meeting:
                    row.tail = self.events.sitting_of(row.tail, reported)
                if ctx.main_meeting and self.events.sitting.fullmatch(row.tail):
                    if self.events.sittings.fullmatch(row.tail):  # 第三次全体会议
                        row.tail = self.events.sitting_of(ctx.main_meeting, row.tail)
                    else:
                        row.tail = ctx.main_meeting
                row.tail = self.meeting_names.fullest(row.tail, mentions)
                row.tail = self.meeting_names.without_edition(row.tail)
        return dedupe(rows)


@functools.cache
def get_extractor() -> RelationExtractor:
    return RelationExtractor()
