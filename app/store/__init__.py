"""The SQLite store: the only place that speaks SQL (see ``database`` and the per-table modules)."""

from app.store.database import SCHEMA_VERSION, Store

__all__ = ["SCHEMA_VERSION", "Store"]
