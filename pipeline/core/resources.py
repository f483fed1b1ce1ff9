"""The resource files (rules, lexicons, word lists under `pipeline/resources/`): one folder, one
reader per file type, each rule file checked against its declared shape when it is loaded.

PyYAML's pure-Python loader took ~2 s of every run for the resource files (formulations.yaml
alone ~0.9 s); libyaml's `CSafeLoader` builds the same Python objects about ten times faster.
Every module reads its YAML through `load_yaml`, so a file several modules use (person_rules.yaml,
persons.yaml) is parsed once. The returned objects are shared: treat them as read-only.

A YAML rule file is checked against `resource_schemas.yaml` the first time it is read:
a missing or unknown key, a value of the wrong type or a pattern that does not compile is one
`ResourceError` naming the file and the key, instead of a traceback deep in a rule class.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
SCHEMAS_FILE = RESOURCES / "resource_schemas.yaml"

# libyaml is part of every PyYAML wheel; the pure-Python loader only where it is missing.
_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Declared value types of the schema file -> Python types they accept.
_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "regex": (str,),
    "int": (int,),
    "number": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}


class ResourceError(ValueError):
    """A resource file that cannot be used as it is (the message names the file and the key)."""


def resource_path(name: str | Path) -> Path:
    """A file under `pipeline/resources/` by name, or a path as it is."""
    return name if isinstance(name, Path) else RESOURCES / name


def load_yaml(path: str | Path) -> Any:
    """The parsed content of a YAML file, cached per (path, size, modification time); a rule
    file (by its name) is checked against its declared shape first."""
    p = resource_path(path)
    st = p.stat()
    return _load(str(p.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _load(path: str, _size: int, _mtime_ns: int) -> Any:
    with open(path, encoding="utf-8") as fh:
        try:
            data = yaml.load(fh, Loader=_Loader)  # noqa: S506 - a safe loader (CSafeLoader)
        except yaml.YAMLError as exc:
            raise ResourceError(f"{Path(path).name}: not valid YAML ({exc})") from None
    p = Path(path)
    schema = _schemas().get(p.name) if p != SCHEMAS_FILE else None
    if schema is not None:  # a rule file (packaged, or a copy of one given in its place)
        check_shape(p.name, data, schema)
    return data


@functools.cache
def _schemas() -> dict[str, dict[str, str]]:
    with open(SCHEMAS_FILE, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_Loader)  # noqa: S506


def check_shape(name: str, data: Any, schema: dict[str, str]) -> None:
    """`data` (a YAML mapping) has exactly the keys of `schema`, each of its declared type."""
    if not isinstance(data, dict):
        raise ResourceError(f"{name}: expected a mapping of keys, found {type(data).__name__}")
    missing = [k for k in schema if k not in data]
    unknown = [k for k in data if k not in schema]
    if missing:
        raise ResourceError(f"{name}: missing key {missing[0]!r}")
    if unknown:
        raise ResourceError(
            f"{name}: unknown key {unknown[0]!r} (misspelt? see {SCHEMAS_FILE.name})"
        )
    for key, kind in schema.items():
        value = data[key]
        if not isinstance(value, _TYPES[kind]) or (kind != "bool" and isinstance(value, bool)):
            raise ResourceError(
                f"{name}: {key!r} must be of type {kind}, "
                f"not {type(value).__name__} ({value!r:.60})"
            )
        if kind == "regex":
            import regex

            try:
                regex.compile(value)
            except regex.error as exc:
                raise ResourceError(f"{name}: {key!r} is not a valid pattern ({exc})") from None


def read_lines(name: str | Path, *, inline_comments: bool = False) -> list[str]:
    """Non-blank, non-comment lines of a resource file (a name under ``resources/`` or a path).

    Regex files (chrome patterns) may contain ``#`` inside a pattern, so only whole-line
    comments are dropped unless ``inline_comments`` is set (word lists: ``word  # note``).
    """
    out = []
    with open(resource_path(name), encoding="utf-8") as fh:
        for line in fh:
            if inline_comments:
                line = line.split("#", 1)[0]
            if line.strip() and not line.lstrip().startswith("#"):
                out.append(line.strip() if inline_comments else line.rstrip("\n"))
    return out


def read_table(
    name: str | Path, columns: Sequence[str], *, header: bool = False
) -> list[dict[str, str]]:
    """Rows of a tab-separated resource file as {column: value} (values stripped; comment and
    blank lines skipped). With `header`, the file's first row must name `columns` first; either
    way every row needs that many fields (more are notes, ignored)."""
    path = resource_path(name)
    rows = []
    first = header
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")]
        if first:
            first = False
            if fields[: len(columns)] != list(columns):
                raise ResourceError(
                    f"{path.name} line {n}: the header must begin {'<TAB>'.join(columns)}"
                )
            continue
        if len(fields) < len(columns):
            raise ResourceError(
                f"{path.name} line {n}: expected {len(columns)} tab-separated fields "
                f"({', '.join(columns)}), found {len(fields)}"
            )
        rows.append(dict(zip(columns, fields[: len(columns)], strict=True)))
    return rows
