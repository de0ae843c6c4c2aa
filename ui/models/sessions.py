"""The SMTP service's current sessions as a list: who is connected, since when, how."""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from ui import icons
from ui.formatting import local_timestamp
from ui.models.table import RowTableModel

if TYPE_CHECKING:  # the SMTP package is optional: see ui.services._smtp_service_class
    from app.smtp.protocol import Connection

log = logging.getLogger(__name__)


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
