"""The lock that lets one ``postroom serve`` at a time own a data directory."""

from __future__ import annotations

import contextlib
import fcntl
import os

from app.errors import ConflictError
from app.paths import DataPaths


class ServeLock:
    """An exclusive ``fcntl`` lock on ``<data>/serve.lock``; the kernel drops it if we die."""

    def __init__(self, paths: DataPaths) -> None:
        self.path = paths.serve_lock
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise ConflictError naming the process that holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f" (process {holder})" if holder else ""
            raise ConflictError(
                f"Another postroom serve{who} is already running on the data directory "
                f"{self.path.parent}. Stop it first, or use another --data-dir."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


def holder(paths: DataPaths) -> int | None:
    """The process id of the ``postroom serve`` running on this data directory, if any."""
    try:
        fd = os.open(paths.serve_lock, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
    except (OSError, ValueError):
        return None
