"""What the analyst reads in the morning: the derived tables (`aggregate`), the DuckDB
dashboard views (`views`), the HTML report (`report`, `charts`) and keyword in context (`kwic`).

May import: `core`, `io`, `normalise`, `nlp`, `extract`.
"""
