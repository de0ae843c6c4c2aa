"""SQL for recipient policies and their address rules."""

from __future__ import annotations

import sqlite3

from app.model import AddressRule, Organization, RecipientPolicy
from app.store.database import Connection
from app.store.errors import translated


def load_organization(conn: Connection) -> Organization | None:
    row = conn.execute("SELECT name, created FROM organization WHERE id = 1").fetchone()
    return Organization(row["name"], row["created"]) if row else None


def insert_organization(conn: Connection, name: str, created: str) -> None:
    conn.execute("INSERT INTO organization (id, name, created) VALUES (1, ?, ?)", (name, created))


def _rules(conn: Connection, policy_ids: list[int]) -> dict[int, list[AddressRule]]:
    by_policy: dict[int, list[AddressRule]] = {pid: [] for pid in policy_ids}
    rows = conn.execute(
        "SELECT id, policy_id, type, address, enabled, is_primary, responsible"
        " FROM address_rules ORDER BY policy_id, position"
    )
    for row in rows:
        if row["policy_id"] in by_policy:
            by_policy[row["policy_id"]].append(
                AddressRule(
                    type=row["type"],
                    address=row["address"],
                    enabled=bool(row["enabled"]),
                    primary=bool(row["is_primary"]),
                    responsible=bool(row["responsible"]),
                    id=row["id"],
                )
            )
    return by_policy


def _policy(row: sqlite3.Row, rules: list[AddressRule]) -> RecipientPolicy:
    return RecipientPolicy(
        name=row["name"],
        filter=row["filter"],
        priority=row["priority"],
        is_default=bool(row["is_default"]),
        rules=tuple(rules),
        note=row["note"],
        apply_pending=bool(row["apply_pending"]),
        applied_usn=row["applied_usn"],
        created=row["created"],
        modified=row["modified"],
        id=row["id"],
    )


_ORDER = "ORDER BY is_default, priority"


def load_policies(conn: Connection) -> list[RecipientPolicy]:
    """Every policy in priority order, the Default Policy last."""
    rows = conn.execute(f"SELECT * FROM policies {_ORDER}").fetchall()
    rules = _rules(conn, [row["id"] for row in rows])
    return [_policy(row, rules[row["id"]]) for row in rows]


def find_policy(conn: Connection, name: str) -> RecipientPolicy | None:
    row = conn.execute("SELECT * FROM policies WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    return _policy(row, _rules(conn, [row["id"]])[row["id"]])


def policy_count(conn: Connection) -> int:
    """How many custom policies there are (the Default Policy is not counted)."""
    return int(conn.execute("SELECT count(*) FROM policies WHERE is_default = 0").fetchone()[0])


def insert_policy(conn: Connection, policy: RecipientPolicy) -> int:
    """Insert a policy with its rules; ``ConstraintError`` if the name is taken."""
    with translated():
        cursor = conn.execute(
            "INSERT INTO policies (name, is_default, priority, filter, note, created, modified,"
            " apply_pending, applied_usn) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                policy.name,
                int(policy.is_default),
                policy.priority,
                policy.filter,
                policy.note,
                policy.created,
                policy.modified,
                int(policy.apply_pending),
                policy.applied_usn,
            ),
        )
    policy_id = int(cursor.lastrowid or 0)
    _write_rules(conn, policy_id, policy.rules)
    return policy_id


def update_policy(conn: Connection, policy: RecipientPolicy) -> None:
    """Write the policy's fields and replace its rules (not its priority).

    ``ConstraintError`` if another policy has the name.
    """
    with translated():
        conn.execute(
            "UPDATE policies SET name = ?, filter = ?, note = ?, modified = ?, apply_pending = ?,"
            " applied_usn = ? WHERE id = ?",
            (
                policy.name,
                policy.filter,
                policy.note,
                policy.modified,
                int(policy.apply_pending),
                policy.applied_usn,
                policy.id,
            ),
        )
    conn.execute("DELETE FROM address_rules WHERE policy_id = ?", (policy.id,))
    _write_rules(conn, int(policy.id or 0), policy.rules)


def _write_rules(conn: Connection, policy_id: int, rules: tuple[AddressRule, ...]) -> None:
    conn.executemany(
        "INSERT INTO address_rules (policy_id, position, type, address, enabled, is_primary,"
        " responsible) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                policy_id,
                position,
                rule.type,
                rule.address,
                int(rule.enabled),
                int(rule.primary),
                int(rule.responsible),
            )
            for position, rule in enumerate(rules)
        ],
    )


def delete_policy(conn: Connection, policy_id: int) -> None:
    conn.execute("DELETE FROM policies WHERE id = ?", (policy_id,))


def set_priorities(conn: Connection, ordered_ids: list[int]) -> None:
    """Number the custom policies 1..N in the given order."""
    # Two passes: priorities are UNIQUE, so move them out of the way first.
    conn.execute("UPDATE policies SET priority = -priority WHERE is_default = 0")
    conn.executemany(
        "UPDATE policies SET priority = ? WHERE id = ?",
        [(number, policy_id) for number, policy_id in enumerate(ordered_ids, start=1)],
    )


def clear_apply_pending(conn: Connection, policy_id: int, applied_usn: int) -> None:
    """Mark an applied policy done, unless it was applied again since ``applied_usn``."""
    conn.execute(
        "UPDATE policies SET apply_pending = 0 WHERE id = ? AND applied_usn = ?",
        (policy_id, applied_usn),
    )
