"""Discovery beyond numbers: terms whose document frequency tonight is far above their rate in
the archive (burst), or that the archive never had (novelty), and the calibrated score every
candidate is ranked by.

`burst_terms` reads tonight's texts (the documents of the last run) and the archive's (every
earlier document), no tokens needed: Han character n-grams of `term_min_chars`..`term_max_chars`
found in at least `burst_min_docs` of tonight's documents (grown a character at a time from the
frequent shorter ones, so the count stays small), kept when they are closed (no longer n-gram
has nearly the same documents: 空经济 goes, 低空经济 stays), have free edges (the characters
either side vary: 展低空经济 always follows 发, so it is a fragment), do not open or close on a
function character (的, 和 …), are no idiom (resources/idioms.txt), and contain no lexicon form
nor lie inside one. Their archive document frequency comes from one Aho-Corasick pass over the
archive's texts; a term is a candidate when tonight's rate is at least `burst_min_ratio` times
the archive's (smoothed), or new to an archive of at least `novelty_min_archive` documents.
Without an archive (the first night) there is nothing to compare with, and no burst candidate.

`calibrated_score` is a logistic model over a candidate's evidence (its pattern, documents,
mentions, quoted share, burst ratio), weights in resources/candidate_rules.yaml (`score`),
fitted so the score reads as the chance that an analyst adds the candidate (see the file).
"""

from __future__ import annotations

import functools
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import regex
from ahocorasick_rs import AhoCorasick, MatchKind

from pipeline.core.resources import RESOURCES, load_yaml, read_lines

_HAN_RUN = regex.compile(r"\p{Han}+")
_SENTENCE_END = regex.compile(r"[。！？；\n]")


@dataclass(frozen=True)
class Burst:
    text: str
    n_docs: int  # tonight
    n_mentions: int  # tonight
    archive_docs: int
    ratio: float  # tonight's document rate over the archive's (smoothed)
    example_sentence: str
    example_doc_id: str
    n_quoted: int


class DiscoveryRules:
    def __init__(self, path: str = str(RESOURCES / "candidate_rules.yaml")):
        rules = load_yaml(path)
        t = rules["terms"]
        self.min_chars, self.max_chars = t["min_chars"], t["max_chars"]
        self.min_docs, self.min_doc_share = t["burst_min_docs"], t["burst_min_doc_share"]
        self.min_ratio = t["burst_min_ratio"]
        self.novelty_min_archive = t["novelty_min_archive"]
        self.max_candidates = t["max_candidates"]
        self.max_tonight_chars = t["max_tonight_chars"]
        self.closed_share = t["closed_share"]
        self.min_edge_variety = t["min_edge_variety"]
        self.edge_stop = set(t["edge_stop_chars"])
        self.end_stop = set(t["end_stop_chars"])
        self.inner_stop = tuple(t["inner_stop"])
        self.verb_openers = tuple(t["verb_openers"])
        self.entity_parts = frozenset(t["entity_parts"])
        self.not_formulations = set(rules["not_formulations"])
        self.score = rules["score"]


@functools.cache
def get_discovery_rules() -> DiscoveryRules:
    return DiscoveryRules()


@functools.cache
def idioms() -> frozenset[str]:
    return frozenset(
        line.strip() for line in read_lines("idioms.txt") if line.strip() and line[0] != "#"
    )


@functools.cache
def _idiom_automaton() -> tuple[AhoCorasick, list[str]]:
    words = sorted(idioms())
    return AhoCorasick(words, matchkind=MatchKind.Standard), words


def idioms_in(phrase: str) -> list[str]:
    automaton, words = _idiom_automaton()
    return [words[i] for i, _, _ in automaton.find_matches_as_indexes(phrase, overlapping=True)]


def _ngrams(texts: list[str], n: int, keep: set[str] | None) -> Counter:
    """Document frequency of the Han n-grams of `texts`; with `keep`, only n-grams whose two
    (n-1)-grams are in it."""
    df: Counter = Counter()
    for text in texts:
        seen = set()
        for run in _HAN_RUN.findall(text):
            for i in range(len(run) - n + 1):
                g = run[i : i + n]
                if keep is None or (g[:-1] in keep and g[1:] in keep):
                    seen.add(g)
        df.update(seen)
    return df


def _frequent(texts: list[str], rules: DiscoveryRules, min_docs: int) -> dict[str, int]:
    frequent: dict[str, int] = {}
    keep: set[str] | None = None
    for n in range(rules.min_chars - 1, rules.max_chars + 1):
        df = _ngrams(texts, n, keep)
        level = {g: c for g, c in df.items() if c >= min_docs}
        if n >= rules.min_chars:
            frequent.update(level)
        keep = set(level)
        if not keep:
            break
    return frequent


