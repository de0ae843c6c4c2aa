"""SQL for the Recipient Update Service: its lease, high-water mark, runs, decisions and stamps."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from app.model import ProxyAddress, Recipient
from app.store.database import Connection
from app.store.errors import translated

RunKind = Literal["update", "rebuild"]
Outcome = Literal["running", "completed", "cancelled", "failed"]
DecisionKind = Literal["stamped", "kept", "skipped", "error"]

LEASE_NAME = "rus"


@dataclass(frozen=True)
class RunRecord:
    """One run of the Recipient Update Service as stored (``outcome`` 'running' while under way)."""

    id: int
    kind: RunKind
    owner: str
    started: str
    finished: str | None
    duration: float | None
    outcome: Outcome
    done: int
    total: int
    examined: int
    changed: int
    errors: int
    message: str


class Provenance(NamedTuple):
    """Which policy and rule made a stamped address, in which run, with which collision suffix.

    A named tuple: a Rebuild makes hundreds of thousands, and JSON stores each as a list.
    """

    type: str
    address: str
    policy: str
    rule: str
    suffix: int
    run_id: int
    plain: str = ""
    """With a suffix: the address the rule generated before it, which someone else had."""


@dataclass(frozen=True)
class DecisionRecord:
    """The latest decision the RUS took for one recipient, and the provenance of its stamps."""

    run_id: int
    decision: DecisionKind
    policy: str
    reason: str
    stamp_run_id: int | None
    addresses: tuple[Provenance, ...]


# Provenance is written for every recipient a Rebuild stamps, so it is stored in a form that is
# cheap to make: entries separated by RS, fields by US. No field can hold a control character
# (names, rules and addresses are checked for that before they are stored).
_ENTRY_SEPARATOR = "\x1e"
_FIELD_SEPARATOR = "\x1f"


def provenance_text(entries: Sequence[Provenance]) -> str:
    """The entries as stored: type, address, policy, rule, suffix, run, plain per entry."""
    return _ENTRY_SEPARATOR.join(
        f"{p.type}\x1f{p.address}\x1f{p.policy}\x1f{p.rule}\x1f{p.suffix}\x1f{p.run_id}\x1f{p.plain}"
        for p in entries
    )


def parse_provenance(text: str) -> tuple[Provenance, ...]:
    entries = []
    for entry in text.split(_ENTRY_SEPARATOR) if text else ():
        type_, address, policy, rule, suffix, run_id, plain = entry.split(_FIELD_SEPARATOR)
        entries.append(Provenance(type_, address, policy, rule, int(suffix), int(run_id), plain))
    return tuple(entries)


# -- the lease: one run at a time per data directory, across processes ---------------------------


def acquire_lease(conn: Connection, owner: str, now: float, seconds: float) -> str:
    """Take the lease if it is free, expired or ours already; return who holds it now."""
    conn.execute(
        "INSERT INTO leases (name, owner, expires) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires = excluded.expires"
        " WHERE leases.expires < ? OR leases.owner = excluded.owner",
        (LEASE_NAME, owner, now + seconds, now),
    )
    row = conn.execute("SELECT owner FROM leases WHERE name = ?", (LEASE_NAME,)).fetchone()
    return str(row[0])


def renew_lease(conn: Connection, owner: str, now: float, seconds: float) -> bool:
    """Extend our lease; False if it is no longer ours (it expired and someone else took it)."""
    cursor = conn.execute(
        "UPDATE leases SET expires = ? WHERE name = ? AND owner = ?",
        (now + seconds, LEASE_NAME, owner),
    )
    return cursor.rowcount == 1


def release_lease(conn: Connection, owner: str) -> None:
    conn.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (LEASE_NAME, owner))


def lease_holder(conn: Connection, now: float) -> str | None:
    """Who holds an unexpired lease, if anyone."""
    row = conn.execute(
        "SELECT owner FROM leases WHERE name = ? AND expires >= ?", (LEASE_NAME, now)
    ).fetchone()
    return None if row is None else str(row[0])


@contextlib.contextmanager
def read_snapshot(database: Path) -> Iterator[Connection]:
    """A read-only connection of its own, in one read transaction (for a helper process)."""
    with translated():
        conn = sqlite3.connect(
            f"{database.resolve().as_uri()}?mode=ro",
            uri=True,
            isolation_level=None,
            timeout=30,
            factory=Connection,
        )
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("BEGIN")
            yield conn
            conn.execute("COMMIT")
        finally:
            conn.close()


def change_numbers(conn: Connection, ids: Sequence[int]) -> dict[int, int]:
    """The current change number of each of these recipients that still exists."""
    rows = conn.execute(
        "SELECT id, usn FROM recipients WHERE id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(ids)),),
    )
    return {rid: usn for rid, usn in rows}


def tune_for_bulk(conn: Connection, bulk: bool = True) -> None:
    """Settings of this connection for a run (``bulk``) or back to normal afterwards.

    A Rebuild touches index pages all over in every batch: a bigger page cache, and fewer
    checkpoints (each copies those pages back into the database file) while it goes on.
    """
    conn.execute(f"PRAGMA cache_size = {-65536 if bulk else -2000}")  # KiB
    conn.execute(f"PRAGMA wal_autocheckpoint = {10000 if bulk else 1000}")  # pages


# -- high-water mark and the work to do ------------------------------------------------------


def high_water_mark(conn: Connection) -> int:
    return int(conn.execute("SELECT hwm FROM rus_state WHERE id = 1").fetchone()[0])


def set_high_water_mark(conn: Connection, usn: int) -> None:
    conn.execute("UPDATE rus_state SET hwm = ? WHERE id = 1", (usn,))


def has_work(conn: Connection) -> bool:
    """Whether a recipient changed since the high-water mark or a policy waits to be applied."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM recipients"
        "  WHERE usn > (SELECT hwm FROM rus_state WHERE id = 1))"
        " OR EXISTS (SELECT 1 FROM policies WHERE apply_pending = 1)"
    ).fetchone()
    return bool(row[0])


