"""A queue's messages (Find Messages) and one queued message's envelope (Properties).

Every action goes through ``app.outbound.control.submit``, which waits up to 15 s for the
running queue to carry it out, so it runs on the task runner; so does reading the queue.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.errors import PostroomError
from app.outbound import control
from app.outbound.queue import Action, HopView, MessageView, Request
from app.store import Store
from ui import icons, messages
from ui.actions import fill_menu, make_action, set_enabled
from ui.formatting import plural, shown_smtp
from ui.models.queues import (
    QueueMessageModel,
    message_state,
    sender_text,
    size_text,
    time_text,
)
from ui.tasks import TaskRunner
from ui.widgets import SelectionMode, list_view

log = logging.getLogger(__name__)

#: How often an open list re-reads the queue (milliseconds).
REFRESH_MS = 2000


@dataclass(frozen=True)
class Outcome:
    """What a batch of requests did: the engine's line for each one done or refused."""

    done: tuple[str, ...]
    refused: tuple[str, ...]


def carry_out(store: Store, requests: Sequence[Request]) -> Outcome:
    """Worker thread: submit each request to the queue's owner (up to 15 s each)."""
    done: list[str] = []
    refused: list[str] = []
    for request in requests:
        try:
            done.append(control.submit(store, request))
        except PostroomError as error:
            refused.append(str(error))
    return Outcome(tuple(done), tuple(refused))


def read_hop(store: Store, name: str) -> HopView | None:
    """Worker thread: the queue ``name`` as it is now, None when no mail waits in it."""
    return next((hop for hop in control.snapshot(store) if hop.name == name), None)


def confirm_delete(parent: QWidget | None, what: str, ndr: bool) -> bool:
    """Ask before deleting ``what`` ("all 3 messages in the queue 'x'", "this message")."""
    told = (
        "Each sender gets a non-delivery report."
        if ndr
        else "The senders are not told (no non-delivery report)."
    )
    return messages.ask(
        parent,
        f"Are you sure you want to delete {what}?\n\n{told} This cannot be undone.",
        default_yes=False,
    )


def show_outcome(parent: QWidget | None, outcome: Outcome) -> None:
    """Show what was refused, one line each (what was done goes to the status line)."""
    if outcome.refused:
        messages.error(parent, "\n".join(outcome.refused))


class MessagePropertiesDialog(QDialog):
    """A queued message's envelope: who sent it to whom, when, and how its delivery goes."""

    def __init__(self, parent: QWidget | None, hop: str, message: MessageView) -> None:
        super().__init__(parent)
        self.setObjectName("queuedMessageDialog")
        self.setWindowTitle("Message Properties")
        self.setWindowIcon(icons.icon("queues"))
        form = QFormLayout()
        self.fields: dict[str, QLabel] = {}
        for label, value in (
            ("Queue", hop),
            ("Sender", sender_text(message.sender)),
            ("Recipients", "\n".join(shown_smtp(address) for address in message.recipients)),
            ("Size", f"{size_text(message.size)} ({message.size:,} bytes)"),
            ("Submitted", time_text(message.submitted)),
            ("Expires", time_text(message.expires)),
            ("State", message_state(message)),
            ("Attempts", str(message.attempts)),
            ("Next retry", time_text(message.next_retry) or "As soon as there is a connection"),
            ("Last error", message.last_error or "(none)"),
            ("Message-ID", message.message_id or "(none)"),
            ("Queue ID", message.queue_id),
            ("File", message.name),
        ):
            field = QLabel(value, self)
            field.setWordWrap(True)
            field.setTextFormat(Qt.TextFormat.PlainText)
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.fields[label] = field
            form.addRow(f"{label}:", field)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.resize(520, 0)

    @classmethod
    def show_message(cls, parent: QWidget | None, hop: str, message: MessageView) -> None:
        """Show the envelope until the administrator closes it."""
        dialog = cls(parent, hop, message)
        try:
            dialog.exec()
        finally:
            dialog.deleteLater()


