"""Read raw files into Documents: encoding detection, field mapping, one document at a time.

`iter_documents(paths)` is a generator: a .jsonl or .csv file of any size is streamed record by
record, so memory stays flat. Anything that cannot become a Document (undecodable bytes, a broken
JSON line, an empty text) is yielded as an `IngestError` instead of being skipped or raised.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pipeline.document import Document, stable_doc_id

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

# How many leading bytes of a streamed file decide its encoding.
_SNIFF_BYTES = 1 << 20

csv.field_size_limit(sys.maxsize)


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
    overrides: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
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
        if name in self.overrides:
            return record.get(self.overrides[name])
        for key in DEFAULT_FIELDS[name]:
            value = record.get(key)
            if value not in (None, ""):
                return value
        return None


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
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    if not data:
        return "utf-8"
    if _decodes(data, "utf-8", truncated):
        return "utf-8"
    if b"\x00" in data[:4096] and not _looks_utf16(data):
        raise UndecodableError("binary data (NUL bytes) is not a text document")
    candidates = [enc for enc in _LEGACY if _decodes(data, enc, truncated)]
    if not candidates:
        raise UndecodableError(
            "bytes are not valid UTF-8, GB18030, Big5 or UTF-16; re-save the file as UTF-8"
        )
    if len(candidates) == 1:
        return candidates[0]
    # Several legacy codecs accept the bytes (GB18030 accepts most Big5 byte pairs): let
    # charset-normalizer judge which decoding reads as real text.
    from charset_normalizer import from_bytes

    best = from_bytes(data[:_SNIFF_BYTES], cp_isolation=candidates).best()
    if best is not None and best.encoding:
        return codecs.lookup(best.encoding).name
    return candidates[0]


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


def _open_text_stream(path: Path) -> tuple[io.TextIOWrapper, str]:
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    encoding = detect_encoding(head, truncated=len(head) == _SNIFF_BYTES)
    return open(path, encoding=encoding, errors="strict", newline=""), encoding  # noqa: SIM115


# ---------------------------------------------------------------------------------------------
# Field values

_DATE_RE = re.compile(
    r"(?P<y>(?:19|20)\d{2})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*日?"
)
_YEAR_RE = re.compile(r"^\s*(?P<y>(?:19|20)\d{2})\s*年?\s*$")


def parse_date(value: object) -> tuple[date | None, int | None]:
    """(published_at, year) from a field value: ISO dates, 2024年3月12日, 2024/3/12, or a year."""
    if value is None:
        return None, None
    if isinstance(value, date):
        return value, value.year
    if isinstance(value, int | float) and 1000 <= int(value) <= 2999:
        return None, int(value)
    text = str(value).translate(_FULLWIDTH_DIGITS)
    match = _DATE_RE.search(text)
    if match:
        try:
            parsed = date(int(match["y"]), int(match["m"]), int(match["d"]))
        except ValueError:
            parsed = None
        return parsed, int(match["y"])
    match = _YEAR_RE.match(text)
    if match:
        return None, int(match["y"])
    return None, None


_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


def _clean(value: object | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


# ---------------------------------------------------------------------------------------------
# Readers


def iter_input_files(inputs: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """Files named directly, plus every file below named folders (sorted, dotfiles ignored)."""
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                if child.is_file() and not any(p.startswith(".") for p in rel.parts):
                    yield child
        else:
            yield path


def iter_documents(
    inputs: Iterable[str | os.PathLike], fields: FieldMap | None = None
) -> Iterator[Document | IngestError]:
    """Stream Documents (and IngestErrors) from files and folders."""
    fields = fields or FieldMap()
    for path in iter_input_files(inputs):
        source_file = str(path)
        if not path.exists():
            yield IngestError(source_file, "FileNotFound", f"no such file or folder: {path}")
            continue
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            yield IngestError(
                source_file,
                "UnsupportedFormat",
                f"'{suffix or path.name}' files are not read; use {', '.join(SUPPORTED_SUFFIXES)}",
            )
            continue
        try:
            if suffix == ".txt":
                yield from _read_txt(path)
            elif suffix == ".jsonl":
                yield from _read_jsonl(path, fields)
            else:
                yield from _read_csv(path, fields)
        except UndecodableError as exc:
            yield IngestError(source_file, "DecodeError", str(exc))
        except UnicodeDecodeError as exc:
            yield IngestError(
                source_file,
                "DecodeError",
                f"invalid byte sequence for the detected encoding: {exc}",
            )
        except OSError as exc:
            yield IngestError(source_file, type(exc).__name__, str(exc))


def _read_txt(path: Path) -> Iterator[Document | IngestError]:
    text, encoding = read_text_file(path)
    if not text.strip():
        yield IngestError(str(path), "EmptyDocument", "file has no text", doc_id=path.stem)
        return
    yield Document(
        doc_id=path.stem, source_file=str(path), raw_text=text, title=None, encoding=encoding
    )


def _record_to_document(
    record: dict, fields: FieldMap, source_file: str, encoding: str, where: str
) -> Document | IngestError:
    text = fields.pick(record, "text")
    raw_id = _clean(fields.pick(record, "id"))
    if not isinstance(text, str) or not text.strip():
        names = "/".join(DEFAULT_FIELDS["text"]) if "text" not in fields.overrides else None
        hint = f"field '{fields.overrides['text']}'" if names is None else f"any of {names}"
        return IngestError(
            source_file,
            "MissingTextField" if text is None else "EmptyDocument",
            f"{where}: no text in {hint} (fields present: {', '.join(map(str, record)) or 'none'})",
            doc_id=raw_id,
        )
    published_at, year = parse_date(fields.pick(record, "date"))
    doc = Document(
        doc_id=raw_id or stable_doc_id(text),
        source_file=source_file,
        raw_text=text,
        title=_clean(fields.pick(record, "title")),
        published_at=published_at,
        source=_clean(fields.pick(record, "source")),
        url=_clean(fields.pick(record, "url")),
        year=year,
        encoding=encoding,
    )
    return doc


def _read_jsonl(path: Path, fields: FieldMap) -> Iterator[Document | IngestError]:
    stream, encoding = _open_text_stream(path)
    with stream:
        n_records = 0
        for lineno, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            n_records += 1
            where = f"line {lineno}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield IngestError(
                    str(path), "JSONDecodeError", f"{where}: {exc.msg} at column {exc.colno}"
                )
                continue
            if not isinstance(record, dict):
                yield IngestError(str(path), "InvalidRecord", f"{where}: expected a JSON object")
                continue
            yield _record_to_document(record, fields, str(path), encoding, where)
        if n_records == 0:
            yield IngestError(str(path), "EmptyDocument", "file has no records")


def _read_csv(path: Path, fields: FieldMap) -> Iterator[Document | IngestError]:
    stream, encoding = _open_text_stream(path)
    with stream:
        reader = csv.DictReader(stream)
        n_records = 0
        try:
            for record in reader:
                n_records += 1
                where = f"row {reader.line_num}"
                if None in record:  # more cells than header columns
                    yield IngestError(
                        str(path), "InvalidRecord", f"{where}: more cells than header columns"
                    )
                    continue
                yield _record_to_document(record, fields, str(path), encoding, where)
        except csv.Error as exc:
            yield IngestError(str(path), "CSVError", f"row {reader.line_num}: {exc}")
        if n_records == 0:
            yield IngestError(str(path), "EmptyDocument", "file has no rows")
