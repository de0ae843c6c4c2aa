"""A batch's writes, made slice by slice on a second thread inside the batch's transaction."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from app.store import Connection
from app.store import rus as rows
from app.store.rus import DecisionKind

log = logging.getLogger(__name__)


@dataclass
class Writes:
    """What a slice of a batch writes."""

    demote: list[tuple[int, str]] = field(default_factory=list)
    promote: list[tuple[int, str, str]] = field(default_factory=list)
    insert: list[tuple[int, str, str, bool]] = field(default_factory=list)
    stamped: list[int] = field(default_factory=list)
    stamps: list[tuple[int, int, str, str, str]] = field(default_factory=list)
    others: list[tuple[int, int, DecisionKind, str, str]] = field(default_factory=list)

    def write(self, conn: Connection, stamp_usn: int) -> None:
        rows.write_stamps(conn, self.demote, self.promote, self.insert, self.stamped, stamp_usn)
        rows.record_stamps(conn, self.stamps)
        rows.record_decisions(conn, self.others)


class SliceWriter:
    """Writes slices of a batch on a thread of its own, in the batch's transaction.

    The run's thread hands over one slice and works out the next meanwhile; ``lock`` keeps the
    two from using the connection at the same moment. Leaving the ``with`` block waits for every
    write and raises the first error, so the batch commits only what was written. Without
    ``overlap`` each slice is written at once on the calling thread.
    """

    def __init__(self, conn: Connection, lock: threading.Lock, overlap: bool) -> None:
        self._conn = conn
        self._lock = lock
        self._pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="rus-writer") if overlap else None
        )
        self._pending: list[Future[None]] = []

    def submit(self, writes: Writes, stamp_usn: int) -> None:
        if self._pool is None:
            writes.write(self._conn, stamp_usn)
            return
        self._raise_done()
        self._pending.append(self._pool.submit(self._write, writes, stamp_usn))

    def _write(self, writes: Writes, stamp_usn: int) -> None:
        with self._lock:
            writes.write(self._conn, stamp_usn)

    def _raise_done(self) -> None:
        for future in self._pending:
            if future.done() and future.exception() is not None:
                self._wait()
                future.result()

    def _wait(self) -> None:
        wait(self._pending)

    def __enter__(self) -> SliceWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._pool is None:
            return
        self._wait()  # never leave the transaction while a write is under way
        self._pool.shutdown(wait=True)
        if exc_info[0] is None:
            for future in self._pending:
                future.result()
