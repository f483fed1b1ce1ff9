"""The floor of the house: what every other package may import, importing nothing of theirs.

`document` (the `Document` that flows through every step), `textutil` (character classes, the
resources folder), `resources` (the one YAML reader), `dates`, `faults` (the crash points the
kill tests hit). May import: nothing in `pipeline` but `core` itself.
"""
