"""The durable spool in ``<data>/queue/``: mail accepted for delivery elsewhere, kept until sent."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.mailstore import maildir

log = logging.getLogger(__name__)

# A queue file: this line, one line of JSON (the envelope), then the message as sent on the wire.
MAGIC = b"POSTROOM-QUEUE 1\n"


@dataclass(frozen=True)
class QueuedMessage:
    """One message waiting in the queue, with its envelope."""

    path: Path
    queue_id: str
    sender: str
    recipients: tuple[str, ...]
    received: str
    client: str
    message_id: str
    reason: str
    size: int


def folder_paths(queue_root: Path) -> tuple[Path, Path]:
    """The queue's ``tmp/`` (being written) and ``active/`` (waiting) folders."""
    return queue_root / "tmp", queue_root / "active"


def folders(queue_root: Path) -> tuple[Path, Path]:
    """The queue's ``tmp/`` (being written) and ``active/`` (waiting) folders, made if missing."""
    tmp, active = folder_paths(queue_root)
    for folder in (tmp, active):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return tmp, active


def encode(envelope: dict[str, Any], message: bytes) -> bytes:
    """The bytes of a queue file."""
    header = json.dumps(envelope, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return MAGIC + header + b"\n" + message


def stage(
    queue_root: Path,
    *,
    queue_id: str,
    sender: str,
    recipients: Sequence[str],
    received: str,
    client: str,
    message_id: str,
    reason: str,
    message: bytes,
) -> maildir.StagedFile:
    """Write a queue file and fsync it; ``maildir.publish`` makes it visible (raises OSError)."""
    tmp, active = folders(queue_root)
    envelope = {
        "queue_id": queue_id,
        "sender": sender,
        "recipients": list(recipients),
        "received": received,
        "client": client,
        "message_id": message_id,
        "reason": reason,
    }
    return maildir.stage(tmp, active, encode(envelope, message))


def read(path: Path) -> tuple[QueuedMessage, bytes]:
    """A queue file's envelope and message (raises OSError or ValueError for a damaged file)."""
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise ValueError(f"{path} is not a Postroom queue file")
    header, _, message = data[len(MAGIC) :].partition(b"\n")
    envelope = json.loads(header)
    entry = QueuedMessage(
        path=path,
        queue_id=str(envelope.get("queue_id", "")),
        sender=str(envelope.get("sender", "")),
        recipients=tuple(str(r) for r in envelope.get("recipients", [])),
        received=str(envelope.get("received", "")),
        client=str(envelope.get("client", "")),
        message_id=str(envelope.get("message_id", "")),
        reason=str(envelope.get("reason", "")),
        size=len(message),
    )
    return entry, message


def list_queue(queue_root: Path) -> list[QueuedMessage]:
    """Every message waiting in the queue, oldest first (damaged files are logged and skipped)."""
    active = queue_root / "active"
    entries: list[QueuedMessage] = []
    with contextlib.suppress(FileNotFoundError):
        for name in sorted(os.listdir(active)):
            try:
                entries.append(read(active / name)[0])
            except (OSError, ValueError) as error:
                log.warning("skipping queue file %s: %s", name, error)
    entries.sort(key=lambda entry: entry.received)
    return entries


def queue_length(queue_root: Path) -> int:
    """How many messages wait in the queue."""
    try:
        return len(os.listdir(queue_root / "active"))
    except FileNotFoundError:
        return 0
