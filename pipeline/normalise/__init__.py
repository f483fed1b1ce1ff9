"""Text normalisation for raw Chinese political / government text.

``normalise(raw)`` turns a scraped document (simplified, traditional, pinyin-annotated,
full-width, with page chrome, credits and bylines) into clean simplified text plus an exact
character offset map back into the raw string, extracted metadata, quality flags and the list
of everything it removed (for the audit table).

Where things are:

* ``edits``     — the offset-tracking edit machinery every step is built on;
* ``steps``     — character-level steps (controls, full-width, hard wraps, whitespace, pinyin
  annotations, traditional → simplified, punctuation, spaced-out names, redaction flags);
* ``metadata``  — metadata lines, credits and bylines, titles;
* ``chrome``    — page chrome by name, by shape and by repetition across a run's documents;
* ``sentences`` — sentence splitting;
* ``boilerplate`` — lines repeated across the documents of a site (counted before a run);
* ``chunks``    — where a huge document is cut into chunks, and how the chunks join again.

May import: ``core`` (this package is below everything but ``core``).

Every step is also a small ``str -> str`` function (textacy ``preprocessing`` style).

Design choices worth knowing downstream:

* The title line is copied into ``metadata["title"]`` but KEPT as the first paragraph of the
  text: titles carry entities and formulations that downstream extraction must see.
* Metadata lines ("来源：…", "发布时间:…", "(… 供稿)"), credits ("新华社记者 鞠鹏/摄",
  "（记者 王晓明）", "责任编辑：X", "（完）") and chrome leave the text; nothing leaves silently:
  ``Normalised.removed`` lists each piece with its raw offsets and the reason.
* Paragraphs are separated by a single "\\n"; no blank lines, no leading/trailing whitespace.
* Sentence terminators are 。！？!? and newline; ；and ，、： are only soft boundaries used to
  cut over-long sentences.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.core.textutil import HAN
from pipeline.normalise.boilerplate import Boilerplate, BoilerplateCounter, line_key
from pipeline.normalise.bylines import Byline
from pipeline.normalise.chrome import (
    CUT,
    PROSE_LOSS_ALARM,
    PROSE_REMOVED,
    Removal,
    page_lines,
    pattern_chrome,
    prose_counts,
)
from pipeline.normalise.edits import Offsets
from pipeline.normalise.metadata import detect_title
from pipeline.normalise.sentences import split_sentences
from pipeline.normalise.steps import (
    _converter,
    _step_control,
    _step_fullwidth,
    _step_names,
    _step_pinyin,
    _step_punct,
    _step_t2s,
    _step_unwrap,
    _step_whitespace,
    collapse_whitespace,
    fullwidth_to_halfwidth,
    has_redactions,
    join_spaced_names,
    needs_t2s,
    normalise_punctuation,
    remove_control_chars,
    remove_pinyin_annotations,
    to_simplified,
    unwrap_lines,
)

__all__ = [
    "HAN",
    "PROSE_LOSS_ALARM",
    "PROSE_REMOVED",
    "Boilerplate",
    "BoilerplateCounter",
    "Byline",
    "Normalised",
    "Removal",
    "boilerplate_lines",
    "collapse_whitespace",
    "fullwidth_to_halfwidth",
    "has_redactions",
    "join_spaced_names",
    "line_key",
    "needs_t2s",
    "normalise",
    "normalise_punctuation",
    "normalise_text",
    "normalise_title",
    "remove_control_chars",
    "remove_pinyin_annotations",
    "split_sentences",
    "strip_page_chrome",
    "to_simplified",
    "unwrap_lines",
    "_converter",
    "_step_t2s",
]

CREDIT_ROLES = ("author", "photographer", "editor")


@dataclass
class Normalised:
    text: str
    raw_offsets: list[int]
    metadata: dict[str, str] = field(default_factory=dict)
    flags: dict[str, int | bool] = field(default_factory=dict)
    removed: list[Removal] = field(default_factory=list)
    # Speaker and delivery lines (浙江省省长 刘捷, ——2026年1月…在…上): kept in the text, and
    # read as data here, with their raw offsets.
    bylines: list[Byline] = field(default_factory=list)

    def raw_span(self, start: int, end: int) -> tuple[int, int]:
        """Map a normalised ``[start, end)`` span to the raw ``[raw_start, raw_end)`` span.

        ``raw_end`` is one past the raw char that produced ``text[end-1]``, so material deleted
        after the span (a pinyin annotation, chrome) is not included. Empty spans map to an
        empty raw span at the corresponding position.
        """
        n = len(self.text)
        if not 0 <= start <= end <= n:
            raise IndexError(f"span [{start}, {end}) outside text of length {n}")
        raw_start = self.raw_offsets[start]
        if end == start:
            return raw_start, raw_start
        raw_end = max(self.raw_offsets[end - 1] + 1, raw_start)
        return raw_start, min(raw_end, self.raw_offsets[n])


def _characters(raw: str, offs: Offsets) -> tuple[str, Offsets, bool, int]:
    """The character-level steps up to traditional -> simplified."""
    text, offs = _step_control(raw, offs)
    text, offs = _step_fullwidth(text, offs)
    text, offs = _step_unwrap(text, offs)  # before whitespace: indentation marks paragraphs
    # Whitespace before pinyin: "会 （huì）" must be treated the same on every pass.
    text, offs = _step_whitespace(text, offs)
    n_before = len(text)
    text, offs = _step_pinyin(text, offs)
    had_pinyin = len(text) != n_before
    text, offs, n_conv = _step_t2s(text, offs)
    return text, offs, had_pinyin, n_conv


def boilerplate_lines(raw: str) -> list[str]:
    """The lines of ``raw`` as the repetition test sees them (after the character steps and
    known chrome): what ``BoilerplateCounter.add`` counts before a run."""
    text = _characters(raw, None)[0]
    return [line for line in pattern_chrome(text, None)[0].split("\n") if line != CUT]


def _pipeline(
    raw: str, track: bool, boilerplate: frozenset[int], title_hint: str | None
) -> Normalised:
    offs: Offsets = list(range(len(raw) + 1)) if track else None
    removed: list[Removal] | None = [] if track else None
    text, offs, had_pinyin, n_conv = _characters(raw, offs)
    metadata: dict[str, str] = {}
    credits: dict[str, list[str]] = {}
    before = text
    text, offs, n_pattern = pattern_chrome(text, offs, removed)
    # Spaced-out names are joined first: "总理 王 建 国" must not look like a row of buttons.
    text, offs = _step_names(text, offs)
    hint = normalise_title(title_hint) if title_hint else None
    bylines: list[Byline] = []
    text, offs, n_lines = page_lines(
        text, offs, metadata, credits, boilerplate, hint, removed, bylines
    )
    text, offs = _step_punct(text, offs)
    if text is not before:
        # Removals / new CJK punctuation can leave spaces and blank lines behind.
        text, offs = _step_whitespace(text, offs)
    for role in CREDIT_ROLES:
        names = credits.get(role, [])
        if role == "author" and metadata.get("author"):
            names = [metadata["author"], *(n for n in names if n != metadata["author"])]
        if names:
            metadata[role] = "、".join(names)
    title = detect_title(text)
    if title:
        metadata = {"title": title, **metadata}
    speaker = next((b for b in bylines if b.kind == "speaker"), None)
    if speaker is not None and speaker.person:
        metadata["speaker"] = speaker.person
        if speaker.post:
            metadata["speaker_post"] = speaker.post
    flags: dict[str, int | bool] = {
        "had_pinyin_annotations": had_pinyin,
        "converted_from_traditional": n_conv > 0,
        "n_chars_converted": n_conv,
        "chrome_lines_removed": n_pattern + n_lines,
        "has_redactions": has_redactions(text),
        # The loss alarm's counts: Han characters of prose lines, and of those removed per
        # reason (prose_removed:<reason>).
        **(prose_counts(text, removed) if removed is not None else {}),
    }
    return Normalised(
        text=text,
        raw_offsets=offs or [],
        metadata=metadata,
        flags=flags,
        removed=removed or [],
        bylines=bylines,
    )


def normalise(
    raw: str, *, boilerplate: frozenset[int] = frozenset(), title_hint: str | None = None
) -> Normalised:
    """Normalise one raw document; see the module docstring for what that means.

    ``boilerplate``: keys (``line_key``) of lines repeated across the documents of this
    document's site or file in the run (``BoilerplateCounter``). ``title_hint``: the title the
    input gave, which helps find the title line among the page's chrome.
    """
    return _pipeline(raw, True, boilerplate, title_hint)


def normalise_text(raw: str) -> str:
    """``normalise(raw).text`` without building the offset map."""
    return _pipeline(raw, False, frozenset(), None).text


def strip_page_chrome(text: str) -> str:
    """Remove page chrome (known widgets and footers, toolbars and link lists around the
    article), metadata lines (来源/时间/作者/供稿) and credits (记者 X 摄, 责任编辑：X)."""
    text, _, _ = pattern_chrome(text, None)
    return page_lines(text, None, {}, {})[0]


def normalise_title(title: str) -> str:
    """A title cleaned like the text (controls, full-width, whitespace, pinyin annotations,
    traditional -> simplified, punctuation), without any line being removed."""
    text = _characters(title, None)[0]
    text = _step_punct(text, None)[0]
    return _step_whitespace(text, None)[0].replace("\n", " ")
