"""The character-level normalisation steps (textacy ``preprocessing`` style).

Each step is written once, as ``_step_x(text, offs) -> (text, offs)`` built on
``edits.apply_edits``, and exposed as a tiny ``str -> str`` function for notebooks and tests.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from itertools import chain

import numpy as np

from pipeline.core.resources import RESOURCES, load_yaml, read_lines
from pipeline.core.textutil import (
    CJK_PUNCT,
    CLOSERS,
    HAN,
    HSPACE,
    SENT_FINAL,
    alternation,
    is_han_char,
)
from pipeline.normalise.edits import (
    Edit,
    Offsets,
    apply_edits,
    drop_overlaps,
    sub,
)

RULES = load_yaml(RESOURCES / "normalise_rules.yaml")
_SYLLABLES = frozenset(s.strip() for s in read_lines("normalise_pinyin_syllables.txt"))

# ---------------------------------------------------------------------------------------------
# Step 1: control / zero-width characters and line separators
_LINE_SEPS = "\r\u2028\u2029\x0b\x0c\x85"
# A single character class (no alternation) so the scan runs at charset speed.
_RX_CONTROL = re.compile(
    "[\r\u2028\u2029\x0b\x0c\x85"
    "\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u00ad\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff]"
)


def _control_repl(m: re.Match[str]) -> str:
    c = m.group()
    if c == "\r":
        # "\r\n" -> keep the "\n"; a lone "\r" is a line break
        p = m.end()
        return "" if m.string[p : p + 1] == "\n" else "\n"
    return "\n" if c in _LINE_SEPS else ""


def _step_control(text: str, offs: Offsets) -> tuple[str, Offsets]:
    return sub(_RX_CONTROL, _control_repl, text, offs)


def remove_control_chars(text: str) -> str:
    """Drop control, zero-width, bidi and BOM characters; unify line breaks to ``\\n``."""
    return _step_control(text, None)[0]


# ---------------------------------------------------------------------------------------------
# Step 2: full-width ASCII letters/digits -> half-width
_FW_TABLE = {c: c - 0xFEE0 for c in chain(range(0xFF10, 0xFF1A), range(0xFF21, 0xFF3B))}
_FW_TABLE.update({c: c - 0xFEE0 for c in range(0xFF41, 0xFF5B)})
_FW_TABLE[0xFF05] = ord("%")  # ％
# str.translate with a dict is slow per char; only pay for it when there is something to do.
_RX_FW_ANY = re.compile("[０-９Ａ-Ｚａ-ｚ％]")
_RX_FW_DOT = re.compile(r"(?<=[0-9])[．。](?=[0-9])")  # ２．５ -> 2.5 after digits converted


def _step_fullwidth(text: str, offs: Offsets) -> tuple[str, Offsets]:
    if _RX_FW_ANY.search(text) is None:
        return text, offs
    # translate() is length-preserving, so the offset array is untouched.
    text = text.translate(_FW_TABLE)
    return sub(_RX_FW_DOT, ".", text, offs)


def fullwidth_to_halfwidth(text: str) -> str:
    """Full-width ASCII letters, digits and ％ -> half-width (１９５５年 -> 1955年)."""
    return _step_fullwidth(text, None)[0]


# ---------------------------------------------------------------------------------------------
# Step 2b: hard-wrapped text ("…任命董必武、\n陈云…", "黄绍\n宏为政务委员")
# Text typed or OCR'd at a fixed line length (old newspaper pages, plain-text archives) breaks
# lines inside sentences and even inside names. Such a document is recognised by its shape, not
# by its words: most of its lines are about as long as its longest (the wrap width; typesetting
# and half-width punctuation make it vary by a few characters), and most of those end in the
# middle of a sentence. A line of that length is a wrapped one, and its break is removed;
# shorter lines end paragraphs, indented lines start them, and both keep their breaks. Headings
# and paragraphs of ordinary text fail the test: their lengths vary, or they end sentences.
_WRAP_MIN_LINE = 10  # lines shorter than this (headings, signatures) do not vote
_WRAP_MIN_WIDTH = 28  # wrapped pages hold 30–40 characters a line; tables are narrower
_WRAP_FULL = 0.85  # a line at least this share of the wrap width is a full line
_WRAP_MIN_SHARE = 0.5  # share of voting lines that must be full
_WRAP_MIN_OPEN = 0.5  # share of full lines that must end inside a sentence
_SENTENCE_CLOSED = frozenset(SENT_FINAL + CLOSERS)
_RX_ASCII_ALNUM = re.compile(r"[0-9A-Za-z]")


def _wrap_width(lines: list[str], lengths: list[int]) -> int | None:
    voting = sorted((n for n in lengths if n >= _WRAP_MIN_LINE), reverse=True)
    if len(voting) < 3:
        return None
    # One unwrapped line (a title, a pasted paragraph) may be longer than the wrap width.
    width = voting[1] if voting[0] > 1.2 * voting[1] else voting[0]
    full = [
        line.rstrip()
        for line, n in zip(lines, lengths, strict=True)
        if _WRAP_FULL * width <= n <= width
    ]
    open_ended = sum(1 for line in full if line[-1] not in _SENTENCE_CLOSED)
    if (
        width < _WRAP_MIN_WIDTH
        or len(full) < 3
        or len(full) < _WRAP_MIN_SHARE * len(voting)
        or open_ended < _WRAP_MIN_OPEN * len(full)
    ):
        return None
    return width


def _unwrap_edits(text: str) -> list[Edit]:
    if text.count("\n") < 3:
        return []
    lines = text.split("\n")
    lengths = [len(line.strip()) for line in lines]
    width = _wrap_width(lines, lengths)
    if width is None:
        return []
    edits: list[Edit] = []
    pos = 0
    for line, n, following in zip(lines, lengths, lines[1:], strict=False):
        pos += len(line)
        if _WRAP_FULL * width <= n <= width and following.strip() and not following[:1].isspace():
            kept = line.rstrip()
            joint = (
                " "
                if _RX_ASCII_ALNUM.match(kept[-1]) and _RX_ASCII_ALNUM.match(following[0])
                else ""
            )
            edits.append((pos - (len(line) - len(kept)), pos + 1, joint))
        pos += 1
    return edits


def _step_unwrap(text: str, offs: Offsets) -> tuple[str, Offsets]:
    return apply_edits(text, offs, _unwrap_edits(text))


def unwrap_lines(text: str) -> str:
    """Join the lines of hard-wrapped text (fixed line length) back into paragraphs."""
    return _step_unwrap(text, None)[0]


# ---------------------------------------------------------------------------------------------
# Step 3: whitespace
# One cheap scan for whitespace runs; what a run becomes depends on its neighbours, decided in
# Python (runs are rare in Chinese text, and a single-charset regex scans at memchr speed).
_RX_WS = re.compile(f"[{HSPACE}\n]+")
_PARA_BEFORE = frozenset(SENT_FINAL + "：；…" + CLOSERS)
_CJK_PUNCT_SET = frozenset(CJK_PUNCT)
_HSPACE_SET = frozenset(
    " \t\u00a0\u1680\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B)))
)


def _ws_edits(text: str) -> list[Edit]:
    edits: list[Edit] = []
    n = len(text)
    for m in _RX_WS.finditer(text):
        s, e = m.span()
        run = m.group()
        if s == 0 or e == n:
            r = ""
        elif "\n" in run:
            r = "\n"
        else:
            prev, nxt = text[s - 1], text[e]
            if run.count("\u3000") >= 2 and prev in _PARA_BEFORE:
                # paragraph indent inside a line ("…留学生：　　你们好！") -> paragraph break
                r = "\n"
            elif prev in _CJK_PUNCT_SET or nxt in _CJK_PUNCT_SET:
                r = ""  # spaces touching CJK punctuation are never meaningful
            else:
                r = " "
        if r != run:
            edits.append((s, e, r))
    return edits


def _step_whitespace(text: str, offs: Offsets) -> tuple[str, Offsets]:
    return apply_edits(text, offs, _ws_edits(text))


def collapse_whitespace(text: str) -> str:
    """Collapse whitespace: single ``\\n`` between paragraphs, single space inside a line,
    no space next to CJK punctuation, nothing at line/document edges."""
    return _step_whitespace(text, None)[0]


# ---------------------------------------------------------------------------------------------
# Step 4: pinyin annotations "會(huì)議"
_TONE_MARKS = "\u0300\u0301\u0304\u030c"
_PY_LETTERS = "a-zA-ZüÜvāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿêÊ" + _TONE_MARKS + "\u0308"
_RX_PY_OPEN = re.compile("[(（]")
_RX_PY_ANN = re.compile(rf"[ \u3000]?[(（] ?([{_PY_LETTERS}]{{1,8}}[1-5]?) ?[)）]")


@functools.lru_cache(maxsize=4096)
def _syllable_info(token: str) -> tuple[bool, bool, bool]:
    """-> (is a valid Mandarin syllable, carries a tone mark / digit, is a single letter)."""
    toned = token[-1] in "12345"
    if toned:
        token = token[:-1]
    # "(GDP)", "(PM)" are abbreviations, not pinyin; "(Li)" / "(li)" may be.
    if not token or not (token.islower() or token.istitle()):
        return False, False, False
    d = unicodedata.normalize("NFD", token.lower())
    stripped = "".join(c for c in d if c not in _TONE_MARKS)
    toned = toned or len(stripped) != len(d)
    base = unicodedata.normalize("NFC", stripped).replace("v", "ü")
    return base in _SYLLABLES, toned, len(base) == 1


def _step_pinyin(text: str, offs: Offsets) -> tuple[str, Offsets]:
    if "(" not in text and "（" not in text:
        return text, offs
    # Runs of annotations right after a Han char (optionally one space in between, which the
    # whitespace step keeps before an ASCII paren): [(run_start, [(ann_end, info), ...]), ...]
    runs: list[tuple[int, list[tuple[int, tuple[bool, bool, bool]]]]] = []
    done = 0
    for m in _RX_PY_OPEN.finditer(text):
        p = m.start()
        if p < done or p == 0:
            continue
        if is_han_char(text[p - 1]):
            start = p
        elif p > 1 and text[p - 1] in " \u3000" and is_han_char(text[p - 2]):
            start = p - 1
        else:
            continue
        anns = []
        q = p
        while (a := _RX_PY_ANN.match(text, q)) is not None:
            anns.append((a.end(), _syllable_info(a.group(1))))
            q = a.end()
        if anns:
            runs.append((start, anns))
            done = q
    if not runs:
        return text, offs
    valid = [info for _, anns in runs for _, info in anns if info[0]]
    # Single-letter syllables ("(a)", "(e)") after a Han char are usually list markers; only
    # treat them as pinyin when the document clearly uses the annotation pattern.
    doc_has_pattern = any(t for _, t, _ in valid) or len(valid) >= 3
    edits: list[Edit] = []
    for start, anns in runs:
        end = start
        for ann_end, (ok, toned, single) in anns:
            if not ok or (single and not toned and not doc_has_pattern):
                break
            end = ann_end
        if end > start:
            edits.append((start, end, ""))
    return apply_edits(text, offs, edits)


def remove_pinyin_annotations(text: str) -> str:
    """Remove "(pinyin)" directly after a Han character when it is a real Mandarin syllable:
    會(huì)議 -> 會議. Toneless syllables need the document to show the annotation pattern."""
    return _step_pinyin(text, None)[0]


# ---------------------------------------------------------------------------------------------
# Step 5: traditional -> simplified (OpenCC t2s)
@functools.lru_cache(maxsize=1)
def _converter():  # noqa: ANN202 - opencc has no type stubs
    import opencc

    return opencc.OpenCC("t2s")


_PROTECTED = frozenset(RULES.get("t2s_protected_chars", ""))


@functools.lru_cache(maxsize=1)
def _trigger_chars() -> frozenset[str]:
    """Characters whose presence means t2s may change the text.

    Built from the installed OpenCC itself (convert every CJK code point, one per line), so it
    cannot drift from the dictionaries; phrase-only triggers come from normalise_rules.yaml.
    """
    ranges = [(0x3400, 0xA000), (0xF900, 0xFB00), (0x20000, 0x323B0)]
    chars = [chr(c) for a, b in ranges for c in range(a, b)]
    out = _converter().convert("\n".join(chars)).split("\n")
    trig = {c for c, o in zip(chars, out, strict=True) if c != o}
    trig.update(RULES.get("t2s_phrase_only_chars", ""))
    return frozenset(trig - _PROTECTED)


@functools.lru_cache(maxsize=1)
def _trigger_lut() -> np.ndarray:
    # Boolean lookup table over all code points: a vectorised membership test is ~20x faster
    # than frozenset.isdisjoint on long documents.
    lut = np.zeros(0x110000, dtype=bool)
    lut[[ord(c) for c in _trigger_chars()]] = True
    return lut


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def needs_t2s(text: str) -> bool:
    """True when OpenCC t2s could change ``text`` (it contains a traditional-only char)."""
    if len(text) < 64:
        return not _trigger_chars().isdisjoint(text)
    return bool(_trigger_lut()[_codepoints(text)].any())


def _align_offsets(src: str, dst: str, base: int, offs: list[int]) -> list[int]:
    """Offsets for ``dst`` (converted from ``src`` at ``base``) when lengths differ."""
    res: list[int] = []
    # Align against a char-by-char conversion of src (1:1 in length), so that only the
    # phrase that changed length shows up as a replace block.
    per_char = _converter().convert("\n".join(src)).split("\n")
    if len(per_char) == len(src) and all(len(c) == 1 for c in per_char):
        src = "".join(per_char)
    if len(src) == len(dst) and src == dst:
        return offs[base : base + len(src)]
    sm = difflib.SequenceMatcher(None, src, dst, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            res.extend(offs[base + i1 : base + i2])
        elif tag in ("replace", "insert"):
            span = max(i2 - i1, 1)
            for j in range(j2 - j1):
                res.append(offs[base + min(i1 + j * span // (j2 - j1), max(i2 - 1, i1))])
    return res


def _step_t2s(text: str, offs: Offsets) -> tuple[str, Offsets, int]:
    if not needs_t2s(text):
        return text, offs, 0
    try:
        out = _converter().convert(text)
    except UnicodeEncodeError:  # lone surrogates (only reachable via the public wrapper)
        return text, offs, 0
    if len(out) == len(text):
        a = _codepoints(text)
        b = _codepoints(out)
        diff = np.flatnonzero(a != b)
        if _PROTECTED and diff.size:
            keep = [i for i in diff.tolist() if text[i] not in _PROTECTED]
            if len(keep) != diff.size:
                chars = list(out)
                for i in set(diff.tolist()) - set(keep):
                    chars[i] = text[i]
                out = "".join(chars)
            return out, offs, len(keep)
        return out, offs, int(diff.size)
    # Rare: a phrase changed length. OpenCC never touches "\n", so align line by line.
    src_lines = text.split("\n")
    dst_lines = out.split("\n")
    if len(src_lines) != len(dst_lines):  # defensive: give up on conversion rather than lie
        return text, offs, 0
    n_conv = 0
    new_offs: list[int] | None = [] if offs is not None else None
    base = 0
    for s_line, d_line in zip(src_lines, dst_lines, strict=True):
        if new_offs is not None and offs is not None:
            if s_line == d_line:
                new_offs.extend(offs[base : base + len(s_line)])
            else:
                new_offs.extend(_align_offsets(s_line, d_line, base, offs))
            new_offs.append(offs[base + len(s_line)])  # the "\n" (or the sentinel at the end)
        n_conv += sum(1 for x, y in zip(s_line, d_line, strict=False) if x != y) + abs(
            len(s_line) - len(d_line)
        )
        base += len(s_line) + 1
    return out, new_offs, n_conv


def to_simplified(text: str) -> str:
    """Traditional -> simplified with OpenCC t2s (phrase level); simplified text is returned
    unchanged without calling OpenCC."""
    return _step_t2s(text, None)[0]


# ---------------------------------------------------------------------------------------------
# Step 7: ASCII punctuation next to Han -> full-width
_PUNCT_MAP = {",": "，", ";": "；", ":": "：", "?": "？", "!": "！"}
_RX_PUNCT = re.compile(r"[,;:?!(]")
_RX_PAREN_PAIR = re.compile(r"\(([^()\n]{0,200})\)")
_RX_HAN = re.compile(f"[{HAN}]")


def _punct_edits(text: str) -> list[Edit]:
    edits: list[Edit] = []
    # Positions already turned into CJK punctuation count as CJK for their right neighbour,
    # so that "会,," converts both commas in one pass (idempotence).
    conv: set[int] = set()
    n = len(text)
    for m in _RX_PUNCT.finditer(text):
        p = m.start()
        c = text[p]
        prev = text[p - 1] if p else ""
        if c == "(":
            pair = _RX_PAREN_PAIR.match(text, p)
            if pair and (_RX_HAN.search(pair.group(1)) or (prev and is_han_char(prev))):
                edits.append((p, p + 1, "（"))
                edits.append((pair.end() - 1, pair.end(), "）"))
                conv.update((p, pair.end() - 1))
            continue
        nxt = text[p + 1] if p + 1 < n else ""
        # Look through spaces on the left: "会 ," and "会，," must end up the same.
        j = p - 1
        while j >= 0 and text[j] in _HSPACE_SET:
            j -= 1
        prev = text[j] if j >= 0 else ""
        if (prev and is_han_char(prev)) or (nxt and is_han_char(nxt)):
            edits.append((p, p + 1, _PUNCT_MAP[c]))
            conv.add(p)
        elif (
            prev
            and (prev in _CJK_PUNCT_SET or j in conv)
            and not (nxt.isascii() and (nxt.isalnum() or nxt == "/"))
        ):
            # "…》," -> "…》，" but keep "）:2" style ratios / times untouched
            edits.append((p, p + 1, _PUNCT_MAP[c]))
            conv.add(p)
    edits.sort()
    return edits


def _step_punct(text: str, offs: Offsets) -> tuple[str, Offsets]:
    return apply_edits(text, offs, _punct_edits(text))


def normalise_punctuation(text: str) -> str:
    """ASCII , ; : ? ! ( ) next to Han characters -> Chinese full-width forms
    ("3月8日,湖北" -> "3月8日，湖北"); numbers, URLs and English text are left alone."""
    return _step_punct(text, None)[0]


# ---------------------------------------------------------------------------------------------
# Step 8: spaced-out names next to a title
_TITLE_ALT = alternation(RULES["name_titles"])
_RX_NAME_AFTER = re.compile(rf"(?:{_TITLE_ALT}) (?P<n>(?:[{HAN}] ){{1,3}}[{HAN}])(?![{HAN}])")
_RX_NAME_BEFORE = re.compile(rf"(?<![{HAN}])(?P<n>(?:[{HAN}] ){{1,3}}[{HAN}]) ?(?:{_TITLE_ALT})")


def _step_names(text: str, offs: Offsets) -> tuple[str, Offsets]:
    if " " not in text:
        return text, offs
    # Only lines that contain a space can hold a spaced-out name; scanning just those keeps
    # the Han-initial pattern (slow to search) off the bulk of the text.
    edits: list[Edit] = []
    seen = -1
    n = len(text)
    for sp in re.finditer(" ", text):
        if sp.start() < seen:
            continue
        ls = text.rfind("\n", 0, sp.start()) + 1
        le = text.find("\n", sp.start())
        le = n if le < 0 else le
        seen = le
        for rx in (_RX_NAME_AFTER, _RX_NAME_BEFORE):
            for m in rx.finditer(text, ls, le):
                s, e = m.span("n")
                edits.append((s, e, m["n"].replace(" ", "")))
    return apply_edits(text, offs, drop_overlaps(edits))


def join_spaced_names(text: str) -> str:
    """Join a spaced-out 2-4 character name next to an official title:
    "市长 张 明" -> "市长 张明", "总理 王 建 国" -> "总理 王建国"."""
    return _step_names(text, None)[0]


# ---------------------------------------------------------------------------------------------
# Flags / title
_RX_REDACTION = re.compile("|".join(f"(?:{p})" for p in RULES["redaction_patterns"]))
# Literal-only alternation (scans fast) that every redaction match must contain.
_RX_REDACTION_PRE = re.compile(alternation(RULES["redaction_prefilter"]))


def has_redactions(text: str) -> bool:
    """True when the text contains template gaps / placeholders ("20年月", "抓住_一百年", "××")."""
    if _RX_REDACTION_PRE.search(text) is None:
        return False
    return _RX_REDACTION.search(text) is not None
