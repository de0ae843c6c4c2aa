"""Collisions: which proxy addresses are taken and by whom, and the first free suffix for a name."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from app.directory import addressing
from app.model import SMTP
from app.store import Connection
from app.store import rus as rows
from app.store.database import current_usn
from app.store.rus import address_key

log = logging.getLogger(__name__)


class TakenAddresses:
    """Which proxy addresses are in use and by whom, for resolving collisions.

    Big runs preload every address (``owners``); small runs ask the database. Additions by
    other programs during a run are picked up per batch from their change numbers (every address
    edit takes one), so the database's uniqueness constraint is never what catches a collision.
    An address that seems to belong to a recipient changed during the run is confirmed in the
    database (it may have given it up); one freed by a recipient deleted during the run still
    counts as taken until the next run, which at worst gives a suffix where none was needed.
    """

    def __init__(self, owners: dict[str, int] | None, seen_usn: int) -> None:
        self._owners = owners
        self.sql_lock = threading.Lock()  # the batch's writer thread shares the connection
        self._pending: dict[str, int] = {}  # assignments of this batch, when not preloaded
        self._undo: list[tuple[str, int | None]] = []  # to take them back, when preloaded
        self._seen_usn = seen_usn
        self._changed: set[int] = set()
        # Plain address key → h: every suffix 2 … h-1 of it is known to be someone's. Many people
        # share a name, so without this the n-th John Smith would try n suffixes.
        self._hints: dict[str, int] = {}

    @property
    def preloaded(self) -> bool:
        return self._owners is not None

    def refresh(self, conn: Connection) -> None:
        """Take in what other programs changed; call at the start of each batch transaction."""
        if self._owners is not None:
            changed = rows.changed_ids(conn, self._seen_usn)
            if changed:
                self._changed.update(changed)
                self._owners.update(rows.address_owners(conn, changed))
        self._seen_usn = current_usn(conn)

    def reload(self, conn: Connection) -> None:
        """Forget what is known and read every address again."""
        self._pending.clear()
        self._undo.clear()
        self._changed.clear()
        self._hints.clear()
        if self._owners is not None:
            self._owners = rows.address_owners(conn)
        self._seen_usn = current_usn(conn)

    def is_taken(self, conn: Connection, type_: str, address: str, by: int) -> bool:
        """Whether the address belongs to a recipient other than ``by`` (ignoring case)."""
        key = address_key(type_, address)
        owner = self._pending.get(key)
        if owner is not None:
            return owner != by
        if self._owners is not None:
            owner = self._owners.get(key)
            if owner is None or owner == by:
                return False
            if owner not in self._changed:
                return True
        with self.sql_lock:
            owner = rows.address_owner_id(conn, type_, address)
        if self._owners is not None:
            if owner is None:
                self._owners.pop(key, None)
                self._hints.clear()  # a suffix may have become free
            else:
                self._owners[key] = owner
        return owner is not None and owner != by

    def first_free(
        self, conn: Connection, plain: str, by: int, own: Callable[[], Iterable[str]]
    ) -> tuple[str, int]:
        """``addressing.first_free`` for recipient ``by``: the plain SMTP address if no one else
        has it, else the lowest suffix 2, 3, … free for ``by``.

        ``own()``: keys of the addresses ``by`` has or was just given, which are free for it.
        """
        owners = self._owners
        if owners is None:

            def taken(address: str) -> bool:
                return self.is_taken(conn, SMTP, address, by)

            return addressing.first_free(plain, taken)
        # Preloaded: plain dict lookups, the database only for owners changed during the run.
        changed = self._changed
        plain_key = "SMTP:" + plain.lower()
        owner = owners.get(plain_key)
        if owner is None or owner == by:
            return plain, 0
        if owner in changed and not self.is_taken(conn, SMTP, plain, by):
            return plain, 0
        start = self._hints.get(plain_key, 2)
        if start > 2:
            # Below the hint every suffix is someone's: only ``by``'s own are free for it.
            domain = "@" + plain.rpartition("@")[2].lower()
            mine = [
                n
                for key in own()
                if key.endswith(domain) and (n := _suffix_of(plain, key)) is not None and n < start
            ]
            if mine:
                return addressing.with_suffix(plain, min(mine)), min(mine)
        for n in range(start, addressing.MAX_SUFFIX + 1):
            candidate = addressing.with_suffix(plain, n)
            owner = owners.get("SMTP:" + candidate.lower())
            if (
                owner is None
                or owner == by
                or (owner in changed and not self.is_taken(conn, SMTP, candidate, by))
            ):
                self._hints[plain_key] = n
                return candidate, n
        return addressing.first_free(plain, lambda a: self.is_taken(conn, SMTP, a, by))

    def assign(self, key: str, owner: int, plain: str = "", suffix: int = 0) -> None:
        """``key`` is now ``owner``'s (written when the batch commits)."""
        if self._owners is None:
            self._pending[key] = owner
        else:
            self._undo.append((key, self._owners.get(key)))
            self._owners[key] = owner
        if suffix:
            plain_key = address_key(SMTP, plain)
            if self._hints.get(plain_key) == suffix:
                self._hints[plain_key] = suffix + 1

    def commit(self) -> None:
        """The batch was written: its assignments are now facts."""
        self._pending.clear()
        self._undo.clear()

    def rollback(self) -> None:
        """The batch was not written: forget its assignments."""
        self._pending.clear()
        if self._owners is not None:
            for key, previous in reversed(self._undo):
                if previous is None:
                    self._owners.pop(key, None)
                else:
                    self._owners[key] = previous
        self._undo.clear()
        self._hints.clear()


def _suffix_of(plain: str, key: str) -> int | None:
    """n if the address keyed ``key`` is ``with_suffix(plain, n)`` for some n >= 2."""
    address = key.partition(":")[2]
    plain_local, _, domain = plain.lower().rpartition("@")
    # A suffix replaces at most the last 6 characters of a full-length local part.
    if not address.endswith("@" + domain) or not address.startswith(plain_local[:58]):
        return None
    local = address.rpartition("@")[0]
    digits = len(local) - len(local.rstrip("0123456789"))
    for width in range(1, digits + 1):
        n = int(local[-width:])
        if n >= 2 and addressing.with_suffix(plain, n).lower() == address:
            return n
    return None
