"""POSITION, MEETING and DOCUMENT spans (the `tifa_domain_spans` component's matcher) and the
person-name repairs that run with them."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import regex
from ahocorasick_rs import AhoCorasick, MatchKind
from spacy.attrs import IDX, LENGTH
from spacy.tokens import Doc, Span

from pipeline.core.resources import RESOURCES, load_yaml
from pipeline.core.textutil import is_han as _is_han
from pipeline.nlp.crf import person_titles, trimmed_span
from pipeline.nlp.docs import (
    ENTS_USER_DATA,
    RULE_SPANS,
    TITLE_STARTS,
    contiguous_runs,
    doc_text,
    split_tokens_at,
)
from pipeline.nlp.labels import _word_list, entity_corrections, entity_label

_NUM = r"(?:[一二三四五六七八九十百零〇两]+|\d+)"


class DomainSpanFinder:
    """Character-level POSITION / MEETING / DOCUMENT spans from the resource files."""

    def __init__(self, positions_path: Path, meetings_path: Path, organisations_path: Path):
        titles = sorted(set(_word_list(positions_path)))
        self.titles = frozenset(titles)
        self.positions = AhoCorasick(titles, matchkind=MatchKind.Standard)
        orgs = sorted(set(_word_list(organisations_path)))
        self.organisations = AhoCorasick(orgs, matchkind=MatchKind.LeftmostLongest)
        spec = load_yaml(meetings_path)
        patterns = [p.replace("{num}", _NUM) for p in spec["patterns"]]
        # One regex per pattern, not one alternation: each keeps its own literal-prefix scan
        # (3x faster on the dev corpora), and overlapping matches of different patterns are
        # all candidates, the longest winning (`_longest_non_overlapping`), as documented.
        self.meeting_res = [regex.compile(p) for p in patterns]
        suffixes = sorted(spec.get("suffixes", []), key=len, reverse=True)
        self.suffix_re = regex.compile("|".join(map(regex.escape, suffixes))) if suffixes else None
        prefixes = sorted(spec.get("strip_prefixes", []), key=len, reverse=True)
        self.prefix_re = regex.compile("^(?:" + "|".join(map(regex.escape, prefixes)) + ")+")
        self.name_tags = frozenset(spec.get("name_tags", []))
        self.name_joiners = frozenset(spec.get("name_joiners", []))
        self.name_stopwords = frozenset(spec.get("name_stopwords", []))
        self.not_followed_by = tuple(spec.get("not_followed_by", []))
        # How far left a meeting's name may reach, and what it may not start with (a year, a
        # count, 的/在: "2026年…会议", "7个专题会议").
        self.max_name_chars = int(spec.get("max_name_chars", 30))
        self.lead_re = regex.compile(spec["strip_leading"]) if spec.get("strip_leading") else None
        self.document_re = regex.compile(r"《[^《》\n]{1,80}》")

    def positions_in(self, text: str) -> list[tuple[int, int]]:
        found = [
            (s, e) for _, s, e in self.positions.find_matches_as_indexes(text, overlapping=True)
        ]
        return _longest_non_overlapping(found)

    def organisations_in(self, text: str) -> list[tuple[int, int]]:
        return [(s, e) for _, s, e in self.organisations.find_matches_as_indexes(text)]

    def meetings_in(self, text: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(pattern spans, suffix spans); the component extends both over naming words."""
        strict = [m.span() for rx in self.meeting_res for m in rx.finditer(text)]
        loose = [m.span() for m in self.suffix_re.finditer(text)] if self.suffix_re else []
        return strict, loose

    def documents_in(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in self.document_re.finditer(text)]