def candidate_ids(conn: Connection, since_usn: int | None, stamped_before: int | None) -> list[int]:
    """Ids in change-number order: all (``since_usn`` None), or those changed after ``since_usn``
    plus, when ``stamped_before`` is given, those never stamped or stamped before that usn."""
    if since_usn is None:
        rows = conn.execute("SELECT id FROM recipients ORDER BY usn")
    elif stamped_before is None:
        rows = conn.execute("SELECT id FROM recipients WHERE usn > ? ORDER BY usn", (since_usn,))
    else:
        rows = conn.execute(
            "SELECT id FROM recipients WHERE usn > ? OR stamped_usn IS NULL OR stamped_usn < ?"
            " ORDER BY usn",
            (since_usn, stamped_before),
        )
    return [row[0] for row in rows]


def changed_ids(conn: Connection, since_usn: int) -> list[int]:
    """Recipients whose change number is above ``since_usn`` (uses the usn index)."""
    return [r[0] for r in conn.execute("SELECT id FROM recipients WHERE usn > ?", (since_usn,))]


_STAMP_COLUMNS = (
    "id, alias, object_class, attributes, target, auto_update, usn, stamped_usn, created, modified"
)


def load_for_stamping(conn: Connection, ids: Sequence[int]) -> list[Recipient]:
    """The recipients with these ids, with their addresses but without group members.

    Returned in the order of ``ids``; ids that no longer exist are left out.
    """
    id_list = json.dumps(list(ids))
    addresses: dict[int, list[ProxyAddress]] = {}
    for rid, type_, address, primary in conn.execute(
        "SELECT recipient_id, type, address, is_primary FROM proxy_addresses"
        " WHERE recipient_id IN (SELECT value FROM json_each(?)) ORDER BY id",
        (id_list,),
    ):
        addresses.setdefault(rid, []).append(ProxyAddress(type_, address, bool(primary)))
    by_id: dict[int, Recipient] = {}
    for row in conn.execute(
        f"SELECT {_STAMP_COLUMNS} FROM recipients WHERE id IN (SELECT value FROM json_each(?))",
        (id_list,),
    ):
        rid = row[0]
        by_id[rid] = Recipient(
            alias=row[1],
            kind=row[2],
            attributes=json.loads(row[3]),
            target=row[4],
            auto_update=bool(row[5]),
            usn=row[6],
            stamped_usn=row[7],
            created=row[8],
            modified=row[9],
            addresses=tuple(addresses.get(rid, ())),
            id=rid,
        )
    return [by_id[rid] for rid in ids if rid in by_id]


def address_key(type_: str, address: str) -> str:
    """How the taken-address index names an address: type and address, compared ignoring case."""
    return f"{type_.upper()}:{address.lower()}"


