"""SQL for the directory: recipients, their proxy addresses and group memberships."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable

from app.model import ProxyAddress, Recipient
from app.store.database import Connection
from app.store.errors import translated

_COLUMNS = (
    "id, alias, object_class, attributes, target, password_hash IS NOT NULL AS has_password,"
    " auto_update, imap_enabled, pop3_enabled, quota_warn, quota_prohibit, usn, stamped_usn,"
    " created, modified"
)


def _recipient(row: sqlite3.Row, addresses: list[ProxyAddress], members: list[str]) -> Recipient:
    return Recipient(
        alias=row["alias"],
        kind=row["object_class"],
        attributes=json.loads(row["attributes"]),
        addresses=tuple(addresses),
        auto_update=bool(row["auto_update"]),
        target=row["target"],
        members=tuple(members),
        has_password=bool(row["has_password"]),
        imap_enabled=bool(row["imap_enabled"]),
        pop3_enabled=bool(row["pop3_enabled"]),
        quota_warn=row["quota_warn"],
        quota_prohibit=row["quota_prohibit"],
        id=row["id"],
        usn=row["usn"],
        stamped_usn=row["stamped_usn"],
        created=row["created"],
        modified=row["modified"],
    )


def _addresses_of(
    conn: Connection, where: str = "", args: tuple[object, ...] = ()
) -> dict[int, list[ProxyAddress]]:
    by_recipient: dict[int, list[ProxyAddress]] = defaultdict(list)
    rows = conn.execute(
        f"SELECT recipient_id, type, address, is_primary FROM proxy_addresses {where} ORDER BY id",
        args,
    )
    for recipient_id, type_, address, primary in rows:
        by_recipient[recipient_id].append(ProxyAddress(type_, address, bool(primary)))
    return by_recipient


def _members_of(
    conn: Connection, where: str = "", args: tuple[object, ...] = ()
) -> dict[int, list[str]]:
    by_group: dict[int, list[str]] = defaultdict(list)
    rows = conn.execute(
        "SELECT m.group_id, r.alias FROM group_members m JOIN recipients r ON r.id = m.member_id"
        f" {where} ORDER BY r.alias",
        args,
    )
    for group_id, alias in rows:
        by_group[group_id].append(alias)
    return by_group


def load_recipients(conn: Connection, since_usn: int | None = None) -> list[Recipient]:
    """Recipients in change-number order (oldest first); only those changed after ``since_usn``."""
    if since_usn is None:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM recipients ORDER BY usn").fetchall()
        addresses = _addresses_of(conn)
        members = _members_of(conn)
    else:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM recipients WHERE usn > ? ORDER BY usn", (since_usn,)
        ).fetchall()
        ids = tuple(row["id"] for row in rows)
        addresses = defaultdict(list)
        members = defaultdict(list)
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            addresses.update(_addresses_of(conn, f"WHERE recipient_id IN ({marks})", chunk))
            members.update(_members_of(conn, f"WHERE m.group_id IN ({marks})", chunk))
    return [_recipient(row, addresses[row["id"]], members[row["id"]]) for row in rows]


def _chunks(items: tuple[int, ...], size: int) -> Iterable[tuple[int, ...]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def find_recipient(conn: Connection, alias: str) -> Recipient | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM recipients WHERE alias = ?", (alias,)).fetchone()
    if row is None:
        return None
    rid = row["id"]
    return _recipient(
        row,
        _addresses_of(conn, "WHERE recipient_id = ?", (rid,))[rid],
        _members_of(conn, "WHERE m.group_id = ?", (rid,))[rid],
    )


def recipient_count(conn: Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM recipients").fetchone()[0])


def insert_recipient(
    conn: Connection, recipient: Recipient, usn: int, password_hash: str | None
) -> int:
    """Insert a recipient; ``ConstraintError`` if the alias is taken."""
    with translated():
        cursor = conn.execute(
            "INSERT INTO recipients (alias, object_class, attributes, target, password_hash,"
            " auto_update, imap_enabled, pop3_enabled, quota_warn, quota_prohibit, usn,"
            " stamped_usn, created, modified)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                recipient.alias,
                recipient.kind,
                json.dumps(dict(recipient.attributes), sort_keys=True),
                recipient.target,
                password_hash,
                int(recipient.auto_update),
                int(recipient.imap_enabled),
                int(recipient.pop3_enabled),
                recipient.quota_warn,
                recipient.quota_prohibit,
                usn,
                recipient.stamped_usn,
                recipient.created,
                recipient.modified,
            ),
        )
    return int(cursor.lastrowid or 0)


def update_recipient(conn: Connection, recipient: Recipient, usn: int) -> None:
    """Write the recipient's own fields, its protocols and mailbox limits among them (not its
    addresses, members or password).

    ``ConstraintError`` if another recipient has the alias.
    """
    with translated():
        conn.execute(
            "UPDATE recipients SET alias = ?, attributes = ?, target = ?, auto_update = ?,"
            " imap_enabled = ?, pop3_enabled = ?, quota_warn = ?, quota_prohibit = ?,"
            " usn = ?, modified = ? WHERE id = ?",
            (
                recipient.alias,
                json.dumps(dict(recipient.attributes), sort_keys=True),
                recipient.target,
                int(recipient.auto_update),
                int(recipient.imap_enabled),
                int(recipient.pop3_enabled),
                recipient.quota_warn,
                recipient.quota_prohibit,
                usn,
                recipient.modified,
                recipient.id,
            ),
        )


def set_password_hash(conn: Connection, recipient_id: int, password_hash: str | None) -> None:
    conn.execute(
        "UPDATE recipients SET password_hash = ? WHERE id = ?", (password_hash, recipient_id)
    )


def replace_password_hash(conn: Connection, alias: str, old: str, new: str) -> bool:
    """Swap the user's hash ``old`` for ``new``; False if it changed meanwhile (then kept)."""
    cursor = conn.execute(
        "UPDATE recipients SET password_hash = ? WHERE alias = ? AND password_hash = ?",
        (new, alias, old),
    )
    return cursor.rowcount == 1


