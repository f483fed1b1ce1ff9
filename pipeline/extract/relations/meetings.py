"""One meeting, one name: an event's tail is the fullest name the document (or its title) gives
that meeting ("湖北省十一届人大一次会议" → "湖北省第十一届人民代表大会第一次会议", "庆祝大会" →
"庆祝澳门回归祖国大会").

Two mentions name the same meeting when they carry the same session numbers (届, 次) and the
same kind of body (人大, 政协, 党代会 …), or when the short one is the long one with characters
left out (same first and last character).
"""

from __future__ import annotations

from collections.abc import Iterable

import regex

from pipeline.extract.relations.base import rules
from pipeline.extract.relations.locality import abbreviates


class MeetingNames:
    def __init__(self) -> None:
        m = rules()["meeting_names"]
        self.number = regex.compile(m["number"])
        self.bodies: dict[str, str] = {}
        for kind, forms in m["bodies"].items():
            for form in forms:
                self.bodies[form] = kind
        self.body_re = regex.compile(
            "|".join(map(regex.escape, sorted(self.bodies, key=len, reverse=True)))
        )
        self.title_cut = regex.compile(m["title_cut"])
        self.title_agent = regex.compile(m["title_agent_verbs"])
        self.title_date = regex.compile(m["title_date"])
        self.suffix = regex.compile(m["meeting_suffix"])
        self.min_abbrev: int = m["min_abbreviation_chars"]
        self.edition = regex.compile(m["edition"])

    def without_edition(self, name: str) -> str:
        return self.edition.sub("", name)

    def key(self, name: str) -> tuple[tuple[str, ...], str] | None:
        numbers = tuple(self.number.findall(name))
        body = self.body_re.search(name)
        if len(numbers) < 2 or body is None:
            return None
        return numbers, self.bodies[body.group()]

    def from_title(self, title: str) -> list[str]:
        """The meeting a title names: "政协第十二届山西省委员会第四次会议开幕" → its name."""
        head = self.title_cut.split(self.title_agent.split(title)[-1])[0].strip()
        head = self.title_date.sub("", head)
        return [head] if self.suffix.search(head) and len(head) >= self.min_abbrev else []

    def fullest(self, name: str, mentions: Iterable[str]) -> str:
        key = self.key(name)
        best = name
        for other in mentions:
            if len(other) <= len(best):
                continue
            same = (
                (key is not None and self.key(other) == key)
                or (len(name) >= self.min_abbrev and abbreviates(name, other))
                # "总理办公会" and "总理办公会议": the same meeting, written short
                or other == name + "议"
            )
            if same:
                best = other
        return best
