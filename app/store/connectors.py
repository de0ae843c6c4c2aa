"""SQL for SMTP connectors, their address spaces and their smart hosts."""

from __future__ import annotations

import logging
import sqlite3
from typing import cast

from app.model import AddressSpace, ConnectorTls, SmartHost, SmtpConnector
from app.store.database import Connection
from app.store.errors import translated

log = logging.getLogger(__name__)


def _spaces(conn: Connection) -> dict[int, list[AddressSpace]]:
    by_connector: dict[int, list[AddressSpace]] = {}
    rows = conn.execute(
        "SELECT connector_id, type, pattern, cost FROM connector_address_spaces"
        " ORDER BY connector_id, position"
    )
    for row in rows:
        by_connector.setdefault(row["connector_id"], []).append(
            AddressSpace(pattern=row["pattern"], cost=row["cost"], type=row["type"])
        )
    return by_connector


def _hosts(conn: Connection) -> dict[int, list[SmartHost]]:
    by_connector: dict[int, list[SmartHost]] = {}
    rows = conn.execute(
        "SELECT connector_id, host, port FROM connector_smart_hosts ORDER BY connector_id, position"
    )
    for row in rows:
        by_connector.setdefault(row["connector_id"], []).append(
            SmartHost(host=row["host"], port=row["port"])
        )
    return by_connector


def _connector(
    row: sqlite3.Row, spaces: list[AddressSpace], hosts: list[SmartHost]
) -> SmtpConnector:
    return SmtpConnector(
        name=row["name"],
        address_spaces=tuple(spaces),
        relay=bool(row["relay"]),
        use_dns=bool(row["use_dns"]),
        smart_hosts=tuple(hosts),
        tls=cast(ConnectorTls, row["tls"]),
        auth_user=row["auth_user"],
        password=row["password"],
        note=row["note"],
        created=row["created"],
        modified=row["modified"],
        id=row["id"],
    )


def load_connectors(conn: Connection) -> list[SmtpConnector]:
    """Every connector by name (case-insensitively), with its address spaces and smart hosts."""
    rows = conn.execute("SELECT * FROM connectors ORDER BY name").fetchall()
    spaces = _spaces(conn)
    hosts = _hosts(conn)
    return [_connector(row, spaces.get(row["id"], []), hosts.get(row["id"], [])) for row in rows]


def find_connector(conn: Connection, name: str) -> SmtpConnector | None:
    """The connector called ``name`` (compared case-insensitively), or None."""
    row = conn.execute("SELECT id FROM connectors WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    return next(c for c in load_connectors(conn) if c.id == row["id"])


def insert_connector(conn: Connection, connector: SmtpConnector) -> int:
    """Insert a connector with its address spaces and smart hosts; ``ConstraintError`` if the
    name is taken."""
    with translated():
        cursor = conn.execute(
            "INSERT INTO connectors (name, relay, use_dns, tls, auth_user, password, note,"
            " created, modified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                connector.name,
                int(connector.relay),
                int(connector.use_dns),
                connector.tls,
                connector.auth_user,
                connector.password,
                connector.note,
                connector.created,
                connector.modified,
            ),
        )
        connector_id = int(cursor.lastrowid or 0)
        _write_children(conn, connector_id, connector)
    return connector_id


def update_connector(conn: Connection, connector: SmtpConnector) -> None:
    """Write the connector's fields and replace its address spaces and smart hosts;
    ``ConstraintError`` if another connector has the name."""
    with translated():
        conn.execute(
            "UPDATE connectors SET name = ?, relay = ?, use_dns = ?, tls = ?, auth_user = ?,"
            " password = ?, note = ?, modified = ? WHERE id = ?",
            (
                connector.name,
                int(connector.relay),
                int(connector.use_dns),
                connector.tls,
                connector.auth_user,
                connector.password,
                connector.note,
                connector.modified,
                connector.id,
            ),
        )
        conn.execute("DELETE FROM connector_address_spaces WHERE connector_id = ?", (connector.id,))
        conn.execute("DELETE FROM connector_smart_hosts WHERE connector_id = ?", (connector.id,))
        _write_children(conn, int(connector.id or 0), connector)


def _write_children(conn: Connection, connector_id: int, connector: SmtpConnector) -> None:
    conn.executemany(
        "INSERT INTO connector_address_spaces (connector_id, position, type, pattern, cost)"
        " VALUES (?, ?, ?, ?, ?)",
        [
            (connector_id, position, space.type, space.pattern, space.cost)
            for position, space in enumerate(connector.address_spaces)
        ],
    )
    conn.executemany(
        "INSERT INTO connector_smart_hosts (connector_id, position, host, port)"
        " VALUES (?, ?, ?, ?)",
        [
            (connector_id, position, host.host, host.port)
            for position, host in enumerate(connector.smart_hosts)
        ],
    )


def delete_connector(conn: Connection, connector_id: int) -> None:
    """Delete a connector; its address spaces and smart hosts go with it."""
    conn.execute("DELETE FROM connectors WHERE id = ?", (connector_id,))