def dovecot_user(conn: Connection, login: str) -> dict[str, object] | None:
    """The ``dovecot_users`` row for a login name (case-insensitive), as Dovecot reads it."""
    row = conn.execute("SELECT * FROM dovecot_users WHERE login = ?", (login,)).fetchone()
    return None if row is None else dict(row)


def password_hash(conn: Connection, alias: str) -> str | None:
    row = conn.execute("SELECT password_hash FROM recipients WHERE alias = ?", (alias,)).fetchone()
    return None if row is None else row[0]


def delete_recipient(conn: Connection, recipient_id: int) -> None:
    conn.execute("DELETE FROM recipients WHERE id = ?", (recipient_id,))


def replace_addresses(
    conn: Connection, recipient_id: int, addresses: Iterable[ProxyAddress]
) -> None:
    """Make ``addresses`` the recipient's proxy addresses (``ConstraintError`` on a duplicate)."""
    conn.execute("DELETE FROM proxy_addresses WHERE recipient_id = ?", (recipient_id,))
    with translated():
        conn.executemany(
            "INSERT INTO proxy_addresses (recipient_id, type, address, is_primary)"
            " VALUES (?, ?, ?, ?)",
            [(recipient_id, a.type, a.address, int(a.primary)) for a in addresses],
        )


def set_stamped(conn: Connection, recipient_id: int, stamped_usn: int) -> None:
    conn.execute("UPDATE recipients SET stamped_usn = ? WHERE id = ?", (stamped_usn, recipient_id))


def address_owner(conn: Connection, type_: str, address: str) -> str | None:
    """The alias of the recipient that has this proxy address (case-insensitive), if any."""
    row = conn.execute(
        "SELECT r.alias FROM proxy_addresses p JOIN recipients r ON r.id = p.recipient_id"
        " WHERE p.type = ? AND p.address = ?",
        (type_, address),
    ).fetchone()
    return None if row is None else str(row[0])


