"""The queue as the runner, ``postroom queue`` and the console's Queues node see it: each
message with its state, grouped by next hop, and the administrator's actions on it.

Actions (retry, freeze, unfreeze, delete with or without an NDR) are ``Request``s. The process
that owns the queue (``app.queue.state.QueueLock``) applies them: the running queue, or, when
none runs, the command itself (``app.outbound.control``).
"""

from __future__ import annotations

import enum
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.errors import PostroomError
from app.outbound.envelope import OutboundMessage, Recipient, Ret, parse_notify
from app.queue import spool, state
from app.queue.spool import QueuedMessage
from app.queue.state import Done, Fate, MessageState

log = logging.getLogger(__name__)

#: Names a recipient's queue (``hops.hop_of`` bound to the directory, connectors and settings).
HopNamer = Callable[[str], str]


@dataclass
class Item:
    """A message in the queue with its state; ``busy`` are the recipients being sent now."""

    entry: QueuedMessage
    state: MessageState
    busy: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def pending(self) -> list[str]:
        return self.state.pending(self.entry.recipients)

    @property
    def arrival(self) -> float:
        return arrival_time(self.entry)

    def outbound(self, content: bytes, recipients: Iterable[str] | None = None) -> OutboundMessage:
        """The message to send to ``recipients`` (default: all), with their DSN requests."""
        chosen = self.entry.recipients if recipients is None else tuple(recipients)
        return OutboundMessage(
            sender=self.entry.sender,
            recipients=tuple(_recipient(self.entry, address) for address in chosen),
            content=content,
            ret=Ret(self.entry.ret) if self.entry.ret in ("FULL", "HDRS") else None,
            envid=self.entry.envid,
            smtputf8=self.entry.smtputf8,
        )


def _recipient(entry: QueuedMessage, address: str) -> Recipient:
    requests = entry.dsn.get(address, {})
    notify = None
    if requests.get("notify"):
        try:
            notify = parse_notify(requests["notify"])
        except PostroomError:
            notify = None  # written by the SMTP service, so checked there: cannot happen
    return Recipient(address, notify, requests.get("orcpt") or None)


def arrival_time(entry: QueuedMessage) -> float:
    """When the message was accepted (Unix time); the file's time if the envelope has none."""
    try:
        return datetime.fromisoformat(entry.received).timestamp()
    except ValueError:
        try:
            return entry.path.stat().st_mtime
        except OSError:
            return time.time()


def load_item(root: Path, name: str) -> Item | None:
    """The message ``name`` with its state; None when it is gone (or damaged: logged)."""
    try:
        entry = spool.read_envelope(root / "active" / name)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        log.warning("queue file %s is damaged and left alone: %s", name, error)
        return None
    return Item(entry, state.load(root, name))


def load_items(root: Path) -> list[Item]:
    """Every message in the queue with its state, oldest first."""
    items = [item for name in spool.names(root) if (item := load_item(root, name)) is not None]
    items.sort(key=lambda item: item.arrival)
    return items


# -- what the administrator sees ------------------------------------------------------------


class HopState(enum.Enum):
    """A queue's state, as Exchange shows it."""

    READY = "Ready"  # mail waits for a connection, which opens as soon as there is room
    ACTIVE = "Active"  # a connection is sending now
    RETRY = "Retry"  # the last attempt failed; it waits for the retry interval
    FROZEN = "Frozen"  # an administrator froze it


@dataclass(frozen=True)
class MessageView:
    """A message as a queue lists it: only the recipients waiting in that queue."""

    name: str
    queue_id: str
    sender: str
    recipients: tuple[str, ...]
    size: int
    submitted: float
    expires: float
    next_retry: float
    attempts: int
    frozen: bool
    last_error: str
    message_id: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.name,
            "queue_id": self.queue_id,
            "sender": self.sender,
            "recipients": list(self.recipients),
            "size": self.size,
            "submitted": _iso(self.submitted),
            "expires": _iso(self.expires),
            "next_retry": _iso(self.next_retry) if self.next_retry else None,
            "attempts": self.attempts,
            "frozen": self.frozen,
            "last_error": self.last_error,
            "message_id": self.message_id,
        }