def address_owners(conn: Connection, ids: Sequence[int] | None = None) -> dict[str, int]:
    """Proxy addresses (as ``address_key``) mapped to their recipient id: all, or these ids'."""
    if ids is None:
        rows = conn.execute("SELECT type, address, recipient_id FROM proxy_addresses")
    else:
        rows = conn.execute(
            "SELECT type, address, recipient_id FROM proxy_addresses"
            " WHERE recipient_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(ids)),),
        )
    return {f"{t.upper()}:{a.lower()}": rid for t, a, rid in rows}


def address_owner_id(conn: Connection, type_: str, address: str) -> int | None:
    """The id of the recipient holding this proxy address (case-insensitive), if any."""
    row = conn.execute(
        "SELECT recipient_id FROM proxy_addresses WHERE type = ? AND address = ?", (type_, address)
    ).fetchone()
    return None if row is None else int(row[0])


def _rows(items: Sequence[object]) -> str:
    """Rows handed to SQLite as one JSON array, so a whole set is one statement.

    One statement lets SQLite work without the GIL throughout, where ``executemany`` takes it
    back for every row: the RUS writes on one thread while it computes on another.
    """
    return json.dumps(items, separators=(",", ":"))


def _field(n: int) -> str:
    return f"json_extract(value, '$[{n}]')"


def write_stamps(
    conn: Connection,
    demote: Sequence[tuple[int, str]],
    promote: Sequence[tuple[int, str, str]],
    insert: Sequence[tuple[int, str, str, bool]],
    stamped_ids: Sequence[int],
    stamped_usn: int,
) -> None:
    """Write many recipients' new addresses at once; never deletes an address.

    ``demote``: (recipient, type) whose primary becomes secondary; ``promote``: (recipient, type,
    address) of an existing address that becomes primary; ``insert``: new addresses. Raises
    ``ConstraintError`` (when the transaction ends) if an address belongs to someone else.
    """
    # Demote first: the database allows one primary per recipient and type at any moment.
    if demote:
        conn.execute(
            "UPDATE proxy_addresses SET is_primary = 0 WHERE is_primary = 1 AND"
            f" (recipient_id, type) IN (SELECT {_field(0)}, {_field(1)} FROM json_each(?))",
            (_rows(demote),),
        )
    if promote:
        conn.execute(
            "UPDATE proxy_addresses SET is_primary = 1 WHERE (recipient_id, type, address) IN"
            f" (SELECT {_field(0)}, {_field(1)}, {_field(2)} FROM json_each(?))",
            (_rows(promote),),
        )
    if insert:
        conn.execute(
            "INSERT INTO proxy_addresses (recipient_id, type, address, is_primary)"
            f" SELECT {_field(0)}, {_field(1)}, {_field(2)}, {_field(3)} FROM json_each(?)"
            " ORDER BY key",
            (_rows(insert),),
        )
    if stamped_ids:
        conn.execute(
            "UPDATE recipients SET stamped_usn = ? WHERE id IN (SELECT value FROM json_each(?))",
            (stamped_usn, _rows(stamped_ids)),
        )


# -- runs --------------------------------------------------------------------------------------

_RUN_COLUMNS = (
    "id, kind, owner, started, finished, duration, outcome, done, total, examined, changed,"
    " errors, message"
)


def _run(row: sqlite3.Row | tuple[Any, ...]) -> RunRecord:
    return RunRecord(*row)


def insert_run(conn: Connection, kind: RunKind, owner: str, started: str) -> int:
    cursor = conn.execute(
        "INSERT INTO rus_runs (kind, owner, started) VALUES (?, ?, ?)", (kind, owner, started)
    )
    return int(cursor.lastrowid or 0)


def update_run(
    conn: Connection,
    run_id: int,
    *,
    done: int,
    total: int,
    examined: int,
    changed: int,
    errors: int,
) -> None:
    conn.execute(
        "UPDATE rus_runs SET done = ?, total = ?, examined = ?, changed = ?, errors = ?"
        " WHERE id = ?",
        (done, total, examined, changed, errors, run_id),
    )


def finish_run(
    conn: Connection,
    run_id: int,
    *,
    finished: str,
    duration: float,
    outcome: Outcome,
    message: str,
) -> None:
    conn.execute(
        "UPDATE rus_runs SET finished = ?, duration = ?, outcome = ?, message = ? WHERE id = ?",
        (finished, duration, outcome, message, run_id),
    )


