"""Storing accepted messages: a copy per Maildir and one for the queue, all or nothing.

A writer process per event loop (``app.smtp.writer``) does the disk work in batches (group
commit): it writes and fsyncs every file of the messages waiting, moves them into ``new/`` (or
the queue), fsyncs each folder once for the batch, and only then acknowledges; the event loop
answers 250 on the acknowledgement. What runs here, on the event loop, is kept cheap: the copies'
bytes and one frame to the writer per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import app
from app.mailstore import maildir
from app.paths import DataPaths
from app.queue import spool
from app.smtp import writer
from app.smtp.routing import MailboxTarget, RemoteTarget

log = logging.getLogger(__name__)

_PROJECT_ROOT = Path(app.__file__).resolve().parent.parent


@dataclass(frozen=True)
class Message:
    """An accepted message and its envelope, ready to store."""

    queue_id: str
    sender: str  # the MAIL FROM address; '' for the null sender <>
    content: bytes  # as received: CRLF line endings, dots unstuffed
    message_id: str
    client_ip: str
    helo: str
    protocol: str  # ESMTP, ESMTPS, ESMTPA, ESMTPSA or SMTP (RFC 3848)
    host_name: str
    time: float  # when it was accepted (Unix time)
    mailboxes: tuple[MailboxTarget, ...]
    remote: tuple[RemoteTarget, ...]
    smtputf8: bool = False  # the client sent MAIL FROM with SMTPUTF8
    ret: str | None = None  # RFC 3461 RET: FULL or HDRS
    envid: str | None = None  # RFC 3461 ENVID, decoded
    # RFC 3461 requests by remote target address: "notify" (NOTIFY's text) and "orcpt"
    # ("rfc822;user@example.com"), for the targets that have either.
    dsn: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    folder: str = ""  # the mailboxes' Maildir++ folder ("Junk"), '' for the Inbox


@dataclass(frozen=True)
class Stored:
    """Where the copies went: the file names in each Maildir's ``new/`` and in the queue."""

    mailboxes: tuple[tuple[MailboxTarget, str], ...]
    queue_file: str | None


