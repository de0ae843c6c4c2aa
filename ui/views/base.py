"""The contract between the main window and a console tree node's result pane.

A node's view owns its list model and the actions that only it offers (made once, in its
constructor). The main window owns the actions every node shares (Properties, Delete, Rename,
Refresh, Export List) and asks the current view what they mean; see ``ResultView``.
Everything here runs on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

from PySide6.QtCore import QAbstractItemModel, QObject, Qt, Signal
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import QMenu, QWidget

from ui import icons

if TYPE_CHECKING:
    from ui.console import Console
    from ui.tree import Node


@dataclass
class SubMenu:
    """A submenu in a menu layout, e.g. ``SubMenu("All Tasks", [move_up, move_down])``."""

    title: str
    entries: list[MenuEntry] = field(default_factory=list)


MenuEntry = Union[QAction, SubMenu, None]  # noqa: UP007 - a runtime alias; None is a separator


def make_action(
    parent: QObject,
    text: str,
    icon: str | None = None,
    shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None,
    tip: str = "",
) -> QAction:
    """One QAction, made once and then shared by the menu bar, toolbar and context menus."""
    action = QAction(text, parent)
    if icon:
        action.setIcon(icons.icon(icon))
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    action.setStatusTip(tip or text.replace("&", "").rstrip("."))
    action.setProperty("default_tip", tip or text.replace("&", "").rstrip("."))
    return action


def set_enabled(action: QAction, enabled: bool, reason: str = "") -> None:
    """Enable an action, or disable it with a tooltip that says why (the reason, if given)."""
    action.setEnabled(enabled)
    tip = str(action.property("default_tip") or action.text().replace("&", ""))
    action.setToolTip(tip if enabled or not reason else reason)
    action.setStatusTip(tip if enabled or not reason else reason)


def fill_menu(menu: QMenu, entries: Sequence[MenuEntry]) -> None:
    """Replace a menu's contents with a layout; submenus are children of ``menu``."""
    for old in menu.findChildren(QMenu, options=Qt.FindChildOption.FindDirectChildrenOnly):
        old.deleteLater()
    menu.clear()
    menu.setToolTipsVisible(True)  # disabled entries explain themselves
    previous_separator = True
    for entry in entries:
        if entry is None:
            if not previous_separator:
                menu.addSeparator()
            previous_separator = True
            continue
        previous_separator = False
        if isinstance(entry, SubMenu):
            sub = QMenu(entry.title, menu)
            fill_menu(sub, entry.entries)
            menu.addMenu(sub)
        else:
            menu.addAction(entry)
    actions = menu.actions()
    if actions and actions[-1].isSeparator():
        menu.removeAction(actions[-1])


class StandardActions(QObject):
    """The actions every node shares, owned by the main window; the current view gives them
    meaning through ``ResultView.properties``, ``delete``, ``rename`` and ``refresh``."""

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self.properties = make_action(
            self, "P&roperties", "properties", "Alt+Return", "Open the properties of the selection"
        )
        self.delete = make_action(
            self, "&Delete", "delete", QKeySequence.StandardKey.Delete, "Delete the selection"
        )
        self.rename = make_action(self, "Rena&me", None, "F2", "Rename the selection")
        self.refresh = make_action(self, "Re&fresh", "refresh", "F5", "Refresh the list")
        self.export_list = make_action(
            self, "E&xport List...", "export-list", None, "Save the list as a CSV file"
        )


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
