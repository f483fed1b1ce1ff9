"""Policy formulations (提法): lexicon matching and discovery of numeric formulations.

`FormulationMatcher` matches every surface form of the curated lexicon
(`resources/formulations.yaml`) with one Aho-Corasick automaton: one pass over the text whatever the
lexicon size. Longest match wins; with `nested=True` the shorter mentions inside a longer one are
kept and flagged. A mention in a document dated before the entry's `first_year` is dropped: the
formulation did not exist yet, so the string is a coincidence
("三个代表" = three delegates in 1923).

`find_candidates` proposes formulations the lexicon lacks (quoted numeral phrases such as “六稳”,
compact numeral patterns such as 三区三州 / 两不愁三保障, numeral-introduced enumerations); rules
that filter noise (三个月, 两个方面) live in `resources/candidate_rules.yaml`.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex
from ahocorasick_rs import AhoCorasick, MatchKind

from pipeline.core.resources import RESOURCES, load_yaml
from pipeline.extract.discovery import get_discovery_rules, idioms, idioms_in
from pipeline.extract.lexicon import (  # noqa: F401 - re-exported: the lexicon's home was here
    CATEGORIES,
    CLOSE_QUOTES,
    LEXICON_PATH,
    OPEN_QUOTES,
    Formulation,
    LexiconError,
    lexicon_for,
    load_lexicon,
)

# Quotes and spaces are not part of a formulation: “两个确立”, 两个"确立", 两个 确立 are one
# mention. The matcher reads the text with these removed and maps matches back.
SQUEEZED = OPEN_QUOTES + CLOSE_QUOTES + " \u3000\u00a0\t"
_SQUEEZE_RE = regex.compile("[" + regex.escape(SQUEEZED) + "]+")
_AMBIGUOUS_QUOTES = "\"'"
_QUOTE_RE = regex.compile("[" + regex.escape(OPEN_QUOTES + CLOSE_QUOTES) + "]")


def squeeze(text: str) -> str:
    return _SQUEEZE_RE.sub("", text).replace("＋", "+")


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    text: str
    formulation: Formulation
    match_kind: str
    quoted: bool
    nested: bool
    # The broader lexicon formulation inside this one's text (两个确立 in
    # 深刻领悟“两个确立”的决定性意义): the mention is counted once, at its most specific entry.
    parent: Formulation | None = None


class _Squeezed:
    """A text without quotes and spaces, and the way back to the original offsets."""

    def __init__(self, text: str):
        self.text = text
        seg_at, seg_orig, pieces, length, pos = [], [], [], 0, 0
        for m in _SQUEEZE_RE.finditer(text):
            if m.start() > pos:
                seg_at.append(length)
                seg_orig.append(pos)
                pieces.append(text[pos : m.start()])
                length += m.start() - pos
            pos = m.end()
        if pos < len(text) or not pieces:
            seg_at.append(length)
            seg_orig.append(pos)
            pieces.append(text[pos:])
        # str.replace, not translate: a third of this stage's time went to translate.
        self.squeezed = "".join(pieces).replace("＋", "+")
        self._at, self._orig = seg_at, seg_orig

    def orig(self, i: int) -> int:
        k = bisect.bisect_right(self._at, i) - 1
        return self._orig[k] + (i - self._at[k])

    def span(self, s: int, e: int) -> tuple[int, int]:
        return self.orig(s), self.orig(e - 1) + 1


def _quotes_fit(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Where a match over quotes starts and ends, or None when the quotes inside it are not its
    own.

    Quotes inside a match belong to it, and so does the other quote of a pair it holds one of
    (两个“确立”, 监督执纪“四种形态”, “三个代表”重要思想), not to a quotation that opened
    before it or closes past it (新发展“理念创新” is no 新发展理念)."""
    depth, lowest, ambiguous = 0, 0, 0
    for c in text[start:end]:
        if c in _AMBIGUOUS_QUOTES:
            ambiguous += 1
        elif c in OPEN_QUOTES:
            depth += 1
        elif c in CLOSE_QUOTES:
            depth -= 1
            lowest = min(lowest, depth)
    opens_before = start > 0 and text[start - 1] in OPEN_QUOTES
    closes_after = end < len(text) and text[end] in CLOSE_QUOTES
    if lowest < -1 or (lowest == -1 and not opens_before):
        return None
    if lowest == -1:
        start, depth = start - 1, depth + 1
    if depth > 0:
        return (start, end + 1) if depth == 1 and closes_after else None
    if ambiguous % 2:
        if end < len(text) and text[end] in _AMBIGUOUS_QUOTES:
            return start, end + 1
        return (start - 1, end) if start > 0 and text[start - 1] in _AMBIGUOUS_QUOTES else None
    return start, end


