"""Read raw files into Documents: encoding detection, field mapping, one document at a time.

`iter_documents(paths)` is a generator: a .jsonl or .csv file of any size is streamed record by
record, so memory stays flat. Anything that cannot become a Document (undecodable bytes, a broken
JSON line, an empty text) is yielded as an `IngestError` instead of being skipped or raised.
"""

from __future__ import annotations

import codecs
import csv
import errno
import io
import json
import math
import os
import re
import stat
import sys
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.dates import congress_year, parse_date
from pipeline.core.document import HASHED_FIELDS, Document, content_doc_id, input_fields_json

SUPPORTED_SUFFIXES = (".txt", ".jsonl", ".csv")

# Common field names seen in scrapes and public datasets, in order of preference.
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "text": ("text", "content", "full_text", "body", "Text", "Content", "正文", "内容"),
    "id": ("id", "doc_id", "ID", "docid", "uuid"),
    "title": ("title", "Title", "headline", "标题"),
    "date": ("date", "publish_date", "published_at", "Date", "pub_date", "time", "year", "日期"),
    "source": ("source", "Source", "publisher", "来源"),
    "url": ("url", "source_url", "URL", "link"),
}

# How a document without an id of its own is named (`tifa run --id-from`):
#   content: `<file stem>-<hash of its text>`, so the same article keeps its id whatever its
#            place in tomorrow's file, and a file name reused for another text (index.txt) is
#            another document. The default: nothing is ever replaced by a record that does not
#            claim its identity.
#   path:    `<file stem>-<record number>` and, for a .txt file, its stem: the place is the
#            identity, so the next night's record at that place replaces it (the naming of
#            tifa before content ids).
#   field:   records must carry an id (`--id-field`); one without is an errors row. A .txt file
#            has no fields: its stem names it, as under `path`.
ID_FROM = ("content", "path", "field")

# How many leading bytes of a streamed file decide its encoding.
_SNIFF_BYTES = 1 << 20

csv.field_size_limit(sys.maxsize)

# Largest document read (bytes of the file, the JSONL line or the CSV record; `--max-doc-bytes`).
# A larger one is an errors row (`DocumentTooLarge`) found without decoding or holding it, and
# the rest of its file is read. 24 MiB: a huge document is processed in chunks, but the
# whole-document copies it still needs (decoded text, clean text, the documents row's Arrow
# copy) grow with it: measured, 5 MB peaks at 746 MB and 50 MB at 1.2 GB (bench/huge_document.py),
# so 24 MiB keeps every process near 1 GB; raise it where memory allows.
DEFAULT_MAX_DOC_BYTES = 24 * 2**20
# Size of the pieces in which the rest of an oversized record is skipped.
_SKIP_PIECE = 1 << 20


@dataclass
class IngestError:
    source_file: str
    error_type: str
    message: str
    doc_id: str | None = None
    stage: str = "ingest"


@dataclass
class FieldMap:
    """Which input field feeds which Document field; None means auto-detect."""

    text: str | None = None
    id: str | None = None
    title: str | None = None
    date: str | None = None
    source: str | None = None
    url: str | None = None
    # How a record that carries no id (and a .txt file) is named: see `ID_FROM`.
    id_from: str = "content"
    # Read what links below an input folder point to outside the inputs (--follow-symlinks).
    follow_symlinks: bool = False
    overrides: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.id_from not in ID_FROM:
            raise ValueError(f"id_from must be one of {', '.join(ID_FROM)}, not {self.id_from!r}")
        self.overrides = {
            k: v
            for k, v in {
                "text": self.text,
                "id": self.id,
                "title": self.title,
                "date": self.date,
                "source": self.source,
                "url": self.url,
            }.items()
            if v
        }

    def pick(self, record: dict, name: str) -> object | None:
        return self.pick_named(record, name)[1]

    def pick_named(self, record: dict, name: str) -> tuple[str, object | None]:
        """(field name, value) of the first field that feeds `name`."""
        if name in self.overrides:
            return self.overrides[name], record.get(self.overrides[name])
        for key in DEFAULT_FIELDS[name]:
            value = record.get(key)
            if value is not None and value != "":
                return key, value
        return DEFAULT_FIELDS[name][0], None


# ---------------------------------------------------------------------------------------------
# Encoding detection


class UndecodableError(ValueError):
    pass


_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# Candidate legacy encodings for Chinese text, tried only when the bytes are not valid UTF-8.
_LEGACY = ("gb18030", "big5", "utf_16_le", "utf_16_be")


def detect_encoding(data: bytes, *, truncated: bool = False) -> str:
    """Return a codec name that decodes `data`, or raise UndecodableError.

    `truncated` says `data` is a prefix of a longer file, so an incomplete multi-byte sequence at
    its very end is not evidence against an encoding.
    """
    return judge_encoding(data, truncated=truncated)[0]


