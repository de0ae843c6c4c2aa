"""Following the store from the GUI thread: a poll of its change counter, twice a second."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer, Signal

from app.store import Store

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
