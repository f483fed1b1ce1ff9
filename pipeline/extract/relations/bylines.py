"""holds_position from a speaker line: "浙江省省长 刘捷" under a government work report is
刘捷 holds 省长 of 浙江省人民政府; "省长 胡玉亭" takes the place from the document (its title,
the bodies it names), as a post written short in the text does (`locality`).

The lines are read by normalisation (`pipeline.normalise.bylines`); only posts of the head of a
government (`government_posts` in relation_rules.yaml) give a row here: they name one body
once the place is known.
"""

from __future__ import annotations

from spacy.tokens import Doc

from pipeline.core.vocabulary import RelationName
from pipeline.extract.relations.base import Context, Relation, confidence
from pipeline.extract.relations.locality import Localities
from pipeline.nlp.docs import entities
from pipeline.normalise.bylines import Byline, post_of

RULE = "byline"


class BylineRules:
    def __init__(self, localities: Localities) -> None:
        self.localities = localities

    def holds_position(
        self, doc: Doc, bylines: list[tuple[Byline, int, int]], title: str | None
    ) -> list[Relation]:
        """One row per speaker byline naming a government head; ``bylines``: each with its
        span in the clean text."""
        speakers = [(b, s, e) for b, s, e in bylines if b.kind == "speaker" and b.post]
        if not speakers:
            return []
        loc = self.localities
        ctx = Context(title=title or "")
        # The place: the title's, else the meeting the text was delivered at (——…在吉林省第
        # 十四届人民代表大会第四次会议上), else the bodies the text names.
        for name in [title or "", *(b.meeting or "" for b, _, _ in bylines)]:
            if name:
                loc.from_title(ctx, name)
        loc.from_document(ctx, list(entities(doc)))
        rows = []
        for b, start, end in speakers:
            post = post_of(b) or ""
            place = b.place
            # "自治区主席 韦韬", "自治区人民政府主席 张雨浦": the level alone names no place; the
            # document's does.
            gov = loc.government
            if place and place.endswith(gov) and place[: -len(gov)] in loc.levels:
                place = place[: -len(gov)]
            level_only = place in loc.levels
            key = (place + post) if level_only and (place + post) in loc.gov_posts else post
            # The role as the text rules write it (自治区主席, not 主席), so rows agree.
            if key not in loc.gov_posts or not b.person:
                continue
            resolved = None
            if place is None or level_only:
                place = ctx.localities.get(loc.gov_posts[key])
                resolved = "locality"
            if not place:
                continue
            if place.endswith(loc.government):
                body: str | None = place  # 浙江省人民政府省长 刘捷
            else:
                body, _ = loc.body_of_place(place, key, ctx)
            if body is None:
                continue
            rows.append(
                Relation(
                    RelationName.HOLDS_POSITION,
                    b.person,
                    "PERSON",
                    body,
                    "ORG",
                    key,
                    start,
                    end,
                    confidence(RULE, resolved),
                    RULE,
                    resolved,
                )
            )
        return rows
