"""Everything that touches files: reading the input (`ingest`, `partitions`), the declared
Parquet schemas (`schema`), the output folder on disk or an object store (`storage`), atomic
batch writing, replacement journals and markers (`write`), the output lock (`lock`), compaction
(`compact`) and the fingerprint of the derived tables (`derived_state`).

For the data engineer. May import: `core`, `normalise` (the text checks of decoding).
"""