@dataclass(frozen=True)
class HopView:
    """One queue: its next hop, state, messages and the figures Exchange shows."""

    name: str
    state: HopState
    messages: tuple[MessageView, ...]
    last_error: str
    next_retry: float

    @property
    def count(self) -> int:
        return len(self.messages)

    @property
    def size(self) -> int:
        return sum(message.size for message in self.messages)

    @property
    def oldest(self) -> float:
        return min((message.submitted for message in self.messages), default=0.0)

    def as_json(self, with_messages: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "state": self.state.value,
            "messages": self.count,
            "size": self.size,
            "oldest": _iso(self.oldest) if self.messages else None,
            "next_retry": _iso(self.next_retry) if self.next_retry else None,
            "last_error": self.last_error,
        }
        if with_messages:
            data["message_list"] = [message.as_json() for message in self.messages]
        return data


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")


def hop_views(
    items: Iterable[Item],
    namer: HopNamer,
    *,
    frozen_hops: set[str],
    active: dict[str, int] | None = None,
    expiration: float,
    now: float | None = None,
) -> list[HopView]:
    """The queues holding ``items``' pending recipients, by name. ``active``: connections open
    per queue (the running queue's report); ``expiration``: the expiration timeout, seconds."""
    now = time.time() if now is None else now
    active = active or {}
    grouped: dict[str, list[tuple[Item, list[str]]]] = {}
    for item in items:
        by_hop: dict[str, list[str]] = {}
        for address in item.pending:
            by_hop.setdefault(namer(address), []).append(address)
        for hop, addresses in by_hop.items():
            grouped.setdefault(hop, []).append((item, addresses))
    views: list[HopView] = []
    for hop, members in sorted(grouped.items(), key=lambda pair: pair[0].casefold()):
        messages = tuple(_message_view(item, addresses, expiration) for item, addresses in members)
        waiting = [m for m in messages if not m.frozen]
        retries = [m.next_retry for m in waiting if m.next_retry > now]
        errors = sorted((m for m in messages if m.last_error), key=lambda m: m.next_retry)
        if hop in frozen_hops:
            hop_state = HopState.FROZEN
        elif active.get(hop):
            hop_state = HopState.ACTIVE
        elif waiting and len(retries) == len(waiting):
            hop_state = HopState.RETRY
        else:
            hop_state = HopState.READY
        views.append(
            HopView(
                name=hop,
                state=hop_state,
                messages=messages,
                last_error=errors[-1].last_error if errors else "",
                next_retry=min(retries, default=0.0),
            )
        )
    return views


def _message_view(item: Item, addresses: list[str], expiration: float) -> MessageView:
    entry = item.entry
    return MessageView(
        name=item.name,
        queue_id=entry.queue_id,
        sender=entry.sender,
        recipients=tuple(addresses),
        size=entry.size,
        submitted=item.arrival,
        expires=item.arrival + expiration,
        next_retry=item.state.next_retry,
        attempts=item.state.attempts,
        frozen=item.state.frozen,
        last_error=item.state.last_error,
        message_id=entry.message_id,
    )


# -- the administrator's actions ----------------------------------------------------------------


class Action(enum.Enum):
    RETRY = "retry"  # Force Connection: try now, whatever the retry interval says
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    DELETE = "delete"  # Delete (no NDR), or with ``ndr`` Delete (send NDR)