class FormulationMatcher:
    """Exact matching of every lexicon form; one automaton pass per text.

    ahocorasick-rs (Rust) instead of pyahocorasick: measured side by side on the dev corpus,
    124 vs 43 MB/s for the scan (bench/formulations.py), which sets this stage's speed.
    """

    def __init__(self, lexicon: Sequence[Formulation], nested: bool = False):
        self.lexicon = list(lexicon)
        self.nested = nested
        # form -> (entry, "canonical" | "variant"); also answers "is this string in the lexicon".
        self.forms: dict[str, tuple[Formulation, str]] = {}
        squeezed: dict[str, tuple[Formulation, str]] = {}
        for entry in self.lexicon:
            for form in entry.forms:
                if form in self.forms and self.forms[form][0] is not entry:
                    raise ValueError(f"form {form!r} belongs to two lexicon entries")
                kind = "canonical" if form == entry.canonical else "variant"
                self.forms.setdefault(form, (entry, kind))
                key = squeeze(form)
                if key and (key not in squeezed or kind == "canonical"):
                    squeezed[key] = (entry, kind)
        # Forms that read the same without quotes, spaces and widths (a variant written with
        # its quotes): which of them a mention is, is looked up in the text as written.
        self._twins = len(squeezed) < len(self.forms)
        self._patterns = list(squeezed)
        self._targets = [squeezed[p] for p in self._patterns]
        self._automaton = AhoCorasick(self._patterns, matchkind=MatchKind.Standard)

    def find(self, text: str, year: int | None = None) -> list[Mention]:
        sq = _Squeezed(text)
        hits = []
        for idx, s, e in self._automaton.find_matches_as_indexes(sq.squeezed, overlapping=True):
            entry, kind = self._targets[idx]
            if year is not None and entry.first_year is not None and year < entry.first_year:
                continue
            start, end = sq.span(s, e)
            if end - start != e - s:
                fit = _quotes_fit(text, start, end)
                if fit is None:
                    continue
                start, end = fit
            if self._twins:
                exact = self.forms.get(text[start:end])
                if exact is not None and exact[0] is entry:
                    kind = exact[1]  # the form as written (监督执纪“四种形态”, 5G＋工业互联网)
            hits.append((start, end, entry, kind))
        if not hits:
            return []
        return self._resolve(text, hits)

    def _resolve(self, text: str, hits: list[tuple[int, int, Formulation, str]]) -> list[Mention]:
        # Longest first, then leftmost: a longer formulation swallows the shorter ones it
        # overlaps. With `nested`, those shorter ones are kept too (flagged), except a shorter
        # form of the same entry, which is the same mention.
        hits.sort(key=lambda h: (h[0] - h[1], h[0]))
        primary_starts: list[int] = []
        primary: list[tuple[int, int, Formulation]] = []
        kept: list[tuple[int, int, Formulation, str, bool]] = []
        parents: dict[tuple[int, int], Formulation] = {}
        nested_of: dict[str, list[tuple[int, int]]] = {}
        for start, end, entry, kind in hits:
            i = bisect.bisect_left(primary_starts, end)
            overlaps = []
            # Primaries are disjoint and sorted: only those just left of `end` can overlap.
            while i > 0 and primary[i - 1][1] > start:
                overlaps.append(primary[i - 1])
                i -= 1
            if not overlaps:
                pos = bisect.bisect_left(primary_starts, start)
                primary_starts.insert(pos, start)
                primary.insert(pos, (start, end, entry))
                kept.append((start, end, entry, kind, False))
                continue
            for p in overlaps:  # the longest entry inside a mention is its parent
                if p[2] is not entry and p[0] <= start and end <= p[1]:
                    parents.setdefault((p[0], p[1]), entry)
            if self.nested and all(p[2] is not entry for p in overlaps):
                # Two forms of one entry nested in the same place (社会主义市场经济体制 and
                # 社会主义市场经济 inside 高水平社会主义市场经济体制) are one mention: the longer.
                spans = nested_of.setdefault(entry.id, [])
                if any(a < end and start < b for a, b in spans):
                    continue
                spans.append((start, end))
                kept.append((start, end, entry, kind, True))
        kept.sort(key=lambda k: (k[0], k[1]))
        return [
            Mention(
                s,
                e,
                text[s:e],
                entry,
                kind,
                _is_quoted(text, s, e),
                nested,
                None if nested else parents.get((s, e)),
            )
            for s, e, entry, kind, nested in kept
        ]