class QueueMessagesDialog(QDialog):
    """Find Messages: the messages of one queue, each frozen, unfrozen or deleted from here.

    The list re-reads the queue every ``REFRESH_MS`` while open and after each action, on the
    task runner; a queue that empties meanwhile shows no rows, and an action on a message sent
    meanwhile shows the engine's one line. GUI thread only.
    """

    loaded = Signal()
    """The list shows the queue as it was just read."""
    acted = Signal()
    """An action on messages ended (done or refused) and its outcome is shown."""

    def __init__(
        self, parent: QWidget | None, store: Store, tasks: TaskRunner, hop: HopView
    ) -> None:
        super().__init__(parent)
        self.setObjectName("queueMessagesDialog")
        self.setWindowTitle(f"Find Messages - {hop.name}")
        self.setWindowIcon(icons.icon("queues"))
        self.store = store
        self.tasks = tasks
        self.hop_name = hop.name
        self.reading = False
        self.acting = False
        self._closed = False
        self.model = QueueMessageModel(self)
        self.list = list_view(self, "queueMessageList", SelectionMode.ExtendedSelection)
        self.list.setModel(self.model)
        self.list.setSortingEnabled(False)
        for column, width in enumerate((150, 160, 55, 140, 140, 55, 140)):
            self.list.setColumnWidth(column, width)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.list.doubleClicked.connect(lambda _index: self.show_properties())
        self.summary = QLabel(self)
        self.summary.setObjectName("queueSummary")
        self.summary.setWordWrap(True)
        self.outcome_label = QLabel(self)
        self.outcome_label.setObjectName("queueResult")
        self.outcome_label.setWordWrap(True)

        self.freeze = make_action(self, "&Freeze", None, None, "Hold the selected messages")
        self.unfreeze = make_action(self, "&Unfreeze", None, None, "Let them be sent again")
        self.delete_silently = make_action(
            self, "&Delete (no NDR)", "delete", None, "Delete them; the senders are not told"
        )
        self.delete_with_ndr = make_action(
            self, "Delete (send &NDR)", "delete", None, "Delete them and tell each sender"
        )
        self.properties = make_action(
            self, "P&roperties", "properties", None, "The selected message's envelope"
        )
        self.freeze.triggered.connect(lambda: self.act(Action.FREEZE))
        self.unfreeze.triggered.connect(lambda: self.act(Action.UNFREEZE))
        self.delete_silently.triggered.connect(lambda: self.act(Action.DELETE, ndr=False))
        self.delete_with_ndr.triggered.connect(lambda: self.act(Action.DELETE, ndr=True))
        self.properties.triggered.connect(self.show_properties)

        buttons = QDialogButtonBox(self)
        self.buttons: dict[QAction, QPushButton] = {}
        for action in self.menu_actions():
            button = QPushButton(action.text(), self)
            button.setAutoDefault(False)  # Enter must not freeze or delete anything
            button.clicked.connect(action.trigger)
            buttons.addButton(button, QDialogButtonBox.ButtonRole.ActionRole)
            self.buttons[action] = button
        close = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        close.clicked.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.outcome_label)
        layout.addWidget(buttons)
        self.resize(1040, 420)

        self.list.selectionModel().selectionChanged.connect(self.update_actions)
        self.model.modelReset.connect(self.update_actions)
        self.model.rowsRemoved.connect(self.update_actions)
        self.model.dataChanged.connect(self.update_actions)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self._show(hop)

    # -- the list --------------------------------------------------------------------------

    def menu_actions(self) -> list[QAction]:
        return [
            self.freeze,
            self.unfreeze,
            self.delete_silently,
            self.delete_with_ndr,
            self.properties,
        ]

    def refresh(self) -> None:
        """Re-read the queue in the background (one read at a time)."""
        if self.reading or self._closed:
            return
        self.reading = True
        self.tasks.submit(
            "read a queue's messages",
            read_hop,
            self.store,
            self.hop_name,
            on_success=self._read,
            on_failure=self._read_failed,
        )

    def _read(self, hop: HopView | None) -> None:
        self.reading = False
        if self._closed:
            self._delete_when_idle()
            return
        self._show(hop)
        self.loaded.emit()

    def _read_failed(self, error: Exception) -> None:
        self.reading = False
        if self._closed:
            self._delete_when_idle()
            return
        self.summary.setText(f"Cannot read the queue: {error}")
        self.loaded.emit()

    def _show(self, hop: HopView | None) -> None:
        if hop is None:
            self.model.set_rows([])
            self.summary.setText(
                f"No mail waits in the queue '{self.hop_name}' now (sent or deleted)."
            )
        else:
            self.model.set_rows(hop.messages)
            self.summary.setText(
                f"Queue '{hop.name}': {hop.state.value}, {plural(hop.count, 'message')}, "
                f"{size_text(hop.size)}."
            )
        self.update_actions()

    def selected(self) -> list[MessageView]:
        rows = sorted({index.row() for index in self.list.selectionModel().selectedRows()})
        return [self.model.row_object(row) for row in rows if row < self.model.rowCount()]

    def update_actions(self, *_: object) -> None:
        chosen = self.selected()
        idle = not self.acting
        set_enabled(self.freeze, idle and any(not m.frozen for m in chosen))
        set_enabled(self.unfreeze, idle and any(m.frozen for m in chosen))
        set_enabled(self.delete_silently, idle and bool(chosen))
        set_enabled(self.delete_with_ndr, idle and bool(chosen))
        set_enabled(self.properties, len(chosen) == 1)
        for action, button in self.buttons.items():
            button.setEnabled(action.isEnabled())

    def _context_menu(self, pos: QPoint) -> None:
        if not self.list.indexAt(pos).isValid():
            return
        self.update_actions()
        menu = QMenu(self)
        menu.setObjectName("queueMessageMenu")
        fill_menu(
            menu,
            [
                self.freeze,
                self.unfreeze,
                None,
                self.delete_silently,
                self.delete_with_ndr,
                None,
                self.properties,
            ],
        )
        menu.aboutToHide.connect(menu.deleteLater)
        menu.popup(self.list.viewport().mapToGlobal(pos))

    # -- actions ---------------------------------------------------------------------------

    def act(self, action: Action, ndr: bool = False) -> None:
        """Freeze, unfreeze or delete the selected messages (asking first before deleting)."""
        chosen = self.selected()
        if not chosen or self.acting:
            return
        if action is Action.DELETE:
            what = (
                "this message" if len(chosen) == 1 else f"these {len(chosen)} messages"
            ) + " (every recipient still waiting for it, in any queue)"
            if not confirm_delete(self, what, ndr):
                return
        requests = [Request(action, message=m.name, ndr=ndr) for m in chosen]
        self.acting = True
        self.outcome_label.setText("Working...")
        self.update_actions()
        self.tasks.submit(
            f"{action.value} queued messages",
            carry_out,
            self.store,
            requests,
            on_success=self._acted,
            on_failure=lambda error: self._acted(Outcome((), (str(error),))),
        )

    def _acted(self, outcome: Outcome) -> None:
        self.acting = False
        if self._closed:
            self._delete_when_idle()
            return
        self.outcome_label.setText(" ".join(outcome.done))
        show_outcome(self, outcome)
        self.update_actions()
        self.refresh()
        self.acted.emit()

    def show_properties(self) -> None:
        chosen = self.selected()
        if len(chosen) == 1:
            MessagePropertiesDialog.show_message(self, self.hop_name, chosen[0])

    def done(self, result: int) -> None:
        self._timer.stop()
        super().done(result)

    def _delete_when_idle(self) -> None:
        """Closed: delete the dialog once no background work will call back into it."""
        if not (self.reading or self.acting):
            self.deleteLater()

    @classmethod
    def find_messages(
        cls, parent: QWidget | None, store: Store, tasks: TaskRunner, hop: HopView
    ) -> None:
        """List ``hop``'s messages until the administrator closes the dialog."""
        dialog = cls(parent, store, tasks, hop)
        try:
            dialog.exec()
        finally:
            dialog._closed = True
            dialog._delete_when_idle()