@dataclass(frozen=True)
class Request:
    """An administrator's action on one message (``message``: its file name or queue id), on a
    whole queue (``hop``), or with neither on every message (retry only)."""

    action: Action
    message: str | None = None
    hop: str | None = None
    ndr: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "message": self.message,
            "hop": self.hop,
            "ndr": self.ndr,
        }

    @classmethod
    def from_json(cls, raw: Any) -> Request:
        if not isinstance(raw, dict):
            raise ValueError("a request is a JSON object")
        return cls(
            Action(raw["action"]),
            raw.get("message") or None,
            raw.get("hop") or None,
            bool(raw.get("ndr", False)),
        )

    def check(self) -> None:
        """Refuse a request that names nothing, or too much, with one line."""
        if self.message and self.hop:
            raise PostroomError("Name a message or a queue, not both.")
        if self.action is not Action.RETRY and not (self.message or self.hop):
            raise PostroomError(f"Say which message or queue to {self.action.value}.")
        if self.ndr and self.action is not Action.DELETE:
            raise PostroomError("--ndr goes with delete only.")


@dataclass(frozen=True)
class Change:
    """What a request did: the messages changed (file names) and the recipients deleted."""

    messages: tuple[str, ...]
    deleted: tuple[tuple[str, str], ...] = ()  # (message name, recipient)
    frozen_hops: frozenset[str] | None = None  # the new set, when the request froze a queue


DELETED_STATUS = "5.3.0"
DELETED_TEXT = "deleted from the queue by an administrator"


def apply(
    request: Request,
    items: Iterable[Item],
    namer: HopNamer,
    frozen_hops: set[str],
    now: float | None = None,
) -> Change:
    """Apply ``request`` to ``items`` in memory (states changed in place); the caller writes
    the states, removes the finished messages and queues the NDRs. Raises PostroomError when
    the message or queue it names holds nothing."""
    request.check()
    now = time.time() if now is None else now
    targets = _targets(request, items, namer)
    if request.hop is not None and request.action in (Action.FREEZE, Action.UNFREEZE):
        hops = set(frozen_hops)
        (hops.add if request.action is Action.FREEZE else hops.discard)(request.hop)
        return Change(tuple(item.name for item, _ in targets), frozen_hops=frozenset(hops))
    deleted: list[tuple[str, str]] = []
    for item, addresses in targets:
        if request.action is Action.RETRY:
            item.state.next_retry = 0.0
            if request.message:
                item.state.frozen = False
        elif request.action is Action.FREEZE:
            item.state.frozen = True
        elif request.action is Action.UNFREEZE:
            item.state.frozen = False
        else:
            for address in addresses:
                item.state.done[address] = Done(
                    Fate.DELETED,
                    DELETED_STATUS,
                    DELETED_TEXT,
                    None,
                    now,
                    notified=not request.ndr,
                )
                item.state.deferred.pop(address, None)
                deleted.append((item.name, address))
    return Change(tuple(item.name for item, _ in targets), tuple(deleted))


def _targets(
    request: Request, items: Iterable[Item], namer: HopNamer
) -> list[tuple[Item, list[str]]]:
    chosen: list[tuple[Item, list[str]]] = []
    for item in items:
        if request.message and request.message not in (item.name, item.entry.queue_id):
            continue
        pending = item.pending
        if request.hop is not None:
            pending = [address for address in pending if namer(address) == request.hop]
        if pending:
            chosen.append((item, pending))
    if chosen or not (request.message or request.hop):
        return chosen
    if request.hop is not None and request.action is not Action.DELETE:
        return chosen  # a queue may be frozen before mail arrives, forced when just emptied
    if request.message:
        raise PostroomError(
            f"The message {request.message} is not in the queue (it may have been sent or "
            "deleted meanwhile). See postroom queue list."
        )
    raise PostroomError(
        f"No mail waits in the queue '{request.hop}' (it may have been sent or deleted "
        "meanwhile). See postroom queue list."
    )


def write_items(root: Path, items: Iterable[Item]) -> None:
    """Store the states of ``items``: finished messages leave the queue, others are written;
    then ``active/`` and ``state/`` are fsync'ed once."""
    for item in items:
        if not item.pending and all(done.notified for done in item.state.done.values()):
            state.remove(root, item.name)
        elif os.path.exists(item.entry.path):
            state.write(root, item.name, item.state)
    state.sync(root)
