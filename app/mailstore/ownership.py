"""Who owns the Maildirs: the user Postroom runs as, or the system user ``mail`` when that is root.

Dovecot never serves mail as uid 0, and it cannot read what root keeps private. So when Postroom
runs as root (tests, CI, a server started by hand), every Maildir folder and message file is
handed to the system user ``mail`` (uid 8 on Debian), which Dovecot's mail processes run as. Modes
stay private (folders 0700, files 0600): root, which writes new mail, reads and writes them
anyway. The data directory and the folders on the way to the Maildirs become reachable by the
group ``mail`` only (0710: enter, not list), so Dovecot reaches the Maildirs and never reads
``postroom.db`` (its authentication worker runs as root). Under an unprivileged user (the systemd
unit's) nothing is handed over: Dovecot runs as that same user.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MAIL_USER = "mail"
PASSAGE_MODE = 0o710  # owner: all; group mail: enter only; others: nothing


@dataclass(frozen=True)
class MailOwner:
    """The user and group the Maildirs are handed to."""

    name: str
    uid: int
    gid: int


@functools.cache
def mail_owner() -> MailOwner | None:
    """The owner Maildirs are handed to, or None when they stay with the user Postroom runs as
    (not root, or a system without a ``mail`` user)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(MAIL_USER)
    except KeyError:
        log.warning("running as root without a '%s' user: Dovecot cannot serve mail", MAIL_USER)
        return None
    return MailOwner(MAIL_USER, entry.pw_uid, entry.pw_gid)


def claim(path: Path) -> None:
    """Hand a folder or file in a Maildir to the mail owner (nothing to do when there is none)."""
    owner = mail_owner()
    if owner is None:
        return
    stat = path.lstat()
    if (stat.st_uid, stat.st_gid) != (owner.uid, owner.gid):
        os.lchown(path, owner.uid, owner.gid)


def claim_fd(fd: int) -> None:
    """Hand an open message file to the mail owner (before it becomes visible in ``new/``)."""
    owner = mail_owner()
    if owner is not None:
        os.fchown(fd, owner.uid, owner.gid)


def adopt(mailboxes: Path) -> int:
    """Hand everything under ``mailboxes`` to the mail owner (Maildirs made before, or by a
    Postroom that ran as root before Dovecot came); how many entries changed owner."""
    owner = mail_owner()
    if owner is None or not mailboxes.is_dir():
        return 0
    changed = 0
    for folder, dirs, files in os.walk(mailboxes):
        for name in (*dirs, *files):
            path = os.path.join(folder, name)
            with contextlib.suppress(FileNotFoundError):  # Dovecot may move mail meanwhile
                stat = os.lstat(path)
                if (stat.st_uid, stat.st_gid) != (owner.uid, owner.gid):
                    os.lchown(path, owner.uid, owner.gid)
                    changed += 1
    if changed:
        log.info("handed %d Maildir entries to the user %s", changed, owner.name)
    return changed


def unreachable_ancestor(path: Path) -> Path | None:
    """The first folder above ``path`` that the mail owner may not enter (None: all open, or
    there is no mail owner). ``open_passage`` opens ``path`` itself, never its parents."""
    owner = mail_owner()
    if owner is None:
        return None
    for folder in reversed(path.absolute().parents):
        stat = folder.stat()
        if stat.st_uid == owner.uid:
            allowed = stat.st_mode & 0o100
        elif stat.st_gid == owner.gid:
            allowed = stat.st_mode & 0o010
        else:
            allowed = stat.st_mode & 0o001
        if not allowed:
            return folder
    return None


def open_passage(root: Path, folders: tuple[Path, ...]) -> None:
    """Let the mail owner's group enter ``root`` and ``folders`` (each inside ``root``), and no
    one else: group ``mail``, mode 0710. Nothing to do when there is no mail owner."""
    owner = mail_owner()
    if owner is None:
        return
    for path in (root, *folders):
        os.chown(path, -1, owner.gid)
        os.chmod(path, PASSAGE_MODE)