def all_addresses(conn: Connection, type_: str) -> dict[str, str]:
    """Every proxy address of one type, lowercased, mapped to its owner's alias."""
    rows = conn.execute(
        "SELECT p.address, r.alias FROM proxy_addresses p JOIN recipients r"
        " ON r.id = p.recipient_id WHERE p.type = ?",
        (type_,),
    )
    return {address.lower(): alias for address, alias in rows}


def set_members(conn: Connection, group_id: int, member_ids: Iterable[int]) -> None:
    conn.execute("DELETE FROM group_members WHERE group_id = ?", (group_id,))
    conn.executemany(
        "INSERT INTO group_members (group_id, member_id) VALUES (?, ?)",
        [(group_id, member_id) for member_id in member_ids],
    )


def member_of(conn: Connection, recipient_id: int) -> list[str]:
    """Aliases of the groups the recipient is a direct member of."""
    rows = conn.execute(
        "SELECT r.alias FROM group_members m JOIN recipients r ON r.id = m.group_id"
        " WHERE m.member_id = ? ORDER BY r.alias",
        (recipient_id,),
    )
    return [row[0] for row in rows]


# -- the console's All Recipients list (sorted and filtered here, fetched a page at a time) -----

_PRIMARY_SMTP_JOIN = (
    " LEFT JOIN proxy_addresses p ON p.recipient_id = r.id AND p.type = 'SMTP' AND p.is_primary = 1"
)
_SHOWN_NAME = "coalesce(nullif(r.display_name, ''), r.alias)"
LIST_ORDERS: dict[str, str] = {
    "display": f"{_SHOWN_NAME} COLLATE NOCASE, r.alias",
    "alias": "r.alias",
    "type": f"r.object_class, {_SHOWN_NAME} COLLATE NOCASE, r.alias",
    "address": f"p.address COLLATE NOCASE, {_SHOWN_NAME} COLLATE NOCASE, r.alias",
}
"""The orders ``recipient_index`` can sort by, as SQL (a fixed set: never built from input)."""


def like_pattern(text: str) -> str:
    """A LIKE pattern (with ``ESCAPE '\\'``) for values that contain ``text``."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def recipient_index(conn: Connection, order: str, text: str = "") -> list[tuple[int, str]]:
    """``(id, shown name)`` of the recipients whose display name, alias or one of whose
    addresses contains ``text`` (ASCII letters case-insensitively), sorted by ``order`` (a key of
    ``LIST_ORDERS``). The shown name is the display name, or the alias when there is none."""
    sql = f"SELECT r.id, {_SHOWN_NAME} FROM recipients r"
    if order == "address":
        sql += _PRIMARY_SMTP_JOIN
    args: tuple[str, ...] = ()
    if text:
        sql += (
            " WHERE r.display_name LIKE ?1 ESCAPE '\\' OR r.alias LIKE ?1 ESCAPE '\\'"
            " OR EXISTS (SELECT 1 FROM proxy_addresses x WHERE x.recipient_id = r.id"
            " AND x.address LIKE ?1 ESCAPE '\\')"
        )
        args = (like_pattern(text),)
    sql += f" ORDER BY {LIST_ORDERS[order]}"
    return [(int(row[0]), str(row[1])) for row in conn.execute(sql, args)]


def recipients_by_id(conn: Connection, ids: Iterable[int]) -> list[Recipient]:
    """The recipients with these ids that still exist, with addresses and members, by id."""
    wanted = tuple(ids)
    found: list[Recipient] = []
    for chunk in _chunks(wanted, 500):
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM recipients WHERE id IN ({marks}) ORDER BY id", chunk
        ).fetchall()
        addresses = _addresses_of(conn, f"WHERE recipient_id IN ({marks})", chunk)
        members = _members_of(conn, f"WHERE m.group_id IN ({marks})", chunk)
        found.extend(_recipient(row, addresses[row["id"]], members[row["id"]]) for row in rows)
    return found
