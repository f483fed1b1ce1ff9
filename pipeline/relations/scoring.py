"""How a relation row is compared with a gold row (tifa evaluate-relations).

Two conventions differ between gold sets without changing the fact a row states:
* script: the pipeline writes simplified Chinese; a gold set written over a traditional source
  keeps the traditional characters (周恩來, 國務院). Both sides are compared after OpenCC t2s.
* a body written into the title: "国务院总理" at 国务院 and "总理" at 国务院 are one post; so are
  "政治局常委" and "中央政治局常委" at 中共中央政治局. A role is compared without its longest
  leading part (two characters or more, leaving two or more) that the tail already names.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _t2s(text: str) -> str:
    from pipeline.normalise import _converter

    return "".join(_converter().convert(text).split())


def canonical_role(role: str | None, tail: str) -> str | None:
    if not role:
        return role
    for cut in range(len(role) - 2, 1, -1):
        if role[:cut] in tail:
            return role[cut:]
    return role


def relation_key(r: dict[str, Any]) -> tuple[str, str, str, str, str | None]:
    """(doc_id, relation, head, tail, role) in the form two conventions agree on."""
    tail = _t2s(r["tail"])
    role = _t2s(r["role"]) if r.get("role") else None
    return (r["doc_id"], r["relation"], _t2s(r["head"]), tail, canonical_role(role, tail))
