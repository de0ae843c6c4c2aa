"""The stored SMTP connectors: list, read, create, save, delete (refused while mail waits)."""

from __future__ import annotations

import dataclasses
import logging

from app.connectors.checks import check_connector
from app.errors import ConflictError, NotFoundError
from app.model import SmtpConnector, now
from app.store import Connection, ConstraintError, Store
from app.store import connectors as rows

log = logging.getLogger(__name__)


def list_connectors(store: Store) -> list[SmtpConnector]:
    """Every connector, by name."""
    with store.read() as conn:
        return rows.load_connectors(conn)


def get_connector(store: Store, name: str) -> SmtpConnector:
    """The connector called ``name`` (any case); NotFoundError saying where to look."""
    with store.read() as conn:
        return _get(conn, name)


def _get(conn: Connection, name: str) -> SmtpConnector:
    connector = rows.find_connector(conn, name.strip())
    if connector is None:
        raise NotFoundError(
            f"There is no SMTP connector named '{name}'. See the names with: "
            "postroom connector list"
        )
    return connector


def _taken(name: str) -> ConflictError:
    return ConflictError(f"An SMTP connector named '{name}' already exists. Choose another name.")


def create_connector(store: Store, connector: SmtpConnector) -> SmtpConnector:
    """Check and store a new connector; its created and modified times are now."""
    checked = check_connector(connector)
    stamp = now()
    new = dataclasses.replace(checked, created=stamp, modified=stamp, id=None)
    with store.write() as conn:
        try:
            connector_id = rows.insert_connector(conn, new)
        except ConstraintError as error:
            raise _taken(new.name) from error
    log.info("created SMTP connector %s", new.name)
    return dataclasses.replace(new, id=connector_id)


def save_connector(store: Store, connector: SmtpConnector) -> SmtpConnector:
    """Store an edited connector: a changed copy of one read from the store (``id`` says which).

    Nothing is written when nothing changed; ``created`` is always the stored one.
    """
    checked = check_connector(connector)
    with store.write() as conn:
        old = next((c for c in rows.load_connectors(conn) if c.id == connector.id), None)
        if old is None:
            raise NotFoundError(
                f"The SMTP connector '{connector.name}' no longer exists; another program may "
                "have deleted it. Refresh the list."
            )
        new = dataclasses.replace(checked, created=old.created, modified=old.modified)
        if new == old:
            return old
        new = dataclasses.replace(new, modified=now())
        try:
            rows.update_connector(conn, new)
        except ConstraintError as error:
            raise _taken(new.name) from error
    log.info("saved SMTP connector %s", new.name)
    return new


def delete_connector(
    store: Store, name: str, *, queued_messages: int, force: bool = False
) -> SmtpConnector:
    """Delete the connector called ``name``; the deleted one is returned.

    ``queued_messages`` is how many messages the outbound queue holds for this connector (the
    caller asks the queue); while there are any the deletion is refused unless ``force``.
    """
    with store.write() as conn:
        connector = _get(conn, name)
        if queued_messages > 0 and not force:
            many = "message is" if queued_messages == 1 else "messages are"
            raise ConflictError(
                f"{queued_messages} {many} queued for the SMTP connector '{connector.name}'. "
                "Let the queue empty or delete its messages first (postroom queue), or delete "
                "the connector anyway with --force."
            )
        rows.delete_connector(conn, int(connector.id or 0))
    log.info("deleted SMTP connector %s (%d queued messages)", connector.name, queued_messages)
    return connector
