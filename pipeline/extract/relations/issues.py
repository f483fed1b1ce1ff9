"""issues: ORG (、ORG)* + 印发/出台/下发/发布 + 《…》 — the body that issued a document."""

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
    rules,
    text_of,
    words,
)


@family(order=3)
class IssueRules(RelationFamily):
    relations = (RelationName.ISSUES,)

    def __init__(self, extractor: Any) -> None:
        super().__init__(extractor)
        r = rules()
        self.trigger = regex.compile(r["issue_trigger"])
        self.generic_issuers = words("generic_issuers")
        self.clause_end = frozenset(r["clause_end"]) | frozenset(r["issue_document_stops"])
        adverbials = "|".join(map(regex.escape, words("issue_adverbials")))
        # "国务院办公厅近日出台", "财政部、税务总局在发布会前发布了"
        self.adverbial = regex.compile(rf"(?:{adverbials})+|{r['issue_when']}")
        self.issuer_joiner: str = r["issuer_joiner"]
        self.generic_window: int = r["generic_issuer_window"]
        self.notice_heading = regex.compile(r["notice_heading"], regex.MULTILINE)
        self.heading_separators = regex.compile(r["notice_heading_separators"])
        self.title_issuer = regex.compile(r["title_issuer"])

    def issuer_in_title(self, title: str) -> str | None:
        """The body a document's title names as its issuer (《X关于…》), or None."""
        m = self.title_issuer.match(title)
        return m.group(1) if m else None

    def sentence(self, doc: Doc, sent: Span, ents: list[Span], ctx: Context) -> Iterator[Relation]:
        return self.issues(doc, sent, ents)

    def document(self, doc: Doc, ents: list[Span], ctx: Context) -> Iterator[Relation]:
        return self.notice_headings(doc, ents)

    def issues(self, doc: Doc, sent: Span, ents: list[Span]) -> Iterator[Relation]:
        text = text_of(doc)
        for m in self.trigger.finditer(sent.text):
            t_start = sent.start_char + m.start()
            t_end = sent.start_char + m.end()
            docs_after = [
                e
                for e in ents
                if e.label_ == "DOCUMENT"
                and e.start_char >= t_end
                and not any(c in self.clause_end for c in text[t_end : e.start_char])
            ]
            if not docs_after:
                continue
            document = docs_after[0]
            issuers: list[Span] = []
            boundary = t_start
            for ent in reversed([e for e in ents if e.end_char <= t_start]):
                g = text[ent.end_char : boundary]
                if ent.label_ == "ORG" and (
                    g == ""
                    or (issuers and g == self.issuer_joiner)
                    or (not issuers and self.is_adverbial(g))
                ):
                    issuers.insert(0, ent)
                    boundary = ent.start_char
                elif ent.label_ == "DATE" and not issuers and self.is_adverbial(g):
                    boundary = ent.start_char
                else:
                    break
            heads = [org.text for org in issuers]
            if not heads:
                # "学校党委印发", "集团下发": a body written generically, kept as written.
                before = text[max(sent.start_char, t_start - self.generic_window) : t_start]
                heads = [g for g in self.generic_issuers if before.endswith(g)][:1]
            rule = "org_issue_document"
            for head in heads:
                yield Relation(
                    RelationName.ISSUES, head, "ORG", document.text, "DOCUMENT", None,
                    t_start - len(head), document.end_char, confidence(rule, None), rule,
                )  # fmt: skip

    def notice_headings(self, doc: Doc, ents: list[Span]) -> Iterator[Relation]:
        """A notice's heading line: "成都市发展和改革委员会 中共成都市委社会工作部 …
        关于印发成都市…实施方案的通知" — each body before 关于 issued the document (named with
        or without 《》; its 《》 form when the text gives it)."""
        text = text_of(doc)
        for m in self.notice_heading.finditer(text):
            start, end = m.span("issuers")
            issuers = [e for e in ents if e.label_ == "ORG" and start <= e.start_char < end]
            # Nothing but bodies and separators before 关于: a heading, not a sentence.
            bounds = [start, *(x for e in issuers for x in (e.start_char, e.end_char)), end]
            between = "".join(text[a:b] for a, b in zip(bounds[::2], bounds[1::2], strict=True))
            if not issuers or not self.heading_separators.fullmatch(between):
                continue
            title = m.group("title").strip().removeprefix("《").removesuffix("》")
            named = [e.text for e in ents if e.label_ == "DOCUMENT" and e.text[1:-1] == title]
            tail = named[0] if named else f"《{title}》"
            rule = "notice_heading"
            for org in issuers:
                yield Relation(
                    RelationName.ISSUES, org.text, "ORG", tail, "DOCUMENT", None,
                    org.start_char, m.end("title"), confidence(rule, None), rule,
                )  # fmt: skip

    def is_adverbial(self, g: str) -> bool:
        return g == "" or bool(self.adverbial.fullmatch(g))
