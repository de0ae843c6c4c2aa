"""The Mailboxes list and one mailbox's messages as Qt models. GUI thread only."""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, Qt
from PySide6.QtGui import QFont

from app.mailstore.mailboxes import MailboxSummary, MessageSummary
from app.mailstore.usage import LimitState, MailboxUse
from ui import icons
from ui.models.table import Index, RowTableModel

log = logging.getLogger(__name__)


def size_text(size: int) -> str:
    """A size as Exchange's lists give it: whole kilobytes, rounded up (0 stays 0)."""
    return f"{math.ceil(size / 1024):,} KB"


def time_text(stamp: float | None) -> str:
    """A Unix time in local time to the minute; '' for None."""
    if stamp is None:
        return ""
    return datetime.fromtimestamp(stamp).astimezone().strftime("%Y-%m-%d %H:%M")


def limits_text(use: MailboxUse | None) -> str:
    """The Storage Limits column: where a mailbox stands against the limit that applies."""
    if use is None:
        return ""
    limits = use.limits
    if not limits.warn and not limits.prohibit:
        return "No limit"
    limit = limits.prohibit or limits.warn
    share = f"{use.size / (limit * 1024):.0%} of {limit:,} KB"
    state = use.state
    if state is LimitState.PROHIBITED:
        return f"Prohibit send and receive: {share}"
    if state is LimitState.WARNING:
        return f"Issue warning: {share}"
    return share


class MailboxListModel(RowTableModel[MailboxSummary]):
    """Mailboxes: Mailbox | Items | Size | Last Delivery | Storage Limits.

    The size is the Inbox's (``new/`` and ``cur/``); Storage Limits compares the whole mailbox,
    its Maildir++ folders (Junk …) too, with the limit that applies: the user's own or the
    Mailbox Store's default, as the SMTP service does at RCPT.
    """

    COL_MAILBOX, COL_ITEMS, COL_SIZE, COL_LAST, COL_LIMITS = range(5)
    HEADERS = ("Mailbox", "Items", "Size", "Last Delivery", "Storage Limits")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._uses: dict[str, MailboxUse] = {}

    def set_uses(self, uses: Sequence[MailboxUse]) -> None:
        """Each user's mailbox against its limits (from ``MailboxUsage.uses``)."""
        self._uses = {use.alias.lower(): use for use in uses}
        if self._rows:
            last = len(self._rows) - 1
            self.dataChanged.emit(self.index(0, self.COL_LIMITS), self.index(last, self.COL_LIMITS))

    def use(self, row: MailboxSummary) -> MailboxUse | None:
        """The row's mailbox against its limits; None for a folder no user owns."""
        return self._uses.get(row.alias.lower()) if row.has_user else None

    def key(self, row: MailboxSummary) -> Hashable:
        return row.name

    def display(self, row: MailboxSummary, column: int) -> str:
        if column == self.COL_MAILBOX:
            return row.display_name or row.name
        if column == self.COL_ITEMS:
            return f"{row.items:,}"
        if column == self.COL_SIZE:
            return size_text(row.size)
        if column == self.COL_LIMITS:
            return limits_text(self.use(row))
        return time_text(row.last_delivery)

    def sort_value(self, row: MailboxSummary, column: int) -> Any:
        if column == self.COL_ITEMS:
            return row.items
        if column == self.COL_SIZE:
            return row.size
        if column == self.COL_LAST:
            return row.last_delivery or 0.0
        if column == self.COL_LIMITS:
            use = self.use(row)
            if use is None or not (use.limits.prohibit or use.limits.warn):
                return -1.0
            return use.size / ((use.limits.prohibit or use.limits.warn) * 1024)
        return super().sort_value(row, column)

    def decoration(self, row: MailboxSummary, column: int) -> Any:
        return icons.icon("mailbox")

    def font(self, row: MailboxSummary, column: int) -> Any:
        if row.has_user:
            return None
        font = QFont()
        font.setItalic(True)
        return font

    def tooltip(self, row: MailboxSummary, column: int) -> str | None:
        if not row.has_user:
            return (
                f"No user owns this mailbox ({row.path}). Mail to postmaster lands here while "
                "no recipient has the alias postmaster or the postmaster setting names nobody; "
                "a deleted user's mail stays here too."
            )
        lines = [f"{row.alias} <{row.address}>" if row.address else row.alias, str(row.path)]
        if not row.exists:
            lines.append("No mail has been delivered yet.")
        use = self.use(row)
        if use is not None:
            limits = use.limits
            source = "the Mailbox Store's defaults" if limits.from_store else "the user's own"
            lines.append(
                f"Whole mailbox {size_text(use.size)}; issue warning at "
                f"{_kb(limits.warn)}, prohibit send and receive at {_kb(limits.prohibit)} "
                f"({source})."
            )
        return "\n".join(lines)


