"""What every view and dialog of the console shares: the store, background tasks, the services."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, QTimer, Signal
from PySide6.QtWidgets import QWidget

from app.store import Store
from ui.services import RusBridge, SmtpBridge
from ui.tasks import TaskRunner
from ui.views.base import StandardActions

log = logging.getLogger(__name__)

POLL_INTERVAL_MS = 500


class ChangeWatcher(QObject):
    """Polls the store's change counter on the GUI thread; ``changed`` when anything committed.

    The counter moves with every committed change from any process (the CLI, ``postroom serve``,
    the RUS thread), so the lists follow them all. One indexed read per poll: cheap, and in WAL
    mode never blocked by a writer.
    """

    changed = Signal()

    def __init__(self, store: Store, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._last = store.change_counter()
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_INTERVAL_MS)
        self._timer.timeout.connect(self.poll)

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def poll(self) -> None:
        counter = self._store.change_counter()
        if counter != self._last:
            self._last = counter
            self.changed.emit()


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
        self.rus = RusBridge(store, self)
        self.standard_actions = StandardActions(self)
        self.window: QWidget | None = None

    @property
    def data_dir(self) -> Path:
        return self.store.paths.root

    def start(self, *, services: bool = True) -> None:
        """Start watching for changes and, unless told not to, the RUS and SMTP services."""
        self.watcher.start()
        if services:
            self.rus.start()
            self.smtp.start_if_autostart()

    def shutdown(self) -> None:
        """Stop the services and wait for background work; at exit only."""
        self.watcher.stop()
        self.smtp.shutdown()
        self.rus.shutdown()
        self.tasks.shutdown()
