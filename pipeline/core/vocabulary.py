"""Names the tables share with the code that writes and reads them, declared once.

`RelationName` is the `relation` column of the relations table: the rules write these names
(`extract/relations/`), the schema documents them (`io/schema.py`), the scorer and the views
compare against them (`evaluate/relations.py`, `analyst/`). A rule file naming a relation
not listed here is refused when it is loaded.
"""

from __future__ import annotations

from enum import StrEnum


class RelationName(StrEnum):
    HOLDS_POSITION = "holds_position"
    CHAIRS = "chairs"
    ATTENDS = "attends"
    ADDRESSES = "addresses"
    INSTRUCTS = "instructs"
    ISSUES = "issues"