def judge_encoding(data: bytes, *, truncated: bool = False) -> tuple[str, str | None]:
    """`detect_encoding`, with a note when the evidence was thin: a short file whose bytes read
    as Chinese in two encodings (say which won and how plausible each reading was)."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name, None
    if not data:
        return "utf-8", None
    if _decodes(data, "utf-8", truncated):
        return _utf8_or_mojibake(data, truncated)
    if b"\x00" in data[:4096] and not _looks_utf16(data):
        raise UndecodableError("binary data (NUL bytes) is not a text document")
    candidates = [enc for enc in _LEGACY if _decodes(data, enc, truncated)]
    if not candidates:
        raise UndecodableError(
            "bytes are not valid UTF-8, GB18030, Big5 or UTF-16; re-save the file as UTF-8"
        )
    if len(candidates) == 1:
        return candidates[0], None
    if set(candidates) == {"gb18030", "big5"}:
        # GB18030 accepts most Big5 byte pairs and Big5 many GB pairs. A reading that is
        # Chinese is made of common characters; the wrong one is a spray of rare ones, kana
        # and symbols. charset-normalizer needs more text than a short notice gives (会议强调
        # in GB18030 read as Big5), so the plausibility decides when it is clear.
        sample = data[:8192]
        scores = {enc: chinese_plausibility(sample.decode(enc, "ignore")) for enc in candidates}
        best = max(candidates, key=lambda e: scores[e])
        other = min(candidates, key=lambda e: scores[e])
        if scores[best] >= 0.8 and scores[best] - scores[other] >= 0.3:
            return best, None
        note = (
            f"ambiguous encoding: {best} reads {scores[best]:.0%} as common Chinese, {other} "
            f"{scores[other]:.0%}"
        )
    else:
        note = None
    # Several legacy codecs accept the bytes: let charset-normalizer judge which decoding
    # reads as real text.
    from charset_normalizer import from_bytes

    judged = from_bytes(data[:_SNIFF_BYTES], cp_isolation=candidates).best()
    chosen = codecs.lookup(judged.encoding).name if judged and judged.encoding else candidates[0]
    if note:
        note += f"; decoded as {chosen} (charset-normalizer's choice): check the text"
    return chosen, note


def _utf8_or_mojibake(data: bytes, truncated: bool) -> tuple[str, str | None]:
    """UTF-8, unless a few bytes of GB18030 or Big5 Chinese happen to be valid UTF-8 too
    (通知 in GB18030 is CD A8 D6 AA: two UTF-8 characters, a combining mark and a Hebrew
    accent). Only a short text is at risk; it is read as Chinese when its UTF-8 reading has
    no Han character and no Latin letter (the 2-byte UTF-8 range a GB pair lands in holds
    combining marks, Greek, Cyrillic, Hebrew, Arabic) and a legacy reading is all common
    Chinese. Said in a note: the evidence is a few characters."""
    if len(data) > 64 or truncated:
        return "utf-8", None
    text = data.decode("utf-8")
    odd = [c for c in text if not c.isascii()]
    if not odd or any(_HAN.match(c) or "\u00a0" <= c <= "\u024f" for c in odd):
        return "utf-8", None
    if not any(_NOT_IN_A_WORD.match(c) for c in odd):
        return "utf-8", None  # could be a word of Greek or Cyrillic: UTF-8 it is
    for enc in ("gb18030", "big5"):
        if _decodes(data, enc, False):
            legacy = data.decode(enc)
            if sum(1 for c in legacy if _HAN.match(c)) >= 2 and chinese_plausibility(legacy) == 1:
                return enc, (
                    f"ambiguous encoding: the bytes are valid UTF-8 ({printable(text)!r}) but "
                    f"read as Chinese in {enc} ({legacy!r}); decoded as {enc}: check the text"
                )
    return "utf-8", None


_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# What a GB/Big5 pair read as UTF-8 gives and a short real text does not: C1 controls,
# combining marks, Armenian, Hebrew, Arabic, Syriac, Thaana, NKo (a Greek or Cyrillic word alone
# is left as UTF-8).
_NOT_IN_A_WORD = re.compile(r"[\u0080-\u009f\u0300-\u036f\u0530-\u07ff]")


def chinese_plausibility(text: str) -> float:
    """Share of the non-ASCII characters of `text` that common Chinese is made of: after
    traditional→simplified (OpenCC), the 3,755 characters of GB2312's first level and the
    Chinese punctuation rows. Real Chinese scores near 1; text decoded with the wrong one of
    GB18030/Big5 far lower (rare characters, kana, Greek, private use). 0 with no such
    character."""
    from pipeline.normalise.steps import _converter

    simplified = _converter().convert(text)
    n = common = 0
    for c in simplified:
        if c.isascii() or c.isspace():
            continue
        n += 1
        try:
            lead = c.encode("gb2312")[0]
        except UnicodeEncodeError:
            continue
        common += 0xB0 <= lead <= 0xD7 or lead in (0xA1, 0xA3)
    return common / n if n else 0.0


def _decodes(data: bytes, encoding: str, truncated: bool) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        decoder.decode(data, final=not truncated)
    except (UnicodeDecodeError, ValueError):
        return False
    if encoding.startswith("utf_16"):
        # Any even-length byte string "decodes" as UTF-16; require it to look like text.
        return _looks_utf16(data, (encoding,))
    return True


def _looks_utf16(data: bytes, codecs_to_try: tuple[str, ...] = ("utf_16_le", "utf_16_be")) -> bool:
    """UTF-16 without a BOM: accept it only when the decoded text reads as Chinese/ASCII prose.
    (Every even-length byte string decodes as UTF-16, so decoding alone proves nothing.)"""
    sample = data[:8192]
    sample = sample[: len(sample) // 2 * 2]
    if len(sample) < 4:
        return False
    for codec in codecs_to_try:
        try:
            text = sample.decode(codec)
        except UnicodeDecodeError:
            continue
        plausible = sum(1 for c in text if _PLAUSIBLE_CHAR.match(c))
        if plausible >= 0.95 * len(text):
            return True
    return False


# CJK ideographs and punctuation, full-width forms, printable ASCII and whitespace.
_PLAUSIBLE_CHAR = re.compile(r"[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef\u2010-\u201f\x20-\x7e\s]")


def read_text_file(path: Path) -> tuple[str, str]:
    data = path.read_bytes()
    encoding = detect_encoding(data)
    return data.decode(encoding), encoding


# Streamed files are decoded with this handler: an undecodable byte sequence becomes a lone
# surrogate, which strict decoding never produces, so the line holding it is reported (with its
# number) and skipped while the rest of the file is still read.
_MARK = "\udcff"


def _mark_bad_bytes(exc: UnicodeDecodeError) -> tuple[str, int]:
    return _MARK, exc.end


codecs.register_error("tifa.mark", _mark_bad_bytes)


def detect_stream_encoding(head: bytes, *, truncated: bool) -> str:
    """Like detect_encoding, for line-based files: a file that is UTF-8 except for a few broken
    lines is read as UTF-8 (the broken lines become errors rows) instead of being lost whole."""
    try:
        return detect_encoding(head, truncated=truncated)
    except UndecodableError:
        if b"\x00" in head[:4096]:
            raise
        lines = [ln for ln in head.split(b"\n") if ln.strip()]
        if truncated and lines:
            lines = lines[:-1]  # may end inside a character
        good = sum(1 for ln in lines if _decodes(ln, "utf-8", False))
        bad = len(lines) - good
        if good >= bad and bad <= max(2, len(lines) // 10):
            return "utf-8"
        raise


def _bad_bytes_message(where: str, line: str, encoding: str) -> str:
    col = line.index(_MARK) + 1
    return (
        f"{where}: bytes that are not valid {encoding} at column {col}; this record is skipped, "
        "the rest of the file is read"
    )


# ---------------------------------------------------------------------------------------------
# Field values


def _clean(value: object | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


# ---------------------------------------------------------------------------------------------
# Finding the input files


def printable(text: str) -> str:
    """`text` with anything that cannot be stored as UTF-8 shown as escapes: a file name's
    undecodable bytes as \\xff, an unpaired surrogate from a JSON escape as \\ud800."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    except UnicodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


