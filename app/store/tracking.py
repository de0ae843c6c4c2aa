"""SQL for the message tracking log: what the SMTP service accepted, delivered, queued, refused."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from app.store.database import Connection
from app.store.errors import translating


@dataclass(frozen=True)
class TrackingRow:
    """One entry of the message tracking log, as stored."""

    time: str
    event: str
    message_id: str = ""
    sender: str = ""
    recipients: tuple[str, ...] = ()
    client: str = ""
    code: int | None = None
    reason: str = ""
    id: int | None = None


_SEPARATOR = ", "


@translating
def append_rows(conn: Connection, rows: Sequence[TrackingRow]) -> None:
    """Append entries in one transaction of their own.

    Deliberately not ``Store.write()``: the log is not configuration, and moving the change
    counter on every message would make every process reload its directory index.
    """
    if not rows:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(
            "INSERT INTO message_tracking"
            " (time, event, message_id, sender, recipients, client, code, reason)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    row.time,
                    row.event,
                    row.message_id,
                    row.sender,
                    _SEPARATOR.join(row.recipients),
                    row.client,
                    row.code,
                    row.reason,
                )
                for row in rows
            ],
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


@translating
def search(
    conn: Connection,
    *,
    address: str = "",
    message_id: str = "",
    events: Sequence[str] = (),
    since: str = "",
    limit: int = 200,
) -> list[TrackingRow]:
    """The newest entries first; ``address`` matches sender or recipients (substring, any case)."""
    where: list[str] = []
    args: list[object] = []
    if address:
        where.append("(instr(lower(sender), ?) > 0 OR instr(lower(recipients), ?) > 0)")
        args += [address.lower(), address.lower()]
    if message_id:
        where.append("message_id = ?")
        args.append(message_id)
    if events:
        where.append(f"event IN ({','.join('?' * len(events))})")
        args += list(events)
    if since:
        where.append("time >= ?")
        args.append(since)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    cursor = conn.execute(
        f"SELECT * FROM message_tracking {clause} ORDER BY id DESC LIMIT ?", (*args, limit)
    )
    return [
        TrackingRow(
            time=row["time"],
            event=row["event"],
            message_id=row["message_id"],
            sender=row["sender"],
            recipients=tuple(r for r in row["recipients"].split(_SEPARATOR) if r),
            client=row["client"],
            code=row["code"],
            reason=row["reason"],
            id=row["id"],
        )
        for row in cursor
    ]


# -- the Message Tracking Center's queries --------------------------------------------------------


@dataclass(frozen=True)
class TrackingQuery:
    """What the Message Tracking Center looks for; an empty field matches every entry.

    ``sender``, ``recipient`` and ``message_id`` match a part of the value in any case (the
    null sender ``<>`` is stored as ''); ``since`` and ``until`` are times as the log stores
    them (see ``time_text``), ``since`` included and ``until`` not.
    """

    sender: str = ""
    recipient: str = ""
    message_id: str = ""
    since: str = ""
    until: str = ""
    events: tuple[str, ...] = ()


def time_text(moment: datetime) -> str:
    """A time as the log stores it and compares it: ISO 8601 UTC with milliseconds."""
    if moment.tzinfo is None:
        raise ValueError("a time without a time zone cannot be compared with the log")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


@translating
def query(
    conn: Connection,
    criteria: TrackingQuery,
    *,
    before_id: int | None = None,
    after_id: int | None = None,
    limit: int = 500,
) -> list[TrackingRow]:
    """The matching entries, newest first, at most ``limit``.

    ``before_id`` pages back through older entries (the smallest id already shown);
    ``after_id`` asks only for entries newer than the ones shown.
    """
    where: list[str] = []
    args: list[object] = []
    for column, text in (
        ("sender", criteria.sender),
        ("recipients", criteria.recipient),
        ("message_id", criteria.message_id),
    ):
        if text.strip():
            where.append(f"instr(lower({column}), ?) > 0")
            args.append(text.strip().lower())
    if criteria.since:
        where.append("time >= ?")
        args.append(criteria.since)
    if criteria.until:
        where.append("time < ?")
        args.append(criteria.until)
    if criteria.events:
        where.append(f"event IN ({','.join('?' * len(criteria.events))})")
        args += list(criteria.events)
    if before_id is not None:
        where.append("id < ?")
        args.append(before_id)
    if after_id is not None:
        where.append("id > ?")
        args.append(after_id)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    cursor = conn.execute(
        f"SELECT * FROM message_tracking {clause} ORDER BY id DESC LIMIT ?", (*args, limit)
    )
    return [_row(row) for row in cursor]


@translating
def message_history(conn: Connection, message_id: str, limit: int = 1000) -> list[TrackingRow]:
    """Every entry of one message (by its exact Message-ID), oldest first."""
    if not message_id:
        return []
    cursor = conn.execute(
        "SELECT * FROM message_tracking WHERE message_id = ? ORDER BY id LIMIT ?",
        (message_id, limit),
    )
    return [_row(row) for row in cursor]


@translating
def last_id(conn: Connection) -> int:
    """The id of the newest entry (0 when the log is empty): a cheap way to notice new ones."""
    row = conn.execute("SELECT max(id) FROM message_tracking").fetchone()
    return int(row[0] or 0)


def _row(row: sqlite3.Row) -> TrackingRow:
    return TrackingRow(
        time=row["time"],
        event=row["event"],
        message_id=row["message_id"],
        sender=row["sender"],
        recipients=tuple(r for r in row["recipients"].split(_SEPARATOR) if r),
        client=row["client"],
        code=row["code"],
        reason=row["reason"],
        id=row["id"],
    )


_QUEUE_ID = re.compile(r"\[id ([A-Za-z0-9]+)\]$")


def queue_id_of(row: TrackingRow) -> str:
    """The queue id the SMTP service gave the entry's message (the ``[id …]`` its reason ends
    with), or '' for an entry of no message (a refused command, a session)."""
    found = _QUEUE_ID.search(row.reason)
    return found.group(1) if found else ""


@translating
def queue_history(conn: Connection, queue_id: str, limit: int = 1000) -> list[TrackingRow]:
    """Every entry of the message with this queue id, oldest first: the history of a message
    that has no Message-ID."""
    if not queue_id or not queue_id.isalnum():
        return []
    cursor = conn.execute(
        "SELECT * FROM message_tracking WHERE reason LIKE ? ORDER BY id LIMIT ?",
        (f"%[id {queue_id}]", limit),
    )
    return [_row(row) for row in cursor]
