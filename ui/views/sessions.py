"""… > Default SMTP Virtual Server > Current Sessions: the clients connected now."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer

from ui.actions import MenuEntry
from ui.formatting import plural
from ui.models.sessions import SessionListModel
from ui.views.base import ResultView

if TYPE_CHECKING:
    from ui.console import Console
    from ui.node import Node

log = logging.getLogger(__name__)

REFRESH_MS = 2000


class CurrentSessionsView(ResultView):
    """Who is connected to the SMTP service; follows session events and polls while shown."""

    default_column_widths = (220, 120, 140, 80)

    def __init__(self, console: Console, node: Node) -> None:
        super().__init__(console, node)
        self.smtp = console.smtp
        self.list_model = SessionListModel(self)
        self.model = self.list_model
        self.smtp.smtp_event.connect(self._on_event)
        self.smtp.state_changed.connect(self.refresh)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)

    def shown(self) -> None:
        self._timer.start()
        super().shown()

    def _on_event(self, event: Any) -> None:
        if getattr(event, "kind", "") in ("session-opened", "session-closed", "received"):
            self.refresh()

    def refresh(self) -> None:
        self.list_model.set_rows(self.smtp.sessions())
        self.status_changed.emit()

    def status_text(self) -> str:
        if not self.smtp.is_running:
            return "The SMTP service is not running"
        return plural(self.list_model.rowCount(), "session")

    def item_menu(self, rows: list[int]) -> list[MenuEntry]:
        return [self.std.refresh]
