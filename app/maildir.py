"""Maildir folders (``cur/ new/ tmp/``), readable by any Maildir client."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from app.errors import PostroomError

SUBFOLDERS = ("tmp", "new", "cur")


def ensure(path: Path) -> Path:
    """Create the Maildir at ``path`` (mode 0700) if it is missing; return it."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        for sub in SUBFOLDERS:
            (path / sub).mkdir(mode=0o700, exist_ok=True)
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
        fd = os.open(new.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
