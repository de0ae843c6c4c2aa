"""What the console tests share to drive the window: clicks, menus and modal dialogs. (No tests
here; the window, the prompts, the dialog driver and the SMTP probe are fixtures in conftest.py.)"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from PySide6.QtCore import QModelIndex, Qt, QTimer
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QAbstractItemView, QApplication, QDialog, QMenu, QWidget
from pytestqt.qtbot import QtBot

from ui.main_window import MainWindow
from ui.models.table import RowTableModel

D = TypeVar("D", bound=QWidget)


# -- driving the window ----------------------------------------------------------------------


def row_index(window: MainWindow, text: str, column: int = 0) -> QModelIndex:
    """The result-pane (proxy) index of the row whose ``column`` shows ``text``."""
    proxy = window.proxy
    for row in range(proxy.rowCount()):
        index = proxy.index(row, column)
        if index.data() == text:
            return index
    shown = [proxy.index(row, column).data() for row in range(proxy.rowCount())]
    raise AssertionError(f"no row {text!r} among {shown}")


def select_row(qtbot: QtBot, window: MainWindow, text: str) -> QModelIndex:
    """Click a row of the result pane."""
    index = row_index(window, text)
    rect = window.result_list.visualRect(index)
    qtbot.mouseClick(window.result_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.result_list.selectionModel().isSelected(index)
    return index


def double_click_row(qtbot: QtBot, window: MainWindow, text: str) -> None:
    index = select_row(qtbot, window, text)
    rect = window.result_list.visualRect(index)
    qtbot.mouseDClick(window.result_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def right_click(qtbot: QtBot, view: QAbstractItemView, index: QModelIndex) -> QMenu:
    """Right-click an item as the window system does: press (selects), then a context-menu
    event; returns the context menu that pops up."""
    view.scrollTo(index)
    pos = view.visualRect(index).center()
    viewport = view.viewport()
    qtbot.mouseClick(viewport, Qt.MouseButton.RightButton, pos=pos)
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, pos, viewport.mapToGlobal(pos))
    QApplication.sendEvent(viewport, event)
    return popup_menu(qtbot)


def right_click_row(qtbot: QtBot, window: MainWindow, text: str) -> QMenu:
    return right_click(qtbot, window.result_list, row_index(window, text))


def right_click_tree(qtbot: QtBot, window: MainWindow, key: str) -> QMenu:
    return right_click(qtbot, window.tree, window.tree_model.index_of(window.node_of(key)))


def popup_menu(qtbot: QtBot) -> QMenu:
    menu: list[QMenu] = []

    def shown() -> bool:
        popup = QApplication.activePopupWidget()
        if isinstance(popup, QMenu) and popup.isVisible():
            menu[:] = [popup]
            return True
        return False

    qtbot.waitUntil(shown, timeout=3000)
    return menu[0]


def menu_texts(menu: QMenu) -> list[str]:
    return [a.text().replace("&", "") for a in menu.actions() if not a.isSeparator()]


def click_menu_item(qtbot: QtBot, menu: QMenu, text: str) -> None:
    """Click the entry ``text`` (``&`` ignored) of a popped-up menu, as a user would."""
    for action in menu.actions():
        if action.text().replace("&", "") == text:
            assert action.isEnabled(), f"{text} is disabled: {action.toolTip()}"
            rect = menu.actionGeometry(action)
            qtbot.mouseClick(menu, Qt.MouseButton.LeftButton, pos=rect.center())
            return
    raise AssertionError(f"no {text!r} in the menu: {menu_texts(menu)}")


def submenu(menu: QMenu, text: str) -> QMenu:
    for action in menu.actions():
        if action.menu() is not None and action.text().replace("&", "") == text:
            sub = action.menu()
            assert isinstance(sub, QMenu)
            return sub
    raise AssertionError(f"no submenu {text!r} in {menu_texts(menu)}")


class DialogDriver:
    """Runs test code inside a modal dialog's own event loop once the dialog is up.

    ``expect(SomeDialog, handler)`` before the click that opens it; ``handler(dialog)`` must
    close it (accept/reject or a button). If the handler fails or the dialog never appears,
    the dialog is rejected so the test cannot hang, and ``check()`` re-raises the failure.
    """

    def __init__(self) -> None:
        self.failures: list[BaseException | str] = []
        self.handled: list[str] = []

    def expect(self, cls: type[D], handler: Callable[[D], Any], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout

        def poll() -> None:
            widget = QApplication.activeModalWidget()
            if isinstance(widget, cls) and widget.isVisible():
                self.handled.append(cls.__name__)
                try:
                    handler(widget)
                except BaseException as error:  # report it after the modal loop ends
                    self.failures.append(error)
                    if isinstance(widget, QDialog) and widget.isVisible():
                        widget.reject()
            elif time.monotonic() < deadline:
                QTimer.singleShot(10, poll)
            else:
                self.failures.append(f"{cls.__name__} did not open within {timeout} s")
                if isinstance(widget, QDialog):
                    widget.reject()

        QTimer.singleShot(0, poll)

    def check(self) -> None:
        for failure in self.failures:
            if isinstance(failure, BaseException):
                raise failure
            raise AssertionError(failure)


def type_text(qtbot: QtBot, field: QWidget, text: str) -> None:
    """Replace a line edit's text by typing."""
    field.setFocus()
    field.selectAll()  # type: ignore[attr-defined]
    qtbot.keyClicks(field, text)


def list_rows(model: RowTableModel[Any]) -> list[Any]:
    return model.rows()
