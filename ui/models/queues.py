"""The outbound queues (Default SMTP Virtual Server > Queues) and one queue's messages."""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QStyle

from app.outbound.queue import HopState, HopView, MessageView
from ui import icons
from ui.formatting import local_timestamp, shown_smtp
from ui.models.table import RowTableModel

log = logging.getLogger(__name__)

#: What each queue state means, for the State column's tooltip.
STATE_HELP = {
    HopState.READY: "Mail waits for a connection, which opens as soon as there is room",
    HopState.ACTIVE: "A connection is sending now",
    HopState.RETRY: "The last attempt failed; the queue waits for the retry interval",
    HopState.FROZEN: "An administrator froze the queue: nothing is sent until it is unfrozen",
}


def size_text(size: int) -> str:
    """A size as Exchange's queue lists show it: kilobytes, at least 1 KB for any message."""
    if size <= 0:
        return "0 KB"
    return f"{max(1, round(size / 1024)):,} KB"


def time_text(stamp: float) -> str:
    """A Unix time in local time, '' for none (0)."""
    return local_timestamp(stamp) if stamp > 0 else ""


def message_state(message: MessageView) -> str:
    """A message's own state: Frozen, Retry (it failed and waits) or Ready."""
    if message.frozen:
        return "Frozen"
    if message.attempts and message.next_retry:
        return "Retry"
    return "Ready"


def sender_text(sender: str) -> str:
    return shown_smtp(sender) if sender else "<>"


class QueueListModel(RowTableModel[HopView]):
    """The queues, one per next hop: Name | State | Messages | Size | Oldest | Next Retry |
    Last Error. GUI thread only."""

    COL_NAME, COL_STATE, COL_MESSAGES, COL_SIZE, COL_OLDEST, COL_NEXT_RETRY, COL_ERROR = range(7)
    HEADERS = ("Name", "State", "Messages", "Size", "Oldest", "Next Retry", "Last Error")

    def key(self, row: HopView) -> Hashable:
        return row.name

    def display(self, row: HopView, column: int) -> str:
        if column == self.COL_NAME:
            return row.name
        if column == self.COL_STATE:
            return row.state.value
        if column == self.COL_MESSAGES:
            return f"{row.count:,}"
        if column == self.COL_SIZE:
            return size_text(row.size)
        if column == self.COL_OLDEST:
            return time_text(row.oldest)
        if column == self.COL_NEXT_RETRY:
            return time_text(row.next_retry)
        return row.last_error

    def sort_value(self, row: HopView, column: int) -> Any:
        if column == self.COL_MESSAGES:
            return row.count
        if column == self.COL_SIZE:
            return row.size
        if column == self.COL_OLDEST:
            return row.oldest
        if column == self.COL_NEXT_RETRY:
            return row.next_retry
        return super().sort_value(row, column)

    def decoration(self, row: HopView, column: int) -> Any:
        if row.state is HopState.FROZEN:
            return QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MediaPause)
        if row.state is HopState.RETRY:
            return icons.icon("warning")
        return icons.icon("queues")

    def alignment(self, row: HopView, column: int) -> Qt.AlignmentFlag | None:
        if column in (self.COL_MESSAGES, self.COL_SIZE):
            return Qt.AlignmentFlag.AlignRight
        return None

    def tooltip(self, row: HopView, column: int) -> str | None:
        if column == self.COL_STATE:
            return STATE_HELP[row.state]
        if column == self.COL_ERROR:
            return row.last_error or None
        return None


class QueueMessageModel(RowTableModel[MessageView]):
    """One queue's messages: Sender | Recipients | Size | Submitted | Expires | State | Next
    Retry | Last Error (only the recipients waiting in this queue). GUI thread only."""

    COL_SENDER, COL_RECIPIENTS, COL_SIZE, COL_SUBMITTED, COL_EXPIRES = range(5)
    COL_STATE, COL_NEXT_RETRY, COL_ERROR = 5, 6, 7
    HEADERS = (
        "Sender",
        "Recipients",
        "Size",
        "Submitted",
        "Expires",
        "State",
        "Next Retry",
        "Last Error",
    )

    def key(self, row: MessageView) -> Hashable:
        return row.name

    def display(self, row: MessageView, column: int) -> str:
        if column == self.COL_SENDER:
            return sender_text(row.sender)
        if column == self.COL_RECIPIENTS:
            return ", ".join(shown_smtp(address) for address in row.recipients)
        if column == self.COL_SIZE:
            return size_text(row.size)
        if column == self.COL_SUBMITTED:
            return time_text(row.submitted)
        if column == self.COL_EXPIRES:
            return time_text(row.expires)
        if column == self.COL_STATE:
            return message_state(row)
        if column == self.COL_NEXT_RETRY:
            return time_text(row.next_retry) if not row.frozen else ""
        return row.last_error

    def sort_value(self, row: MessageView, column: int) -> Any:
        if column == self.COL_SIZE:
            return row.size
        if column == self.COL_SUBMITTED:
            return row.submitted
        if column == self.COL_EXPIRES:
            return row.expires
        if column == self.COL_NEXT_RETRY:
            return row.next_retry
        return super().sort_value(row, column)

    def decoration(self, row: MessageView, column: int) -> Any:
        if row.frozen:
            return QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MediaPause)
        return icons.icon("message-tracking")

    def alignment(self, row: MessageView, column: int) -> Qt.AlignmentFlag | None:
        return Qt.AlignmentFlag.AlignRight if column == self.COL_SIZE else None

    def tooltip(self, row: MessageView, column: int) -> str | None:
        if column in (self.COL_RECIPIENTS, self.COL_ERROR):
            return self.display(row, column) or None
        return None
