"""The contract between the main window and a console tree node's result pane.

A node's view owns its list model and the actions that only it offers (made once, in its
constructor). The main window owns the actions every node shares (``ui.actions.StandardActions``:
Properties, Delete, Rename, Refresh, Export List) and asks the current view what they mean; see
``ResultView``. Everything here runs on the GUI thread.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QAbstractItemModel, QObject, Qt, Signal
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QWidget

from ui import icons
from ui.actions import MenuEntry, StandardActions
from ui.console import Console
from ui.node import Node

log = logging.getLogger(__name__)


class ResultView(QObject):
    """What one console tree node shows in the result pane and which actions it offers.

    Subclasses set ``model`` (their list, a ``RowTableModel``) and override what applies:
    ``refresh``, ``update_actions``, ``item_menu``, ``node_menu``, ``properties``, ``delete``,
    ``rename``, ``toolbar_actions``. ``rows`` arguments are source-model row numbers of the
    selection. Emit ``status_changed`` when the text of ``status_text`` changes.
    """

    status_changed = Signal()
    actions_changed = Signal()
    """The view's own state changed (e.g. a service started): the window re-runs update_actions."""

    default_sort_column = 0
    default_sort_order = Qt.SortOrder.AscendingOrder
    default_column_widths: tuple[int, ...] = ()
    model: QAbstractItemModel
    """The node's list (source model); every subclass sets it in its constructor."""

    def __init__(self, console: Console, node: Node) -> None:
        super().__init__(console)
        self.console = console
        self.node = node
        self.std: StandardActions = console.standard_actions

    @property
    def parent_widget(self) -> QWidget | None:
        """The window dialogs and message boxes are parented to."""
        return self.console.window

    # -- life cycle ------------------------------------------------------------------------

    def shown(self) -> None:
        """The node became current: bring the list up to date."""
        self.refresh()

    def refresh(self) -> None:
        """Reload the list from the store (F5, and whenever the directory changes)."""

    def is_current(self) -> bool:
        """Whether the console window is open on this node: lists that follow changes by
        themselves do so only then (``shown`` brings them up to date)."""
        window = self.console.window
        return window is not None and window.isVisible() and self.console.current_view is self

    def status_text(self) -> str:
        """The line above the list, after the node's title (e.g. "3 objects")."""
        return ""

    # -- actions ---------------------------------------------------------------------------

    def update_actions(self, rows: list[int]) -> None:
        """Enable the view's actions and the standard ones for this selection.

        The window has already disabled Properties, Delete and Rename, and enabled Refresh and
        Export List; a view enables what it supports.
        """

    def node_menu(self) -> list[MenuEntry]:
        """The context menu of the node itself (right-click in the tree or on empty space)."""
        return [self.std.refresh, self.std.export_list]

    def item_menu(self, rows: list[int]) -> list[MenuEntry]:
        """The context menu of selected rows."""
        return [self.std.properties]

    def toolbar_actions(self) -> list[QAction]:
        """Extra toolbar buttons while this node is current."""
        return []

    def activate(self, row: int) -> None:
        """Double-click or Enter on a row: open its properties unless a view says otherwise."""
        if self.std.properties.isEnabled():
            self.properties([row])

    def properties(self, rows: list[int]) -> None:
        """Open the property sheet of the rows, or of the node itself when ``rows`` is empty."""

    def delete(self, rows: list[int]) -> None:
        """Delete the rows (after asking)."""

    def can_rename(self, row: int) -> bool:
        """Whether the window may open the in-place editor on this row's first column."""
        return False

    def is_busy(self) -> bool:
        """Whether background work of this view is under way (for tests and the cursor)."""
        return False

    def icon(self) -> QIcon:
        return icons.icon(self.node.icon)
