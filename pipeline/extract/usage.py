"""How a formulation is used: the verb or modifier that governs each mention.

For 深刻领悟“两个确立”的决定性意义 the governor of 两个确立 is 深刻领悟 (verb 领悟, modifier 深刻);
for 坚定不移推进乡村全面振兴 it is 坚定不移推进. Read from the LAC tags of the words before the
mention in the same clause, no parser: walking back from the mention over quotes and a particle,
an optional preposition (坚持以…为指导: 坚持以), then a run of verbs and adverbial modifiers
(v vd vn ad d a …), at most `max_tokens` words. A clause ends at the punctuation and words in
`resources/usage_rules.yaml` (、 separates 增强“四个意识”、坚定“四个自信”). A mention with no
such word before it (a subject, an object of a noun) has no row.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.core.resources import RESOURCES, load_yaml


@dataclass(frozen=True)
class Governor:
    start: int
    end: int
    text: str
    verb: str | None
    modifier: str | None
    tags: str


class UsageRules:
    def __init__(self, path: str = str(RESOURCES / "usage_rules.yaml")):
        rules = load_yaml(path)
        self.verb_tags = frozenset(rules["verb_tags"])
        self.modifier_tags = frozenset(rules["modifier_tags"])
        self.preposition_tags = frozenset(rules["preposition_tags"])
        self.skip_words = frozenset(rules["skip_words"])
        self.quotes = frozenset(w for w in rules["skip_words"] if not w.strip() or not w.isalpha())
        self.clause_breaks = frozenset(rules["clause_breaks"])
        self.not_governors = frozenset(rules["not_governors"])
        self.strip_leading = frozenset(rules["strip_leading"])
        # longest first: 全社会 before 全
        self.skip_before = tuple(sorted(rules["skip_before"], key=len, reverse=True))
        self.max_tokens = int(rules["max_tokens"])
        self.verb_joiners = frozenset(rules["verb_joiners"])
        self.fused_tags = frozenset(rules["fused_tags"])
        self.max_fused_chars = int(rules["max_fused_chars"])


@functools.cache
def get_usage_rules() -> UsageRules:
    return UsageRules()


def governor(
    text: str,
    tokens: Sequence[tuple[int, int, str]],
    starts: Sequence[int],
    mention_start: int,
    rules: UsageRules | None = None,
) -> Governor | None:
    """The governing phrase of the mention starting at `mention_start`. `tokens` are the
    document's (start, end, tag) words in order, `starts` their starts (for bisect)."""
    rules = rules or get_usage_rules()
    for prefix in rules.skip_before:  # 学习党的二十届三中全会, 召开全县党史学习教育
        if text.endswith(prefix, 0, mention_start):
            mention_start -= len(prefix)
            break
    i = bisect.bisect_right(starts, mention_start - 1) - 1
    tokens = list(tokens[max(0, i - 12) : i + 1]) if i >= 0 else []
    # A word straddling the mention start: LAC fused the verb with its object
    # (践行社会主义核心价值观); the part before the mention is the verb.
    if tokens and tokens[-1][1] > mention_start:
        s, _, tag = tokens.pop()
        if 0 < mention_start - s <= rules.max_fused_chars and tag in rules.fused_tags:
            tokens.append((s, mention_start, "v"))
    i = len(tokens) - 1
    skipped, particle_end = 0, None
    while i >= 0 and skipped < 2:
        word = text[tokens[i][0] : tokens[i][1]]
        if word.strip() and word not in rules.skip_words:
            break
        if word.strip() and word not in rules.quotes and particle_end is None:
            particle_end = tokens[i][1]  # 持续打好“五水共治”: 好 belongs to the governor
        i -= 1
        skipped += 1
    picked: list[int] = []
    if i >= 0 and tokens[i][2] in rules.preposition_tags:
        picked.append(i)
        i -= 1
    while i >= 0 and len(picked) < rules.max_tokens:
        s, e, tag = tokens[i]
        word = text[s:e]
        if (
            word in rules.verb_joiners
            and picked
            and i > 0
            and tokens[i - 1][2] in rules.verb_tags
            and tokens[picked[-1]][2] in rules.verb_tags
        ):
            picked += [i, i - 1]  # 坚持和发展, 培育和践行: both verbs govern
            i -= 2
            continue
        if word in rules.clause_breaks or not (
            tag in rules.verb_tags or tag in rules.modifier_tags
        ):
            break
        picked.append(i)
        i -= 1
    picked.reverse()
    while picked and text[tokens[picked[0]][0] : tokens[picked[0]][1]] in rules.strip_leading:
        picked.pop(0)
    if not picked:
        return None
    words = [(text[tokens[k][0] : tokens[k][1]], tokens[k][2]) for k in picked]
    core = [w for w, t in words if t not in rules.preposition_tags]
    if not core or "".join(w for w, _ in words) in rules.not_governors:
        return None
    verb_idx = [k for k, (_, t) in enumerate(words) if t in rules.verb_tags]
    verb = modifier = None
    if verb_idx:
        last = verb_idx[-1]
        first = last
        while first > 0 and (
            words[first - 1][1] in rules.verb_tags
            or (
                first > 1
                and words[first - 1][0] in rules.verb_joiners
                and words[first - 2][1] in rules.verb_tags
            )
        ):
            first -= 1
        verb = "".join(w for w, _ in words[first : last + 1])
        modifier = "".join(w for w, _ in words[:first]) or None
    else:
        modifier = "".join(w for w, t in words if t not in rules.preposition_tags)
    start, end = tokens[picked[0]][0], particle_end or tokens[picked[-1]][1]
    return Governor(start, end, text[start:end], verb, modifier, " ".join(t for _, t in words))


def usage_rows(text: str, mentions: list[dict], words: list[tuple[int, int, str]]) -> list[dict]:
    """A formulation_usage row for each (not nested) mention row that has a governor; `words`
    are the document's (start, end, LAC tag) in order."""
    starts = [w[0] for w in words]
    rules = get_usage_rules()
    out = []
    for m in mentions:
        if m.get("nested"):
            continue
        g = governor(text, words, starts, m["start"], rules)
        if g is None:
            continue
        out.append(
            {
                **{k: m[k] for k in ("doc_id", "sent_id", "start", "end", "raw_start", "raw_end")},
                "text": m["text"],
                "formulation_id": m["formulation_id"],
                "canonical": m["canonical"],
                "governor": g.text,
                "verb": g.verb,
                "modifier": g.modifier,
                "gov_start": g.start,
                "gov_end": g.end,
                "tags": g.tags,
            }
        )
    return out
