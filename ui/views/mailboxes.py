"""… > Mailbox Store (Properties: the default mailbox limits) > Mailboxes: each user's Maildir
with its items, size, last delivery and where it stands against its storage limits.

Counting reads directories, so it runs on the task runner. The list follows two sources: the
directory's change counter (users come and go; the console's watcher) and the Maildirs
themselves, which change without any database change when mail arrives: every
``POLL_INTERVAL_MS`` a background ``MailboxScanner.changed()`` compares the modification times of
``new/`` and ``cur/`` (two ``stat`` calls per mailbox) and only a mailbox that moved is recounted.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QAction

from app.mailstore.mailboxes import MailboxScanner, MailboxSummary
from app.mailstore.usage import MailboxUsage, MailboxUse
from app.store import Store
from ui import messages
from ui.actions import MenuEntry, make_action, set_enabled
from ui.dialogs.mailbox import MailboxDialog
from ui.dialogs.mailbox_store import MailboxStoreDialog
from ui.formatting import plural
from ui.models.mailboxes import MailboxListModel
from ui.views.base import ResultView
from ui.views.container import ContainerView
from ui.watcher import POLL_INTERVAL_MS

if TYPE_CHECKING:
    from ui.console import Console
    from ui.node import Node

log = logging.getLogger(__name__)

STORE_TEXT = "The Maildirs of this server's users"
MAILBOXES_TEXT = "The users' mailboxes: items, size, last delivery and storage limits"

Scan = tuple[list[MailboxSummary] | None, list[MailboxUse], float]


def scan_mailboxes(
    scanner: MailboxScanner, usage: MailboxUsage, store: Store, only_if_changed: bool
) -> Scan:
    """Worker thread: the mailboxes (None when ``only_if_changed`` and no Maildir moved), each
    user's mailbox against its limits (not counted then either), and the seconds it took."""
    started = time.monotonic()
    if only_if_changed and not scanner.changed():
        return None, [], time.monotonic() - started
    found = scanner.scan(store)
    return found, usage.uses(store), time.monotonic() - started


class MailboxStoreView(ContainerView):
    """The Mailbox Store node: lists Mailboxes; Properties holds the store's default limits."""

    def update_actions(self, rows: list[int]) -> None:
        set_enabled(self.std.properties, not rows)

    def node_menu(self) -> list[MenuEntry]:
        return [self.std.refresh, self.std.export_list, None, self.std.properties]

    def properties(self, rows: list[int]) -> None:
        if rows:
            return
        MailboxStoreDialog.edit(self.parent_widget, self.console.store)


class MailboxesView(ResultView):
    """The Mailboxes node; opening a mailbox shows its messages (``MailboxDialog``)."""

    default_sort_column = MailboxListModel.COL_MAILBOX
    default_column_widths = (240, 80, 100, 140, 260)

    scanned = Signal()
    """A count of the mailboxes came back and the list shows it."""

    def __init__(self, console: Console, node: Node) -> None:
        super().__init__(console, node)
        self.list_model = MailboxListModel(self)
        self.model = self.list_model
        self.scanner = MailboxScanner(console.store.paths)
        self.usage = MailboxUsage(console.store.paths)
        self.dialogs: dict[str, MailboxDialog] = {}
        self._scanning = False
        self._pending: bool | None = None  # a scan asked for while one runs (True: full)
        self._counted = False
        self._quiet_until = 0.0  # no poll before this (monotonic): big stores poll less often
        self._selection: list[int] = []
        self.open_mailbox = make_action(
            self, "&Open", "mailbox", None, "List the mailbox's messages and read them"
        )
        self.open_mailbox.triggered.connect(lambda: self.properties(self._selection))
        # Owned by the window, so the polling ends with it even while the console lives on.
        self._poll = QTimer(console.window or self)
        self._poll.setInterval(POLL_INTERVAL_MS)
        self._poll.timeout.connect(self._poll_maildirs)
        self._poll.start()
        console.watcher.changed.connect(self._directory_changed)

    # -- list ------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Count every mailbox again (in the background)."""
        self.scan(only_if_changed=False)

    def _directory_changed(self) -> None:
        if self.is_current():
            self.refresh()

    def _poll_maildirs(self) -> None:
        if self.is_current() and time.monotonic() >= self._quiet_until:
            self.scan(only_if_changed=True)

    def scan(self, *, only_if_changed: bool) -> None:
        if self._scanning:
            if self._pending is None or not only_if_changed:
                self._pending = not only_if_changed
            return
        self._scanning = True
        self.console.tasks.submit(
            "count mailboxes",
            scan_mailboxes,
            self.scanner,
            self.usage,
            self.console.store,
            only_if_changed and self._counted,
            on_success=self._scanned,
            on_failure=self._scan_failed,
        )

    def _scanned(self, outcome: Scan) -> None:
        found, uses, seconds = outcome
        self._scanning = False
        # A poll that takes long (thousands of Maildirs) waits ten times as long for the next.
        self._quiet_until = time.monotonic() + 10 * seconds
        if found is not None:
            self._counted = True
            self.list_model.set_uses(uses)
            self.list_model.set_rows(found)
            self.status_changed.emit()
        self.scanned.emit()
        self._run_pending()

    def _scan_failed(self, error: Exception) -> None:
        self._scanning = False
        log.warning("could not count the mailboxes: %s", error)
        if self._poll.parent() is not None:
            self._poll.stop()  # one message, not one every half second
        messages.error(self.parent_widget, f"Cannot count the mailboxes: {error}")
        self._run_pending()

    def _run_pending(self) -> None:
        if self._pending is not None:
            full, self._pending = self._pending, None
            self.scan(only_if_changed=not full)

    def status_text(self) -> str:
        if not self._counted:
            return "Counting..."
        return plural(self.list_model.rowCount(), "mailbox", "mailboxes")

    def is_busy(self) -> bool:
        return self._scanning

    # -- actions ---------------------------------------------------------------------------

    def update_actions(self, rows: list[int]) -> None:
        self._selection = list(rows)
        set_enabled(self.open_mailbox, len(rows) == 1)
        set_enabled(self.std.properties, len(rows) == 1)

    def item_menu(self, rows: list[int]) -> list[MenuEntry]:
        return [self.open_mailbox, None, self.std.refresh]

    def toolbar_actions(self) -> list[QAction]:
        return [self.open_mailbox]

    def properties(self, rows: list[int]) -> None:
        """Double-click, Enter, Open or Properties: the mailbox's messages."""
        if len(rows) != 1:
            return
        summary = self.list_model.row_object(rows[0])
        self.dialogs[summary.name] = MailboxDialog.open_mailbox(
            self.parent_widget, self.console.tasks, summary, self.dialogs.get(summary.name)
        )
