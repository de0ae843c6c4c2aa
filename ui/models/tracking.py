"""The message tracking log as a Qt model: a page of entries at a time, newest first."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Signal
from PySide6.QtWidgets import QApplication, QStyle

from app.smtp.tracking import TrackingRow
from ui import icons
from ui.formatting import shown_smtp
from ui.models.table import RowTableModel

log = logging.getLogger(__name__)

Index = QModelIndex | QPersistentModelIndex

EVENT_TEXT = {
    "received": "Received",
    "delivered": "Delivered",
    "queued": "Queued",
    "rejected": "Rejected",
    "failed": "Failed",
    "sent": "Sent",
    "deferred": "Deferred",
    "bounced": "Bounced",
    "expired": "Expired",
    "deleted": "Deleted",
    "session-opened": "Session opened",
    "session-closed": "Session closed",
}
#: What each event means, for tooltips and the search dialog.
EVENT_HELP = {
    "received": "The message was accepted (250 after every copy was on disk)",
    "delivered": "A copy is in a user's mailbox",
    "queued": "A copy waits in the queue to be sent onward",
    "rejected": "A command was refused; the reply says why",
    "failed": "The message could not be stored; the sender was told to retry (451)",
    "sent": "The next hop took a recipient's copy (the reply and the host that gave it)",
    "deferred": "A temporary failure: the queue retries (the reason says when)",
    "bounced": "A permanent failure: the sender gets a non-delivery report",
    "expired": "Still undelivered at the expiration timeout: the sender gets a non-delivery report",
    "deleted": "An administrator deleted it from the queue (with or without a report)",
    "session-opened": "A client connected",
    "session-closed": "A client went away",
}
MESSAGE_EVENTS = (
    "received",
    "delivered",
    "queued",
    "rejected",
    "failed",
    "sent",
    "deferred",
    "bounced",
    "expired",
    "deleted",
)
#: What the outbound queue did with the mail it holds.
QUEUE_EVENTS = ("sent", "deferred", "bounced", "expired", "deleted")
SESSION_EVENTS = ("session-opened", "session-closed")


def event_time(stamp: str) -> str:
    """A log time (ISO 8601 UTC) in local time to the second."""
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return stamp


def event_icon(event: str) -> Any:
    if event in ("rejected", "failed", "bounced", "expired"):
        return QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxCritical)
    if event == "delivered":
        return icons.icon("mailbox")
    if event == "sent":
        return icons.icon("connectors")
    if event == "deferred":
        return icons.icon("warning")
    if event == "deleted":
        return icons.icon("delete")
    if event == "queued":
        return icons.icon("queues")
    if event in SESSION_EVENTS:
        return icons.icon("current-sessions")
    return icons.icon("message-tracking")


class TrackingEventModel(RowTableModel[TrackingRow]):
    """Tracking log entries: Time | Event | Sender | Recipients | Code | Reason | Client |
    Message-ID.

    Rows come a page at a time: ``canFetchMore`` is true while the last page was full, and
    ``fetchMore`` only asks for the next one (``fetch_requested``); whoever owns the model reads
    it off the GUI thread and hands it to ``add_page``. GUI thread only.
    """

    COL_TIME, COL_EVENT, COL_SENDER, COL_RECIPIENTS, COL_CODE, COL_REASON = range(6)
    COL_CLIENT, COL_MESSAGE_ID = 6, 7
    HEADERS = (
        "Time",
        "Event",
        "Sender",
        "Recipients",
        "Code",
        "Reason",
        "Client",
        "Message-ID",
    )

    fetch_requested = Signal()
    """The view scrolled to the end and older entries may exist: read the next page."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.more = False
        self.loading = False
        self._ids: set[int] = set()

    # -- contents --------------------------------------------------------------------------

    def key(self, row: TrackingRow) -> Hashable:
        return row.id

    def replace(self, rows: Sequence[TrackingRow], more: bool) -> None:
        """Show ``rows`` (the first page of a new search); ``more``: older ones may exist."""
        self.set_rows(rows)
        self._ids = {row.id for row in rows if row.id is not None}
        self.more = more

    def add_page(self, rows: Sequence[TrackingRow], more: bool | None = None) -> None:
        """Add entries not shown yet (an older page, or newer entries); ``more`` as in
        ``replace`` when this was an older page."""
        fresh = [row for row in rows if row.id not in self._ids]
        if fresh:
            first = self.rowCount()
            self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
            self._rows.extend(fresh)
            self.endInsertRows()
            self._ids.update(row.id for row in fresh if row.id is not None)
        if more is not None:
            self.more = more

    def newest_id(self) -> int:
        return max(self._ids, default=0)

    def oldest_id(self) -> int | None:
        return min(self._ids, default=None)

    # -- what a row shows ------------------------------------------------------------------

    def display(self, row: TrackingRow, column: int) -> str:
        if column == self.COL_TIME:
            return event_time(row.time)
        if column == self.COL_EVENT:
            return EVENT_TEXT.get(row.event, row.event)
        if column == self.COL_SENDER:
            if row.event in SESSION_EVENTS:
                return ""
            return shown_smtp(row.sender) if row.sender else "<>"
        if column == self.COL_RECIPIENTS:
            return ", ".join(shown_smtp(address) for address in row.recipients)
        if column == self.COL_CODE:
            return str(row.code) if row.code is not None else ""
        if column == self.COL_REASON:
            return row.reason
        if column == self.COL_CLIENT:
            return row.client
        return row.message_id

    def sort_value(self, row: TrackingRow, column: int) -> Any:
        if column == self.COL_TIME:
            # One string (the proxy compares QVariants): the time, then the order written.
            return f"{row.time}#{row.id or 0:012d}"
        if column == self.COL_CODE:
            return row.code or 0
        return super().sort_value(row, column)

    def decoration(self, row: TrackingRow, column: int) -> Any:
        return event_icon(row.event)

    def tooltip(self, row: TrackingRow, column: int) -> str | None:
        if column == self.COL_EVENT:
            return EVENT_HELP.get(row.event)
        if column in (self.COL_REASON, self.COL_RECIPIENTS):
            return self.display(row, column) or None
        return None

    # -- lazy paging -----------------------------------------------------------------------

    def canFetchMore(self, parent: Index) -> bool:
        return not parent.isValid() and self.more and not self.loading

    def fetchMore(self, parent: Index) -> None:
        if self.canFetchMore(parent):
            self.loading = True
            self.fetch_requested.emit()
