"""Queue files: a magic line, one line of JSON (the envelope), then the message as sent on."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.mailstore import maildir

log = logging.getLogger(__name__)

MAGIC = b"POSTROOM-QUEUE 1\n"


@dataclass(frozen=True)
class QueuedMessage:
    """One message waiting in the queue: its file, envelope and RFC 3461 requests.

    ``dsn`` maps a recipient address to the requests its RCPT carried: ``notify`` (``NEVER`` or
    ``SUCCESS,FAILURE,DELAY`` in any combination) and ``orcpt`` (``rfc822;user@example.com``).
    """

    path: Path
    queue_id: str
    sender: str
    recipients: tuple[str, ...]
    received: str  # ISO 8601
    client: str
    message_id: str
    reason: str
    size: int
    smtputf8: bool = False
    ret: str | None = None  # FULL or HDRS
    envid: str | None = None
    dsn: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The file's name, which names the message in ``state/`` and ``control/`` too."""
        return self.path.name


def folder_paths(queue_root: Path) -> tuple[Path, Path]:
    """The queue's ``tmp/`` (being written) and ``active/`` (waiting) folders."""
    return queue_root / "tmp", queue_root / "active"


def folders(queue_root: Path) -> tuple[Path, Path]:
    """The queue's ``tmp/`` and ``active/`` folders, made if missing."""
    tmp, active = folder_paths(queue_root)
    for folder in (tmp, active):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return tmp, active


def encode(envelope: Mapping[str, Any], message: bytes) -> bytes:
    """The bytes of a queue file."""
    header = json.dumps(envelope, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return MAGIC + header + b"\n" + message


def envelope(
    *,
    queue_id: str,
    sender: str,
    recipients: Sequence[str],
    received: str,
    client: str,
    message_id: str,
    reason: str,
) -> dict[str, Any]:
    """A queue file's envelope (the SMTP service adds the RFC 3461 keys its client sent)."""
    return {
        "queue_id": queue_id,
        "sender": sender,
        "recipients": list(recipients),
        "received": received,
        "client": client,
        "message_id": message_id,
        "reason": reason,
    }


def stage(queue_root: Path, header: Mapping[str, Any], message: bytes) -> maildir.StagedFile:
    """Write a queue file and fsync it; ``maildir.publish`` makes it visible (raises OSError)."""
    tmp, active = folders(queue_root)
    return maildir.stage(tmp, active, encode(header, message))


def read(path: Path) -> tuple[QueuedMessage, bytes]:
    """A queue file's envelope and message (raises OSError or ValueError for a damaged file)."""
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise ValueError(f"{path} is not a Postroom queue file")
    header, _, message = data[len(MAGIC) :].partition(b"\n")
    return parse(path, json.loads(header), len(message)), message


def read_envelope(path: Path) -> QueuedMessage:
    """A queue file's envelope without its message (raises OSError or ValueError)."""
    with path.open("rb") as file:
        magic = file.readline()
        header = file.readline()
        size = os.fstat(file.fileno()).st_size - len(magic) - len(header)
    if magic != MAGIC or not header.endswith(b"\n"):
        raise ValueError(f"{path} is not a Postroom queue file")
    return parse(path, json.loads(header), size)


def parse(path: Path, raw: Any, size: int) -> QueuedMessage:
    """The envelope a queue file's JSON line describes (ValueError if it is not one)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("recipients"), list):
        raise ValueError(f"{path} has no envelope")
    dsn = raw.get("dsn") or {}
    return QueuedMessage(
        path=path,
        queue_id=str(raw.get("queue_id", "")),
        sender=str(raw.get("sender", "")),
        recipients=tuple(str(r) for r in raw["recipients"]),
        received=str(raw.get("received", "")),
        client=str(raw.get("client", "")),
        message_id=str(raw.get("message_id", "")),
        reason=str(raw.get("reason", "")),
        size=size,
        smtputf8=bool(raw.get("smtputf8", False)),
        ret=str(raw["ret"]) if raw.get("ret") else None,
        envid=str(raw["envid"]) if raw.get("envid") is not None else None,
        dsn={
            str(address): {str(k): str(v) for k, v in requests.items()}
            for address, requests in dsn.items()
            if isinstance(requests, dict)
        }
        if isinstance(dsn, dict)
        else {},
    )


def names(queue_root: Path) -> list[str]:
    """The file names in ``active/``, sorted (oldest first, as Maildir names begin with time)."""
    try:
        return sorted(os.listdir(queue_root / "active"))
    except FileNotFoundError:
        return []


def list_queue(queue_root: Path) -> list[QueuedMessage]:
    """Every message waiting in the queue, oldest first (damaged files are logged and skipped)."""
    active = queue_root / "active"
    entries: list[QueuedMessage] = []
    for name in names(queue_root):
        try:
            entries.append(read_envelope(active / name))
        except FileNotFoundError:
            continue  # sent and removed since the listing
        except (OSError, ValueError) as error:
            log.warning("skipping queue file %s: %s", name, error)
    entries.sort(key=lambda entry: entry.received)
    return entries


def queue_length(queue_root: Path) -> int:
    """How many messages wait in the queue."""
    return len(names(queue_root))