_SURROGATE = re.compile("[\ud800-\udfff]")

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class _Walker:
    """Every file under the inputs, in a stable order (names sorted, dotfiles ignored), each
    problem met on the way (a link loop, a broken link, an unreadable folder, a file name that is
    not UTF-8, a pipe or device) yielded as an IngestError instead of being skipped silently."""

    def __init__(self, exclude: Iterable[str | os.PathLike], follow_symlinks: bool = False):
        # By (device, inode), not by resolved path: resolving every folder of a tree 1,500
        # deep costs a stat per level per folder (quadratic).
        self.exclude: set[tuple[int, int]] = set()
        for p in exclude:
            try:
                st = os.stat(p)
            except OSError:
                continue  # not there yet: nothing of it to read
            self.exclude.add((st.st_dev, st.st_ino))
        self.visited: set[tuple[int, int]] = set()
        self.follow_symlinks = follow_symlinks
        self.roots: list[str] = []

    def _outside(self, path: Path) -> IngestError | None:
        """A link found inside an input folder that leads outside every input: not read
        unless asked (--follow-symlinks). A link to /proc/self/environ in a scraped folder put
        the run's credentials into documents.text."""
        if self.follow_symlinks or not path.is_symlink():
            return None
        target = os.path.realpath(path)
        for root in self.roots:
            if target == root or target.startswith(root.rstrip(os.sep) + os.sep):
                return None
        return IngestError(
            printable(str(path)),
            "SymlinkOutsideInput",
            f"link to {printable(target)}, outside the input folders; not read "
            "(`tifa run --follow-symlinks` reads what links point to)",
        )

    def walk(self, inputs: Iterable[str | os.PathLike]) -> Iterator[Path | IngestError]:
        inputs = list(inputs)
        # What was named is read wherever it lies; the links met below it must stay inside.
        self.roots = [os.path.realpath(item) for item in inputs]
        for item in inputs:
            path = Path(item)
            try:
                st = path.stat()
            except OSError as exc:
                yield self._stat_error(path, exc)
                continue
            if stat.S_ISDIR(st.st_mode):
                yield from self._folder(path, st, frozenset())
            else:
                yield from self._file(path, st)

    def _folder(
        self, folder: Path, st: os.stat_result, ancestors: frozenset[tuple[int, int]]
    ) -> Iterator[Path | IngestError]:
        # An explicit stack of open folders, not a generator per level: a tree ~1,000 folders
        # deep exhausted Python's recursion limit (RecursionError, nothing written).
        stack: list[tuple[Iterator[os.DirEntry], frozenset[tuple[int, int]]]] = []
        opened = yield from self._open(folder, st, ancestors)
        if opened is not None:
            stack.append(opened)
        while stack:
            entries, inside = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                continue
            if entry.name.startswith("."):
                continue
            child = Path(entry.path)
            try:
                child_st = child.stat()
            except OSError as exc:
                yield self._stat_error(child, exc)
                continue
            if stat.S_ISDIR(child_st.st_mode):
                if outside := self._outside(child):
                    yield outside
                    continue
                opened = yield from self._open(child, child_st, inside)
                if opened is not None:
                    stack.append(opened)
            else:
                yield from self._file(child, child_st, check_link=True)

    def _open(
        self, folder: Path, st: os.stat_result, ancestors: frozenset[tuple[int, int]]
    ) -> Generator[IngestError, None, tuple[Iterator[os.DirEntry], frozenset] | None]:
        """A folder's entries (sorted) and the ancestors of its children, or None, after
        yielding why it is not read (the output folder, a loop, read already, unreadable)."""
        key = (st.st_dev, st.st_ino)
        if key in self.exclude:
            yield IngestError(
                printable(str(folder)),
                "OutputInsideInput",
                "this folder is the output folder (--out); it is not read as input",
            )
            return None
        if key in ancestors:
            yield IngestError(
                printable(str(folder)),
                "SymlinkLoop",
                f"link to {printable(os.path.realpath(folder))}, a folder that contains it; "
                "not followed",
            )
            return None
        if key in self.visited:
            yield IngestError(
                printable(str(folder)),
                "DuplicateFolder",
                f"link to {printable(os.path.realpath(folder))}, which is read already; "
                "not read twice",
            )
            return None
        self.visited.add(key)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield IngestError(
                printable(str(folder)),
                type(exc).__name__,
                f"folder cannot be read: {exc.strerror or exc}; its files are not read",
            )
            return None
        return iter(entries), ancestors | {key}

    def _file(
        self, path: Path, st: os.stat_result, check_link: bool = False
    ) -> Iterator[Path | IngestError]:
        name = str(path)
        if _SURROGATE.search(name):
            yield IngestError(
                printable(name),
                "FileNameError",
                "the file name is not valid UTF-8 (shown with \\x escapes); rename the file, "
                "for example with `convmv -f gbk -t utf-8`",
            )
            return
        for test, what in _KINDS:
            if test(st.st_mode):
                yield IngestError(name, "NotAFile", f"{what}, not a regular file; not read")
                return
        if check_link and (outside := self._outside(path)):
            yield outside
            return
        yield path

    @staticmethod
    def _stat_error(path: Path, exc: OSError) -> IngestError:
        name = printable(str(path))
        if exc.errno == errno.ELOOP:
            return IngestError(
                name, "SymlinkLoop", "symbolic links loop back on themselves; not followed"
            )
        if path.is_symlink():
            target = printable(os.readlink(path))
            return IngestError(name, "BrokenLink", f"link to {target}, which does not exist")
        if exc.errno == errno.ENOENT:
            return IngestError(name, "FileNotFound", f"no such file or folder: {name}")
        return IngestError(name, type(exc).__name__, f"cannot be read: {exc.strerror or exc}")


def iter_inputs(
    inputs: Iterable[str | os.PathLike],
    exclude: Iterable[str | os.PathLike] = (),
    follow_symlinks: bool = False,
) -> Iterator[Path | IngestError]:
    """Files named directly, plus every file below named folders (sorted, dotfiles ignored), and
    an IngestError for each thing found that cannot be read. Folders in `exclude` (the output
    folder) are never read; links below a named folder that lead outside every input are not
    followed unless `follow_symlinks`."""
    return _Walker(exclude, follow_symlinks).walk(inputs)


def iter_input_files(
    inputs: Iterable[str | os.PathLike], exclude: Iterable[str | os.PathLike] = ()
) -> Iterator[Path]:
    """The readable files of `iter_inputs`."""
    return (p for p in iter_inputs(inputs, exclude) if isinstance(p, Path))


# ---------------------------------------------------------------------------------------------
# Readers


def iter_documents(
    inputs: Iterable[str | os.PathLike],
    fields: FieldMap | None = None,
    *,
    exclude: Iterable[str | os.PathLike] = (),
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
) -> Iterator[Document | IngestError]:
    """Stream Documents (and IngestErrors) from files and folders. A document over
    `max_doc_bytes` is an IngestError `DocumentTooLarge`, found without reading it whole."""
    fields = fields or FieldMap()
    for path in iter_inputs(inputs, exclude, fields.follow_symlinks):
        if isinstance(path, IngestError):
            yield path
        else:
            yield from read_input_file(path, fields, max_doc_bytes=max_doc_bytes)


