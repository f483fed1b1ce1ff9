"""tifa: raw Chinese political text -> Parquet tables."""

__version__ = "0.1.0"
