"""Known persons and name boundaries: constraints on the CRF's decoding of PERSON spans.

The CRF was trained on 1990s newswire. It cuts names it has not seen where a character could
continue a word (刘国|中出席), glues a function word on (和普京 of "习近平主席和普京总统"), runs
two names of a headline list into each other (蔡奇丁|薛祥 of "…蔡奇丁薛祥李希…") and stops a
transliterated name inside its last part (努尔兰·阿不|都满金). The first three are not fixed by
editing spans afterwards: the sentence is decoded again by the same CRF with some tags forced, so
the rest of the sentence stays the model's best reading given the constraint.

* A known person (`resources/known_persons.tsv`: national and provincial leaders, from public
  lists) found where the model or LAC sees a person is forced to be exactly one PERSON; a known
  name right next to a forced one (a run of names without separators) is forced too.
* A one-character LAC word tagged as a conjunction or preposition (和, 同, 与, 在: tags in
  `resources/person_rules.yaml`) that is not followed by a verb, or a locative before a verb (中
  of "会议中指出"), never opens or closes a PERSON the model is unsure of, unless a known name
  covers it (刘国中).

Transliterated names cut inside their last part (努尔兰·阿不|都满金) are not fixed.

Tried and not kept: running a name with a middle dot over its last part to the next string
that usually follows a name in the training data (出席, 说, 先生 …). It fixed 努尔兰·阿不|都满金
but on the MSRA dev-interleaved split it ran 12 right names on (奥·维古佐娃分获第二,
索尼亚·甘地采取行动) and fixed none: which characters may continue a transliterated name is
not known from these statistics (models/README.md).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ahocorasick_rs import AhoCorasick, MatchKind

from pipeline.core.resources import RESOURCES, load_yaml, read_lines

Span = tuple[int, int, str]

# Spaces that tables put between the two characters of a two-character name (李 强, 蔡　奇).
_NAME_PADDING = (" ", "\u3000")


@functools.cache
def known_person_names() -> dict[str, str]:
    """Every written form of a known person -> the person's name."""
    forms: dict[str, str] = {}
    for line in read_lines("known_persons.tsv"):
        name, aliases, *_ = line.split("\t")
        for form in [name, *filter(None, (a.strip() for a in aliases.split(",")))]:
            forms[form] = name
            if len(form) == 2:
                for pad in _NAME_PADDING:
                    forms[form[0] + pad + form[1]] = name
    return forms


@functools.cache
def _matcher() -> tuple[AhoCorasick, list[str]]:
    forms = sorted(known_person_names())
    return AhoCorasick(forms, matchkind=MatchKind.LeftmostLongest), forms


def known_matches(sentence: str) -> list[tuple[int, int]]:
    """Where known names are written in `sentence`, leftmost-longest, not overlapping."""
    matcher, _ = _matcher()
    return [(s, e) for _, s, e in matcher.find_matches_as_indexes(sentence)]


@dataclass(frozen=True)
class _BoundaryRules:
    function_tags: frozenset[str]
    locative_tags: frozenset[str]
    verb_prefix: str


@functools.cache
def _boundary_rules() -> _BoundaryRules:
    rules = load_yaml(RESOURCES / "person_rules.yaml")
    return _BoundaryRules(
        frozenset(rules["name_edge_function_tags"]),
        frozenset(rules["name_edge_locative_tags"]),
        str(rules["name_edge_verb_tag_prefix"]),
    )


def _word_spans(words: Sequence[tuple[str, str]]) -> list[tuple[int, int, str]]:
    out = []
    pos = 0
    for word, tag in words:
        out.append((pos, pos + len(word), tag))
        pos += len(word)
    return out


def _cut(start: int, end: int, known_starts: Collection[int]) -> bool:
    """Another known name starts inside the span [start, end) after its first character."""
    return any(start < s < end for s in known_starts)


def forced_persons(
    sentence: str,
    words: Sequence[tuple[str, str]],
    spans: Sequence[Span],
    sure: Collection[tuple[int, int]] = (),
) -> list[tuple[int, int]]:
    """The known names of `sentence` that must be exactly one PERSON each: those that overlap a
    PERSON of the model or a LAC PER word, unless the model's PERSON holds the name and goes on
    beyond it as one longer name it is `sure` of (陈希同 is not 陈希) or LAC reads as one word
    (李强国 would not be 李强) — another known name starting inside the span cuts it all the
    same (蔡奇丁|薛祥) —, and every known name touching a forced one (a headline run:
    赵乐际王沪宁蔡奇丁薛祥李希韩正)."""
    matches = known_matches(sentence)
    if not matches:
        return []
    word_spans = _word_spans(words)
    boundaries = {s for s, _, _ in word_spans} | {e for _, e, _ in word_spans}
    persons = [(s, e) for s, e, label in spans if label == "PERSON"]
    persons += [(s, e) for s, e, tag in word_spans if tag == "PER"]
    starts = {s for s, _ in matches}
    forced: set[tuple[int, int]] = set()
    for ms, me in matches:
        if any(
            ps <= ms and me <= pe and (ps, pe) != (ms, me) and not _cut(ms, pe, starts)
            for ps, pe in sure
        ):
            continue  # a longer name the model is sure of (陈希同, not 陈希)
        for ps, pe in persons:
            if pe <= ms or me <= ps:
                continue
            longer = ps <= ms and me <= pe and (ps, pe) != (ms, me)
            if longer and not (_cut(ms, pe, starts) or (ms in boundaries and me in boundaries)):
                continue  # one LAC word or a longer name: 李强国 would not be 李强
            forced.add((ms, me))
    grown = True
    while grown:  # names touching a forced name are a run of names
        grown = False
        for ms, me in matches:
            if (ms, me) not in forced and any(me == s or e == ms for s, e in forced):
                forced.add((ms, me))
                grown = True
    return sorted(forced)


def closed_edges(sentence: str, words: Sequence[tuple[str, str]]) -> set[int]:
    """Character positions that may be inside a PERSON but never its first or last character:
    one-character conjunctions and prepositions (和, 同, 与, 在) not followed by a verb, and
    locatives before a verb; none at the start of a sentence or after punctuation, where no
    conjunction stands (和, 经, 向 are surnames too)."""
    rules = _boundary_rules()
    word_spans = _word_spans(words)
    closed = set()
    for i, (s, e, tag) in enumerate(word_spans):
        if e - s != 1 or i == 0 or word_spans[i - 1][2] == "w":
            continue  # a conjunction joins something before it: "、和志强" has the surname 和
        after = word_spans[i + 1][2] if i + 1 < len(word_spans) else ""
        before_verb = after.startswith(rules.verb_prefix)
        # A conjunction or preposition joins or governs the words after it; before a verb it
        # is none (市长马以提请: 以 is the given name). A locative before a verb ends a phrase.
        if (tag in rules.function_tags and not before_verb) or (
            tag in rules.locative_tags and before_verb
        ):
            closed.add(s)
    return closed


def ordinary_word(words: Sequence[tuple[str, str]], start: int, end: int) -> bool:
    """[start, end) lies inside one LAC word that is not a name: 汪洋 of 汪洋大海, 万里 of
    万里长城. A known person's name written so is no sure mention of the person."""
    return any(s <= start and end <= e and tag != "PER" for s, e, tag in _word_spans(words))