def read_input_file(
    path: Path,
    fields: FieldMap | None = None,
    byte_range: tuple[int, int, int, int] | None = None,
    *,
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
) -> Iterator[Document | IngestError]:
    """The Documents (and IngestErrors) of one input file; with `byte_range` (start, end,
    lines before start, records before start), only the records of that part of a .jsonl or
    .csv file (see pipeline/run/dask.py)."""
    fields = fields or FieldMap()
    source_file = str(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        yield IngestError(
            source_file,
            "UnsupportedFormat",
            f"'{suffix or path.name}' files are not read; use {', '.join(SUPPORTED_SUFFIXES)}",
        )
        return
    try:
        if byte_range is not None and suffix == ".csv":
            yield from read_csv_range(path, fields, *byte_range, max_doc_bytes=max_doc_bytes)
        elif byte_range is not None:
            yield from read_jsonl_range(path, fields, *byte_range[:3], max_doc_bytes=max_doc_bytes)
        elif suffix == ".txt":
            yield from _read_txt(path, max_doc_bytes, fields.id_from)
        elif suffix == ".jsonl":
            yield from _read_jsonl(path, fields, max_doc_bytes)
        else:
            yield from _read_csv(path, fields, max_doc_bytes)
    except UndecodableError as exc:
        yield IngestError(source_file, "DecodeError", str(exc))
    except UnicodeDecodeError as exc:
        yield IngestError(
            source_file,
            "DecodeError",
            f"invalid byte sequence for the detected encoding: {exc}",
        )
    except OSError as exc:
        yield IngestError(source_file, type(exc).__name__, f"cannot be read: {exc.strerror or exc}")
    except Exception as exc:  # noqa: BLE001 - a reader bug must not stop the run either
        yield IngestError(
            source_file,
            type(exc).__name__,
            f"unexpected failure while reading ({exc}); the rest of this file is not read",
        )


def too_large_message(where: str, size: int, limit: int, unit: str = "bytes") -> str:
    return (
        f"{where}{size:,} {unit}, more than the limit of {limit:,} bytes "
        f"({limit / 2**20:.3g} MiB); not read. Raise the limit with "
        "`tifa run --max-doc-bytes N` (memory grows with the document past it)"
    )


def _read_txt(
    path: Path, max_doc_bytes: int, id_from: str = "content"
) -> Iterator[Document | IngestError]:
    size = path.stat().st_size
    if size > max_doc_bytes:
        yield IngestError(
            str(path),
            "DocumentTooLarge",
            too_large_message("the file is ", size, max_doc_bytes),
            doc_id=path.stem,
        )
        return
    data = path.read_bytes()
    encoding, note = judge_encoding(data)
    text = data.decode(encoding)
    if not text.strip():
        yield IngestError(str(path), "EmptyDocument", "file has no text", doc_id=path.stem)
        return
    # A .txt file has no id field: by default its name and its text name it together, so a
    # file name reused tomorrow for another text (index.txt) is another document.
    doc_id = content_doc_id(path.stem, text) if id_from == "content" else path.stem
    if note:
        # Written all the same (it is the likelier reading), and said: a few characters are
        # thin evidence.
        yield IngestError(str(path), "AmbiguousEncoding", note, doc_id=doc_id)
    yield Document(
        doc_id=doc_id, source_file=str(path), raw_text=text, title=None, encoding=encoding
    )


_SCALAR = (str, int, float)


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


# Fields that give the number of the party congress a report was made to (its year follows).
CONGRESS_FIELDS = ("congress", "congress_number", "党代会")


def _shown(value: object) -> str:
    """A field value as a message shows it: its kind and, cut short, itself."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    text = text if len(text) <= 40 else text[:39] + "…"
    return f"{_kind(value)} {text}" if not isinstance(value, str) else repr(value[:40])


def _unmapped(record: dict, used: set[str]) -> dict[str, Any]:
    """The record's other fields, kept as they came so nothing from the input is lost."""
    return {str(k): v for k, v in record.items() if k not in used and v is not None and v != ""}


def _record_to_document(
    record: dict, fields: FieldMap, source_file: str, encoding: str, where: str, record_no: int
) -> Document | IngestError:
    picked = {name: fields.pick_named(record, name) for name in DEFAULT_FIELDS}
    text_key, text = picked["text"]
    id_key, raw_id_value = picked["id"]
    raw_id = None
    if isinstance(raw_id_value, str | int) and not isinstance(raw_id_value, bool):
        raw_id = _clean(raw_id_value)

    def fail(error_type: str, message: str) -> IngestError:
        return IngestError(source_file, error_type, f"{where}: {message}", doc_id=raw_id)

    # Every field that becomes a column must be storable text: a JSON escape such as "\ud800"
    # (half of a UTF-16 pair) gives a string no UTF-8 file can hold.
    for name, (key, value) in picked.items():
        if isinstance(value, str) and (m := _SURROGATE.search(value)):
            raw_id = None if name == "id" else raw_id
            return fail(
                "InvalidUnicode",
                f"field '{key}' holds an unpaired surrogate {printable(m.group())} at character "
                f"{m.start()} (a broken \\u escape); this record is skipped",
            )
    if raw_id_value is not None and raw_id is None and not isinstance(raw_id_value, str):
        return fail("InvalidField", f"id field '{id_key}' is {_kind(raw_id_value)}, not a string")
    for name in ("title", "source", "url"):
        key, value = picked[name]
        if value is not None and not isinstance(value, _SCALAR) or isinstance(value, bool):
            return fail("InvalidField", f"field '{key}' is {_kind(value)}, not a string")
    if raw_id is None and fields.id_from == "field":
        hint = (
            f"'{fields.overrides['id']}'"
            if "id" in fields.overrides
            else "/".join(DEFAULT_FIELDS["id"])
        )
        return fail(
            "MissingIdField",
            f"no id in {hint} and --id-from field asks every record for one; "
            "this record is skipped (--id-from content names such records by their text)",
        )
    if text is None:
        names = "/".join(DEFAULT_FIELDS["text"]) if "text" not in fields.overrides else None
        hint = f"field '{fields.overrides['text']}'" if names is None else f"any of {names}"
        present = ", ".join(printable(str(k)) for k in record) or "none"
        return fail("MissingTextField", f"no text in {hint} (fields present: {present})")
    if not isinstance(text, str):
        return fail("InvalidField", f"text field '{text_key}' is {_kind(text)}, not a string")
    if not text.strip():
        return fail("EmptyDocument", f"text field '{text_key}' is empty")
    date_key, date_value = picked["date"]
    parsed = parse_date(date_value)
    date_problem = f"field '{date_key}': {parsed.problem}" if parsed.problem else None
    if (
        date_value is not None
        and date_value != ""
        and parsed.year is None
        and parsed.published_at is None
        and date_problem is None
    ):
        # A date field tifa cannot read (a list, true, -5, 1e30, 2024.5, 0000-00-00, "soon")
        # says so: a flag on the document, and the value kept in metadata (below).
        date_problem = f"field '{date_key}': {_shown(date_value)} is not a date"
    year = parsed.year
    title = _clean(picked["title"][1])
    if year is None:
        congress = next((record[k] for k in CONGRESS_FIELDS if k in record), None)
        year = congress_year(congress) if congress is not None else None
        if year is None and title:
            year = congress_year(title)
    used = {key for key, value in picked.values() if value is not None}
    if parsed.year is None and parsed.published_at is None:
        used.discard(date_key)  # nothing of it was used: kept in metadata as it came
    stem = Path(source_file).stem
    if raw_id is not None:
        doc_id = raw_id
    elif fields.id_from == "path":
        doc_id = f"{stem}-{record_no}"  # its place in the file: the user said so
    else:
        # Named by its file and its text, never its place: tomorrow's file with one article
        # more at the top must not rename (and so overwrite) the articles below it.
        doc_id = content_doc_id(stem, text)
    return Document(
        doc_id=doc_id,
        source_file=source_file,
        raw_text=text,
        title=title,
        title_raw=title,
        published_at=parsed.published_at,
        source=_clean(picked["source"][1]),
        url=_clean(picked["url"][1]),
        year=year,
        encoding=encoding,
        date_problem=date_problem,
        metadata=_unmapped(record, used),
        input_fields=input_fields_json({name: picked[name][1] for name in HASHED_FIELDS}),
    )


# Strict JSON: NaN/Infinity are not JSON, and numbers must fit in what a column can hold.
_MAX_INT_DIGITS = 4000


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is too large for a 64-bit float")
    return value


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > _MAX_INT_DIGITS:
        raise ValueError(f"integer with {digits:,} digits is too large")
    return int(text)


def unique_names(names: list[str]) -> tuple[list[str], dict[str, int]]:
    """Field names made unique: the first of a repeated name keeps it (the value tifa maps), a
    later one becomes `name#2`, `name#3` … (kept in `metadata`, never dropped). Returns the
    names and, for each repeated name, how many times it appeared."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out, {k: n for k, n in seen.items() if n > 1}


def duplicate_fields_message(where: str, repeated: dict[str, int]) -> str:
    said = ", ".join(f"'{printable(str(k))}' {n} times" for k, n in repeated.items())
    renamed = ", ".join(f"'{printable(str(k))}#2'" for k in repeated)
    return (
        f"{where}: repeated field names ({said}); the first of each is used, the others are "
        f"kept in metadata as {renamed}"
    )


class _Pairs:
    """json's object_pairs_hook: a key repeated in an object keeps its first value (json.loads
    alone keeps the last, silently) and its later values under `key#2` …; the repeats of the
    record (the outermost object, built last) are reported."""

    def __init__(self) -> None:
        self.repeated: dict[str, int] = {}

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        names, self.repeated = unique_names([k for k, _ in pairs])
        return dict(zip(names, (v for _, v in pairs), strict=True))


def _loads(line: str, pairs: _Pairs | None = None) -> object:
    return json.loads(
        line,
        parse_constant=_no_constant,
        parse_float=_parse_float,
        parse_int=_parse_int,
        object_pairs_hook=pairs,
    )


@dataclass
class _Oversized:
    """A record skipped for its size: its size and the line numbers it spans."""

    size: int
    unit: str = "bytes"
    last_line: int = 0


# A lone CR ends a line too (as text mode with newline="" reads it).
_RX_PHYSICAL_LINE = re.compile(r"[^\r\n]*(?:\r\n?|\n)|[^\r\n]+")


def _jsonl_lines(
    path: Path, limit: int, start: int = 0, end: int | None = None
) -> tuple[Iterator[str | _Oversized], str]:
    """The lines of a JSONL file, each read in bounded pieces: a line over `limit` is skipped to
    its newline without being decoded or held, and given as `_Oversized`. Encodings in which a
    newline is the byte 0x0A (UTF-8, GB18030, Big5) are split as bytes, so the limit counts
    bytes; UTF-16/32 files are read as text and the limit counts characters."""
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    encoding = detect_stream_encoding(head, truncated=len(head) == _SNIFF_BYTES)
    if _newline_is_a_byte(encoding):
        return _byte_lines(path, encoding, limit, start, end), encoding
    if start > 0:  # UTF-16/32 cannot be cut at bytes: the file's first part reads it whole
        return iter(()), encoding
    return _char_lines(path, encoding, limit), encoding


def _byte_lines(
    path: Path, encoding: str, limit: int, start: int = 0, end: int | None = None
) -> Iterator[str | _Oversized]:
    """Lines starting at byte `start` (a line start) up to the first that starts at or past
    `end` (None: the end of the file)."""
    rest = "utf-8" if codecs.lookup(encoding).name == "utf-8-sig" else encoding
    with path.open("rb") as fh:
        first = start == 0
        fh.seek(start)
        while end is None or fh.tell() < end:
            line = fh.readline(limit + 1)
            if not line:
                return
            if len(line) > limit and not line.endswith(b"\n"):
                size = len(line)
                while True:
                    piece = fh.readline(_SKIP_PIECE)
                    size += len(piece)
                    if not piece or piece.endswith(b"\n"):
                        break
                yield _Oversized(size - (1 if piece.endswith(b"\n") else 0))
                first = False
                continue
            text = line.decode(encoding if first else rest, errors="tifa.mark")
            first = False
            if "\r" in text:
                yield from _RX_PHYSICAL_LINE.findall(text)
            else:
                yield text


def _char_lines(path: Path, encoding: str, limit: int) -> Iterator[str | _Oversized]:
    with open(path, encoding=encoding, errors="tifa.mark", newline="") as stream:
        while True:
            line = stream.readline(limit + 1)
            if not line:
                return
            if len(line) > limit and not line.endswith(("\n", "\r")):
                size = len(line)
                while True:
                    piece = stream.readline(_SKIP_PIECE)
                    size += len(piece)
                    if not piece or piece.endswith(("\n", "\r")):
                        break
                yield _Oversized(size, "characters")
                continue
            yield line


def read_jsonl_range(
    path: Path,
    fields: FieldMap | None,
    start: int,
    end: int,
    lines_before: int,
    *,
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
) -> Iterator[Document | IngestError]:
    """The records of a .jsonl file whose first byte lies in [start, end): one part of a large
    file read by one Dask worker (see pipeline/run/dask.py). `lines_before` is the number of
    newlines before `start`, so line numbers (and the ids of records without one) are those of
    a whole-file read. Parts are cut at bytes, which needs an encoding that keeps the newline
    byte out of multi-byte characters (UTF-8, GB18030, Big5); a UTF-16/32 file is read whole by
    its first part."""
    return _read_jsonl(path, fields or FieldMap(), max_doc_bytes, (start, end, lines_before))


def _line_start(path: Path, start: int, lines_before: int) -> tuple[int, int]:
    """The first line start (after an LF) at or after `start`, and the line breaks before it:
    `lines_before` (those before `start`) plus the LF and lone CRs of the line in progress,
    which belongs to the range before (its reader reads on to the LF)."""
    if start == 0:
        return 0, lines_before
    with path.open("rb") as fh:
        fh.seek(start - 1)
        if fh.read(1) == b"\n":
            return start, lines_before
        ended_cr = False
        while True:  # the line in progress belongs to the part before: skip it, bounded
            piece = fh.readline(_SKIP_PIECE)
            if not piece:
                return fh.tell(), lines_before
            lines_before += piece.count(b"\r") - piece.count(b"\r\n")
            if ended_cr and piece.startswith(b"\n"):
                lines_before -= 1  # a CRLF split between two pieces
            ended_cr = piece.endswith(b"\r")
            if piece.endswith(b"\n"):
                return fh.tell(), lines_before + 1


def _read_jsonl(
    path: Path,
    fields: FieldMap,
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
    byte_range: tuple[int, int, int] | None = None,
) -> Iterator[Document | IngestError]:
    if byte_range is None:
        lines, encoding = _jsonl_lines(path, max_doc_bytes)
        first_line = 1
    else:
        start, lines_before = _line_start(path, byte_range[0], byte_range[2])
        lines, encoding = _jsonl_lines(path, max_doc_bytes, start, byte_range[1])
        first_line = lines_before + 1
    n_records = 0
    for lineno, line in enumerate(lines, start=first_line):
        where = f"line {lineno}"
        if isinstance(line, _Oversized):
            n_records += 1
            yield IngestError(
                str(path),
                "DocumentTooLarge",
                too_large_message(f"{where}: the record is ", line.size, max_doc_bytes, line.unit),
            )
            continue
        if not line.strip():
            continue
        n_records += 1
        if _MARK in line:
            yield IngestError(str(path), "DecodeError", _bad_bytes_message(where, line, encoding))
            continue
        pairs = _Pairs()
        try:
            record = _loads(line, pairs)
        except json.JSONDecodeError as exc:
            yield IngestError(
                str(path), "JSONDecodeError", f"{where}: {exc.msg} at column {exc.colno}"
            )
            continue
        except RecursionError:
            yield IngestError(
                str(path),
                "JSONDecodeError",
                f"{where}: JSON nested too deeply (more than about 1,000 levels)",
            )
            continue
        except ValueError as exc:
            yield IngestError(str(path), "JSONDecodeError", f"{where}: {exc}")
            continue
        if not isinstance(record, dict):
            yield IngestError(
                str(path),
                "InvalidRecord",
                f"{where}: expected a JSON object, found {_kind(record)}",
            )
            continue
        item = _record_to_document(record, fields, str(path), encoding, where, lineno)
        if pairs.repeated:
            yield IngestError(
                str(path),
                "DuplicateField",
                duplicate_fields_message(where, pairs.repeated),
                doc_id=item.doc_id,
            )
        yield item
    if n_records == 0 and byte_range is None:
        yield IngestError(str(path), "EmptyDocument", "file has no records")


class _RecordTooLarge(Exception):
    """A CSV record over the size limit, skipped: its first line and its size (characters)."""

    def __init__(self, first_line: int, size: int):
        super().__init__(first_line, size)
        self.first_line, self.size = first_line, size


class _TextSource:
    """Physical lines of a text stream opened with newline="" (the encodings whose newline is
    not the byte 0x0A: UTF-16/32); sizes in characters; no byte offsets, so never cut."""

    unit = "characters"

    def __init__(self, stream: io.TextIOBase):
        self._stream = stream
        self.offset: int | None = None

    def read(self, size: int) -> tuple[str, int, bool]:
        """The next physical line, up to `size` units: (text, units, cut), `cut` when the line
        goes on past what was read."""
        line = self._stream.readline(size)
        return line, len(line), len(line) >= size and not line.endswith(("\n", "\r"))

    def between_lines(self) -> bool:
        return False

    def close(self) -> None:
        self._stream.close()


_RX_PHYSICAL_LINE_BYTES = re.compile(rb"[^\r\n]*(?:\r\n?|\n)|[^\r\n]+")


class _ByteSource:
    """Physical lines of a file in an encoding whose newline and quote are single bytes that no
    multi-byte character contains (UTF-8, GB18030, Big5), read as bytes from `start` and
    decoded one line at a time, so the byte offset of every line start is known and a CSV
    file can be cut at record starts (`csv_cut_points`). Sizes in bytes. A lone CR ends a line,
    as it does for a text stream opened with newline=""."""

    unit = "bytes"

    def __init__(self, path: Path, encoding: str, start: int = 0):
        self._fh = path.open("rb")
        self._fh.seek(start)
        self._first = encoding if start == 0 else None
        self._encoding = "utf-8" if codecs.lookup(encoding).name == "utf-8-sig" else encoding
        self._pending: deque[bytes] = deque()
        self.offset: int | None = start  # of the next line to be read

    def read(self, size: int) -> tuple[str, int, bool]:
        if self._pending:
            raw = self._pending.popleft()
            cut = False
        else:
            raw = self._fh.readline(size)
            cut = len(raw) >= size and not raw.endswith(b"\n")
            if b"\r" in raw:
                pieces = _RX_PHYSICAL_LINE_BYTES.findall(raw)
                if len(pieces) > 1 and cut:
                    # The unfinished last line is read again, whole, by the next call.
                    self._fh.seek(-len(pieces[-1]), io.SEEK_CUR)
                    pieces.pop()
                cut = cut and len(pieces) == 1 and not raw.endswith(b"\r")
                raw = pieces[0]
                self._pending.extend(pieces[1:])
        if self._first is not None and raw:
            text = raw.decode(self._first, errors="tifa.mark")
            self._first = None
        else:
            text = raw.decode(self._encoding, errors="tifa.mark")
        self.offset += len(raw)
        return text, len(raw), cut

    def between_lines(self) -> bool:
        return True  # `offset` counts the bytes of every line handed out

    def close(self) -> None:
        self._fh.close()


class _Lines:
    """The physical lines of a CSV file with their numbers. csv.reader pulls lines one at a
    time (no read-ahead), so the lines taken since the last record are that record's lines; lines
    can be pushed back to be parsed again."""

    def __init__(
        self,
        source: _TextSource | _ByteSource,
        limit: int = DEFAULT_MAX_DOC_BYTES,
        lines_before: int = 0,
    ):
        self.source = source
        self._limit = limit
        self._back: deque[tuple[int, str, int]] = deque()
        self._taken: list[tuple[int, str, int]] = []
        self.n = lines_before

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._back:
            item = self._back.popleft()
        else:
            line, units, cut = self.source.read(self._limit + 1)
            if not line:
                raise StopIteration
            self.n += 1
            if cut:
                # One physical line over the limit: never held whole (see `skip_record`).
                first = self._taken[0][0] if self._taken else self.n
                taken = self.take()
                size = sum(t[2] for t in taken) + units
                quotes = sum(t[1].count('"') for t in taken) + line.count('"')
                raise _RecordTooLarge(first, self._skip(size, quotes, in_line=True))
            item = (self.n, line, units)
        self._taken.append(item)
        return item[1]

    def at_record_start(self) -> int | None:
        """The byte offset of the next line when nothing read is waiting to be parsed (between
        two records of csv.reader); None otherwise or when offsets are not known."""
        if self._back or self._taken or not self.source.between_lines():
            return None
        return self.source.offset

    def _skip(self, size: int, quotes: int, in_line: bool) -> int:
        """Read on, in bounded pieces, to the end of the record whose text so far held
        `quotes` double quotes (the record ends at a line end with the quotes paired: an
        escaped quote is doubled, so the parity says whether a quoted field is still open).
        `in_line`: the current physical line is not finished. Returns `size` plus the
        units skipped."""
        at_line_start = not in_line
        while True:
            piece, units, cut = self.source.read(_SKIP_PIECE)
            if not piece:
                return size
            if at_line_start:
                self.n += 1
            size += units
            quotes += piece.count('"')
            at_line_start = not cut
            if at_line_start and quotes % 2 == 0:
                return size

    def first_taken(self) -> int:
        return self._taken[0][0] if self._taken else self.n

    def skip_record(self) -> int:
        """After csv's "field larger than field limit": the rest of the record, skipped."""
        taken = self.take()
        size = sum(t[2] for t in taken)
        quotes = sum(t[1].count('"') for t in taken)
        if quotes % 2 == 0:
            return size
        return self._skip(size, quotes, in_line=False)

    def take(self) -> list[tuple[int, str, int]]:
        taken, self._taken = self._taken, []
        return taken

    def push_back(self, items: list[tuple[int, str, int]]) -> None:
        self._back.extendleft(reversed(items))


