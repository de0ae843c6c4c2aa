"""A mailbox's messages (From, Subject, Received, Size) and a message read-only: headers and text.

Listing and reading go through ``app.mailstore.mailboxes`` on the task runner it is given, so a big
mailbox or a big message never holds up the GUI thread; while the window is open it checks
the Maildir's folders in the background and lists new mail as it arrives.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase, QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.errors import NotFoundError, PostroomError
from app.mailstore.mailboxes import (
    MailboxSummary,
    MessageContent,
    MessageSummary,
    folder_stamp,
    list_messages,
    read_message,
)
from ui import icons
from ui.formatting import plural
from ui.models.mailboxes import MessageListModel, size_text
from ui.tasks import TaskRunner
from ui.watcher import POLL_INTERVAL_MS
from ui.widgets import list_view

log = logging.getLogger(__name__)

SUMMARY_HEADERS = ("From", "To", "Cc", "Subject", "Date")


def list_if_changed(
    maildir: Path, known: tuple[int, int] | None, force: bool
) -> tuple[tuple[int, int] | None, list[MessageSummary] | None]:
    """Worker thread: the Maildir's stamp, and its messages when the stamp moved (or ``force``)."""
    stamp = folder_stamp(maildir)
    if stamp == known and not force:
        return stamp, None
    return stamp, list_messages(maildir)


