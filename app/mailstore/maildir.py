"""Maildir folders (``cur/ new/ tmp/``) and durable delivery into them."""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.errors import PostroomError
from app.mailstore import ownership

SUBFOLDERS = ("tmp", "new", "cur")

_sequence = itertools.count(1)
_PID = os.getpid()
# RFC-free but conventional (Courier, Dovecot): '/' and ':' cannot appear in the host part.
_HOST = socket.gethostname().replace("/", r"\057").replace(":", r"\072") or "localhost"


def subfolder(mailbox: Path, name: str) -> Path:
    """A mailbox's Maildir++ folder (``.Junk`` for Junk); the mailbox itself for ''."""
    return mailbox / f".{name}" if name else mailbox


def ensure(path: Path) -> Path:
    """Create the Maildir at ``path`` (mode 0700) if it is missing; return it. A Maildir++
    folder (a name starting with '.') is made inside its mailbox, which is made too, and gets
    the ``maildirfolder`` mark Dovecot and Courier look for."""
    try:
        if path.name.startswith("."):
            ensure(path.parent)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        for sub in SUBFOLDERS:
            (path / sub).mkdir(mode=0o700, exist_ok=True)
        for made in (path, *(path / sub for sub in SUBFOLDERS)):
            ownership.claim(made)  # Dovecot's mail user when Postroom runs as root
        if path.name.startswith("."):
            (path / "maildirfolder").touch(mode=0o600, exist_ok=True)
    except OSError as error:
        raise PostroomError(
            f"Cannot create the mailbox folder {path}: {error.strerror or error}. "
            "Check the data directory's permissions."
        ) from error
    return path


def rename(old: Path, new: Path) -> None:
    """Move a mailbox to its new alias's folder (atomic on one file system)."""
    if old == new or not old.exists():
        ensure(new)
        return
    if new.exists():
        raise PostroomError(f"The mailbox folder {new} already exists; move it away first.")
    os.rename(old, new)
    with contextlib.suppress(OSError):
        fsync_directory(new.parent)


# -- durable delivery ---------------------------------------------------------------------------


def unique_name(size: int) -> str:
    """A Maildir file name no other delivery uses: ``<sec>.M<usec>P<pid>Q<n>.<host>,S=<size>``."""
    now = time.time()
    seconds = int(now)
    micro = int((now - seconds) * 1_000_000)
    return f"{seconds}.M{micro}P{_PID}Q{next(_sequence)}.{_HOST},S={size}"


def fsync_directory(path: Path) -> None:
    """Make the directory's entries (a file just renamed into it) survive a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirectorySync:
    """Group commit for one directory: one ``fsync`` serves every rename made before it began.

    Threads that renamed a file into the directory call ``sync()``; while one fsync runs, later
    callers wait and are then served together by the next one. Nobody returns before an fsync
    that started after its own rename has finished.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cond = threading.Condition()
        self._requested = 0
        self._done = 0
        self._running = False

    def sync(self) -> None:
        """Return once the directory has been fsync'ed after this call began (raises OSError)."""
        with self._cond:
            self._requested += 1
            ticket = self._requested
            while self._done < ticket:
                if self._running:
                    self._cond.wait()
                    continue
                self._running = True
                target = self._requested
                self._cond.release()
                try:
                    fsync_directory(self.path)
                finally:
                    self._cond.acquire()
                    self._running = False
                    self._cond.notify_all()
                # Only reached when the fsync succeeded: every ticket up to target is durable.
                self._done = max(self._done, target)


class DirectorySyncs:
    """The ``DirectorySync`` of each directory, made on first use; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._syncs: dict[Path, DirectorySync] = {}

    def sync(self, path: Path) -> None:
        with self._lock:
            syncer = self._syncs.get(path)
            if syncer is None:
                syncer = self._syncs[path] = DirectorySync(path)
        syncer.sync()


@dataclass(frozen=True)
class StagedFile:
    """A message written and fsync'ed in a ``tmp/`` folder, not yet visible in ``new/``."""

    tmp: Path
    final: Path


def stage(tmp_dir: Path, final_dir: Path, data: bytes) -> StagedFile:
    """Write ``data`` to a new file in ``tmp_dir`` and fsync it; OSError leaves nothing behind."""
    name = unique_name(len(data))
    tmp = tmp_dir / name
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        if final_dir.name == "new":
            ownership.claim_fd(fd)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    return StagedFile(tmp, final_dir / name)


def publish(staged: Sequence[StagedFile], syncs: DirectorySyncs) -> None:
    """Move staged files into place and fsync their folders: all of them, or none (OSError).

    On failure the files already moved are taken back, so no copy is left visible for a message
    the sender will be told to retry.
    """
    move_into_place(staged)
    try:
        for folder in dict.fromkeys(item.final.parent for item in staged):
            syncs.sync(folder)
    except BaseException:
        take_back(staged)
        raise


def move_into_place(staged: Sequence[StagedFile]) -> None:
    """Rename staged files to their final names; on failure none stays moved (raises OSError)."""
    moved: list[StagedFile] = []
    try:
        for item in staged:
            os.rename(item.tmp, item.final)
            moved.append(item)
    except BaseException:
        take_back(moved)
        discard(staged)
        raise


def take_back(staged: Sequence[StagedFile]) -> None:
    """Undo ``move_into_place``: the files leave their folders and are removed."""
    for item in staged:
        with contextlib.suppress(OSError):
            os.rename(item.final, item.tmp)
    discard(staged)


def discard(staged: Sequence[StagedFile]) -> None:
    """Remove staged files that will not be published."""
    for item in staged:
        with contextlib.suppress(OSError):
            os.unlink(item.tmp)


def stage_message(maildir: Path, data: bytes) -> StagedFile:
    """Stage a message for a Maildir's ``new/`` (the Maildir is created if missing)."""
    try:
        return stage(maildir / "tmp", maildir / "new", data)
    except FileNotFoundError:
        ensure(maildir)
        return stage(maildir / "tmp", maildir / "new", data)


def deliver(maildir: Path, data: bytes, syncs: DirectorySyncs | None = None) -> Path:
    """Deliver one message durably: written, fsync'ed, moved to ``new/`` and ``new/`` fsync'ed."""
    staged = stage_message(maildir, data)
    publish([staged], syncs or DirectorySyncs())
    return staged.final