def find_run(conn: Connection, run_id: int) -> RunRecord | None:
    row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM rus_runs WHERE id = ?", (run_id,)).fetchone()
    return None if row is None else _run(row)


def last_finished_run(conn: Connection) -> RunRecord | None:
    row = conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM rus_runs WHERE outcome <> 'running' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return None if row is None else _run(row)


def last_run_of(conn: Connection, owner: str) -> RunRecord | None:
    """The latest run (running or not) started by this lease owner."""
    row = conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM rus_runs WHERE owner = ? ORDER BY id DESC LIMIT 1", (owner,)
    ).fetchone()
    return None if row is None else _run(row)


def last_started(conn: Connection) -> str | None:
    """When the latest run (by any process) started, as stored."""
    row = conn.execute("SELECT started FROM rus_runs ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def prune_runs(conn: Connection, keep: int) -> None:
    """Forget all but the latest ``keep`` runs (decisions keep their run numbers)."""
    conn.execute(
        "DELETE FROM rus_runs WHERE id <= (SELECT id FROM rus_runs ORDER BY id DESC"
        " LIMIT 1 OFFSET ?)",
        (keep,),
    )


# -- decisions ------------------------------------------------------------------------------


def load_provenance(conn: Connection, ids: Sequence[int]) -> dict[int, str]:
    """The stored provenance JSON of these recipients, for those that have any."""
    rows = conn.execute(
        "SELECT recipient_id, addresses FROM rus_decisions"
        " WHERE recipient_id IN (SELECT value FROM json_each(?)) AND addresses <> ''",
        (json.dumps(list(ids)),),
    )
    return {rid: text for rid, text in rows}


def record_stamps(conn: Connection, rows: Sequence[tuple[int, int, str, str, str]]) -> None:
    """(recipient, run, policy, reason, provenance) of recipients stamped in a run."""
    if not rows:
        return
    conn.execute(
        "INSERT INTO rus_decisions"
        " (recipient_id, run_id, decision, policy, reason, stamp_run_id, addresses)"
        f" SELECT {_field(0)}, {_field(1)}, 'stamped', {_field(2)}, {_field(3)}, {_field(1)},"
        f" {_field(4)} FROM json_each(?) WHERE true"
        " ON CONFLICT (recipient_id) DO UPDATE SET run_id = excluded.run_id,"
        " decision = 'stamped', policy = excluded.policy, reason = excluded.reason,"
        " stamp_run_id = excluded.stamp_run_id, addresses = excluded.addresses",
        (_rows(rows),),
    )


def record_decisions(
    conn: Connection, rows: Sequence[tuple[int, int, DecisionKind, str, str]]
) -> None:
    """(recipient, run, decision, policy, reason) of recipients not stamped; keeps provenance."""
    if not rows:
        return
    conn.execute(
        "INSERT INTO rus_decisions (recipient_id, run_id, decision, policy, reason)"
        f" SELECT {_field(0)}, {_field(1)}, {_field(2)}, {_field(3)}, {_field(4)}"
        " FROM json_each(?) WHERE true"
        " ON CONFLICT (recipient_id) DO UPDATE SET run_id = excluded.run_id,"
        " decision = excluded.decision, policy = excluded.policy, reason = excluded.reason",
        (_rows(rows),),
    )


def find_decision(conn: Connection, recipient_id: int) -> DecisionRecord | None:
    row = conn.execute(
        "SELECT run_id, decision, policy, reason, stamp_run_id, addresses FROM rus_decisions"
        " WHERE recipient_id = ?",
        (recipient_id,),
    ).fetchone()
    if row is None:
        return None
    return DecisionRecord(row[0], row[1], row[2], row[3], row[4], parse_provenance(row[5]))


def error_aliases(conn: Connection, run_id: int, limit: int) -> list[tuple[str, str]]:
    """(alias, message) of recipients a run could not stamp, at most ``limit`` of them."""
    rows = conn.execute(
        "SELECT r.alias, d.reason FROM rus_decisions d JOIN recipients r ON r.id = d.recipient_id"
        " WHERE d.run_id = ? AND d.decision = 'error' ORDER BY r.alias LIMIT ?",
        (run_id, limit),
    )
    return [(str(alias), str(reason)) for alias, reason in rows]
