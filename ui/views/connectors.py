"""Routing Groups > First Routing Group > Connectors: the SMTP connectors, New, Properties, Delete.

Every change goes through ``app.connectors`` (the catalog the command line uses too).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction

from app import connectors
from app.errors import PostroomError
from app.model import SmtpConnector
from app.outbound import control
from app.store import Store
from ui import messages
from ui.actions import MenuEntry, SubMenu, make_action, set_enabled
from ui.dialogs.connector import ConnectorDialog
from ui.formatting import plural
from ui.models.connectors import ConnectorListModel
from ui.views.base import ResultView

if TYPE_CHECKING:
    from ui.console import Console
    from ui.node import Node

log = logging.getLogger(__name__)

CONNECTORS_TEXT = "SMTP connectors: which domains go onward, how, and at what cost"
ROUTING_GROUPS_TEXT = "Routing groups and the connectors between them and the Internet"
FIRST_ROUTING_GROUP_TEXT = "This server's routing group"


def queued_messages(store: Store, connector: SmtpConnector) -> int:
    """Worker thread: how many messages wait in the outbound queue for ``connector``."""
    return control.queued_for_connector(store, connector.name)


def delete_counted(store: Store, chosen: list[SmtpConnector]) -> list[str]:
    """Worker thread: delete each connector unless mail waits for it in the queue, stopping
    at the first refusal (raises PostroomError with it; those before it stay deleted)."""
    deleted: list[str] = []
    for connector in chosen:
        waiting = queued_messages(store, connector)
        connectors.delete_connector(store, connector.name, queued_messages=waiting)
        deleted.append(connector.name)
    return deleted


class ConnectorsView(ResultView):
    """The Connectors node of the First Routing Group."""

    default_sort_column = ConnectorListModel.COL_NAME
    default_column_widths = (160, 280, 280, 70, 50)

    deleted = Signal()
    """A deletion ended (done, or refused and the refusal shown)."""

    def __init__(self, console: Console, node: Node) -> None:
        super().__init__(console, node)
        self.deleting = False
        self.list_model = ConnectorListModel(self)
        self.model = self.list_model
        self.new_connector = make_action(
            self, "&SMTP Connector...", "connectors", None, "Create an SMTP connector"
        )
        self.new_connector.triggered.connect(self.create_connector)
        console.watcher.changed.connect(self.refresh)

    # -- list ------------------------------------------------------------------------------

    def refresh(self) -> None:
        try:
            self.list_model.set_rows(connectors.list_connectors(self.console.store))
        except PostroomError as error:
            messages.error(self.parent_widget, error)
        self.status_changed.emit()

    def status_text(self) -> str:
        return plural(self.list_model.rowCount(), "connector")

    def _selected(self, rows: list[int]) -> list[SmtpConnector]:
        return [self.list_model.row_object(row) for row in rows]

    # -- actions ---------------------------------------------------------------------------

    def update_actions(self, rows: list[int]) -> None:
        set_enabled(self.new_connector, True)
        set_enabled(self.std.properties, len(rows) == 1)
        set_enabled(self.std.delete, bool(rows))

    def node_menu(self) -> list[MenuEntry]:
        return [
            SubMenu("&New", [self.new_connector]),
            None,
            self.std.refresh,
            self.std.export_list,
        ]

    def item_menu(self, rows: list[int]) -> list[MenuEntry]:
        return [self.std.delete, self.std.refresh, None, self.std.properties]

    def toolbar_actions(self) -> list[QAction]:
        return [self.new_connector]

    # -- commands --------------------------------------------------------------------------

    def create_connector(self) -> None:
        created = ConnectorDialog.new(self.parent_widget, self.console.store)
        self.refresh()
        if created is not None:
            self.console.select_requested.emit(self.node, created.id)

    def properties(self, rows: list[int]) -> None:
        chosen = self._selected(rows)
        if len(chosen) != 1:
            return
        try:  # the stored one: another program may have changed it since the list was read
            connector = connectors.get_connector(self.console.store, chosen[0].name)
        except PostroomError as error:
            messages.error(self.parent_widget, error)
            self.refresh()
            return
        ConnectorDialog.edit(self.parent_widget, self.console.store, connector)
        self.refresh()

    def delete(self, rows: list[int]) -> None:
        chosen = self._selected(rows)
        if not chosen:
            return
        names = ", ".join(f"'{connector.name}'" for connector in chosen)
        question = (
            f"Are you sure you want to delete the SMTP connector"
            f"{'' if len(chosen) == 1 else 's'} {names}?\n\n"
            "Mail for their address spaces then takes the next route: another connector, the "
            "smart host, or DNS."
        )
        if not messages.ask(self.parent_widget, question, default_yes=False):
            return
        # Counting the queue reads every queued envelope: off the GUI thread.
        self.deleting = True
        self.console.tasks.submit(
            "delete SMTP connectors",
            delete_counted,
            self.console.store,
            chosen,
            on_success=lambda _deleted: self._deleted(None),
            on_failure=self._deleted,
        )

    def _deleted(self, error: Exception | None) -> None:
        """The deletion ended; ``error`` is the refusal (no such connector, mail waits)."""
        self.deleting = False
        if error is not None:
            messages.error(self.parent_widget, error)
        self.refresh()
        self.deleted.emit()

    def is_busy(self) -> bool:
        return self.deleting
