"""How much each mailbox holds, kept in memory for the mailbox limits checked at RCPT.

A mailbox's size is what Dovecot's quota counts: every message in the Maildir's ``new/`` and
``cur/`` and in those of its Maildir++ folders (``.Junk``, ``.Sent`` …). Counting a Maildir lists
its folders, which is far too slow to do per RCPT on the event loop; so ``MailboxUsage`` keeps the
last count of each mailbox it was asked to follow, and ``refresh`` (called from a worker thread)
recounts only the folders whose stamp (the modification times of ``new/`` and ``cur/``) moved.
``size`` reads the last count without any I/O and is safe from any thread.

The limits are Exchange's Storage Limits, in KiB: a user's own, or the Mailbox Store's default
when the user has none (None); 0 is no limit. ``limits_of`` is the one place that resolves them.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from app.directory import recipients
from app.mailstore.mailboxes import folder_stamp, folder_stats
from app.model import Recipient
from app.paths import DataPaths
from app.settings import Settings, load_settings
from app.store import Store

log = logging.getLogger(__name__)

_Stamps = dict[str, tuple[tuple[int, int], int]]
KIB = 1024


class LimitState(Enum):
    """Where a mailbox stands against its limits."""

    UNDER = "under"
    WARNING = "warning"  # at or over "Issue warning at"
    PROHIBITED = "prohibited"  # at or over "Prohibit send and receive at": mail is refused


@dataclass(frozen=True)
class MailboxLimits:
    """A user's effective limits in KiB (0: none), and whether they are the store's defaults."""

    warn: int = 0
    prohibit: int = 0
    from_store: bool = True

    def state(self, size: int) -> LimitState:
        """Where ``size`` bytes stand against these limits."""
        if self.prohibit and size >= self.prohibit * KIB:
            return LimitState.PROHIBITED
        if self.warn and size >= self.warn * KIB:
            return LimitState.WARNING
        return LimitState.UNDER


def limits_of(recipient: Recipient, settings: Settings) -> MailboxLimits:
    """A user's effective limits: each of its own, else the Mailbox Store's default.

    Exchange's "Use mailbox store defaults" is the user having neither limit of its own.
    """
    own_warn, own_prohibit = recipient.quota_warn, recipient.quota_prohibit
    return MailboxLimits(
        warn=settings.mailbox_warn_default if own_warn is None else own_warn,
        prohibit=settings.mailbox_prohibit_default if own_prohibit is None else own_prohibit,
        from_store=own_warn is None and own_prohibit is None,
    )


def mailbox_size(maildir: Path) -> int:
    """Bytes of every message in a Maildir and its Maildir++ folders (0 when it is missing)."""
    return sum(folder_stats(folder).size for folder in message_folders(maildir))


def message_folders(maildir: Path) -> list[Path]:
    """The Maildir itself and each of its Maildir++ folders (``.Name`` with a ``cur/``)."""
    folders = [maildir]
    try:
        with os.scandir(maildir) as entries:
            folders += [
                Path(entry.path)
                for entry in entries
                if entry.name.startswith(".")
                and entry.name not in (".", "..")
                and entry.is_dir(follow_symlinks=False)
                and os.path.isdir(os.path.join(entry.path, "cur"))
            ]
    except OSError:
        pass
    return folders


class MailboxUsage:
    """The sizes of the mailboxes being followed, by alias (lower case).

    ``refresh`` runs on one worker thread at a time; ``size`` on any thread, without I/O.
    """

    def __init__(self, paths: DataPaths) -> None:
        self.paths = paths
        self._sizes: dict[str, int] = {}
        # Per followed alias: per folder, its last stamp and its bytes.
        self._stamps: dict[str, _Stamps] = {}
        self._lock = threading.Lock()

    def size(self, alias: str) -> int | None:
        """The mailbox's size in bytes at the last refresh; None if it is not followed (yet)."""
        return self._sizes.get(alias.lower())

    def refresh(self, aliases: Iterable[str]) -> None:
        """Follow exactly ``aliases``, recounting each folder that changed since last time.

        Costs two ``stat`` calls per unchanged folder and a directory read per mailbox (a new
        Maildir++ folder shows up there). Worker thread only; one at a time.
        """
        with self._lock:
            wanted = {alias.lower() for alias in aliases}
            sizes: dict[str, int] = {}
            stamps: dict[str, _Stamps] = {}
            for alias in wanted:
                known = self._stamps.get(alias, {})
                fresh: _Stamps = {}
                for folder in message_folders(self.paths.mailbox(alias)):
                    stamp = folder_stamp(folder)
                    if stamp is None:
                        continue
                    key = folder.name
                    before = known.get(key)
                    if before is not None and before[0] == stamp:
                        fresh[key] = before
                    else:
                        fresh[key] = (stamp, folder_stats(folder).size)
                stamps[alias] = fresh
                sizes[alias] = sum(size for _, size in fresh.values())
            self._stamps = stamps
            self._sizes = sizes  # swapped whole: readers see one refresh or the next

    def uses(self, store: Store) -> list[MailboxUse]:
        """Follow every user's mailbox and return each against its limits, by alias (a recount
        only where a folder changed). Worker thread only."""
        current = load_settings(store)
        users = sorted(
            (r for r in recipients.list_recipients(store) if r.kind == "user"),
            key=lambda r: r.alias.lower(),
        )
        self.refresh(user.alias for user in users)
        return [
            MailboxUse(user.alias, self.size(user.alias) or 0, limits_of(user, current))
            for user in users
        ]


@dataclass(frozen=True)
class MailboxUse:
    """One user's mailbox against its limits."""

    alias: str
    #: Bytes in the Maildir and its Maildir++ folders.
    size: int
    limits: MailboxLimits

    @property
    def state(self) -> LimitState:
        return self.limits.state(self.size)


def mailbox_uses(store: Store) -> list[MailboxUse]:
    """Every user's mailbox size and limits, by alias. Counts every Maildir: not on the GUI
    thread."""
    return MailboxUsage(store.paths).uses(store)
