"""What has become of a queued message: ``state/<name>``, replaced whole by atomic rename.

A message without a state file has been tried never: every recipient pending, not frozen.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.mailstore import maildir

log = logging.getLogger(__name__)


class Fate(enum.Enum):
    """How a recipient left the queue."""

    DELIVERED = "delivered"  # the next hop (or a local Maildir) took it
    FAILED = "failed"  # a permanent failure: an NDR says so
    EXPIRED = "expired"  # still undelivered at the expiration timeout: an NDR says so
    DELETED = "deleted"  # an administrator deleted it (with or without an NDR)


@dataclass
class Done:
    """A recipient's end: its fate, the RFC 3463 status, the reply and whether the sender was
    told (``notified``: the notification is queued, or none was wanted)."""

    fate: Fate
    status: str
    diagnostic: str
    remote: str | None
    at: float
    notified: bool = False
    dsn_passed: bool = False  # the next hop took NOTIFY/ORCPT: it reports success itself

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["fate"] = self.fate.value
        return data


@dataclass
class Deferral:
    """The last temporary failure of a recipient still waiting."""

    status: str
    diagnostic: str
    remote: str | None


@dataclass
class MessageState:
    """A queued message's delivery state. Times are Unix times; 0 means never."""

    attempts: int = 0
    next_retry: float = 0.0
    last_attempt: float = 0.0
    frozen: bool = False
    delay_warned: bool = False
    last_error: str = ""
    done: dict[str, Done] = field(default_factory=dict)
    deferred: dict[str, Deferral] = field(default_factory=dict)

    def pending(self, recipients: tuple[str, ...]) -> list[str]:
        """The recipients not yet done, in the envelope's order."""
        return [address for address in recipients if address not in self.done]

    def to_json(self) -> bytes:
        data = {
            "attempts": self.attempts,
            "next_retry": self.next_retry,
            "last_attempt": self.last_attempt,
            "frozen": self.frozen,
            "delay_warned": self.delay_warned,
            "last_error": self.last_error,
            "done": {address: done.as_json() for address, done in self.done.items()},
            "deferred": {address: asdict(d) for address, d in self.deferred.items()},
        }
        return json.dumps(data, ensure_ascii=True, separators=(",", ":")).encode("ascii")

    @classmethod
    def from_json(cls, data: bytes) -> MessageState:
        raw = json.loads(data)
        if not isinstance(raw, dict):
            raise ValueError("a state file holds a JSON object")
        done = {
            str(address): Done(
                fate=Fate(item["fate"]),
                status=str(item.get("status", "")),
                diagnostic=str(item.get("diagnostic", "")),
                remote=item.get("remote"),
                at=float(item.get("at", 0)),
                notified=bool(item.get("notified", False)),
                dsn_passed=bool(item.get("dsn_passed", False)),
            )
            for address, item in (raw.get("done") or {}).items()
        }
        deferred = {
            str(address): Deferral(
                str(item.get("status", "")), str(item.get("diagnostic", "")), item.get("remote")
            )
            for address, item in (raw.get("deferred") or {}).items()
        }
        return cls(
            attempts=int(raw.get("attempts", 0)),
            next_retry=float(raw.get("next_retry", 0)),
            last_attempt=float(raw.get("last_attempt", 0)),
            frozen=bool(raw.get("frozen", False)),
            delay_warned=bool(raw.get("delay_warned", False)),
            last_error=str(raw.get("last_error", "")),
            done=done,
            deferred=deferred,
        )


def state_folder(queue_root: Path) -> Path:
    return queue_root / "state"


def load(queue_root: Path, name: str) -> MessageState:
    """The state of the message ``name``; a fresh state when it has none (or a damaged one,
    which is logged: the message is then simply tried again)."""
    path = state_folder(queue_root) / name
    try:
        return MessageState.from_json(path.read_bytes())
    except FileNotFoundError:
        return MessageState()
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("queue state %s is damaged (%s); the message is tried afresh", path, error)
        return MessageState()


def write(queue_root: Path, name: str, state: MessageState) -> None:
    """Replace the state of ``name``: written, fsync'ed, renamed. The caller fsyncs
    ``state/`` (``sync``) once for a batch of writes before relying on them."""
    folder = state_folder(queue_root)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = folder / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, state.to_json())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, folder / name)


def remove(queue_root: Path, name: str) -> None:
    """Forget the message ``name``: its queue file first, then its state."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(queue_root / "active" / name)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(state_folder(queue_root) / name)


def sync(queue_root: Path) -> None:
    """Make the renames and unlinks in ``active/`` and ``state/`` survive a crash."""
    for folder in (queue_root / "active", state_folder(queue_root)):
        with contextlib.suppress(FileNotFoundError):
            maildir.fsync_directory(folder)


def orphans(queue_root: Path, names: set[str]) -> list[str]:
    """State files whose message is gone (a crash between the two unlinks of ``remove``)."""
    try:
        stored = os.listdir(state_folder(queue_root))
    except FileNotFoundError:
        return []
    return [name for name in stored if not name.startswith(".") and name not in names]


# -- the frozen queues --------------------------------------------------------------------------


def frozen_hops(queue_root: Path) -> set[str]:
    """The queues (next hops, by name) an administrator froze."""
    try:
        raw = json.loads((queue_root / "hops.json").read_bytes())
    except FileNotFoundError:
        return set()
    except (OSError, ValueError) as error:
        log.warning("%s is damaged (%s): no queue is frozen", queue_root / "hops.json", error)
        return set()
    return {str(hop) for hop in raw.get("frozen", [])} if isinstance(raw, dict) else set()


def write_frozen_hops(queue_root: Path, hops: set[str]) -> None:
    """Store the frozen queues (atomically)."""
    queue_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_json(queue_root / "hops.json", {"frozen": sorted(hops)})


def write_json(path: Path, data: Any) -> None:
    """Replace a small JSON file atomically (fsync'ed, renamed, folder fsync'ed)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, json.dumps(data, indent=1).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    maildir.fsync_directory(path.parent)


# -- one queue owner at a time ------------------------------------------------------------------


class QueueLock:
    """``<data>/queue/owner.lock``: held by the running queue for its life, or briefly by a
    command that changes the queue while none runs. The kernel drops it if the holder dies."""

    def __init__(self, queue_root: Path) -> None:
        self.path = queue_root / "owner.lock"
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; False when the queue is running elsewhere."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @contextlib.contextmanager
    def held(self) -> Iterator[bool]:
        """``with lock.held() as mine:`` mine is True when this process took the lock."""
        mine = self.try_acquire()
        try:
            yield mine
        finally:
            if mine:
                self.release()
