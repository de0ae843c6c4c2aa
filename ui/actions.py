"""The console's actions and menus: ``make_action``, the standard actions, menu layouts.

Each action is one ``QAction``, made once; the menu bar, toolbar and context menus add the same
object. This is the bottom floor of ``ui/``: it imports nothing of the console but its icons.
Everything here runs on the GUI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Union

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu

from ui import icons

log = logging.getLogger(__name__)


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