def _kb(kib: int) -> str:
    return f"{kib:,} KB" if kib else "no limit"


class MessageListModel(RowTableModel[MessageSummary]):
    """A mailbox's messages: From | Subject | Received | Size, newest first.

    Holds every message's summary but shows them ``BATCH`` rows at a time (``canFetchMore`` /
    ``fetchMore``), and sorts the whole list itself, so a big mailbox opens quickly and a sort
    is over every message, not only the rows fetched so far. Unread messages are bold.
    """

    COL_FROM, COL_SUBJECT, COL_RECEIVED, COL_SIZE = range(4)
    HEADERS = ("From", "Subject", "Received", "Size")
    BATCH = 500

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._shown = 0
        self._sort_column = self.COL_RECEIVED
        self._sort_order = Qt.SortOrder.DescendingOrder

    # -- contents --------------------------------------------------------------------------

    def set_messages(self, messages: Sequence[MessageSummary]) -> None:
        """Replace the list (a reset: the caller restores its selection by key)."""
        self.beginResetModel()
        self._rows = self._sorted(messages)
        self._shown = min(len(self._rows), max(self._shown, self.BATCH))
        self.endResetModel()

    def total(self) -> int:
        """Every message, fetched or not."""
        return len(self._rows)

    def message(self, row: int) -> MessageSummary:
        return self._rows[row]

    def row_of(self, key: Hashable) -> int | None:
        """The row of the message with this Maildir key, fetching rows up to it; None if absent."""
        number = super().row_of(key)
        if number is not None and number >= self._shown:
            self.beginInsertRows(QModelIndex(), self._shown, number)
            self._shown = number + 1
            self.endInsertRows()
        return number

    def _sort_key(self, message: MessageSummary) -> Any:
        column = self._sort_column
        if column == self.COL_FROM:
            return (message.sender.casefold(), message.received)
        if column == self.COL_SUBJECT:
            return (message.subject.casefold(), message.received)
        if column == self.COL_SIZE:
            return (message.size, message.received)
        return (message.received, message.key)

    def _sorted(self, messages: Sequence[MessageSummary]) -> list[MessageSummary]:
        return sorted(
            messages,
            key=self._sort_key,
            reverse=self._sort_order == Qt.SortOrder.DescendingOrder,
        )

    # -- RowTableModel ---------------------------------------------------------------------

    def key(self, row: MessageSummary) -> Hashable:
        return row.key

    def display(self, row: MessageSummary, column: int) -> str:
        if column == self.COL_FROM:
            return row.sender or "(no sender)"
        if column == self.COL_SUBJECT:
            return row.subject or "(no subject)"
        if column == self.COL_RECEIVED:
            return time_text(row.received)
        return size_text(row.size)

    def sort_value(self, row: MessageSummary, column: int) -> Any:
        if column == self.COL_FROM:
            return row.sender.casefold()
        if column == self.COL_SUBJECT:
            return row.subject.casefold()
        if column == self.COL_SIZE:
            return row.size
        return row.received

    def font(self, row: MessageSummary, column: int) -> Any:
        if not row.unread:
            return None
        font = QFont()
        font.setBold(True)
        return font

    def alignment(self, row: MessageSummary, column: int) -> Qt.AlignmentFlag | None:
        return Qt.AlignmentFlag.AlignRight if column == self.COL_SIZE else None

    # -- QAbstractTableModel: a batch at a time, sorted here -------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._shown

    def canFetchMore(self, parent: Index) -> bool:
        return not parent.isValid() and self._shown < len(self._rows)

    def fetchMore(self, parent: Index) -> None:
        if parent.isValid() or self._shown >= len(self._rows):
            return
        last = min(len(self._rows), self._shown + self.BATCH) - 1
        self.beginInsertRows(QModelIndex(), self._shown, last)
        self._shown = last + 1
        self.endInsertRows()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(self.HEADERS):
            return
        self.beginResetModel()
        self._sort_column, self._sort_order = column, order
        self._rows = self._sorted(self._rows)
        self.endResetModel()
