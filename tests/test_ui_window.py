"""The main window as MMC has it: tree, result pane, shared actions, navigation, layout memory."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QContextMenuEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app import policies
from app.model import DEFAULT_POLICY_NAME
from app.store import Store
from tests.ui_support import (
    DialogDriver,
    double_click_row,
    popup_menu,
    right_click_row,
    right_click_tree,
    select_row,
)
from ui.app import close_window
from ui.dialogs.policy import PolicyDialog
from ui.export import ExportDialog
from ui.main_window import MainWindow

if TYPE_CHECKING:
    from tests.conftest import ConsoleOpener, Prompts  # fixtures' types, not the fixtures


def tree_titles(window: MainWindow) -> list[str]:
    return [node.title for node in window.root.walk()]


def test_tree_has_the_nodes_of_design_section_8(window: MainWindow) -> None:
    titles = tree_titles(window)
    assert titles[0] == "Test Organization (Postroom)"
    for title in (
        "Recipients",
        "Recipient Policies",
        "Recipient Update Services",
        "Servers",
        "Protocols",
        "SMTP",
        "Default SMTP Virtual Server",
        "Current Sessions",
    ):
        assert title in titles
    assert window.current is not None and window.current.node is window.root
    menus = [action.text() for action in window.menuBar().actions()]
    assert menus == ["&File", "&Action", "&View", "&Help"]


def test_double_click_a_container_row_opens_that_node_and_back_forward_up(
    qtbot: QtBot, window: MainWindow
) -> None:
    double_click_row(qtbot, window, "Recipients")
    assert window.current.node.key == "recipients"  # type: ignore[union-attr]
    double_click_row(qtbot, window, "Recipient Policies")
    assert window.current.node.key == "recipients/policies"  # type: ignore[union-attr]
    assert window.back.isEnabled() and not window.forward.isEnabled()
    window.back.trigger()
    assert window.current.node.key == "recipients"  # type: ignore[union-attr]
    assert window.forward.isEnabled()
    window.forward.trigger()
    assert window.current.node.key == "recipients/policies"  # type: ignore[union-attr]
    window.up.trigger()
    assert window.current.node.key == "recipients"  # type: ignore[union-attr]
    window.up.trigger()
    assert window.current.node is window.root
    assert not window.up.isEnabled()


def test_one_action_object_serves_menu_bar_toolbar_and_context_menu(
    qtbot: QtBot, window: MainWindow, store: Store
) -> None:
    policies.create_policy(store, "Sales")
    window.select_node("recipients/policies")
    select_row(qtbot, window, "Sales")
    properties = window.std.properties
    assert properties in window.toolbar.actions()
    window.action_menu.aboutToShow.emit()
    assert properties in window.action_menu.actions()
    menu = right_click_row(qtbot, window, "Sales")
    assert properties in menu.actions()
    menu.close()
    view = window.current
    move_up = view.move_up  # type: ignore[union-attr]
    assert move_up in window.toolbar.actions()
    all_tasks = next(a.menu() for a in window.action_menu.actions() if a.menu())
    assert move_up in all_tasks.actions()  # type: ignore[union-attr]
    # One object per command across the whole window.
    made = [a for a in window.findChildren(QAction) if a.text() == "P&roperties"]
    assert made == [] or made == [properties]


def test_keyboard_enter_and_alt_enter_open_properties_f5_refreshes(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver
) -> None:
    policies.create_policy(store, "Sales")
    window.select_node("recipients/policies")
    select_row(qtbot, window, "Sales")
    dialogs.expect(PolicyDialog, lambda sheet: sheet.reject())
    qtbot.keyClick(window.result_list, Qt.Key.Key_Return)
    dialogs.expect(PolicyDialog, lambda sheet: sheet.reject())
    qtbot.keyClick(window.result_list, Qt.Key.Key_Return, Qt.KeyboardModifier.AltModifier)
    assert dialogs.handled == ["PolicyDialog", "PolicyDialog"]
    window.activateWindow()  # shortcuts go to the active window, once the sheet has gone
    qtbot.waitUntil(window.isActiveWindow)
    policies.create_policy(store, "Staff")
    assert window.proxy.rowCount() == 2
    qtbot.keyClick(window.result_list, Qt.Key.Key_F5)
    assert window.proxy.rowCount() == 3


def test_context_menu_of_a_policy_is_exchanges(
    qtbot: QtBot, window: MainWindow, store: Store
) -> None:
    policies.create_policy(store, "Sales")
    window.select_node("recipients/policies")
    menu = right_click_row(qtbot, window, "Sales")
    texts = [a.text().replace("&", "") for a in menu.actions() if not a.isSeparator()]
    assert texts == [
        "Apply this policy now...",
        "All Tasks",
        "Delete",
        "Rename",
        "Refresh",
        "Properties",
    ]
    menu.close()
    menu = right_click_tree(qtbot, window, "recipients/update-services")
    assert "Refresh" in [a.text().replace("&", "") for a in menu.actions()]
    menu.close()


def test_export_list_writes_the_result_pane_as_csv(
    qtbot: QtBot,
    window: MainWindow,
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policies.create_policy(store, "Sales", "(department=Sales)")
    window.select_node("recipients/policies")
    target = tmp_path / "policies.csv"
    monkeypatch.setattr(ExportDialog, "ask_path", staticmethod(lambda parent, suggested: target))
    window.std.export_list.trigger()
    qtbot.waitUntil(target.exists, timeout=5000)  # written whole, off the GUI thread
    assert not list(tmp_path.glob(".*.part"))
    with target.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["Name", "Priority", "Filter Rule", "Last Modified"]
    assert [row[:3] for row in rows[1:]] == [
        ["Sales", "1", "(department=Sales)"],
        [DEFAULT_POLICY_NAME, "Lowest", "(mailNickname=*)"],
    ]


def test_sorting_uses_raw_values(qtbot: QtBot, window: MainWindow, store: Store) -> None:
    for n in range(1, 12):
        policies.create_policy(store, f"P{n:02d}")
    window.select_node("recipients/policies")
    window.result_list.sortByColumn(1, Qt.SortOrder.DescendingOrder)
    shown = [window.proxy.index(r, 1).data() for r in range(window.proxy.rowCount())]
    assert shown[:3] == ["Lowest", "11", "10"], "numbers, not text: 11 after 2 is wrong"


def test_window_layout_is_remembered(
    qtbot: QtBot, tmp_path: Path, open_console: ConsoleOpener, prompts: Prompts
) -> None:
    first = open_console()
    first.resize(700, 500)  # the offscreen screen is 800 x 600
    first.splitter.setSizes([333, 367])
    first.select_node("recipients/policies")
    first.result_list.setColumnWidth(0, 177)
    first.result_list.sortByColumn(3, Qt.SortOrder.DescendingOrder)
    close_window(first)

    again = open_console()
    try:
        assert (again.width(), again.height()) == (700, 500)
        assert again.splitter.sizes()[0] == 333
        assert again.current.node.key == "recipients/policies"  # type: ignore[union-attr]
        assert again.result_list.columnWidth(0) == 177
        header = again.result_list.header()
        assert header.sortIndicatorSection() == 3
        assert header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
    finally:
        close_window(again)
    assert (tmp_path / "console.ini").is_file()


def test_status_bar_shows_the_services(window: MainWindow) -> None:
    assert window.smtp_status.text() == "SMTP: stopped"
    assert window.rus_status.text() == "Recipient Update Service: stopped"
    assert not window.rus_progress.isVisible()


def test_the_context_menu_key_opens_the_menu_of_the_current_item(
    qtbot: QtBot, window: MainWindow, store: Store
) -> None:
    for n in range(12):
        policies.create_policy(store, f"P{n:02d}")
    window.select_node("recipients/policies")
    select_row(qtbot, window, "P05")
    # What the window system sends for the Menu key: a keyboard context-menu event to the
    # focused view, at a point of its own (here deliberately over another row).
    elsewhere = window.result_list.visualRect(window.proxy.index(9, 0)).center()
    event = QContextMenuEvent(
        QContextMenuEvent.Reason.Keyboard, elsewhere, window.result_list.mapToGlobal(elsewhere)
    )
    QApplication.sendEvent(window.result_list, event)
    menu = popup_menu(qtbot)
    assert "Apply this policy now..." in [a.text().replace("&", "") for a in menu.actions()]
    menu.close()
    assert window.selected_rows() == [row_of(window, "P05")]


def row_of(window: MainWindow, name: str) -> int:
    model = window.current.model  # type: ignore[union-attr]
    return next(r for r in range(model.rowCount()) if model.index(r, 0).data() == name)


def test_export_to_a_folder_that_cannot_be_written_says_so(
    qtbot: QtBot,
    window: MainWindow,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prompts: Prompts,
) -> None:
    window.select_node("recipients/policies")
    target = tmp_path / "missing-folder" / "policies.csv"
    monkeypatch.setattr(ExportDialog, "ask_path", staticmethod(lambda parent, suggested: target))
    window.std.export_list.trigger()
    qtbot.waitUntil(lambda: any(kind == "error" for kind, _ in prompts.shown), timeout=5000)
    assert f"Cannot write {target}" in prompts.shown[-1][1]
    assert not target.parent.exists()
