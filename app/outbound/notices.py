"""Delivery status notifications leave as queue files: to the sender, from <>, like any mail."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.mailstore import maildir
from app.outbound.dsn import Action, Notification, RecipientStatus, dsn_for
from app.outbound.queue import Item, write_items
from app.queue import spool
from app.queue.state import Done, Fate
from app.settings import Settings

log = logging.getLogger(__name__)

_SERIAL = iter(range(1, 2**62))


def _when(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


def done_status(item: Item, address: str, done: Done) -> RecipientStatus | None:
    """The notification line for a recipient that is done; None when nothing is to be said
    (delivered to a next hop that took the DSN request and reports success itself)."""
    recipient = item.outbound(b"", [address]).recipients[0]
    if done.fate is Fate.DELIVERED:
        if done.dsn_passed:
            return None
        action = Action.DELIVERED if done.remote is None else Action.RELAYED
    else:
        action = Action.FAILED
    return RecipientStatus(
        recipient=recipient,
        action=action,
        status=done.status,
        remote_mta=done.remote,
        diagnostic=done.diagnostic,
        last_attempt=_when(done.at),
    )


def delay_statuses(item: Item, expires: float) -> list[RecipientStatus]:
    """The delay warning's lines: each recipient still waiting, with its last reply."""
    lines: list[RecipientStatus] = []
    for address in item.pending:
        deferral = item.state.deferred.get(address)
        lines.append(
            RecipientStatus(
                recipient=item.outbound(b"", [address]).recipients[0],
                action=Action.DELAYED,
                status=deferral.status if deferral else "4.4.7",
                remote_mta=deferral.remote if deferral else None,
                diagnostic=deferral.diagnostic if deferral else "not yet delivered",
                last_attempt=_when(item.state.last_attempt) if item.state.last_attempt else None,
                will_retry_until=_when(expires),
            )
        )
    return lines


def notification(
    item: Item, content: bytes, statuses: list[RecipientStatus], settings: Settings
) -> Notification | None:
    """The notification the sender asked for about ``statuses`` (None: none wanted)."""
    return dsn_for(
        item.outbound(content),
        statuses,
        reporting_mta=settings.host_name,
        arrival=_when(item.arrival),
    )


def stage(
    queue_root: Path, note: Notification, settings: Settings, *, copy_to: str = ""
) -> list[maildir.StagedFile]:
    """Queue files for ``note`` (and a copy to ``copy_to``), written and fsync'ed; the caller
    publishes them."""
    staged: list[maildir.StagedFile] = []
    for recipient in [note.recipient] + ([copy_to] if copy_to else []):
        header = spool.envelope(
            queue_id=f"N{next(_SERIAL):06X}",
            sender=note.sender,
            recipients=[recipient],
            received=datetime.now(UTC).isoformat(),
            client="",
            message_id="",
            reason="delivery status notification",
        )
        staged.append(spool.stage(queue_root, header, note.content))
    log.info("queued a delivery status notification to <%s>", note.recipient)
    return staged


@dataclass(frozen=True)
class Settlement:
    """What is left to store for a message: a snapshot of it (safe to read on another thread)
    and the notification lines to send its sender."""

    item: Item
    lines: tuple[RecipientStatus, ...] = ()


def plan(item: Item) -> Settlement:
    """The notification owed for ``item``'s recipients that are done and not yet reported;
    they count as reported from now (``store`` puts the notification on disk first)."""
    silent = [address for address, done in item.state.done.items() if not done.notified]
    lines = [
        line
        for address in silent
        if (line := done_status(item, address, item.state.done[address])) is not None
    ]
    for address in silent:
        item.state.done[address].notified = True
    return Settlement(Item(item.entry, copy.deepcopy(item.state)), tuple(lines))


def delay_plan(item: Item, expires: float) -> Settlement:
    """The delay warning for ``item`` (sent once: it counts as sent from now)."""
    item.state.delay_warned = True
    lines = tuple(delay_statuses(item, expires))
    return Settlement(Item(item.entry, copy.deepcopy(item.state)), lines)


def store(queue_root: Path, settlements: Iterable[Settlement], settings: Settings) -> None:
    """Queue the notifications (and an NDR copy to ``ndr_copy_to``), then store the states;
    finished messages leave the queue. The notification is on disk before the state says it
    was sent: a crash in between sends it twice rather than never. Disk work (raises OSError):
    a worker thread."""
    settlements = list(settlements)
    staged: list[maildir.StagedFile] = []
    try:
        for settlement in settlements:
            if settlement.lines:
                staged += _staged_notice(queue_root, settlement, settings)
        if staged:
            maildir.move_into_place(staged)
            maildir.fsync_directory(queue_root / "active")
    except BaseException:
        maildir.discard(staged)
        raise
    write_items(queue_root, [settlement.item for settlement in settlements])


def _staged_notice(
    queue_root: Path, settlement: Settlement, settings: Settings
) -> list[maildir.StagedFile]:
    item = settlement.item
    try:
        content = spool.read(item.entry.path)[1]
    except FileNotFoundError:
        return []
    note = notification(item, content, list(settlement.lines), settings)
    if note is None:
        return []
    failed = any(line.action is Action.FAILED for line in settlement.lines)
    return stage(queue_root, note, settings, copy_to=settings.ndr_copy_to if failed else "")