def _n_cells(line: str) -> int:
    try:
        return len(next(csv.reader([line]), []))
    except csv.Error:
        return 0


def _swallows_rows(lines: list[str], n_columns: int) -> bool:
    """A record spread over several lines whose continuation lines are shaped like rows of this
    file was made by a quote that does not close where its row ends."""
    if n_columns < 2:
        return False
    row_like = sum(1 for line in lines[1:] if _n_cells(line) == n_columns)
    unbalanced = "".join(lines).count('"') % 2 == 1
    return (unbalanced and row_like >= 1) or (row_like >= 2 and 2 * row_like >= len(lines) - 1)


def _csv_lines(
    path: Path, max_doc_bytes: int, start: int = 0, lines_before: int = 0
) -> tuple[_Lines, str]:
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    encoding = detect_stream_encoding(head, truncated=len(head) == _SNIFF_BYTES)
    if _newline_is_a_byte(encoding):
        source: _TextSource | _ByteSource = _ByteSource(path, encoding, start)
    else:
        source = _TextSource(open(path, encoding=encoding, errors="tifa.mark", newline=""))  # noqa: SIM115
    return _Lines(source, max_doc_bytes, lines_before), encoding


def _newline_is_a_byte(encoding: str) -> bool:
    """Whether the encoding writes a newline (and a quote) as one byte that no multi-byte
    character contains, so a file can be split at bytes (UTF-8 with or without a BOM, GB18030,
    Big5; not UTF-16/32)."""
    name = codecs.lookup(encoding).name
    if name.startswith(("utf-16", "utf-32")):
        return False
    return name == "utf-8-sig" or "\n".encode(encoding) == b"\n"


