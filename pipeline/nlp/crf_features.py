"""Character features for the trained NER tagger: the characters around each position plus what
LAC says about the word the character sits in (boundary, POS, LAC's own entity tag).

LAC segments well but labels entities by its own convention; a CRF over characters that sees
LAC's analysis as features learns the convention of the gold data and fixes LAC's boundary
errors, while keeping LAC's knowledge of words it has seen. Training and tagging share this one
function, so what the model was trained on is what it sees at run time.
"""

from __future__ import annotations

from collections.abc import Sequence

# Character classes: the class of a character matters more than its identity for digits and
# Latin letters ("1998年", "G20"), and punctuation ends most entities.
_DIGITS = frozenset("0123456789０１２３４５６７８９")
_CN_DIGITS = frozenset("〇零一二三四五六七八九十百千万亿两")
_PUNCT = frozenset("，。、；：？！“”‘’（）《》〈〉【】—…·,.;:?!\"'()[]-")


# Sentence padding seen by the templates that look past either end.
PAD_START = "\x02\x02"
PAD_END = "\x03\x03"
# Words longer than this many characters share one value of the `w` template.
WORD_LONG = "#long"
# Character templates: name -> offset(s) from the current character. `crf_inference` compiles
# the same templates, so a new one must be added in both places (the equality test catches it).
UNIGRAM_TEMPLATES = {"c": 0, "c-1": -1, "c-2": -2, "c+1": 1, "c+2": 2}
BIGRAM_TEMPLATES = {
    "c-1c": (-1, 0),
    "cc+1": (0, 1),
    "c-2c-1": (-2, -1),
    "c+1c+2": (1, 2),
    "c-1c+1": (-1, 1),
}


def char_class(ch: str) -> str:
    if ch in _DIGITS:
        return "D"
    if ch in _CN_DIGITS:
        return "N"
    if ch in _PUNCT:
        return "P"
    if ch.isascii() and ch.isalpha():
        return "L"
    if ch.isspace():
        return "S"
    return "H"


def char_features(sentence: str, words: Sequence[tuple[str, str]]) -> list[list[str]]:
    """One list of feature strings per character of `sentence`.

    `words` is LAC's output for the sentence: (word, tag) pairs whose texts concatenate to it.
    Built column by column (one comprehension per template) rather than character by character:
    1.4x faster on MSRA sentences, identical output.
    """
    n = len(sentence)
    # Per character: position in its LAC word (B/M/E/S), the word's tag, the word itself when
    # short (long words are rare and mostly entities already), the tags of the words around it.
    wpos: list[str] = []
    wtag: list[str] = []
    wtext: list[str] = []
    wprev: list[str] = []
    wnext: list[str] = []
    tags = [t for _, t in words]
    last = len(tags) - 1
    for wi, (word, tag) in enumerate(words):
        k = len(word)
        if k == 1:
            wpos.append("S")
        else:
            wpos.append("B")
            wpos.extend("M" * (k - 2))
            wpos.append("E")
        wtag.extend([tag] * k)
        wtext.extend([word if k <= 4 else WORD_LONG] * k)
        wprev.extend([tags[wi - 1] if wi else "^"] * k)
        wnext.extend([tags[wi + 1] if wi < last else "$"] * k)
    if len(wpos) != n:
        raise ValueError("LAC words do not cover the sentence")
    cur = sentence
    p1 = (PAD_START + sentence)[1 : n + 1]
    p2 = (PAD_START + sentence)[:n]
    n1 = (sentence + PAD_END)[1 : n + 1]
    n2 = (sentence + PAD_END)[2 : n + 2]
    columns = [
        ["b"] * n,
        ["c=" + c for c in cur],
        ["c-1=" + c for c in p1],
        ["c-2=" + c for c in p2],
        ["c+1=" + c for c in n1],
        ["c+2=" + c for c in n2],
        ["c-1c=" + a + b for a, b in zip(p1, cur, strict=True)],
        ["cc+1=" + a + b for a, b in zip(cur, n1, strict=True)],
        ["c-2c-1=" + a + b for a, b in zip(p2, p1, strict=True)],
        ["c+1c+2=" + a + b for a, b in zip(n1, n2, strict=True)],
        ["c-1c+1=" + a + b for a, b in zip(p1, n1, strict=True)],
        ["t=" + char_class(c) for c in cur],
        ["wp=" + p for p in wpos],
        ["wt=" + t for t in wtag],
        ["wpt=" + p + t for p, t in zip(wpos, wtag, strict=True)],
        ["w=" + w for w in wtext],
        ["wpw=" + p + w for p, w in zip(wpos, wtext, strict=True)],
        ["wt-1=" + t for t in wprev],
        ["wt+1=" + t for t in wnext],
        ["wptc=" + p + t + c for p, t, c in zip(wpos, wtag, cur, strict=True)],
    ]
    return [list(row) for row in zip(*columns, strict=True)]
