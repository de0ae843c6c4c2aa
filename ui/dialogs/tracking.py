"""The Message Tracking Center's dialogs: the search, and one message's history."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from PySide6.QtCore import QDateTime, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.smtp.tracking import (
    TrackingQuery,
    TrackingRow,
    message_entries,
    queue_id_of,
    time_text,
)
from app.store import Store
from ui import icons
from ui.formatting import shown_smtp
from ui.models.tracking import (
    EVENT_TEXT,
    MESSAGE_EVENTS,
    QUEUE_EVENTS,
    SESSION_EVENTS,
    TrackingEventModel,
    event_time,
)
from ui.tasks import TaskRunner
from ui.widgets import list_view

log = logging.getLogger(__name__)

#: The choices of "Show", each with the events it selects (empty: every event).
EVENT_CHOICES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Every message event", MESSAGE_EVENTS),
    ("Refused and failed only", ("rejected", "failed")),
    ("Deliveries only", ("delivered",)),
    ("Sent onward only", ("sent",)),
    ("The queue's problems: deferred, bounced, expired, deleted", QUEUE_EVENTS[1:]),
    ("Everything, with connections", ()),
)
RANGE_BACKWARDS = "The end of the time range is before its start: correct one of them."
DATE_FORMAT = "yyyy-MM-dd HH:mm"


def _to_qt(stamp: str) -> QDateTime:
    return QDateTime.fromSecsSinceEpoch(int(datetime.fromisoformat(stamp).timestamp()))


def _from_qt(moment: QDateTime) -> str:
    return time_text(datetime.fromtimestamp(moment.toSecsSinceEpoch(), UTC))


class TrackingSearchDialog(QDialog):
    """Find Messages: sender, recipient, Message-ID, the time range and which events."""

    def __init__(self, parent: QWidget | None, criteria: TrackingQuery) -> None:
        super().__init__(parent)
        self.setObjectName("trackingSearchDialog")
        self.setWindowTitle("Find Messages")
        self.setWindowIcon(icons.icon("message-tracking"))
        self.sender_edit = QLineEdit(self)
        self.sender_edit.setPlaceholderText("part of the sender's address")
        self.recipient_edit = QLineEdit(self)
        self.recipient_edit.setPlaceholderText("part of a recipient's address")
        self.message_id_edit = QLineEdit(self)
        self.message_id_edit.setPlaceholderText("part of the Message-ID")
        self.events = QComboBox(self)
        for text, events in EVENT_CHOICES:
            self.events.addItem(text, events)
        form = QFormLayout()
        form.addRow("&Sender:", self.sender_edit)
        form.addRow("&Recipient:", self.recipient_edit)
        form.addRow("&Message-ID:", self.message_id_edit)
        form.addRow("S&how:", self.events)

        now = QDateTime.currentDateTime()
        self.use_since = QCheckBox("&From:", self)
        self.since = QDateTimeEdit(now.addDays(-1), self)
        self.use_until = QCheckBox("&To:", self)
        self.until = QDateTimeEdit(now.addSecs(3600), self)
        times = QGroupBox("Logged between", self)
        grid = QGridLayout(times)
        for row, (check, edit) in enumerate(
            ((self.use_since, self.since), (self.use_until, self.until))
        ):
            edit.setDisplayFormat(DATE_FORMAT)
            edit.setCalendarPopup(True)
            grid.addWidget(check, row, 0)
            grid.addWidget(edit, row, 1)
            check.toggled.connect(edit.setEnabled)
            check.toggled.connect(self._validate)
            edit.dateTimeChanged.connect(self._validate)
        self.feedback = QLabel(self)
        self.feedback.setObjectName("searchFeedback")
        self.feedback.setWordWrap(True)
        self.feedback.hide()

        self.buttons = QDialogButtonBox(self)
        self.find_button = self.buttons.addButton(
            "&Find Now", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.find_button.setDefault(True)
        self.clear_button = QPushButton("C&lear", self)
        self.buttons.addButton(self.clear_button, QDialogButtonBox.ButtonRole.ResetRole)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.clear_button.clicked.connect(lambda: self.load(TrackingQuery(events=MESSAGE_EVENTS)))

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(times)
        layout.addWidget(self.feedback)
        layout.addWidget(self.buttons)
        self.load(criteria)
        self.resize(460, self.sizeHint().height())

    def load(self, criteria: TrackingQuery) -> None:
        self.sender_edit.setText(criteria.sender)
        self.recipient_edit.setText(criteria.recipient)
        self.message_id_edit.setText(criteria.message_id)
        wanted = set(criteria.events)
        choice = next(
            (n for n, (_, events) in enumerate(EVENT_CHOICES) if set(events) == wanted), 0
        )
        self.events.setCurrentIndex(choice)
        for check, edit, stamp in (
            (self.use_since, self.since, criteria.since),
            (self.use_until, self.until, criteria.until),
        ):
            if stamp:
                edit.setDateTime(_to_qt(stamp))
            check.setChecked(bool(stamp))
            edit.setEnabled(bool(stamp))
        self._validate()

    def criteria(self) -> TrackingQuery:
        """The search as the fields say it."""
        events = self.events.currentData()
        return TrackingQuery(
            sender=self.sender_edit.text().strip(),
            recipient=self.recipient_edit.text().strip(),
            message_id=self.message_id_edit.text().strip(),
            since=_from_qt(self.since.dateTime()) if self.use_since.isChecked() else "",
            until=_from_qt(self.until.dateTime()) if self.use_until.isChecked() else "",
            events=tuple(events) if events else (),
        )

    def problem(self) -> str:
        """Why the search cannot run as it stands, or ''."""
        if (
            self.use_since.isChecked()
            and self.use_until.isChecked()
            and self.until.dateTime() <= self.since.dateTime()
        ):
            return RANGE_BACKWARDS
        return ""

    def _validate(self, *_: object) -> None:
        problem = self.problem()
        self.feedback.setText(problem)
        self.feedback.setVisible(bool(problem))
        self.find_button.setEnabled(not problem)

    def accept(self) -> None:
        if not self.problem():
            super().accept()

    @classmethod
    def ask(cls, parent: QWidget | None, criteria: TrackingQuery) -> TrackingQuery | None:
        """The search the administrator asks for (starting from ``criteria``), or None."""
        dialog = cls(parent, criteria)
        try:
            return dialog.criteria() if dialog.exec() == QDialog.DialogCode.Accepted else None
        finally:
            dialog.deleteLater()


class MessageHistoryDialog(QDialog):
    """One log entry in full, and every entry of the same message (by its Message-ID)."""

    loaded = Signal()
    """The message's entries are listed."""

    def __init__(
        self, parent: QWidget | None, store: Store, tasks: TaskRunner, entry: TrackingRow
    ) -> None:
        super().__init__(parent)
        self.setObjectName("messageHistoryDialog")
        self.setWindowTitle("Message History")
        self.setWindowIcon(icons.icon("message-tracking"))
        self.entry = entry
        form = QFormLayout()
        self.fields: dict[str, QLabel] = {}
        code = f"{entry.code}" if entry.code is not None else ""
        for label, value in (
            ("Time", event_time(entry.time)),
            ("Event", EVENT_TEXT.get(entry.event, entry.event)),
            ("Reply", " ".join(part for part in (code, entry.reason) if part)),
            ("Sender", "" if entry.event in SESSION_EVENTS else shown_smtp(entry.sender) or "<>"),
            ("Recipients", ", ".join(shown_smtp(r) for r in entry.recipients)),
            ("Client", entry.client),
            ("Message-ID", entry.message_id or "(none)"),
        ):
            field = QLabel(value, self)
            field.setWordWrap(True)
            field.setTextFormat(Qt.TextFormat.PlainText)
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.fields[label] = field
            form.addRow(f"{label}:", field)
        self.entries = TrackingEventModel(self)
        self.list = list_view(self, "historyList")
        self.list.setModel(self.entries)
        for column, width in enumerate((170, 75, 150, 150, 40, 240)):
            self.list.setColumnWidth(column, width)
        self.history_label = QLabel(self)
        self.history_label.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.history_label)
        layout.addWidget(self.list, 1)
        layout.addWidget(buttons)
        self.resize(820, 520)
        self._queried = bool(entry.message_id or queue_id_of(entry))
        if self._queried:
            self.history_label.setText("Every entry of this message, oldest first: reading...")
            tasks.submit(
                "read a message's history",
                message_entries,
                store,
                entry,
                on_success=self._show_entries,
                on_failure=self._failed,
            )
        else:
            self.history_label.setText(
                "This entry belongs to no message: the command was refused before a message "
                "was sent."
            )
            self._show_entries([entry])

    def _show_entries(self, rows: list[TrackingRow]) -> None:
        self.entries.replace(rows, more=False)
        if self._queried:
            self.history_label.setText(f"Every entry of this message, oldest first ({len(rows)}):")
        self.loaded.emit()

    def _failed(self, error: Exception) -> None:
        self.history_label.setText(f"Cannot read the message's history: {error}")
        self.loaded.emit()

    @classmethod
    def show_history(
        cls, parent: QWidget | None, store: Store, tasks: TaskRunner, entry: TrackingRow
    ) -> None:
        """Show the entry and its message's history until the administrator closes it."""
        dialog = cls(parent, store, tasks, entry)
        try:
            dialog.exec()
        finally:
            dialog.deleteLater()