class MessageView(QWidget):
    """One message, read-only: its headers, a note when the text is not simply the plain-text
    part, the text, and the parts not shown (attachments)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        fixed = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.summary = QLabel(self)
        self.summary.setObjectName("messageSummary")
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setWordWrap(True)
        self.headers = QPlainTextEdit(self)
        self.headers.setObjectName("messageHeaders")
        self.headers.setReadOnly(True)
        self.headers.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.headers.setFont(fixed)
        self.note = QLabel(self)
        self.note.setObjectName("messageNote")
        self.note.setWordWrap(True)
        self.note.hide()
        self.text = QPlainTextEdit(self)
        self.text.setObjectName("messageText")
        self.text.setReadOnly(True)
        self.text.setFont(fixed)
        self.parts = QLabel(self)
        self.parts.setObjectName("messageParts")
        self.parts.setWordWrap(True)
        self.parts.setTextFormat(Qt.TextFormat.PlainText)
        self.parts.hide()
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.addWidget(self.headers)
        self.splitter.addWidget(self.text)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([90, 300])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.note)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.parts)
        self.content: MessageContent | None = None
        self.clear()

    def clear(self, text: str = "") -> None:
        """Show no message, only ``text`` (e.g. "Reading…" or why it cannot be shown)."""
        self.content = None
        self.summary.setText(html.escape(text))
        self.headers.clear()
        self.text.clear()
        self.note.hide()
        self.parts.hide()

    def show_content(self, content: MessageContent) -> None:
        self.content = content
        lines = [
            f"<b>{name}:</b> {html.escape(content.header(name))}"
            for name in SUMMARY_HEADERS
            if content.header(name)
        ]
        self.summary.setText("<br>".join(lines))
        self.headers.setPlainText("\n".join(f"{name}: {value}" for name, value in content.headers))
        self.note.setText(content.note)
        self.note.setVisible(bool(content.note))
        self.text.setPlainText(content.text)
        if content.parts:
            described = "; ".join(
                f"{part.filename or '(no name)'} ({part.content_type}, {size_text(part.size)})"
                for part in content.parts
            )
            self.parts.setText(f"Other parts, not shown: {described}")
        self.parts.setVisible(bool(content.parts))


class MessageDialog(QDialog):
    """A message in a window of its own, read-only."""

    def __init__(self, parent: QWidget | None, content: MessageContent) -> None:
        super().__init__(parent)
        self.setObjectName("messageDialog")
        subject = content.header("Subject") or "(no subject)"
        self.setWindowTitle(f"{subject} - Message")
        self.setWindowIcon(icons.icon("mailbox"))
        self.view = MessageView(self)
        self.view.show_content(content)
        self.view.splitter.setSizes([160, 360])
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view, 1)
        layout.addWidget(buttons)
        self.resize(760, 600)

    @classmethod
    def show_message(cls, parent: QWidget | None, content: MessageContent) -> None:
        """Show the message until the administrator closes it."""
        dialog = cls(parent, content)
        try:
            dialog.exec()
        finally:
            dialog.deleteLater()


class MailboxDialog(QDialog):
    """One mailbox: its messages above, the selected one below. Not modal, kept for reuse."""

    listed = Signal()
    """The message list was (re)read and is shown."""
    message_shown = Signal(str)
    """The preview shows the message with this key, or why it cannot."""

    def __init__(self, parent: QWidget | None, tasks: TaskRunner, summary: MailboxSummary) -> None:
        super().__init__(parent)
        self.setObjectName("mailboxDialog")
        self.setWindowIcon(icons.icon("mailbox"))
        self.tasks = tasks
        self.summary = summary
        self._stamp: tuple[int, int] | None = None
        self._listing = False
        self._list_again = False
        self._reading: str | None = None
        self._open_when_read: str | None = None

        self.info = QLabel(self)
        self.info.setObjectName("mailboxInfo")
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.messages = MessageListModel(self)
        self.list = list_view(self, "messageList")
        self.list.setModel(self.messages)
        self.list.setSortingEnabled(True)
        self.list.header().setSortIndicator(
            MessageListModel.COL_RECEIVED, Qt.SortOrder.DescendingOrder
        )
        for column, width in enumerate((220, 300, 130)):
            self.list.setColumnWidth(column, width)
        self.list.selectionModel().currentRowChanged.connect(self._current_changed)
        self.list.activated.connect(self._activated)
        self.messages.modelReset.connect(self._restore_current)
        self.preview = MessageView(self)

        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.list)
        splitter.addWidget(self.preview)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([220, 380])

        self.open_button = QPushButton("&Open", self)
        self.open_button.clicked.connect(lambda: self._activated(self.list.currentIndex()))
        self.refresh_button = QPushButton(icons.icon("refresh"), "&Refresh", self)
        self.refresh_button.clicked.connect(self.refresh)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.addButton(self.open_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.refresh_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.info)
        layout.addWidget(splitter, 1)
        layout.addWidget(buttons)
        self._current_key = ""
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_INTERVAL_MS)
        self._poll.timeout.connect(self._poll_maildir)
        self.resize(820, 640)
        self.set_summary(summary)

    # -- the list --------------------------------------------------------------------------

    def set_summary(self, summary: MailboxSummary) -> None:
        self.summary = summary
        name = summary.display_name or summary.name
        self.setWindowTitle(f"{name} - Mailbox")
        self._show_info()

    def _show_info(self) -> None:
        count = self.messages.total()
        size = sum(self.messages.message(row).size for row in range(count))
        self.info.setText(f"{plural(count, 'message')}, {size_text(size)}     {self.summary.path}")

    def refresh(self) -> None:
        """Read the message list again (in the background)."""
        self._list(force=True)

    def _poll_maildir(self) -> None:
        console_window = self.parentWidget()
        if console_window is None or console_window.isVisible():  # not once the console closes
            self._list(force=False)

    def _list(self, *, force: bool) -> None:
        if self._listing:
            self._list_again = self._list_again or force
            return
        self._listing = True
        self.tasks.submit(
            "list messages",
            list_if_changed,
            self.summary.path,
            self._stamp,
            force,
            on_success=self._listed,
            on_failure=self._list_failed,
        )

    def _listed(self, outcome: tuple[tuple[int, int] | None, list[MessageSummary] | None]) -> None:
        self._listing = False
        stamp, found = outcome
        self._stamp = stamp
        if found is not None:
            self._current_key = self._key_at(self.list.currentIndex()) or self._current_key
            self.messages.set_messages(found)
            self._show_info()
            self.listed.emit()
        if self._list_again:
            self._list_again = False
            self._list(force=True)

    def _list_failed(self, error: Exception) -> None:
        self._listing = False
        self.info.setText(f"Cannot list the messages: {error}")

    def _restore_current(self) -> None:
        """After the list was re-read or sorted, select the message that was selected."""
        row = self.messages.row_of(self._current_key) if self._current_key else None
        if row is None:
            if self._current_key:
                self.preview.clear("The message is no longer in the mailbox.")
                self._current_key = ""
            return
        index = self.messages.index(row, 0)
        self.list.selectionModel().setCurrentIndex(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.list.scrollTo(index)

    def _key_at(self, index: QModelIndex) -> str:
        if not index.isValid() or index.row() >= self.messages.rowCount():
            return ""
        return self.messages.message(index.row()).key

    # -- reading ---------------------------------------------------------------------------

    def select_message(self, key: str) -> bool:
        """Select the message with this Maildir key (the preview then reads it)."""
        row = self.messages.row_of(key)
        if row is None:
            return False
        self.list.setCurrentIndex(self.messages.index(row, 0))
        return True

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        key = self._key_at(current)
        if not key or key == (self.preview.content.key if self.preview.content else None):
            self._current_key = key or self._current_key
            return
        self._current_key = key
        self._read(key)

    def _read(self, key: str) -> None:
        self._reading = key
        self.preview.clear("Reading the message...")
        self.tasks.submit(
            "read message",
            read_message,
            self.summary.path,
            key,
            on_success=self._read_done,
            on_failure=lambda error: self._read_failed(key, error),
        )

    def _read_done(self, content: MessageContent) -> None:
        if content.key != self._reading:
            return  # another message was selected meanwhile
        self._reading = None
        self.preview.show_content(content)
        self.message_shown.emit(content.key)
        if self._open_when_read == content.key:
            self._open_when_read = None
            MessageDialog.show_message(self, content)

    def _read_failed(self, key: str, error: Exception) -> None:
        if key != self._reading:
            return
        self._reading = None
        self._open_when_read = None
        if isinstance(error, PostroomError):
            self.preview.clear(str(error))
        else:
            self.preview.clear(f"Cannot read the message: {error}")
        self.message_shown.emit(key)
        if isinstance(error, NotFoundError):
            self.refresh()

    def _activated(self, index: QModelIndex) -> None:
        """Double-click, Enter or Open: the message in a window of its own."""
        key = self._key_at(index)
        if not key:
            return
        content = self.preview.content
        if content is not None and content.key == key:
            MessageDialog.show_message(self, content)
        else:
            self._open_when_read = key
            if self._reading != key:
                self._read(key)

    # -- life cycle ------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._poll.start()

    def hideEvent(self, event: QHideEvent) -> None:
        self._poll.stop()
        super().hideEvent(event)

    @classmethod
    def open_mailbox(
        cls,
        parent: QWidget | None,
        tasks: TaskRunner,
        summary: MailboxSummary,
        existing: MailboxDialog | None = None,
    ) -> MailboxDialog:
        """Show the mailbox's window (the one already made for it, if any) and list its
        messages; returns the window, which stays open beside the console."""
        dialog = existing if existing is not None else cls(parent, tasks, summary)
        dialog.set_summary(summary)
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        dialog.refresh()
        return dialog
