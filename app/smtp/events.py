"""SMTP service events: written to the message tracking log and handed to listeners."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Literal, NamedTuple

from app.store import Store
from app.store import tracking as rows

log = logging.getLogger(__name__)

EventKind = Literal[
    "session-opened",  # a client connected
    "session-closed",  # it went away (reason: how many messages it sent)
    "received",  # a message was accepted: 250 sent after every copy was on disk
    "delivered",  # one copy is in a user's Maildir (recipients: the mailbox's address)
    "queued",  # one copy waits in <data>/queue/ for delivery elsewhere
    "rejected",  # a command was refused (code and reason: the reply)
    "failed",  # a message could not be stored: 451 sent, the sender will retry
    # The queue sending it on (client: the host that answered; reason: its reply):
    "sent",  # a recipient's copy was taken by the next hop (or a local Maildir)
    "deferred",  # a temporary failure; the reason says when the next retry is
    "bounced",  # a permanent failure: the sender gets an NDR
    "expired",  # still undelivered at the expiration timeout: the sender gets an NDR
    "deleted",  # an administrator deleted it from the queue (with or without an NDR)
]

#: A listener: called on the service's event thread ("postroom-smtp-events"), never on the
#: event loop; it should return quickly. Exceptions it raises are logged and ignored.
EventCallback = Callable[["SmtpEvent"], None]

_BATCH = 1000
# Events wait this long to be written together: fewer transactions, and the event loop's
# thread is interrupted less often. The log and the listeners lag by at most this much.
_GATHER_SECONDS = 0.05


def format_time(stamp: float, _cache: dict[int, str] = {}) -> str:  # noqa: B006 - a cache
    """A Unix time as the tracking log stores it: ISO 8601 UTC with milliseconds."""
    seconds = int(stamp)
    prefix = _cache.get(seconds)
    if prefix is None:
        _cache.clear()
        prefix = _cache[seconds] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{prefix}.{int((stamp - seconds) * 1000):03d}+00:00"


class SmtpEvent(NamedTuple):
    """Something the SMTP service did, as the message tracking log and the console see it."""

    kind: EventKind
    stamp: float  # Unix time
    session: str  # the session's id ('' for a connection refused before it had one)
    client: str  # the client's IP address
    message_id: str = ""  # the Message-ID header, when the message has one
    sender: str = ""  # the envelope sender ('' for the null sender <>)
    recipients: tuple[str, ...] = ()
    code: int | None = None  # the reply code sent
    reason: str = ""  # the reply text, or where the message went
    queue_id: str = ""  # Postroom's id of the message (in its Received header and 250 reply)

    @property
    def time(self) -> str:
        """When it happened, as ISO 8601 UTC (as the tracking log stores it)."""
        return format_time(self.stamp)

    def row(self) -> rows.TrackingRow:
        reason = f"{self.reason} [id {self.queue_id}]" if self.queue_id else self.reason
        return rows.TrackingRow(
            time=self.time,
            event=self.kind,
            message_id=self.message_id,
            sender=self.sender,
            recipients=self.recipients,
            client=self.client,
            code=self.code,
            reason=reason,
        )


class EventRecorder:
    """A thread that writes events to the tracking log in batches, then calls the listeners.

    ``emit`` may be called from any thread and never blocks on the database, so the event loop
    and the delivery threads never wait for the log.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._queue: queue.SimpleQueue[SmtpEvent | None] = queue.SimpleQueue()
        self._callbacks: list[EventCallback] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.emit = self._queue.put

    def add_callback(self, callback: EventCallback) -> None:
        with self._lock:
            self._callbacks = [*self._callbacks, callback]

    def remove_callback(self, callback: EventCallback) -> None:
        with self._lock:
            self._callbacks = [c for c in self._callbacks if c is not callback]

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="postroom-smtp-events", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Write what is pending, call its listeners, and end the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[SmtpEvent] = []
            item = self._queue.get()
            if item is not None:
                time.sleep(_GATHER_SECONDS)
            while True:
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                if len(batch) >= _BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(batch)
                self._notify(batch)

    def _write(self, batch: list[SmtpEvent]) -> None:
        try:
            rows.append_rows(self._store.connection(), [event.row() for event in batch])
        except Exception:
            # The messages themselves are safe on disk; a lost log entry must not stop mail.
            log.exception("could not write %d message tracking entries", len(batch))

    def _notify(self, batch: list[SmtpEvent]) -> None:
        callbacks = self._callbacks
        for event in batch:
            for callback in callbacks:
                try:
                    callback(event)
                except Exception:
                    log.exception("SMTP event listener %r failed", callback)