def read_csv_range(
    path: Path,
    fields: FieldMap | None,
    start: int,
    end: int,
    lines_before: int,
    records_before: int,
    *,
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
) -> Iterator[Document | IngestError]:
    """The records of a .csv file from the record start at byte `start` up to the one at `end`
    (both found by `csv_cut_points`), numbered as a whole-file read numbers them."""
    header = None
    if start > 0:
        first = _CsvRecords(path, FieldMap(), max_doc_bytes, parse_only=True)
        for _ in first:
            if first.header is not None:
                break
        first.close()
        header = first.header
    records = _CsvRecords(
        path,
        fields or FieldMap(),
        max_doc_bytes,
        start=start,
        end=end,
        lines_before=lines_before,
        records_before=records_before,
        header=header,
    )
    try:
        yield from records
    finally:
        records.close()


def csv_cut_points(
    path: Path, target_bytes: int, max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES
) -> list[tuple[int, int, int]]:
    """Where a .csv file can be cut into parts of about `target_bytes`: (byte offset, lines
    before, records before) of record starts, the first (0, 0, 0); a single entry when the
    file cannot be cut (UTF-16/32, no records, or small).

    A quoted field may hold newlines, and a stray quote is recovered by parsing lines again,
    so record starts cannot be told from the bytes alone (quote parity fails on a quote inside
    an unquoted field, which csv takes literally): this parses the file exactly as a whole read
    does, without building documents. It reads the file once, at well over 10 MB/s, a small
    fraction of what processing the file costs."""
    cuts = [(0, 0, 0)]

    def at(offset: int, n_lines: int, n_records: int) -> None:
        if offset >= cuts[-1][0] + target_bytes:
            cuts.append((offset, n_lines, n_records))

    records = _CsvRecords(path, FieldMap(), max_doc_bytes, parse_only=True, on_boundary=at)
    try:
        for _ in records:
            pass
    finally:
        records.close()
    size = path.stat().st_size
    if records.n_records == 0:
        return cuts[:1]
    return [c for c in cuts if c[0] < size]


