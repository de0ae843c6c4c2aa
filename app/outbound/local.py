"""The "Local delivery" queue: queued mail for this server's own Maildirs (notifications to
local senders, or addresses that moved here since the message was queued)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from app.mailstore import maildir
from app.outbound.hops import local_targets
from app.paths import DataPaths
from app.queue import spool
from app.queue.spool import QueuedMessage
from app.smtp.routing import DirectoryIndex, MailboxTarget, RemoteTarget


def deliver(
    paths: DataPaths,
    entry: QueuedMessage,
    content: bytes,
    addresses: Sequence[str],
    index: DirectoryIndex,
) -> None:
    """Deliver ``content`` to the mailboxes ``addresses`` reach, all copies or none; a group's
    outside members get a queue file of their own. Raises OSError (disk full: try again)."""
    body_lf = content.replace(b"\r\n", b"\n")
    sender = entry.sender.encode("utf-8", "surrogateescape")
    staged: list[maildir.StagedFile] = []
    remote: list[str] = []
    try:
        for address in addresses:
            for target in local_targets(address, index):
                if isinstance(target, MailboxTarget):
                    trace = b"Return-Path: <%s>\nDelivered-To: %s\n" % (
                        sender,
                        target.address.encode("utf-8", "surrogateescape"),
                    )
                    staged.append(
                        maildir.stage_message(paths.mailbox(target.alias), trace + body_lf)
                    )
                elif isinstance(target, RemoteTarget):
                    remote.append(target.address)
        if remote:
            header = spool.envelope(
                queue_id=entry.queue_id,
                sender=entry.sender,
                recipients=remote,
                received=datetime.now(UTC).isoformat(),
                client=entry.client,
                message_id=entry.message_id,
                reason="group members elsewhere",
            )
            staged.append(spool.stage(paths.queue, header, content))
        maildir.publish(staged, maildir.DirectorySyncs())
    except BaseException:
        maildir.discard(staged)
        raise
