"""The workspace's DuckDB store: runs, case results, scores and spans in one file."""

from evalkit.store.db import Store, default_store_path, open_store

__all__ = ["Store", "default_store_path", "open_store"]