def _is_quoted(text: str, start: int, end: int) -> bool:
    if _QUOTE_RE.search(text, start, end):
        return True  # 两个“确立”: quoted in part
    return (
        start > 0
        and end < len(text)
        and text[start - 1] in OPEN_QUOTES
        and text[end] in CLOSE_QUOTES
    )


def get_matcher(
    path: str = str(LEXICON_PATH), nested: bool = False, user: str | None = None
) -> FormulationMatcher:
    """The matcher of a lexicon (merged with the user lexicon at `user`), built once per
    process and rebuilt when either file changes."""
    return _matcher(path, nested, user, _stamp(path), _stamp(user))


def _stamp(path: str | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=16)
def _matcher(path: str, nested: bool, user: str | None, *_stamps: Any) -> FormulationMatcher:
    entries, _notes = lexicon_for(path, user)
    return FormulationMatcher(entries, nested=nested)


# ---------------------------------------------------------------------------------------------
# Discovery of new numeric formulations


@dataclass(frozen=True)
class Candidate:
    start: int
    end: int
    text: str
    pattern: str


class CandidateFinder:
    """Rules for formulations not in the lexicon; every rule's vocabulary is in the YAML file."""

    def __init__(self, rules_path: Path = RESOURCES / "candidate_rules.yaml"):
        rules = load_yaml(rules_path)
        num = rules["numerals"]
        self.numerals = set(num)
        self.quoted_re = regex.compile(
            rf"[“「『]([^“”「」『』\n，。；：！？]"
            rf"{{{rules['quoted_min_chars']},{rules['quoted_max_chars']}}})[”」』]"
        )
        # A chunk is a numeral followed by 1-4 Han characters that are not themselves numerals.
        chunk = rf"[{num}]+(?:[{rules['measure_words']}])?[^\P{{Han}}{num}]{{1,4}}"
        self.compact_re = regex.compile(rf"(?:{chunk}){{1,3}}")
        self.chunk_re = regex.compile(
            rf"([{num}]+(?:[{rules['measure_words']}])?)([^\P{{Han}}{num}]{{1,4}})"
        )
        self.number_run = regex.compile(rf"[{num}]{{2,}}")
        self.unit_after_numeral = regex.compile(
            rf"^[{num}]+(?:{'|'.join(rules['quantity_units'])})"
        )
        self.generic_heads = tuple(rules["generic_heads"])
        self.lexicalized = tuple(rules["lexicalized_words"])
        self.noise_after_numeral = set(rules["noise_after_numeral"])
        self.numeral_prefix = regex.compile(rf"^[{num}]+[{rules['measure_words']}]?")
        self.generic_tails = tuple(rules["generic_tails"])
        self.trailing_re = regex.compile(
            "(?:" + "|".join(map(regex.escape, rules["trailing_generic_nouns"])) + ")$"
        )
        self.compact_min, self.compact_max = rules["compact_min_chars"], rules["compact_max_chars"]
        self.numeral_values = rules["numeral_values"]
        self.not_formulations = tuple(rules["not_formulations"])
        self.term_re = regex.compile(
            rf"\p{{Han}}{{{rules['quoted_term_min_chars']},{rules['quoted_term_max_chars']}}}[+＋]?"
        )

    def find(self, text: str, token_starts: set[int], token_ends: set[int]) -> list[Candidate]:
        found: dict[tuple[int, int], Candidate] = {}
        for m in self.quoted_re.finditer(text):
            phrase = m.group(1)
            n_numerals = sum(1 for c in phrase if c in self.numerals)
            # “六稳”, “一网通办”, “两个毫不动摇” open with the numeral; “店小二” is not numeric.
            s, e = m.span(1)
            if phrase[0] in self.numerals or n_numerals >= 2:
                if not self._is_noise(phrase, quoted=True):
                    found[(s, e)] = Candidate(s, e, phrase, "quoted_numeral")
            elif self._is_term(phrase):
                found[(s, e)] = Candidate(s, e, phrase, "quoted_term")
        for m in self.compact_re.finditer(text):
            s = m.start()
            phrase = self._parallel_prefix(m.group())
            e = s + len(phrase)
            if (s, e) in found:
                continue
            # Token boundaries from LAC keep a candidate from starting or ending mid-word.
            if s not in token_starts or e not in token_ends:
                continue
            # "四个不摘要求": a generic noun after the formulation is not part of it.
            trailing = self.trailing_re.search(phrase)
            if trailing and trailing.start() >= 2:
                phrase = phrase[: trailing.start()]
                e = s + len(phrase)
            if not (self.compact_min <= len(phrase) <= self.compact_max) or self._is_noise(phrase):
                continue
            n_numerals = sum(1 for c in phrase if c in self.numerals)
            if self.number_run.search(phrase):
                continue  # 二十国集团, 十九世纪: a multi-digit number, not a numbered formulation
            pattern = "numeral_compound" if n_numerals >= 2 else "numeral_measure"
            if pattern == "numeral_measure" and self._enumerated(text, e, phrase):
                pattern = "enumeration"
            found[(s, e)] = Candidate(s, e, phrase, pattern)
        return sorted(found.values(), key=lambda c: c.start)

    def _parallel_prefix(self, phrase: str) -> str:
        """Compound formulations repeat one shape (三区三州, 两不愁三保障, 三去一降一补): keep the
        chunks whose body is as long as the first one's, so "三区三州等深度" stops at 三州."""
        chunks = self.chunk_re.findall(phrase)
        if len(chunks) < 2:
            return phrase
        body_len = len(chunks[0][1])
        kept = chunks[0][0] + chunks[0][1]
        for head, body in chunks[1:]:
            if len(body) < body_len:
                break
            kept += head + body[:body_len]
            if len(body) > body_len:
                break
        return kept if len(kept) > len(chunks[0][0] + chunks[0][1]) else chunks[0][0] + chunks[0][1]

    def _is_term(self, phrase: str) -> bool:
        """A quoted phrase that names something (“低空经济”, “人工智能+”), not a quoted word,
        idiom or fragment."""
        rules = get_discovery_rules()
        if not self.term_re.fullmatch(phrase) or phrase in self.not_formulations:
            return False
        if phrase[0] in rules.edge_stop or phrase[-1] in rules.edge_stop | rules.end_stop:
            return False
        return phrase not in idioms() and not any(s in phrase for s in rules.inner_stop)

    def _is_noise(self, phrase: str, quoted: bool = False) -> bool:
        if self.unit_after_numeral.match(phrase) or phrase.startswith(self.lexicalized):
            return True
        if "的" in phrase or any(n in phrase for n in self.not_formulations):
            return True  # 八九点钟的太阳, 二氧化碳
        if phrase in idioms() if quoted else self._idiom_noise(phrase):
            # Quoted, only an idiom itself is noise (“和平统一、一国两制” holds the idiom
            # 一国两制 and is a formulation); unquoted, one inside it is (一伙千方百计).
            return True
        # "一个资产阶级", "一种观点": "one X" is a count unless another numeral joins it (一国两制).
        if phrase[0] == "一" and sum(c in self.numerals for c in phrase) < 2:
            return True
        body = self.numeral_prefix.sub("", phrase)
        if not body or body[0] in self.noise_after_numeral:
            return True
        return body.startswith(self.generic_heads) or phrase.endswith(self.generic_tails)

    def _idiom_noise(self, phrase: str) -> bool:
        """An idiom inside the phrase makes it noise unless the rest is the numeral and its
        measure word (两个毫不动摇): 一伙千方百计, 九霄云外去."""
        for idiom in idioms_in(phrase):
            if len(idiom) < 4 or idiom == phrase:
                continue
            rest = phrase.replace(idiom, "", 1)
            if any(c in self.numerals for c in idiom) or not self.numeral_prefix.fullmatch(rest):
                return True
        return False

    def _enumerated(self, text: str, end: int, phrase: str) -> bool:
        """True when an enumeration of as many items as the numeral says follows the phrase."""
        value = self.numeral_values.get(phrase[0])
        if not value or value < 2:
            return False
        window = text[end : end + 200]
        m = regex.match(r"[”」』]?(?:，|：|,|:|即|就是|是指|包括)+", window)
        if not m:
            return False
        items = regex.split(r"[、；]", regex.split(r"[。！？\n]", window[m.end() :], maxsplit=1)[0])
        return len([i for i in items if i.strip()]) == value


@functools.cache
def get_candidate_finder() -> CandidateFinder:
    return CandidateFinder()