def _text(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


def _client_literal(ip: str) -> str:
    return f"[IPv6:{ip}]" if ":" in ip else f"[{ip}]"


@functools.lru_cache(maxsize=1024)
def _clean_helo(helo: str) -> str:
    cleaned = "".join(c if c.isascii() and c.isprintable() and c not in "()" else "?" for c in helo)
    return cleaned[:255] or "unknown"


@functools.lru_cache(maxsize=4)
def _rfc5322_date(seconds: int) -> str:
    return format_datetime(datetime.fromtimestamp(seconds, UTC))


def received_header(message: Message, for_address: str | None, newline: str) -> bytes:
    """The Received line this server adds (RFC 5321 §4.4); ``for`` names one recipient only."""
    stamp = _rfc5322_date(int(message.time))
    for_part = f"{newline}\tfor <{for_address}>" if for_address else ""
    text = (
        f"Received: from {_clean_helo(message.helo)} ({_client_literal(message.client_ip)})"
        f"{newline}\tby {message.host_name} (Postroom) with {message.protocol}"
        f" id {message.queue_id}{for_part}; {stamp}{newline}"
    )
    return _text(text)


def mailbox_copy(message: Message, target: MailboxTarget, body_lf: bytes) -> bytes:
    """A copy for a Maildir: LF line endings, as Maildir readers expect, and the trace headers."""
    return (
        b"Return-Path: <"
        + _text(message.sender)
        + b">\nDelivered-To: "
        + _text(target.address)
        + b"\n"
        + received_header(message, target.address, "\n")
        + body_lf
    )


def queue_copy(message: Message) -> bytes:
    """The copy for the queue: the message as it will be sent on, with our Received line."""
    single = message.remote[0].address if len(message.remote) == 1 else None
    return received_header(message, single, "\r\n") + message.content


Folders = tuple[bytes, bytes]  # a tmp folder and its final folder, as os.fsencode gives them


def mailbox_folders(paths: DataPaths, alias: str, name: str = "") -> Folders:
    """A Maildir's ``tmp/`` and ``new/`` (of its Maildir++ folder ``name``, e.g. Junk)."""
    folder = maildir.subfolder(paths.mailbox(alias), name)
    return os.fsencode(folder / "tmp"), os.fsencode(folder / "new")


def queue_folders(paths: DataPaths) -> Folders:
    """The queue's ``tmp/`` and ``active/``."""
    tmp, active = spool.folder_paths(paths.queue)
    return os.fsencode(tmp), os.fsencode(active)


def files_for(
    paths: DataPaths, message: Message, folders: dict[str, Folders] | None = None
) -> list[tuple[bytes, bytes, bytes]]:
    """The files a message makes, as (tmp folder, final folder, data): one per mailbox, in
    ``message.mailboxes`` order, then one for the queue when it goes elsewhere too.
    ``folders`` caches each Maildir's folders by alias."""
    files: list[tuple[bytes, bytes, bytes]] = []
    if folders is None:
        folders = {}
    if message.mailboxes:
        # No bare CR or LF was accepted, so this is lossless.
        body_lf = message.content.replace(b"\r\n", b"\n")
        for target in message.mailboxes:
            key = f"{target.alias}/{message.folder}" if message.folder else target.alias
            found = folders.get(key)
            if found is None:
                found = folders[key] = mailbox_folders(paths, target.alias, message.folder)
            files.append((*found, mailbox_copy(message, target, body_lf)))
    if message.remote:
        envelope = {
            "queue_id": message.queue_id,
            "sender": message.sender,
            "recipients": [target.address for target in message.remote],
            "received": datetime.fromtimestamp(message.time, UTC).isoformat(),
            "client": message.client_ip,
            "message_id": message.message_id,
            "reason": ", ".join(sorted({target.why for target in message.remote})),
            "smtputf8": message.smtputf8,
            "ret": message.ret,
            "envid": message.envid,
            "dsn": {address: dict(requests) for address, requests in message.dsn.items()},
        }
        files.append((*queue_folders(paths), spool.encode(envelope, queue_copy(message))))
    return files


class WriterGone(OSError):
    """The disk writer process ended before it confirmed a message."""


class _AckReader(asyncio.Protocol):
    """Reads the writer's acks on the event loop and settles the waiting futures."""

    def __init__(self, child: _Child) -> None:
        self._child = child
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        for frame in writer.split_frames(self._buffer):
            job_id, ok, text = writer.decode_ack(frame)
            future = self._child.pending.pop(job_id, None)
            if future is None or future.done():
                continue
            if ok:
                future.set_result(text.split("\0"))
            else:
                future.set_exception(OSError(text))

    def connection_lost(self, exc: Exception | None) -> None:
        self._child.gone(exc)


class _Child:
    """One writer process serving one event loop."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.pending: dict[int, asyncio.Future[list[str]]] = {}
        self.jobs = itertools.count(1)
        self.stdin: asyncio.WriteTransport | None = None
        self.stdout: asyncio.BaseTransport | None = None
        self.closed: asyncio.Future[None] | None = None
        self.alive = True

    def gone(self, exc: Exception | None) -> None:
        self.alive = False
        for future in self.pending.values():
            if not future.done():
                future.set_exception(WriterGone("the disk writer process stopped"))
        self.pending.clear()
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(None)


class DiskWriter:
    """Stores messages through a writer process per event loop (``app.smtp.writer``).

    The processes do the file system work with their own interpreter, so it never waits for
    this process's GIL (in-process threads did: every system call queued behind the event
    loop). ``attach`` and ``detach`` run on the loop they serve.
    """

    def __init__(self, paths: DataPaths) -> None:
        self.paths = paths
        self._children: dict[asyncio.AbstractEventLoop, _Child] = {}
        self._folders: dict[str, Folders] = {}

    async def attach(self) -> None:
        """Start the writer process for the running loop."""
        loop = asyncio.get_running_loop()
        process = subprocess.Popen(
            [sys.executable, "-m", "app.smtp.writer", str(self.paths.root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            cwd=str(_PROJECT_ROOT),
        )
        assert process.stdin is not None and process.stdout is not None
        child = _Child(process)
        child.closed = loop.create_future()
        child.stdin, _ = await loop.connect_write_pipe(asyncio.Protocol, process.stdin)
        child.stdout, _ = await loop.connect_read_pipe(lambda: _AckReader(child), process.stdout)
        self._children[loop] = child

    async def detach(self, timeout: float = 30.0) -> None:
        """Let the running loop's writer finish its work and end."""
        child = self._children.pop(asyncio.get_running_loop(), None)
        if child is None:
            return
        if child.stdin is not None:
            child.stdin.close()
        if child.closed is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(child.closed), timeout)
        if child.stdout is not None:
            child.stdout.close()
        try:
            child.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()

    async def store(self, message: Message) -> Stored:
        """Store a message durably; returns once every copy and folder is fsync'ed.

        Raises OSError (WriterGone, or the writer's error) when it could not be stored.
        """
        loop = asyncio.get_running_loop()
        child = self._children.get(loop)
        if child is None or not child.alive:
            if child is not None:
                log.error("the disk writer process ended; starting a new one")
                await self.detach(timeout=0)
            await self.attach()
            child = self._children[loop]
        files = files_for(self.paths, message, self._folders)
        job_id = next(child.jobs)
        future: asyncio.Future[list[str]] = loop.create_future()
        child.pending[job_id] = future
        assert child.stdin is not None
        child.stdin.write(writer.encode_job(job_id, files))
        names = await future
        placed = tuple(zip(message.mailboxes, names, strict=False))
        return Stored(placed, names[-1] if message.remote else None)