def _longest_non_overlapping(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    chosen: list[tuple[int, int]] = []
    for start, end in sorted(set(spans), key=lambda s: (-(s[1] - s[0]), s[0])):
        if all(end <= s or start >= e for s, e in chosen):
            chosen.append((start, end))
    return sorted(chosen)


@functools.cache
def _span_finder(
    positions_path: str, meetings_path: str, organisations_path: str
) -> DomainSpanFinder:
    return DomainSpanFinder(Path(positions_path), Path(meetings_path), Path(organisations_path))


class DomainSpans:
    """Adds POSITION/MEETING/DOCUMENT entities; rule spans win over overlapping LAC entities."""

    def __init__(self, positions_path: str, meetings_path: str, organisations_path: str):
        self.finder = _span_finder(positions_path, meetings_path, organisations_path)

    def __call__(self, doc: Doc) -> Doc:
        text = doc_text(doc)
        ner_ents = doc.ents  # read once: unchanged until the tokens are split below
        candidates: list[tuple[int, int, str]] = []
        candidates += [(s, e, "DOCUMENT") for s, e in self.finder.documents_in(text)]
        candidates += [(s, e, "MEETING") for s, e in self._meetings(doc)]
        lac_orgs = [(e.start_char, e.end_char) for e in ner_ents if e.label_ == "ORG"]
        positions = [(s, e, "POSITION") for s, e in self._positions(text, lac_orgs, doc)]
        candidates += [p for p in positions if self._plausible_position(doc, p[0], p[1])]
        # Known bodies last: they fill in what LAC missed but never cut a longer rule span.
        candidates += [
            (s, e, "ORG")
            for s, e in self.finder.organisations_in(text)
            # 国务院 inside LAC's 国务院办公厅 adds nothing; LAC's longer name stands.
            if not any(ls <= s and e <= le and (ls, le) != (s, e) for ls, le in lac_orgs)
        ]
        # A rule's match may run over the line break inside a sentence ("，\n中国共产党第十四次…").
        candidates = [t for c in candidates if (t := trimmed_span(text, *c)) is not None]
        rule_spans: list[tuple[int, int, str]] = []
        # DOCUMENT first, then MEETING, then POSITION: a title inside 《》 is not a post.
        for start, end, label in candidates:
            if all(end <= s or start >= e for s, e, _ in rule_spans):
                rule_spans.append((start, end, label))
        glued = _names_with_glued_verb(ner_ents)
        boundaries = {b for s, e, _ in rule_spans for b in (s, e)} | {e - 1 for _, e in glued}
        boundaries |= set(doc.user_data.get(TITLE_STARTS, {}).values())
        split_tokens_at(doc, boundaries)
        merged = self._merge(doc, rule_spans)
        doc.user_data[RULE_SPANS] = {(s, e) for s, e, _ in rule_spans}
        merged = [
            Span(doc, m.start, m.end - 1, label="PERSON")
            if m.label_ == "PERSON" and (m.start_char, m.end_char) in glued
            else m
            for m in merged
        ]
        doc.set_ents(_rejoin_split_surnames(doc, merged), default="outside")
        doc.user_data[ENTS_USER_DATA] = doc.ents
        return doc

    def _positions(self, text: str, orgs: list[tuple[int, int]], doc: Doc) -> list[tuple[int, int]]:
        """Title spans; a title that begins inside an organisation the NER found gives up its
        first characters to it when what remains is a title too: "辽宁省委|书记" keeps ORG
        辽宁省委 whole (not ORG 辽宁 + 省委书记), "全国总工会|副主席", "文化部|长" does not
        (长 is no title) and stays 文化部长 as written."""
        spans = []
        # (kept title span) -> where the whole title starts: relation rules read the post as
        # written (省委常委 of 辽宁, 党组书记 of 教育部) from it.
        whole_titles: dict[tuple[int, int], int] = doc.user_data.setdefault(TITLE_STARTS, {})
        for start, end in self.finder.positions_in(text):
            for org_start, org_end in orgs:
                if org_start < start < org_end < end and text[org_end:end] in self.finder.titles:
                    whole_titles[(org_end, end)] = start
                    start = org_end
                    break
            spans.append((start, end))
        return spans

    def _meetings(self, doc: Doc) -> list[tuple[int, int]]:
        text = doc_text(doc)
        strict, loose = self.finder.meetings_in(text)
        spans = []
        for start, end in strict:
            # A pattern may only grow by a locality or body in front ("湖北省" + 第十二次党代会).
            new_start = self._extend_left(doc, start, {"ORG", "LOC"}, joiners=False)
            spans.append((self._strip_leading(text, new_start, start), end))
        for start, end in loose:
            if text.startswith(self.finder.not_followed_by, end):
                continue  # 人民代表大会制度, 人民大会堂: an institution or a building
            new_start = self._extend_left(doc, start, self.finder.name_tags, joiners=True)
            head = text[new_start:start]
            stripped = self.finder.prefix_re.sub("", head)
            new_start += len(head) - len(stripped)
            new_start = self._strip_leading(text, new_start, start)
            if start - new_start >= 2:
                spans.append((new_start, end))
        return _longest_non_overlapping(spans)

    def _strip_leading(self, text: str, new_start: int, start: int) -> int:
        """Drop a leading year, count, 的 or 在 from a meeting's name ("2026年…" → "…")."""
        if self.finder.lead_re is None:
            return new_start
        m = self.finder.lead_re.match(text, new_start, start)
        new_start = m.end() if m else new_start
        # Nor a closing bracket or quote it grew over: "（记者 翁浩浩 施宇翔）省十三届人大…".
        closer = max(text.rfind(c, new_start, start) for c in "）)”」』】")
        return closer + 1 if closer >= 0 else new_start

    def _extend_left(
        self, doc: Doc, start: int, tags: frozenset[str] | set[str], joiners: bool
    ) -> int:
        span = doc.char_span(start, start + 1, alignment_mode="expand")
        if span is None:
            return start
        first = doc[span.start]
        new_start = start
        if first.idx != start:
            # The match starts inside a word ("湖北省" + 第十四届…): take the word only if it names.
            if not self._names_meeting(first, tags):
                return start
            new_start = first.idx
        i = span.start - 1
        while i >= 0 and start - doc[i].idx <= self.finder.max_name_chars:
            token = doc[i]
            if self._names_meeting(token, tags):
                new_start = token.idx
            elif not (joiners and token.text in self.finder.name_joiners and i > 0):
                break
            i -= 1
        return new_start

    def _names_meeting(self, token: Any, tags: frozenset[str] | set[str]) -> bool:
        if token.text in self.finder.name_stopwords:
            return False
        return token.tag_ in tags or token.ent_type_ in ("ORG", "GPE", "LOC")

    @staticmethod
    def _plausible_position(doc: Doc, start: int, end: int) -> bool:
        # A title must start at a word boundary unless glued to an organisation LAC found
        # ("湖北省人民政府省长"); it may end inside a word only when that word is a person name
        # ("主任何光耀" segmented as one name). Anything else is a false hit such as 主任务.
        first = doc.char_span(start, start + 1, alignment_mode="expand")
        last = doc.char_span(end - 1, end, alignment_mode="expand")
        if first is None or last is None:
            return False
        t_first, t_last = first[0], last[-1]
        start_ok = t_first.idx == start or t_first.ent_type_ in ("ORG", "GPE", "LOC")
        end_ok = t_last.idx + len(t_last) == end or t_last.ent_type_ == "PERSON"
        return start_ok and end_ok

    @staticmethod
    def _merge(doc: Doc, rule_spans: list[tuple[int, int, str]]) -> list[Span]:
        spans = [doc.char_span(s, e, label=lab) for s, e, lab in rule_spans]
        result = [s for s in spans if s is not None]
        # Tokens a rule span claims, as a mask: testing each token of each entity against
        # every rule span was quadratic in the spans of a document.
        claimed = bytearray(len(doc))
        for s in result:
            claimed[s.start : s.end] = b"\x01" * (s.end - s.start)
        corrections = entity_corrections()
        text = doc_text(doc)
        idx = lengths = None
        for ent in doc.ents:
            fixed = corrections.get(text[ent.start_char : ent.end_char])
            if fixed == "-":
                continue
            if fixed:
                ent = Span(doc, ent.start, ent.end, label=fixed)
            # Trim the LAC entity to the tokens no rule span claims; keep it if anything remains.
            free = [i for i in range(ent.start, ent.end) if not claimed[i]]
            if not free:
                continue
            runs = contiguous_runs(free)
            start, end = max(runs, key=lambda r: r[1] - r[0])
            if start == ent.start and end == ent.end:
                piece = text[ent.start_char : ent.end_char]
            else:
                if idx is None:
                    idx, lengths = doc.to_array([IDX, LENGTH]).T.tolist()
                piece = text[idx[start] : idx[end - 1] + lengths[end - 1]]
            if len(piece.strip()) >= 2 or (end - start == ent.end - ent.start):
                # LOC/GPE again for the trimmed text; not from the first token's tag, which is
                # no LAC entity tag when the entity came from a model or the tokens are not LAC's.
                label = entity_label("LOC", piece) if ent.label_ in ("LOC", "GPE") else ent.label_
                result.append(Span(doc, start, end, label=label))
        return sorted(result, key=lambda s: s.start)


@functools.cache
def _person_rules() -> tuple[frozenset[str], frozenset[str]]:
    rules = load_yaml(RESOURCES / "person_rules.yaml")
    return frozenset(rules["glued_after_name"]), frozenset(rules["compound_surnames"])


@functools.cache
def _glued_objects() -> tuple[str, regex.Pattern[str]]:
    rules = load_yaml(RESOURCES / "person_rules.yaml")
    return rules["glued_verb"], regex.compile(rules["glued_verb_objects"])


def _names_with_glued_verb(ents: Iterable[Span]) -> set[tuple[int, int]]:
    """LAC sometimes glues the next verb onto a name: a three-character name (黄立新作|政府工作
    报告), or a two-character one when the object of 作 follows and the document never writes
    the three characters as a name otherwise (刘奇作|关于…的说明)."""
    glued_after, compound_surnames = _person_rules()
    verb, objects = _glued_objects()
    out = set()
    for e in ents:
        if e.label_ != "PERSON" or not _is_han(e.text) or e.text[-1] not in glued_after:
            continue
        if len(e.text) == 4 and e.text[:2] not in compound_surnames:
            out.add((e.start_char, e.end_char))
        elif (
            len(e.text) == 3
            and e.text[-1] == verb
            and objects.match(text := doc_text(e.doc), e.end_char)
        ):
            elsewhere = (
                i
                for i in _find_all(text, e.text)
                if i != e.start_char and not objects.match(text, i + len(e.text))
            )
            if next(elsewhere, None) is None:
                out.add((e.start_char, e.end_char))
    return out


def _find_all(text: str, sub: str) -> Iterator[int]:
    i = text.find(sub)
    while i >= 0:
        yield i
        i = text.find(sub, i + 1)


def _coordinated(doc: Doc, between: Any, ent: Span) -> bool:
    """ "主席|和|普京总统": a conjunction or preposition (LAC's tag) between a post and a name that
    has a title of its own joins two titled persons; it is no surname (和 of 省长|和|建林 is)."""
    function_tags = load_yaml(RESOURCES / "person_rules.yaml")["name_edge_function_tags"]
    return between.tag_ in function_tags and doc.text.startswith(person_titles(), ent.end_char)


def _rejoin_split_surnames(doc: Doc, ents: list[Span]) -> list[Span]:
    """ "省长|和|建林": LAC reads a surname that is also a function word (和, 其, 于) as that word.
    Between a post and a two-character name, a lone Han character is the surname."""
    out: list[Span] = []
    for ent in ents:
        if (
            ent.label_ == "PERSON"
            and len(ent.text) == 1
            and out
            and out[-1].label_ == "POSITION"
            and out[-1].end == ent.start
            and ent.end < len(doc)
        ):
            # "副主席|马|建功，": a one-character "name" after a post, then a word LAC did not
            # read as a name, then punctuation: the three characters are the name.
            given = doc[ent.end]
            after = doc[ent.end + 1] if ent.end + 1 < len(doc) else None
            if (
                len(given.text) == 2
                and _is_han(given.text)
                and not given.ent_type_
                and (after is None or after.tag_ in ("w", "_SP"))
            ):
                ent = Span(doc, ent.start, ent.end + 1, label="PERSON")
        elif (
            ent.label_ == "PERSON"
            and len(ent.text) == 2
            and ent.start >= 2
            and out
            and out[-1].label_ == "POSITION"
            and out[-1].end == ent.start - 1
        ):
            between = doc[ent.start - 1]
            if (
                len(between.text) == 1
                and _is_han(between.text)
                and not between.ent_type_
                and not _coordinated(doc, between, ent)
            ):
                ent = Span(doc, ent.start - 1, ent.end, label="PERSON")
        out.append(ent)
    return out