def _closed(frequent: dict[str, int], share: float) -> list[str]:
    """Drop an n-gram when a longer frequent one containing it has nearly its documents."""
    out = []
    longer: dict[str, int] = defaultdict(int)
    for g, c in frequent.items():
        for sub in (g[:-1], g[1:]):
            longer[sub] = max(longer[sub], c)
    for g, c in frequent.items():
        if longer.get(g, 0) < share * c:
            out.append(g)
    return out


def _edges(texts: list[str], terms: list[str]) -> dict[str, tuple[set[str], set[str], Counter]]:
    """Per term: the characters seen before it, after it, and its mentions per document."""
    automaton = AhoCorasick(terms, matchkind=MatchKind.Standard)
    out: dict[str, tuple[set[str], set[str], Counter]] = {
        t: (set(), set(), Counter()) for t in terms
    }
    for d, text in enumerate(texts):
        for i, s, e in automaton.find_matches_as_indexes(text, overlapping=True):
            left, right, per_doc = out[terms[i]]
            left.add(text[s - 1] if s > 0 and "\u4e00" <= text[s - 1] <= "\u9fff" else "|")
            right.add(text[e] if e < len(text) and "\u4e00" <= text[e] <= "\u9fff" else "|")
            per_doc[d] += 1
    return out


def _plausible(term: str, rules: DiscoveryRules, known: Iterable[str]) -> bool:
    if term[0] in rules.edge_stop or term[-1] in rules.edge_stop | rules.end_stop:
        return False
    if any(s in term for s in rules.inner_stop) or term in rules.not_formulations:
        return False
    if term in idioms() or any(len(i) >= 4 and i != term for i in idioms_in(term)):
        return False
    return not any(k in term or term in k for k in known)


def usage_of_known(text: str, known: Iterable[str], rules: DiscoveryRules | None = None) -> bool:
    """A candidate that is a known formulation with its governing verb before it
    (扎实推动共同富裕: 推动 + 共同富裕) says how a formulation is used, not a new one."""
    return bool(usages_of_known([text], known, rules))


def usages_of_known(
    texts: list[str], known: Iterable[str], rules: DiscoveryRules | None = None
) -> set[str]:
    """The `texts` that are a known formulation (3+ characters) with a governing verb before
    it; one Aho-Corasick pass over each."""
    rules = rules or get_discovery_rules()
    forms = sorted({k for k in known if len(k) >= 3})
    if not forms or not texts:
        return set()
    automaton = AhoCorasick(forms, matchkind=MatchKind.Standard)
    out = set()
    for text in texts:
        for _, at, _ in automaton.find_matches_as_indexes(text, overlapping=True):
            if at > 0 and text[:at].endswith(rules.verb_openers):
                out.add(text)
                break
    return out


def archive_frequency(texts: Iterable[str], terms: list[str]) -> Counter:
    """How many of `texts` hold each term (one Aho-Corasick pass per text)."""
    df: Counter = Counter()
    if not terms:
        return df
    automaton = AhoCorasick(terms, matchkind=MatchKind.Standard)
    for text in texts:
        df.update(
            {terms[i] for i, _, _ in automaton.find_matches_as_indexes(text, overlapping=True)}
        )
    return df


def burst_terms(
    tonight: list[tuple[str, str]],
    archive: Iterable[str],
    n_archive: int,
    known: Iterable[str] = (),
    rules: DiscoveryRules | None = None,
    entities: Iterable[tuple[str, str]] = (),
    words: Callable[[list[str]], list[list[tuple[str, str]]]] | None = None,
    archive_df: Callable[[list[str]], Counter] | None = None,
) -> list[Burst]:
    """Burst and novel terms of `tonight` ((doc_id, text) pairs) against the `archive` texts.
    `entities`: (text, label) of what tonight's NER found: a name, a body, a post is no
    formulation, nor is a term holding a person or a post (习近平总书记, 中共中央总书记);
    `words`: a tagger ((word, tag) per text, LAC) that checks each term's edges in its example
    sentence (全球公共 inside 全球/公共卫生 is a fragment; 做好疫情防控's 好疫情防控 too);
    `archive_df`: how the archive's document frequency of terms is counted, instead of a pass
    over `archive`."""
    rules = rules or get_discovery_rules()
    if not tonight or n_archive == 0:
        return []
    tonight = _bounded(tonight, rules.max_tonight_chars)
    texts = [t for _, t in tonight]
    min_docs = max(rules.min_docs, math.ceil(rules.min_doc_share * len(texts)))
    frequent = _frequent(texts, rules, min_docs)
    known = [k for k in known if len(k) >= 2]
    entities = list(entities)
    names = {t for t, _ in entities}
    inside = [t for t, label in entities if label in rules.entity_parts and len(t) >= 2]
    terms = [
        g
        for g in _closed(frequent, rules.closed_share)
        if _plausible(g, rules, known)
        and g not in names
        and not any(t in g for t in inside)
        and not g.startswith(rules.verb_openers)
    ]
    terms.sort(key=lambda g: (-frequent[g], g))
    terms = terms[: rules.max_candidates * 4]
    edges = _edges(texts, terms) if terms else {}
    terms = [g for g in terms if min(len(edges[g][0]), len(edges[g][1])) >= rules.min_edge_variety]
    in_archive = archive_df(terms) if archive_df else archive_frequency(archive, terms)
    out = []
    for g in terms:
        ratio = burst_ratio(frequent[g], len(texts), in_archive[g], n_archive)
        novel = in_archive[g] == 0 and n_archive >= rules.novelty_min_archive
        if ratio < rules.min_ratio and not novel:
            continue
        per_doc = edges[g][2]
        doc_id, sentence, quoted = _example(tonight, g)
        out.append(
            Burst(
                g,
                frequent[g],
                sum(per_doc.values()),
                in_archive[g],
                round(ratio, 3),
                sentence,
                doc_id,
                quoted,
            )
        )
    out.sort(key=lambda b: (-b.ratio * math.log1p(b.n_docs), b.text))
    out = out[: rules.max_candidates * 2]
    if words is not None and out:
        out = [b for b, ok in zip(out, _on_word_edges(out, words), strict=True) if ok]
    return out[: rules.max_candidates]


