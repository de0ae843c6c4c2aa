"""Recipients > Recipient Update Services: Update Now, Rebuild, Cancel, Properties."""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction

from app.errors import PostroomError
from ui import messages
from ui.actions import MenuEntry, make_action, set_enabled
from ui.dialogs.rus import RusPropertiesDialog
from ui.formatting import plural
from ui.models.rus import RusListModel, RusRow
from ui.views.base import ResultView

if TYPE_CHECKING:
    from ui.console import Console
    from ui.node import Node

log = logging.getLogger(__name__)

REBUILD_WARNING = (
    "Rebuild looks at every recipient in the organization again, which can take a long time "
    "when there are many. Recipients keep every address they have; addresses are added only "
    "where a policy says so. Do you want to continue?"
)


class RecipientUpdateServicesView(ResultView):
    """The node listing this data directory's Recipient Update Service."""

    default_column_widths = (250, 120, 130)

    def __init__(self, console: Console, node: Node) -> None:
        super().__init__(console, node)
        self.rus = console.rus
        self.name = f"Recipient Update Service ({socket.gethostname().split('.')[0].upper()})"
        self.list_model = RusListModel(self)
        self.model = self.list_model
        self.update_now = make_action(
            self, "&Update Now", "update-now", None, "Stamp addresses on changed recipients now"
        )
        self.rebuild = make_action(
            self, "&Rebuild", "rebuild", None, "Look at every recipient again"
        )
        self.cancel = self.rus.cancel_action
        self.update_now.triggered.connect(self.do_update_now)
        self.rebuild.triggered.connect(self.do_rebuild)
        self.rus.status_changed.connect(self.refresh)
        self.rus.status_changed.connect(self.actions_changed)
        self.rus.run_finished.connect(lambda _record: self.refresh())

    def refresh(self) -> None:
        rus = self.rus
        record = rus.last_run()
        if rus.state == "running":
            status = rus.status_text().removeprefix("Recipient Update Service: ")
        elif rus.state == "waiting":
            status = f"Waiting for {rus.waiting_for}"
        elif rus.state == "stopped":
            status = "Stopped"
        else:
            status = rus.describe_run(record)
        try:
            interval = rus.schedule.describe()
        except PostroomError:
            interval = ""
        self.list_model.set_rows(
            [
                RusRow(
                    self.name,
                    interval,
                    rus.last_run_time(record),
                    (record.finished or record.started) if record else "",
                    status,
                )
            ]
        )
        self.status_changed.emit()

    def status_text(self) -> str:
        return plural(self.list_model.rowCount(), "object")

    def update_actions(self, rows: list[int]) -> None:
        one = len(rows) == 1
        busy = self.rus.is_running_update
        running = self.rus.service.is_running
        reason = "The Recipient Update Service is not running." if not running else ""
        set_enabled(self.update_now, one and running, reason)
        set_enabled(self.rebuild, one and running, reason)
        set_enabled(self.cancel, busy, "No update is under way.")
        set_enabled(self.std.properties, one)

    def item_menu(self, rows: list[int]) -> list[MenuEntry]:
        return [
            self.update_now,
            self.rebuild,
            self.cancel,
            None,
            self.std.refresh,
            None,
            self.std.properties,
        ]

    def toolbar_actions(self) -> list[QAction]:
        return [self.update_now, self.rebuild]

    def do_update_now(self) -> None:
        self.rus.update_now()

    def do_rebuild(self) -> None:
        if messages.ask(self.parent_widget, REBUILD_WARNING, default_yes=False):
            self.rus.rebuild()

    def properties(self, rows: list[int]) -> None:
        if len(rows) != 1:
            return
        RusPropertiesDialog.edit(
            self.parent_widget,
            self.name,
            self.rus.schedule,
            self.rus.last_run(),
            self.rus.set_schedule,
        )
        self.refresh()
