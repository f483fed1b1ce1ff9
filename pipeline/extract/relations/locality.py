"""Locality rules: which province, city or county a document is about, and the bodies of a place.

"湖北省召开…" in a title or "宜昌市" in the text make 省委 → 湖北省委 and 市长 → 宜昌市人民政府.
"""

from __future__ import annotations

import functools

import regex
from spacy.tokens import Span

from pipeline.extract.relations.base import Context, alternation, rules, text_of, words
from pipeline.nlp.docs import span_text


class Localities:
    def __init__(self) -> None:
        r = rules()
        self.levels: tuple[str, ...] = tuple(r["locality_levels"])
        self.top_levels: tuple[str, ...] = tuple(r["top_locality_levels"])
        self.provinces: dict[str, str] = r["provinces"]
        self.body_expansions: dict[str, str] = r["body_expansions"]
        self.gov_posts: dict[str, str] = r["government_posts"]
        self.party_prefixes = words("party_prefixes")
        self.not_initials = frozenset(r["not_locality_initials"])
        self.not_short_initials = frozenset(r["not_short_locality_initials"])
        self.term_mark: str = r["term_mark"]
        b = r["bodies"]
        self.government: str = b["government"]
        self.party_committee: str = b["party_committee"]
        self.committee: str = b["committee"]
        self.prefecture: tuple[str, str] = tuple(b["prefecture_alias"])  # type: ignore[assignment]
        self.place_endings = tuple(b["place_endings"])
        self.org_place_endings = tuple(b["org_place_endings"])
        self.default_gov_level: str = b["default_government_level"]
        self.deputy_prefixes = tuple(b["deputy_prefixes"])
        self.head_endings = tuple(b["head_endings"])
        self.committee_self = tuple(b["committee_self"])
        excluded = regex.escape(r["title_locality_excluded"])
        names = "|".join(sorted(self.provinces, key=len, reverse=True))
        suffixes = alternation("title_locality_suffixes")
        # "湖北省", "佛山市南海区", "新疆维吾尔自治区"; not "在全市", "本县", "召开全省" or the
        # 年 of "2026年吉林省".
        self.title_locality = regex.compile(
            rf"(?:{names})(?:{'|'.join(map(regex.escape, r['province_suffixes']))})?"
            rf"|[^\P{{Han}}{excluded}]{{2,7}}?{suffixes}"
        )
        self.province_name = regex.compile(names)
        self.generic_place_ending: str = r["title_generic_place_ending"]
        self.level_order: list[str] = r["title_level_order"]
        self.outer_levels = tuple(r["bodies"]["outer_levels"])
        self.referred = regex.compile(r["referred_after_meeting"])

    # -----------------------------------------------------------------------------------------

    def from_title(self, ctx: Context, title: str) -> None:
        """The title names the document's locality, whether or not the text repeats it."""
        matches = [
            m
            for m in self.title_locality.finditer(title)
            if not m.group().endswith(self.generic_place_ending)
            or m.group()[: -len(self.generic_place_ending[-1])] in gazetteer_places()
        ]
        for i, m in enumerate(matches):
            name = m.group()
            # Adjacent divisions name one place, outer to inner: "佛山市" + "南海区".
            if (
                i > 0
                and matches[i - 1].end() == m.start()
                and self._rank(matches[i - 1].group()) < self._rank(name)
            ):
                name = matches[i - 1].group() + name
            # A province named inside a match starts the place: "栗战书任黑龙江省…" is
            # 黑龙江省 (the words before it are a name and a verb).
            inner = self.province_name.search(name, 1)
            if inner is not None and inner.start() < len(name) - 1:
                name = name[inner.start() :]
            self.register(ctx, name)

    def _rank(self, place: str) -> int:
        for i, level in enumerate(self.level_order):
            if place.endswith(level):
                return i
        return len(self.level_order)

    def update(self, ctx: Context, ents: list[Span]) -> None:
        """Localities and organisations named in a sentence (the meetings are the events')."""
        for i, ent in enumerate(ents):
            label = ent.label_
            if label in ("GPE", "LOC", "ORG"):
                text = span_text(ent)
            if label in ("GPE", "LOC") or (
                label == "ORG" and text.endswith(self.org_place_endings)
            ):
                name = text
                # "佛山市" + "南海区": adjacent divisions form one locality.
                if i > 0 and ents[i - 1].label_ in ("GPE", "LOC") and ents[i - 1].end == ent.start:
                    name = span_text(ents[i - 1]) + name
                self.register(ctx, name)
            elif label == "ORG":
                ctx.orgs_seen.append(text)
                for level in self.levels:
                    idx = text.find(level)
                    if idx > 0:
                        self.register(ctx, text[: idx + len(level)])
                        break
            elif label == "MEETING":
                # Organisations and places inside a meeting's name ("湖北省…调度会").
                ctx.orgs_seen += [t.text for t in ent if t.tag_ == "ORG"]
                for t in ent:
                    if t.tag_ == "LOC":
                        self.register(ctx, t.text)

    def from_document(self, ctx: Context, ents: list[Span]) -> None:
        """The document's own localities wherever it names them, for bodies written short
        before it does ("区人大常委会主任…" in the lead, 虹口区人民政府 two paragraphs on; 县委 in
        a report that names 户县 only in the title of a document it discusses): the place in
        the first body of each level the text names, for levels the title did not give. Bare
        place names do not count: a report on a visit names the places visited (在广州市)."""
        scratch = Context()
        for ent in ents:
            if ent.label_ == "ORG":
                self.update(scratch, [ent])
            elif ent.label_ == "DOCUMENT":
                for t in ent:
                    if t.tag_ == "LOC":
                        self.register(scratch, t.text)
        for level, name in scratch.localities.items():
            ctx.localities.setdefault(level, name)

    def is_referred(self, ent: Span) -> bool:
        """ "贯彻党的二十大精神": the meeting is referred to, not reported on."""
        return bool(self.referred.match(text_of(ent.doc), ent.end_char, ent.end_char + 40))

    def register(self, ctx: Context, name: str) -> None:
        for prefix in self.party_prefixes:
            name = name.removeprefix(prefix)
        if not name or name[0] in self.not_initials or name[0].isdigit():
            return
        if len(name) == 2 and name[0] in self.not_short_initials:
            return
        for level in self.levels:
            if name.endswith(level) and len(name) > len(level):
                ctx.localities.setdefault(level, name)
                if level == self.prefecture[0]:
                    ctx.localities.setdefault(self.prefecture[1], name)
                # "佛山市南海区" also names the city it lies in.
                for outer in self.levels:
                    idx = name.find(outer)
                    if 0 < idx < len(name) - len(level):
                        ctx.localities.setdefault(outer, name[: idx + len(outer)])
                return
        # A bare province name ("湖北") names the province.
        if name in self.provinces:
            ctx.localities.setdefault(self.provinces[name], name + self.provinces[name])

    # -----------------------------------------------------------------------------------------

    def committee_of(self, locality: str) -> str:
        """湖北省 → 湖北省委; 新疆维吾尔自治区 → 新疆维吾尔自治区党委; 户县 → 户县县委."""
        if locality.endswith(self.committee_self):
            return locality + self.party_committee
        return self.party_committee_name(locality, self.committee)

    def party_committee_name(self, locality: str, rest: str) -> str:
        """`locality` + a body of it; a place whose name is one character and its level (户县,
        歙县, 津市) repeats the level before 委: 户县县委, not 户县委."""
        if rest == self.committee and len(locality) == 2 and locality.endswith(self.levels):
            return locality + locality[1] + rest
        return locality + rest

    def body_of_place(
        self, place: str, role: str, ctx: Context | None = None
    ) -> tuple[str | None, str | None]:
        """The body of `place` a post belongs to: 宜昌 + 市委书记 → 宜昌市委."""
        if role.startswith(self.party_committee):
            return place + self.party_committee, "locality"
        for level in self.levels:
            if role.startswith(level + self.committee) or role.startswith(
                level + self.party_committee
            ):
                suffix = role[: role.index(self.committee) + len(self.committee)]
                stem = place if place.endswith(level) else place + level
                stem = self.with_outer_locality(stem, level, ctx)
                return self.party_committee_name(stem, suffix[len(level) :]), "locality"
        if role in self.gov_posts or (
            role.endswith(self.head_endings) and role.startswith(self.deputy_prefixes)
        ):
            level = self.gov_posts.get(role, self.default_gov_level)
            stem = place if place.endswith(self.place_endings) else place + level
            return stem + self.government, "locality"
        return None, None

    def with_outer_locality(self, stem: str, level: str, ctx: Context | None) -> str:
        """ "成华区" in a Chengdu document -> "成都市成华区" (districts and counties only)."""
        inner, city_level = self.levels_with_outer()
        if ctx is None or level not in inner:
            return stem
        city = ctx.localities.get(city_level)
        # (not a district already placed in its city or province: 浙江省舟山市普陀区)
        placed = any(outer in stem[:-1] for outer in self.outer_levels)
        if city and not placed and not stem.startswith(city) and not stem.endswith(city_level):
            return city + stem
        return stem

    def levels_with_outer(self) -> tuple[tuple[str, ...], str]:
        b = rules()["bodies"]
        return tuple(b["city_districts"]), b["city_level"]

    def expand_abbreviation(self, name: str, ctx: Context) -> tuple[str, str | None]:
        """ "省委" -> "湖北省委"; "省安委会" -> "四川省安全生产委员会" (seen earlier)."""
        for level in self.levels:
            if name.startswith(level) and len(name) > len(level):
                # Contracted names ("省安委会") only: two- and three-character ones such as 省委
                # would match unrelated bodies (省纪委监委).
                for full in reversed(ctx.orgs_seen if len(name) >= 4 else []):
                    # (not a name that is itself short: 区十五届人大常委会 for 区人大常委会; nor
                    # the body of one term for the body: 黑河市四届人大常委会 for 市人大常委会)
                    if (
                        len(full) > len(name) + 1
                        and not full.startswith(self.levels)
                        and (self.term_mark not in full or self.term_mark in name)
                        and abbreviates(name, full)
                    ):
                        return full, "text"
                locality = ctx.localities.get(level)
                if locality:
                    rest = name[len(level) :]
                    rest = self.body_expansions.get(rest, rest)
                    return self.party_committee_name(locality, rest), "locality"
                return name, None
        return name, None


@functools.cache
def gazetteer_places() -> frozenset[str]:
    """Place names the NER's GPE gazetteer knows (resources/gpe_names.txt)."""
    from pipeline.core.resources import RESOURCES, read_lines

    return frozenset(read_lines(RESOURCES / "gpe_names.txt"))


def abbreviates(short: str, full: str) -> bool:
    """True when `short` is `full` with characters left out, same first and last ("省安委会")."""
    it = iter(full[full.index(short[0]) :] if short[0] in full else "")
    return short[-1] == full[-1] and all(c in it for c in short)
