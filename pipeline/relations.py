"""Relations between entities: holds_position, chairs/attends/addresses/instructs, issues.

Rules run over the entity sequence of a spaCy Doc (PERSON, ORG, GPE/LOC, POSITION, MEETING,
DOCUMENT). Every row says which rule fired and, for organisations written in abbreviated form
("室", "省委", "省政府"), where the full name was resolved from. Trigger words and organisation
resolution tables are data (`resources/relation_rules.yaml`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex
import yaml
from spacy.tokens import Doc, Span

RESOURCES = Path(__file__).parent / "resources"

_CLAUSE_END = frozenset("。；！？;!?\n")


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


class RelationExtractor:
    def __init__(self) -> None:
        rules = _rules()
        self.event_triggers: list[tuple[str, regex.Pattern[str]]] = [
            (rel, regex.compile(pattern)) for rel, pattern in rules["event_triggers"].items()
        ]
        self.issue_trigger = regex.compile(rules["issue_trigger"])
        self.instruct_re = regex.compile(rules["instruct_pattern"])
        self.generic_meetings = regex.compile(rules["generic_meeting_words"])
        self.gov_posts = frozenset(rules["government_posts"])
        self.party_prefixes = tuple(rules["party_post_prefixes"])
        self.abbrev_orgs: dict[str, str] = rules["abbreviated_orgs"]
        self.levels: list[str] = rules["locality_levels"]
        self.person_re = regex.compile(rules["person_name"])

    # -----------------------------------------------------------------------------------------

    def extract(self, doc: Doc) -> list[Relation]:
        ents = [e for e in doc.ents if e.text.strip()]
        ctx = _Context(localities={}, main_meeting=None, orgs_seen=[])
        rows: list[Relation] = []
        for sent in doc.sents:
            sent_ents = [e for e in ents if sent.start <= e.start and e.end <= sent.end]
            self._update_context(ctx, sent_ents)
            rows += self._holds_position(doc, sent, sent_ents, ctx)
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
            elif ent.label_ == "MEETING" and ctx.main_meeting is None:
                ctx.main_meeting = ent.text
        return None

    def _register_locality(self, ctx: _Context, name: str) -> None:
        for level in self.levels:
            if name.endswith(level) and len(name) > len(level):
                ctx.localities.setdefault(level, name)
                if level == "区" and "市" in name:
                    ctx.localities.setdefault("市", name[: name.index("市") + 1])
                return
        # A bare province name ("湖北") names the province.
        if name in _rules()["provinces"]:
            ctx.localities.setdefault("省", name + _rules()["provinces"][name])

    # -----------------------------------------------------------------------------------------
    # holds_position

    def _holds_position(
        self, doc: Doc, sent: Span, ents: list[Span], ctx: _Context
    ) -> Iterator[Relation]:
        for i, ent in enumerate(ents):
            if ent.label_ != "PERSON" or not self._is_name(ent.text):
                continue
            # Walk left over "ORG? POSITION (、 ORG? POSITION)*" directly before the name; a
            # layout space between post and name is allowed ("省长 张明").
            posts: list[tuple[Span, Span | str | None]] = []
            j = i - 1
            boundary = ent.start
            # A shared title: "副总理刘明远、张华东" -> both names take the post before the first.
            while (
                j >= 0
                and ents[j].label_ == "PERSON"
                and _between(doc, ents[j].end, boundary) in ("、", "和")
            ):
                boundary = ents[j].start
                j -= 1
            while (
                j >= 0
                and ents[j].label_ == "POSITION"
                and _between(doc, ents[j].end, boundary) in ("", "、")
            ):
                position = ents[j]
                org: Span | str | None = None
                k = j - 1
                if (
                    k >= 0
                    and ents[k].label_ in ("ORG", "GPE", "LOC")
                    and ents[k].end == position.start
                ):
                    org = ents[k]
                    k -= 1
                elif (
                    position.start > sent.start and doc[position.start - 1].text in self.abbrev_orgs
                ):
                    org = doc[position.start - 1].text
                posts.append((position, org))
                boundary = (
                    org.start if isinstance(org, Span) else position.start - (1 if org else 0)
                )
                j = k
                if j >= 0 and _between(doc, ents[j].end, boundary) != "、":
                    break
            for position, org in posts:
                tail, resolved_from = self._resolve_org(position.text, org, ctx)
                if tail is None:
                    continue
                start = min(
                    position.start_char,
                    org.start_char if isinstance(org, Span) else position.start_char,
                )
                yield Relation(
                    "holds_position",
                    ent.text,
                    "PERSON",
                    tail,
                    "ORG",
                    position.text,
                    start,
                    ent.end_char,
                    0.9 if resolved_from is None else 0.8,
                    "org_position_person" if org is not None else "position_person",
                    resolved_from,
                )

    def _resolve_org(
        self, role: str, org: Span | str | None, ctx: _Context
    ) -> tuple[str | None, str | None]:
        if isinstance(org, Span):
            if org.label_ in ("GPE", "LOC"):
                # "宜昌市市长": a government post after a place name belongs to its government.
                if role in self.gov_posts or role.startswith(("副", "常务副")):
                    return org.text + "人民政府", "locality"
                if role.startswith(self.party_prefixes):
                    return org.text + "委", "locality"
                return None, None
            return self._expand_abbreviation(org.text, ctx)
        if isinstance(org, str):
            # One-character abbreviation ("室副主任"): the last organisation seen ending in it.
            for name in reversed(ctx.orgs_seen):
                if name.endswith(org) and len(name) > 1:
                    return name, "text"
            return None, None
        # No organisation written: the post itself says which body it belongs to.
        for prefix, body in _rules()["implied_orgs"].items():
            if role.startswith(prefix):
                level = prefix[:-1] if prefix.endswith(("委", "党委")) else prefix
                level = body.get("level", level)
                locality = ctx.localities.get(level)
                if locality:
                    return locality + body["suffix"], "locality"
                return None, None
        if role in self.gov_posts:
            level = self.gov_posts_level(role)
            locality = ctx.localities.get(level)
            if locality:
                return locality + "人民政府", "locality"
        return None, None

    def gov_posts_level(self, role: str) -> str:
        return _rules()["government_posts"][role]

    def _expand_abbreviation(self, name: str, ctx: _Context) -> tuple[str, str | None]:
        for abbrev, expansion in self.abbrev_orgs.items():
            if len(abbrev) > 1 and name == abbrev:
                level = expansion["level"]
                locality = ctx.localities.get(level)
                if locality:
                    return locality + expansion["suffix"], "locality"
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
                    tail = self._meeting_for(ents, t_start, base + m.end(), text[m.end() :], ctx)
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
        gap = doc.text[last.end_char : pos]
        if any(c in _CLAUSE_END for c in gap) or len(gap) > 40:
            return []
        # Another subject-like phrase in between ("会议", "省委") would take the action instead.
        if regex.search(r"[，,][^，,]*?(?:会议|会上|大会)", gap):
            return []
        group = [last]
        for prev in reversed(people[:-1]):
            between = doc.text[prev.end_char : group[0].start_char]
            if regex.fullmatch(r"[、和及]|、[^，。；]{0,20}?", between) or (
                between
                and all(
                    e.label_ in ("POSITION", "ORG")
                    for e in ents
                    if prev.end_char <= e.start_char < group[0].start_char
                )
                and regex.fullmatch(r"[，、][\p{Han}、]{0,20}", between)
            ):
                group.insert(0, prev)
            else:
                break
        return group

    def _meeting_for(
        self, ents: list[Span], t_start: int, t_end: int, after: str, ctx: _Context
    ) -> str | None:
        # A named meeting right after the trigger ("主持召开省政府第四十二次常务会议").
        for ent in ents:
            if ent.label_ == "MEETING" and t_end <= ent.start_char <= t_end + 6:
                return ent.text
        # "出席会议", "在开幕式上讲话", "参加大会": the document's own meeting.
        if self.generic_meetings.search(after[:8]) or self.generic_meetings.search(
            "".join(e.text for e in ents if e.end_char <= t_start)[-0:]
        ):
            return ctx.main_meeting
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
                and not any(c in _CLAUSE_END or c == "，" for c in doc.text[t_end : e.start_char])
            ]
            if not docs_after:
                continue
            document = docs_after[0]
            issuers: list[Span] = []
            boundary = t_start
            for ent in reversed([e for e in ents if e.end_char <= t_start]):
                gap = doc.text[ent.end_char : boundary]
                if ent.label_ in ("ORG",) and (
                    gap == "" or (issuers and gap == "、") or (not issuers and self._adverbial(gap))
                ):
                    issuers.insert(0, ent)
                    boundary = ent.start_char
                elif ent.label_ in ("DATE",) and not issuers and self._adverbial(gap):
                    boundary = ent.start_char
                else:
                    break
            for org in issuers:
                yield Relation(
                    "issues",
                    org.text,
                    "ORG",
                    document.text,
                    "DOCUMENT",
                    None,
                    org.start_char,
                    document.end_char,
                    0.9,
                    "org_issue_document",
                )

    @staticmethod
    def _adverbial(gap: str) -> bool:
        return gap == "" or bool(
            regex.fullmatch(r"(?:近日|日前|今天|同日|联合|正式|专门|再次|也)+", gap)
        )


def _between(doc: Doc, start: int, end: int) -> str:
    return doc.text[start:end].strip(" \u3000")


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
