"""… > Default SMTP Virtual Server > Current Sessions: the clients connected now."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer

from ui import icons
from ui.actions import MenuEntry
from ui.formatting import local_timestamp, plural
from ui.models.table import RowTableModel
from ui.views.base import ResultView

if TYPE_CHECKING:
    from app.smtp.protocol import Connection
    from ui.console import Console
    from ui.node import Node

REFRESH_MS = 2000


class SessionListModel(RowTableModel["Connection"]):
    """SMTP sessions: Connected From | User | Connected Since | Messages | Security."""

    COL_FROM, COL_USER, COL_SINCE, COL_MESSAGES, COL_SECURITY = range(5)
    HEADERS = ("Connected From", "User", "Connected Since", "Messages", "Security")

    def key(self, row: Connection) -> Hashable:
        return row.id

    def display(self, row: Connection, column: int) -> str:
        if column == self.COL_FROM:
            return row.client
        if column == self.COL_USER:
            return row.user or "Anonymous"
        if column == self.COL_SINCE:
            return local_timestamp(row.started)
        if column == self.COL_MESSAGES:
            return f"{row.messages:,}"
        return "TLS" if row.tls else "None"

    def sort_value(self, row: Connection, column: int) -> Any:
        if column == self.COL_SINCE:
            return row.started
        if column == self.COL_MESSAGES:
            return row.messages
        return super().sort_value(row, column)

    def decoration(self, row: Connection, column: int) -> Any:
        return icons.icon("user" if row.user else "current-sessions")


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
