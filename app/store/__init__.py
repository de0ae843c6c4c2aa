"""The SQLite store: the only place that speaks SQL (see ``database`` and the per-table modules).

Outside this package a connection is only passed on (``Connection``), and a database failure
arrives as ``DatabaseError`` (a ``ConstraintError`` for a broken uniqueness rule), never as a
sqlite3 exception. The records it returns that have no other home are public here too.
"""

from app.store.database import SCHEMA_VERSION, Connection, Store
from app.store.errors import ConstraintError, DatabaseError
from app.store.rus import DecisionRecord, Provenance, RunKind, RunRecord
from app.store.tracking import TrackingQuery, TrackingRow

__all__ = [
    "SCHEMA_VERSION",
    "ConstraintError",
    "Connection",
    "DatabaseError",
    "DecisionRecord",
    "Provenance",
    "RunKind",
    "RunRecord",
    "Store",
    "TrackingQuery",
    "TrackingRow",
]