def _on_word_edges(
    found: list[Burst], words: Callable[[list[str]], list[list[tuple[str, str]]]]
) -> list[bool]:
    """Whether each term starts and ends on a word boundary of its example sentence, and its
    first word is no verb governing the rest (开展合作)."""
    tagged = words([b.example_sentence or b.text for b in found])
    out = []
    for b, ws in zip(found, tagged, strict=True):
        sentence = b.example_sentence or b.text
        bounds, pos, tag_at = {0}, 0, {}
        for w, t in ws:
            tag_at[pos] = t
            pos += len(w)
            bounds.add(pos)
        at = sentence.find(b.text)
        end = at + len(b.text)
        out.append(
            at >= 0 and at in bounds and end in bounds and tag_at.get(at) not in ("v", "p", "d")
        )
    return out


def _bounded(tonight: list[tuple[str, str]], max_chars: int) -> list[tuple[str, str]]:
    """Tonight's documents, or an even sample of them (every k-th) when they hold more than
    `max_chars` characters: counting n-grams in Python costs about a second per million
    characters, and rates need no more than a few million."""
    total = sum(len(t) for _, t in tonight)
    if total <= max_chars:
        return tonight
    step = math.ceil(total / max_chars)
    return tonight[::step]


def burst_ratio(docs_tonight: int, n_tonight: int, docs_archive: int, n_archive: int) -> float:
    """Tonight's document rate over the archive's, the archive's smoothed (half a document)."""
    return (docs_tonight / n_tonight) / ((docs_archive + 0.5) / (n_archive + 1))


def _example(tonight: list[tuple[str, str]], term: str) -> tuple[str, str, int]:
    """The best example sentence: one where the term is quoted, else the shortest of at least
    15 characters; and how many documents quote it."""
    best: tuple[int, int, str, str] | None = None
    n_quoted = 0
    for doc_id, text in tonight:
        at = text.find(term)
        quoted_here = False
        while at >= 0:
            start = max((m.end() for m in _SENTENCE_END.finditer(text, 0, at)), default=0)
            m = _SENTENCE_END.search(text, at + len(term))
            sentence = text[start : m.end() if m else len(text)].strip()
            quoted = (
                at > 0
                and text[at - 1] in '“「『"'
                and text[at + len(term) : at + len(term) + 1] in ("”", "」", "』", '"')
            )
            quoted_here |= quoted
            key = (
                0 if quoted else 1,
                abs(len(sentence) - 60) if len(sentence) >= 15 else 999,
                doc_id,
                sentence,
            )
            if best is None or key < best:
                best = key
            at = text.find(term, at + len(term))
            if at > start + 2000:
                break
        n_quoted += quoted_here
    if best is None:
        return tonight[0][0], "", 0
    return best[2], best[3], n_quoted


def calibrated_score(
    pattern: str, n_docs: int, n_mentions: int, quoted_share: float, burst_ratio: float | None
) -> float:
    """The chance (0–1) that an analyst adds the candidate: a logistic model whose weights are
    in candidate_rules.yaml (`score`)."""
    w = get_discovery_rules().score
    z = (
        w["intercept"]
        + w["pattern"].get(pattern, 0.0)
        + w["log_docs"] * math.log1p(n_docs)
        + w["log_mentions"] * math.log1p(n_mentions)
        + w["quoted_share"] * quoted_share
        + w["log_burst"] * (math.log(burst_ratio) if burst_ratio and burst_ratio > 1 else 0.0)
    )
    return round(1.0 / (1.0 + math.exp(-z)), 4)
