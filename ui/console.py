"""What every view of the console shares: the store, background tasks, services, actions.

It sits below the views (each gets it) and above the bridges, the task runner, the change watcher
and the actions. Dialogs never get it: they take the app objects they need.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QWidget

from app.store import Store
from ui.actions import StandardActions
from ui.services import DovecotBridge, RusBridge, SmtpBridge
from ui.tasks import TaskRunner
from ui.watcher import ChangeWatcher

log = logging.getLogger(__name__)


class Console(QObject):
    """The shared state of one console window. Lives on, and is used from, the GUI thread."""

    navigate_requested = Signal(object)
    """A view asks the window to select this tree node (e.g. double-click on a child node)."""
    select_requested = Signal(object, object)
    """A view asks the window to show this node and select the row with this model key."""

    def __init__(
        self,
        store: Store,
        settings: QSettings,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.settings = settings
        self.tasks = TaskRunner(self)
        self.watcher = ChangeWatcher(store, self)
        self.smtp = SmtpBridge(store, self)
        self.dovecot = DovecotBridge(store, self)
        self.rus = RusBridge(store, self)
        self.standard_actions = StandardActions(self)
        self.window: QWidget | None = None
        self.current_view: QObject | None = None
        """The view the window shows now (the window sets it; see ResultView.is_current)."""
        self.is_shut_down = False

    @property
    def data_dir(self) -> Path:
        return self.store.paths.root

    def start(self, *, services: bool = True) -> None:
        """Start watching for changes and, unless told not to, the RUS, SMTP and Dovecot."""
        self.watcher.start()
        if services:
            self.rus.start()
            self.smtp.start_if_autostart()
            self.dovecot.start_if_autostart()  # IMAP4 and POP3 beside SMTP

    def shutdown(self) -> None:
        """Stop the services and wait for background work; at exit only. A second call does
        nothing, so whoever closes the window (the app, a test, its fixture) may call it."""
        if self.is_shut_down:
            return
        self.is_shut_down = True
        self.watcher.stop()
        self.smtp.shutdown()
        self.dovecot.shutdown()
        self.rus.shutdown()
        self.tasks.shutdown()
