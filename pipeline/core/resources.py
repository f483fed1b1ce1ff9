"""Resource files (rules, lexicons) parsed once per process, with the C YAML loader.

PyYAML's pure-Python loader took ~2 s of every run for the resource files (formulations.yaml
alone ~0.9 s); libyaml's `CSafeLoader` builds the same Python objects about ten times faster.
Every module reads its YAML through `load_yaml`, so a file several modules use (person_rules.yaml,
persons.yaml) is parsed once. The returned objects are shared: treat them as read-only.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

# libyaml is part of every PyYAML wheel; the pure-Python loader only where it is missing.
_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: str | Path) -> Any:
    """The parsed content of a YAML file, cached per (path, size, modification time)."""
    p = Path(path)
    st = p.stat()
    return _load(str(p.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _load(path: str, _size: int, _mtime_ns: int) -> Any:
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_Loader)  # noqa: S506 - a safe loader (CSafeLoader)