class _CsvRecords:
    """The Documents and IngestErrors of a CSV file, or of the records between two record
    starts of it (`start`, `end`: byte offsets from `csv_cut_points`, with the lines and records
    before `start` and the file's header). `parse_only`: a None per record instead of a
    Document (for finding cut points); `on_boundary(offset, lines, records)` is called at every
    record start once the header is read."""

    def __init__(
        self,
        path: Path,
        fields: FieldMap,
        max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
        *,
        start: int = 0,
        end: int | None = None,
        lines_before: int = 0,
        records_before: int = 0,
        header: list[str] | None = None,
        parse_only: bool = False,
        on_boundary: Callable[[int, int, int], None] | None = None,
    ):
        self.path, self.fields, self.max_doc_bytes = path, fields, max_doc_bytes
        self.end, self.parse_only, self.on_boundary = end, parse_only, on_boundary
        # A repeated column name keeps its first column under the name (see `unique_names`).
        self.header = unique_names(header)[0] if header is not None else None
        self.n_records = records_before
        self.lines, self.encoding = _csv_lines(path, max_doc_bytes, start, lines_before)
        self.whole = start == 0 and end is None

    def close(self) -> None:
        self.lines.source.close()

    def __iter__(self) -> Iterator[Document | IngestError | None]:
        source = str(self.path)
        lines, encoding, max_doc_bytes = self.lines, self.encoding, self.max_doc_bytes
        # A field over the limit stops csv before it is held whole ("field larger than field
        # limit"); the limit counts characters, and a record under it is checked in bytes below.
        csv.field_size_limit(max_doc_bytes)
        reader = csv.reader(lines)
        while True:
            offset = lines.at_record_start()
            if offset is not None:
                if self.end is not None and offset >= self.end:
                    return
                if self.on_boundary is not None and self.header is not None:
                    self.on_boundary(offset, lines.n, self.n_records)
            try:
                cells = next(reader)
            except StopIteration:
                break
            except _RecordTooLarge as exc:
                self.n_records += 1
                yield IngestError(
                    source,
                    "DocumentTooLarge",
                    too_large_message(
                        f"row at line {exc.first_line}: the record is ",
                        exc.size,
                        max_doc_bytes,
                        lines.source.unit,
                    ),
                )
                reader = csv.reader(lines)
                continue
            except csv.Error as exc:
                if "field limit" in str(exc):
                    first = lines.first_taken()
                    size = lines.skip_record()
                    self.n_records += 1
                    yield IngestError(
                        source,
                        "DocumentTooLarge",
                        too_large_message(
                            f"row at line {first}: the record is ",
                            size,
                            max_doc_bytes,
                            lines.source.unit,
                        ),
                    )
                    reader = csv.reader(lines)
                    continue
                taken = lines.take()
                first = taken[0][0] if taken else lines.n
                yield IngestError(source, "CSVError", f"row at line {first}: {exc}")
                reader = csv.reader(lines)
                continue
            taken = lines.take()
            if not cells:
                continue  # a blank line
            first = taken[0][0]
            where = f"row at line {first}"
            if cells[0].startswith("\ufeff") and not (first == 1 and self.header is None):
                # A BOM inside the file (files joined with cat): never part of an id.
                cells[0] = cells[0].lstrip("\ufeff")
                if not self.parse_only:
                    yield IngestError(
                        source,
                        "BOMInsideFile",
                        f"{where}: the row starts with a byte-order mark (files joined together?); "
                        "it is removed",
                    )
            if self.header is None:
                self.header, repeated = unique_names(cells)
                if not self.parse_only and (why := _looks_like_data(cells, self.fields)):
                    yield IngestError(
                        source,
                        "CSVHeaderError",
                        f"header at line {first}: the first row looks like data, not column "
                        f"names ({why}); it is read as the header, so it is no document. Add a "
                        "header line (id,title,date,text…) or name the columns with --text-field",
                    )
                if repeated and not self.parse_only:
                    yield IngestError(
                        source,
                        "DuplicateField",
                        duplicate_fields_message(f"header at line {first}", repeated),
                    )
                continue
            header = self.header
            if unique_names(cells)[0] == header:
                # The header again (files joined together): a row of column names, no record.
                if not self.parse_only:
                    yield IngestError(
                        source,
                        "RepeatedHeader",
                        f"{where}: the header row again (files joined together?); skipped",
                    )
                continue
            if len(taken) > 1 and _swallows_rows([t[1] for t in taken], len(header)):
                lines.push_back(taken[1:])
                reader = csv.reader(lines)
                self.n_records += 1
                yield IngestError(
                    source,
                    "CSVQuoteError",
                    f"{where}: a quote opened in this row does not close where the row ends, so "
                    f"it swallowed lines {taken[1][0]}–{taken[-1][0]}, which are shaped like rows; "
                    "this row is skipped and those lines are read as rows",
                )
                continue
            self.n_records += 1
            if self.parse_only:
                yield None
                continue
            if any(_MARK in c for c in cells):
                bad = next(t[1] for t in taken if _MARK in t[1])
                yield IngestError(source, "DecodeError", _bad_bytes_message(where, bad, encoding))
                continue
            if len(cells) > len(header):
                yield IngestError(
                    source,
                    "InvalidRecord",
                    f"{where}: {len(cells)} cells but the header has {len(header)} columns",
                )
                continue
            n_chars = sum(len(t[1]) for t in taken)
            if n_chars > max_doc_bytes // 4:  # may be over the limit in bytes
                size = sum(len(t[1].encode("utf-8", "surrogatepass")) for t in taken)
                if size > max_doc_bytes:
                    yield IngestError(
                        source,
                        "DocumentTooLarge",
                        too_large_message(f"{where}: the record is ", size, max_doc_bytes),
                    )
                    continue
            record = dict(zip(header, cells, strict=False))
            yield _record_to_document(record, self.fields, source, encoding, where, self.n_records)
        if self.n_records == 0 and self.whole:
            yield IngestError(source, "EmptyDocument", "file has no rows")


def _looks_like_data(cells: list[str], fields: FieldMap) -> str | None:
    """Why a CSV's first row looks like a record rather than column names, or None: it names
    no field tifa knows and a cell is prose (long, or a sentence)."""
    known = {n for names in DEFAULT_FIELDS.values() for n in names} | set(fields.overrides.values())
    if any(c.strip() in known for c in cells):
        return None
    longest = max(cells, key=len)
    if len(longest) > 30:
        return f"a cell of {len(longest)} characters and no known column name"
    if any(mark in c for c in cells for mark in "。！？"):
        return "a cell that is a sentence and no known column name"
    return None


def _read_csv(
    path: Path, fields: FieldMap, max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES
) -> Iterator[Document | IngestError]:
    records = _CsvRecords(path, fields, max_doc_bytes)
    try:
        yield from records  # type: ignore[misc]
    finally:
        records.close()
