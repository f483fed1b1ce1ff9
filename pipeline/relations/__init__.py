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

from spacy.tokens import Doc

from pipeline.nlp import entities, span_text
from pipeline.relations.base import Context, Relation, dedupe, sentences
from pipeline.relations.bylines import BylineRules
from pipeline.relations.events import EventRules
from pipeline.relations.issues import IssueRules
from pipeline.relations.locality import Localities
from pipeline.relations.meetings import MeetingNames
from pipeline.relations.posts import PostRules

__all__ = ["Context", "Relation", "RelationExtractor", "get_extractor"]


class RelationExtractor:
    def __init__(self) -> None:
        self.localities = Localities()
        self.posts = PostRules(self.localities)
        self.events = EventRules(self.posts.is_name)
        self.issues = IssueRules()
        self.meeting_names = MeetingNames()
        self.bylines = BylineRules(self.localities)

    def extract(
        self,
        doc: Doc,
        title: str | None = None,
        year: int | None = None,
        context: Context | None = None,
    ) -> list[Relation]:
        """Relations of `doc`. `context`: the running context of the text before it (the
        chunks before this one of a huge document, `pipeline/chunked.py`), carried on."""
        ents = self.posts.join_dotted(doc, [e for e in entities(doc) if span_text(e).strip()])
        if context is None:
            ctx = Context(title=title or "", year=year)
            if title:
                self.localities.from_title(ctx, title)
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
            self.events.convened_unnamed(ctx, sent, sent_ents)
            for ent in sent_ents:
                if ent.label_ == "MEETING":
                    self.events.observe(ctx, ent, self.localities.is_referred(ent))
            rows += self.posts.holds_position(doc, sent, sent_ents, ctx)
            rows += self.posts.appointments(doc, sent_ents, ctx)
            rows += self.posts.name_then_title(doc, sent_ents, ctx)
            rows += self.events.events(doc, sent, sent_ents, ctx)
            rows += self.issues.issues(doc, sent, sent_ents)
        rows += self.issues.notice_headings(doc, ents)
        # 政协委员, 人大代表: membership of a body, not a post in it.
        rows = [r for r in rows if r.role not in self.posts.membership_roles]
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
        for row in rows:
            if row.tail_label == "MEETING":
                if ctx.main_meeting and self.events.sitting.fullmatch(row.tail):
                    row.tail = ctx.main_meeting
                row.tail = self.meeting_names.fullest(row.tail, mentions)
        return dedupe(rows)


@functools.cache
def get_extractor() -> RelationExtractor:
    return RelationExtractor()
