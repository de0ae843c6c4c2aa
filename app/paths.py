"""Where Postroom keeps its data: the only module that knows directories."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from app.errors import PostroomError

APP_NAME = "postroom"
DATA_DIR_ENV = "POSTROOM_DATA_DIR"


@dataclass(frozen=True)
class DataPaths:
    """The files and folders of one data directory."""

    root: Path

    @property
    def database(self) -> Path:
        return self.root / "postroom.db"

    @property
    def mailboxes(self) -> Path:
        return self.root / "mailboxes"

    @property
    def queue(self) -> Path:
        return self.root / "queue"

    @property
    def tls(self) -> Path:
        return self.root / "tls"

    @property
    def dkim(self) -> Path:
        """DKIM signing keys, a folder per hosted domain."""
        return self.root / "dkim"

    @property
    def rspamd(self) -> Path:
        """rspamd's private configuration, database, run and log folders."""
        return self.root / "rspamd"

    @property
    def serve_lock(self) -> Path:
        return self.root / "serve.lock"

    def mailbox(self, alias: str) -> Path:
        """The Maildir of the mailbox with this alias."""
        return self.mailboxes / alias.lower()


def default_data_dir() -> Path:
    """The platform's per-user data folder for Postroom."""
    return platformdirs.user_data_path(APP_NAME, appauthor=False)


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``--data-dir``, else ``$POSTROOM_DATA_DIR``, else the default."""
    if explicit:
        return Path(explicit).expanduser().absolute()
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        return Path(from_env).expanduser().absolute()
    return default_data_dir()


def prepare(root: Path) -> DataPaths:
    """Create the data directory tree (mode 0700) and check that it can be written."""
    paths = DataPaths(root)
    try:
        for folder in (paths.root, paths.mailboxes, paths.queue):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe = paths.root / f".write-test-{os.getpid()}"
        probe.touch(mode=0o600)
        probe.unlink()
    except OSError as error:
        reason = error.strerror or str(error)
        raise PostroomError(
            f"Cannot write to the data directory {root}: {reason}. "
            "Choose another folder with --data-dir or fix its permissions."
        ) from error
    return paths
