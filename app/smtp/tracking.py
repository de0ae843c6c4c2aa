"""The message tracking log as the console and the command line read it (the service writes it)."""

from __future__ import annotations

import logging

from app.store import Store
from app.store import tracking as rows
from app.store.tracking import TrackingQuery, TrackingRow, queue_id_of, time_text

log = logging.getLogger(__name__)

__all__ = [
    "TrackingQuery",
    "TrackingRow",
    "find_entries",
    "message_entries",
    "newest_id",
    "queue_id_of",
    "time_text",
]


def find_entries(
    store: Store,
    criteria: TrackingQuery,
    *,
    before_id: int | None = None,
    after_id: int | None = None,
    limit: int = 500,
) -> list[TrackingRow]:
    """The entries matching ``criteria``, newest first, at most ``limit`` (any thread).

    ``before_id`` pages back through older entries (the smallest id already shown);
    ``after_id`` asks only for entries newer than the ones shown. Inside ``store.read()`` it
    reads from that transaction's snapshot.
    """
    with store.read() as conn:
        return rows.query(conn, criteria, before_id=before_id, after_id=after_id, limit=limit)


def newest_id(store: Store) -> int:
    """The id of the newest entry (0 when the log is empty): a cheap way to notice new ones."""
    with store.read() as conn:
        return rows.last_id(conn)


def message_entries(store: Store, entry: TrackingRow, limit: int = 1000) -> list[TrackingRow]:
    """Every entry of ``entry``'s message, oldest first: by its Message-ID, else by the queue id
    the SMTP service gave it."""
    with store.read() as conn:
        if entry.message_id:
            return rows.message_history(conn, entry.message_id, limit)
        return rows.queue_history(conn, queue_id_of(entry), limit)
