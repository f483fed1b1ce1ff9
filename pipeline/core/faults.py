"""Fault injection for the kill tests: the crash points every writer passes.

`TIFA_CRASH_AT=<point>:<n>` SIGKILLs this process the n-th time it reaches the named point (see
the `checkpoint` calls in io/, run/ and analyst/); unset, a call costs one string test. It lives
at the bottom of the house so that storage, writers, the run loop and the report can all name
their crash points without importing each other.
"""

from __future__ import annotations

import os
import signal
from collections import defaultdict

_CRASH_AT = os.environ.get("TIFA_CRASH_AT", "")
_hits: dict[str, int] = defaultdict(int)


def checkpoint(point: str) -> None:
    if not _CRASH_AT:
        return
    name, _, nth = _CRASH_AT.partition(":")
    if name == point:
        _hits[point] += 1
        if _hits[point] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
