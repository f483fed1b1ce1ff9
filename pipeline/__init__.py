"""tifa: raw Chinese political text -> Parquet tables."""

from __future__ import annotations

import importlib.abc
import sys
from typing import Any

__version__ = "0.1.0"


class _NoTorchForThinc(importlib.abc.MetaPathFinder):
    """Keeps thinc (spaCy's ML library) from importing torch while it probes for it.

    thinc's `compat` module imports torch at import time whenever torch is installed, which
    the `hanlp` extra does: 1.3 s of every process's start-up here (spaCy 1.9 s instead of
    0.6 s), for thinc's torch layers, which no tifa component uses. While `thinc.compat` is
    being executed (its `has_torch` not yet set) this finder answers "no torch"; afterwards it
    steps aside, so the HanLP backend still imports torch itself when it is chosen."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "torch":
            probing = sys.modules.get("thinc.compat")
            if probing is not None and not hasattr(probing, "has_torch"):
                raise ModuleNotFoundError(
                    "torch is not imported for thinc (see pipeline/__init__.py)"
                )
        return None


if "torch" not in sys.modules and not any(isinstance(f, _NoTorchForThinc) for f in sys.meta_path):
    sys.meta_path.insert(0, _NoTorchForThinc())
