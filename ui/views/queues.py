"""… > Default SMTP Virtual Server > Queues: one queue per next hop, and what to do with it.

The list is ``app.outbound.control.snapshot`` read on the task runner: when the node is shown,
every ``REFRESH_MS`` while it stays current, and after each action. Actions (Force Connection,
Freeze, Unfreeze, Delete All Messages with or without an NDR) are ``control.submit`` requests,
also on the task runner: the running queue takes up to 15 s to carry one out.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QAction

from app.outbound import control
from app.outbound.queue import Action, HopState, HopView, Request
from ui.actions import MenuEntry, make_action, set_enabled
from ui.dialogs.queue_message import (
    Outcome,
    QueueMessagesDialog,
    carry_out,
    confirm_delete,
    show_outcome,
)
from ui.formatting import plural
from ui.models.queues import QueueListModel
from ui.views.base import ResultView

if TYPE_CHECKING:
    from ui.console import Console
    from ui.node import Node

log = logging.getLogger(__name__)

QUEUES_TEXT = "Mail waiting to be sent onward, one queue per next hop"
REFRESH_MS = 2000


class QueuesView(ResultView):
    """The Queues node of the Default SMTP Virtual Server."""

    default_sort_column = QueueListModel.COL_NAME
    default_column_widths = (180, 60, 70, 70, 140, 140, 300)

    loaded = Signal()
    """The list shows the queue as it was just read (or the read failed)."""
    acted = Signal()
    """An action ended, done or refused, and its outcome is shown."""

    def __init__(self, console: Console, node: Node) -> None:
        super().__init__(console, node)
        self.list_model = QueueListModel(self)
        self.model = self.list_model
        self.reading = False
        self.acting = False
        self._read_again = False
        self.read_error = ""
        self.last_result = ""

        self.force = make_action(
            self, "Force &Connection", "update-now", None, "Try to send the queue's mail now"
        )
        self.freeze = make_action(
            self, "&Freeze", "pause", None, "Hold the queue: nothing is sent until unfrozen"
        )
        self.unfreeze = make_action(self, "&Unfreeze", "start", None, "Let the queue send again")
        self.delete_silently = make_action(
            self,
            "Delete All Messages (&no NDR)",
            "delete",
            None,
            "Delete the queue's mail; the senders are not told",
        )
        self.delete_with_ndr = make_action(
            self,
            "Delete All Messages (send N&DR)",
            "delete",
            None,
            "Delete the queue's mail and send each sender a non-delivery report",
        )
        self.find_messages = make_action(
            self, "F&ind Messages...", "message-tracking", None, "List the queue's messages"
        )
        self.force.triggered.connect(lambda: self.act(Action.RETRY))
        self.freeze.triggered.connect(lambda: self.act(Action.FREEZE))
        self.unfreeze.triggered.connect(lambda: self.act(Action.UNFREEZE))
        self.delete_silently.triggered.connect(lambda: self.act(Action.DELETE, ndr=False))
        self.delete_with_ndr.triggered.connect(lambda: self.act(Action.DELETE, ndr=True))
        self.find_messages.triggered.connect(lambda: self.show_messages())
        self._selection: list[int] = []
        self._timer = QTimer(console.window or self)  # ends with the window
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self._tick)

    # -- the list --------------------------------------------------------------------------

    def shown(self) -> None:
        self._timer.start()
        super().shown()

    def _tick(self) -> None:
        if self.console.is_shut_down or not self.is_current():
            self._timer.stop()  # ``shown`` starts it again
            return
        self.refresh()

    def refresh(self) -> None:
        """Read the queues in the background; a request meanwhile reads once more after."""
        if self.reading:
            self._read_again = True
            return
        self.reading = True
        self._read_again = False
        self.status_changed.emit()
        self.console.tasks.submit(
            "read the outbound queues",
            control.snapshot,
            self.console.store,
            on_success=self._read,
            on_failure=self._read_failed,
        )

    def _read(self, hops: list[HopView]) -> None:
        self.reading = False
        self.read_error = ""
        self.list_model.set_rows(hops)
        self._after_read()

    def _read_failed(self, error: Exception) -> None:
        self.reading = False
        self.read_error = str(error)
        self._after_read()

    def _after_read(self) -> None:
        self.status_changed.emit()
        self.actions_changed.emit()
        self.loaded.emit()
        if self._read_again:
            self.refresh()

    def status_text(self) -> str:
        if self.read_error:
            return f"Cannot read the queue: {self.read_error}"
        hops = self.list_model.rows()
        text = f"{plural(len(hops), 'queue')}, {plural(sum(h.count for h in hops), 'message')}"
        if not self.console.smtp.is_running:
            text += " (the SMTP service is stopped: nothing is sent)"
        if self.last_result:
            text += f"; {self.last_result}"
        return text

    def is_busy(self) -> bool:
        return self.reading or self.acting

    def _selected(self, rows: list[int]) -> list[HopView]:
        return [self.list_model.row_object(row) for row in rows if row < self.list_model.rowCount()]

    # -- actions ---------------------------------------------------------------------------

    def update_actions(self, rows: list[int]) -> None:
        self._selection = list(rows)
        chosen = self._selected(rows)
        idle = not self.acting
        busy = "Waiting for the queue to carry out the last action"
        any_chosen = idle and bool(chosen)
        set_enabled(
            self.force,
            any_chosen and any(h.state is not HopState.FROZEN for h in chosen),
            busy if not idle else "A frozen queue sends nothing: unfreeze it first",
        )
        set_enabled(self.freeze, idle and any(h.state is not HopState.FROZEN for h in chosen), busy)
        set_enabled(self.unfreeze, idle and any(h.state is HopState.FROZEN for h in chosen), busy)
        set_enabled(self.delete_silently, any_chosen, busy)
        set_enabled(self.delete_with_ndr, any_chosen, busy)
        set_enabled(self.find_messages, len(chosen) == 1)

    def item_menu(self, rows: list[int]) -> list[MenuEntry]:
        return [
            self.find_messages,
            None,
            self.force,
            self.freeze,
            self.unfreeze,
            None,
            self.delete_silently,
            self.delete_with_ndr,
            None,
            self.std.refresh,
        ]

    def node_menu(self) -> list[MenuEntry]:
        return [self.std.refresh, self.std.export_list]

    def toolbar_actions(self) -> list[QAction]:
        return [self.force, self.freeze, self.unfreeze]

    def activate(self, row: int) -> None:
        """Double-click: the queue's messages (Find Messages)."""
        self.show_messages([row])

    def show_messages(self, rows: list[int] | None = None) -> None:
        chosen = self._selected(self._selection if rows is None else rows)
        if len(chosen) != 1:
            return
        QueueMessagesDialog.find_messages(
            self.parent_widget, self.console.store, self.console.tasks, chosen[0]
        )
        self.refresh()

    def act(self, action: Action, ndr: bool = False, rows: list[int] | None = None) -> None:
        """Carry out ``action`` on the selected queues (asking first before deleting)."""
        chosen = self._selected(self._selection if rows is None else rows)
        if not chosen or self.acting:
            return
        if action is Action.DELETE:
            if len(chosen) == 1:
                what = f"all {plural(chosen[0].count, 'message')} in the queue '{chosen[0].name}'"
            else:
                names = ", ".join(f"'{hop.name}'" for hop in chosen)
                what = f"all messages in the queues {names}"
            if not confirm_delete(self.parent_widget, what, ndr):
                return
        requests = [Request(action, hop=hop.name, ndr=ndr) for hop in chosen]
        self.acting = True
        self.last_result = ""
        self.actions_changed.emit()
        self.status_changed.emit()
        self.console.tasks.submit(
            f"{action.value} queues",
            carry_out,
            self.console.store,
            requests,
            on_success=self._acted,
            on_failure=lambda error: self._acted(Outcome((), (str(error),))),
        )

    def _acted(self, outcome: Outcome) -> None:
        self.acting = False
        self.last_result = " ".join(outcome.done)
        show_outcome(self.parent_widget, outcome)
        self.actions_changed.emit()
        self.refresh()
        self.acted.emit()
