"""SQLite connections, transactions, migrations and the change counter."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from app import paths as app_paths
from app.errors import PostroomError
from app.store.errors import DatabaseError, translate, translated
from app.store.schema import MIGRATIONS

log = logging.getLogger(__name__)

SCHEMA_VERSION = len(MIGRATIONS)
BUSY_TIMEOUT_MS = 30_000


class Connection(sqlite3.Connection):
    """A connection to a Postroom database, as the store's row functions take it.

    Only ``app.store`` runs SQL on it; elsewhere it is passed through, from a transaction of
    ``Store`` to the store's functions. A subclass rather than a wrapper, so that every call
    stays SQLite's own (the RUS and the SMTP index make many of them).
    """


class Store:
    """One data directory's database.

    Safe to share between threads: each thread gets its own SQLite connection. Several processes
    may open the same data directory; every change is one ``BEGIN IMMEDIATE`` transaction and
    bumps the change counter, which the others poll to notice it.
    """

    def __init__(self, data_paths: app_paths.DataPaths) -> None:
        self.paths = data_paths
        self._local = threading.local()
        self._connections: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(cls, data_dir: Path) -> Store:
        """Open (creating and migrating as needed) the store in ``data_dir``."""
        store = cls(app_paths.prepare(data_dir))
        store._migrate()
        return store

    # -- connections -------------------------------------------------------------------------

    def connection(self) -> Connection:
        """This thread's connection (autocommit mode: transactions are explicit)."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise RuntimeError("the store is closed")
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _connect(self) -> Connection:
        db = self.paths.database
        if not db.exists():
            # Create the file ourselves so it is 0600 from the first byte.
            fd = os.open(db, os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
        try:
            conn = sqlite3.connect(
                db,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
                factory=Connection,
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except sqlite3.Error as error:
            raise DatabaseError(
                f"Cannot open the database {db}: {error}. "
                "Check that the file is a Postroom database and that you may write it.",
                str(error),
            ) from error
        for suffix in ("-wal", "-shm"):
            side = db.with_name(db.name + suffix)
            with contextlib.suppress(OSError):
                side.chmod(0o600)
        return conn

    def close(self) -> None:
        """Close every connection this store opened (call once no thread uses it any more)."""
        with self._lock:
            self._closed = True
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    # -- transactions ------------------------------------------------------------------------

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot for everything read inside it.

        A sqlite3 error inside it leaves as ``DatabaseError`` (see ``app.store.errors``).
        """
        conn = self.connection()
        if conn.in_transaction:
            with translated():
                yield conn
            return
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as error:
            raise translate(error) from error

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: all or nothing, and the change counter moves if anything changed.

        Nested use joins the outer transaction. A sqlite3 error inside it leaves as
        ``DatabaseError``, a broken constraint as ``ConstraintError``.
        """
        conn = self.connection()
        if conn.in_transaction:
            with translated():
                yield conn
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise translate(error) from error
        before = conn.total_changes
        try:
            yield conn
            if conn.total_changes != before:
                conn.execute("UPDATE counters SET value = value + 1 WHERE name = 'change'")
            conn.execute("COMMIT")
        except BaseException as error:
            with translated():
                conn.execute("ROLLBACK")
            if isinstance(error, sqlite3.Error):
                raise translate(error) from error
            raise

    def change_counter(self) -> int:
        """A number that grows with every committed change, from any process."""
        with translated():
            row = (
                self.connection()
                .execute("SELECT value FROM counters WHERE name = 'change'")
                .fetchone()
            )
        return int(row[0])

    # -- schema ------------------------------------------------------------------------------

    def schema_version(self) -> int:
        with translated():
            return int(self.connection().execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            self.close()
            raise translate(error) from error
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise PostroomError(
                    f"The database {self.paths.database} was written by a newer Postroom "
                    f"(schema {version}; this version knows up to {SCHEMA_VERSION}). "
                    "Upgrade Postroom, or use another data directory with --data-dir."
                )
            for number in range(version, SCHEMA_VERSION):
                log.info("migrating %s to schema %d", self.paths.database, number + 1)
                for statement in _statements(MIGRATIONS[number]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number + 1}")
            conn.execute("COMMIT")
        except BaseException as error:
            conn.execute("ROLLBACK")
            self.close()
            if isinstance(error, sqlite3.Error):
                raise translate(error) from error
            raise


def _statements(script: str) -> Iterator[str]:
    """Split a migration script into statements (``executescript`` would commit our transaction)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()


def next_usn(conn: Connection) -> int:
    """Take the next update sequence number (call inside a write transaction)."""
    row = conn.execute(
        "UPDATE counters SET value = value + 1 WHERE name = 'usn' RETURNING value"
    ).fetchone()
    return int(row[0])


def current_usn(conn: Connection) -> int:
    """The highest update sequence number handed out so far."""
    return int(conn.execute("SELECT value FROM counters WHERE name = 'usn'").fetchone()[0])
