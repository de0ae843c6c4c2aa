"""The MMC-style main window: console tree, result pane, menus, toolbar and status bar."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import (
    QByteArray,
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPoint,
    Qt,
)
from PySide6.QtGui import QAction, QCloseEvent, QContextMenuEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QProgressBar,
    QSplitter,
    QToolBar,
    QToolButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from ui import icons, messages
from ui.actions import MenuEntry, fill_menu, make_action, set_enabled
from ui.console import Console
from ui.export import ExportDialog, write_csv
from ui.help import AboutDialog, AboutFacts, HelpDialog, topic_for
from ui.models.result_proxy import ResultProxyModel
from ui.models.table import SORT_ROLE
from ui.models.tree import ConsoleTreeModel
from ui.node import Node
from ui.tree import build_tree, make_view
from ui.views.base import ResultView
from ui.widgets import SelectionMode, list_view

log = logging.getLogger(__name__)

APP_TITLE = "Postroom System Manager"


class ResultPane(QWidget):
    """The right-hand side: a title line and the current node's list."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel(self)
        self.title.setObjectName("resultTitle")
        self.title.setMargin(4)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.title.setAutoFillBackground(True)
        self.list = list_view(self, "resultList", SelectionMode.ExtendedSelection)
        self.list.setSortingEnabled(True)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.header().setSectionsMovable(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.title)
        layout.addWidget(self.list)


class MainWindow(QMainWindow):
    """The console window. GUI thread only; it never waits on SMTP, the RUS or DNS."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console
        console.window = self
        self.setObjectName("mainWindow")
        self.setWindowTitle(APP_TITLE)
        self.setWindowIcon(icons.app_icon())
        self.std = console.standard_actions
        self.views: dict[str, ResultView] = {}
        self.current: ResultView | None = None
        self._history: list[Node] = []
        self._history_pos = -1
        self._navigating = False
        self._toolbar_extra: list[QAction] = []

        self.root = build_tree(console)
        self.tree_model = ConsoleTreeModel(self.root, self)
        self.proxy = ResultProxyModel(self)  # a lazy list sorts itself: see its docstring
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

        self._make_actions()
        self._make_widgets()
        self._make_menus()
        self._make_toolbar()
        self._make_status_bar()
        self._connect()
        self.restore_layout()

    # -- construction ----------------------------------------------------------------------

    def _make_actions(self) -> None:
        self.back = make_action(self, "&Back", "back", "Alt+Left", "Go back")
        self.forward = make_action(self, "&Forward", "forward", "Alt+Right", "Go forward")
        self.up = make_action(self, "&Up One Level", "up", "Backspace", "Up one level")
        self.exit = make_action(self, "E&xit", None, QKeySequence.StandardKey.Quit, "Exit")
        self.about = make_action(self, "&About Postroom", "help", None, "About Postroom")
        self.show_toolbar = make_action(self, "&Toolbar", None, None, "Show the toolbar")
        self.show_status_bar = make_action(self, "&Status Bar", None, None, "Show the status bar")
        for action in (self.show_toolbar, self.show_status_bar):
            action.setCheckable(True)
            action.setChecked(True)
        self.back.triggered.connect(self.go_back)
        self.forward.triggered.connect(self.go_forward)
        self.up.triggered.connect(self.go_up)
        self.exit.triggered.connect(self.close)
        self.about.triggered.connect(self.show_about)
        self.help_topics = make_action(self, "&Help Topics", "help", "F1", "Help on this node")
        self.help_topics.triggered.connect(self.show_help)
        self.addAction(self.help_topics)
        self.std.properties.triggered.connect(self.open_properties)
        self.std.delete.triggered.connect(self.delete_selection)
        self.std.rename.triggered.connect(self.rename_selection)
        self.std.refresh.triggered.connect(self.refresh)
        self.std.export_list.triggered.connect(self.export_list)
        # Shortcuts work whichever pane has focus, menus open or not.
        self.addActions(
            [
                self.back,
                self.forward,
                self.std.properties,
                self.std.delete,
                self.std.rename,
                self.std.refresh,
            ]
        )

    def _make_widgets(self) -> None:
        self.tree = QTreeView(self)
        self.tree.setObjectName("consoleTree")
        self.tree.setModel(self.tree_model)
        self.tree.setHeaderHidden(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        # Deep nodes scroll sideways rather than lose the end of their names.
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setStretchLastSection(False)
        self.result = ResultPane(self)
        self.result_list = self.result.list
        self.result_list.setModel(self.proxy)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("splitter")
        self.splitter.addWidget(self.tree)
        self.splitter.addWidget(self.result)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([320, 680])
        self.setCentralWidget(self.splitter)

    def _make_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.std.export_list)
        file_menu.addSeparator()
        file_menu.addAction(self.exit)
        self.action_menu = bar.addMenu("&Action")
        self.action_menu.setObjectName("actionMenu")
        self.action_menu.aboutToShow.connect(self._fill_action_menu)
        view_menu = bar.addMenu("&View")
        view_menu.addAction(self.show_toolbar)
        view_menu.addAction(self.show_status_bar)
        view_menu.addSeparator()
        view_menu.addAction(self.std.refresh)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.help_topics)
        help_menu.addSeparator()
        help_menu.addAction(self.about)
        self.help_menu = help_menu
        # Until first shown the Action menu must still offer its shortcuts' actions.
        self._fill_action_menu()

    def _make_toolbar(self) -> None:
        self.toolbar = QToolBar("Standard", self)
        self.toolbar.setObjectName("standardToolbar")
        self.toolbar.setMovable(False)
        for action in (self.back, self.forward, self.up):
            self.toolbar.addAction(action)
        self.toolbar.addSeparator()
        for action in (self.std.properties, self.std.refresh, self.std.export_list):
            self.toolbar.addAction(action)
        self._toolbar_separator = self.toolbar.addSeparator()
        self.addToolBar(self.toolbar)
        self.show_toolbar.toggled.connect(self.toolbar.setVisible)

    def _make_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_message = QLabel(self)
        self.smtp_status = QLabel(self)
        self.smtp_status.setObjectName("smtpStatus")
        self.rus_status = QLabel(self)
        self.rus_status.setObjectName("rusStatus")
        self.rus_progress = QProgressBar(self)
        self.rus_progress.setObjectName("rusProgress")
        self.rus_progress.setMaximumWidth(160)
        self.rus_progress.setMaximumHeight(16)
        self.rus_progress.setTextVisible(True)
        self.rus_progress.hide()
        self.rus_cancel = QToolButton(self)
        self.rus_cancel.setObjectName("rusCancel")
        self.rus_cancel.setDefaultAction(self.console.rus.cancel_action)
        self.rus_cancel.setAutoRaise(True)
        self.rus_cancel.hide()
        for label in (self.rus_status, self.smtp_status):
            label.setFrameStyle(QFrame.Shape.StyledPanel | QFrame.Shadow.Sunken)
            label.setMargin(2)
        bar.addWidget(self.status_message, 1)
        bar.addPermanentWidget(self.rus_status)
        bar.addPermanentWidget(self.rus_progress)
        bar.addPermanentWidget(self.rus_cancel)
        bar.addPermanentWidget(self.smtp_status)
        self.show_status_bar.toggled.connect(bar.setVisible)

    def _connect(self) -> None:
        self.tree.selectionModel().currentChanged.connect(self._tree_current_changed)
        self.tree.customContextMenuRequested.connect(self._tree_context_menu)
        self.tree.installEventFilter(self)
        self.result_list.installEventFilter(self)
        self.result_list.customContextMenuRequested.connect(self._result_context_menu)
        self.result_list.activated.connect(self._result_activated)
        self.result_list.selectionModel().selectionChanged.connect(self.update_actions)
        self.proxy.modelReset.connect(self.update_actions)
        self.proxy.rowsRemoved.connect(self.update_actions)
        self.proxy.rowsInserted.connect(self.update_actions)
        self.proxy.dataChanged.connect(self.update_actions)
        self.console.navigate_requested.connect(self.select_node)
        self.console.select_requested.connect(self.select_row_by_key)
        self.console.smtp.state_changed.connect(self._smtp_state_changed)
        self.console.rus.status_changed.connect(self._rus_status_changed)
        self.console.rus.progress_changed.connect(self._rus_progress_changed)
        self._smtp_state_changed()
        self._rus_status_changed()

    # -- navigation ------------------------------------------------------------------------

    def node_of(self, key: str) -> Node:
        node = self.root.find(key)
        if node is None:
            raise KeyError(key)
        return node

    def select_node(self, node: Node | str) -> None:
        """Make a tree node current (expanding its parents)."""
        if isinstance(node, str):
            node = self.node_of(node)
        index = self.tree_model.index_of(node)
        self.tree.setCurrentIndex(index)
        self.tree.scrollTo(index)

    def _tree_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        node = self.tree_model.node(current)
        if node is None:
            return
        self.show_node(node)
        if not self._navigating:
            del self._history[self._history_pos + 1 :]
            self._history.append(node)
            self._history_pos = len(self._history) - 1

    def view_for(self, node: Node) -> ResultView:
        """The node's view, made the first time it is shown."""
        view = self.views.get(node.key)
        if view is None:
            view = make_view(self.console, node)
            view.status_changed.connect(self._update_title)
            view.actions_changed.connect(self.update_actions)
            self.views[node.key] = view
        return view

    def show_node(self, node: Node) -> None:
        if self.current is not None:
            self._save_columns(self.current)
        view = self.view_for(node)
        self.current = view
        self.console.current_view = view
        self.proxy.setSourceModel(view.model)
        view.shown()
        self._restore_columns(view)
        self._set_view_toolbar(view.toolbar_actions())
        self._update_title()
        self.update_actions()

    def _update_title(self) -> None:
        view = self.current
        if view is None:
            return
        status = view.status_text()
        self.result.title.setText(view.node.title + (f"     {status}" if status else ""))
        self.setWindowTitle(f"{APP_TITLE} - {view.node.title}")

    def go_back(self) -> None:
        if self._history_pos > 0:
            self._history_pos -= 1
            self._go_history()

    def go_forward(self) -> None:
        if self._history_pos < len(self._history) - 1:
            self._history_pos += 1
            self._go_history()

    def _go_history(self) -> None:
        self._navigating = True
        try:
            self.select_node(self._history[self._history_pos])
        finally:
            self._navigating = False

    def go_up(self) -> None:
        if self.current is not None and self.current.node.parent is not None:
            self.select_node(self.current.node.parent)

    def select_row_by_key(self, node: Node, key: object) -> None:
        """Show ``node`` and select the row whose model key is ``key``."""
        self.select_node(node)
        view = self.view_for(node)
        model = view.model
        row_of = getattr(model, "row_of", None)
        if row_of is None:
            return
        row = row_of(key)
        if row is None:
            return
        index = self.proxy.mapFromSource(model.index(row, 0))
        self.result_list.selectionModel().setCurrentIndex(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.result_list.scrollTo(index)

    # -- selection and actions -------------------------------------------------------------

    def selected_rows(self) -> list[int]:
        """The selected rows of the current view's model (source rows, top to bottom)."""
        rows = {
            self.proxy.mapToSource(index).row()
            for index in self.result_list.selectionModel().selectedRows()
        }
        return sorted(row for row in rows if row >= 0)

    def update_actions(self, *_: object) -> None:
        """The one slot that enables and disables every action from the current selection."""
        self.back.setEnabled(self._history_pos > 0)
        self.forward.setEnabled(self._history_pos < len(self._history) - 1)
        self.up.setEnabled(self.current is not None and self.current.node.parent is not None)
        set_enabled(self.std.properties, False)
        set_enabled(self.std.delete, False)
        set_enabled(self.std.rename, False)
        set_enabled(self.std.refresh, self.current is not None)
        set_enabled(self.std.export_list, self.current is not None)
        if self.current is not None:
            rows = self.selected_rows()
            self.current.update_actions(rows)
            count = len(rows)
            self.status_message.setText(f"{count} selected" if count > 1 else "")

    def _menu_entries(self, on_items: bool) -> list[MenuEntry]:
        view = self.current
        if view is None:
            return []
        rows = self.selected_rows()
        return view.item_menu(rows) if on_items and rows else view.node_menu()

    def _fill_action_menu(self) -> None:
        self.update_actions()
        entries = self._menu_entries(on_items=True)
        fill_menu(self.action_menu, entries)
        if not self.action_menu.actions():
            self.action_menu.addAction(self.std.refresh)

    def context_menu(self, on_items: bool) -> QMenu:
        """A context menu of the current node (on_items False) or of the selected rows."""
        self.update_actions()
        menu = QMenu(self)
        menu.setObjectName("contextMenu")
        fill_menu(menu, self._menu_entries(on_items))
        menu.aboutToHide.connect(menu.deleteLater)
        return menu

    def _result_context_menu(self, pos: QPoint) -> None:
        index = self.result_list.indexAt(pos)
        if pos.x() < 0:  # the keyboard, with nothing selected: the node's menu
            pos = QPoint(4, 4)
        if not index.isValid():
            self.result_list.clearSelection()
        elif not self.result_list.selectionModel().isSelected(index):
            self.result_list.setCurrentIndex(index)
        menu = self.context_menu(on_items=index.isValid())
        menu.popup(self.result_list.viewport().mapToGlobal(pos))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """The context-menu key: Qt sends it to the view itself, at a point of its choosing;
        open the menu of the current item instead, as MMC does."""
        if (
            event.type() == QEvent.Type.ContextMenu
            and isinstance(event, QContextMenuEvent)
            and event.reason() == QContextMenuEvent.Reason.Keyboard
            and watched in (self.result_list, self.tree)
        ):
            view = self.result_list if watched is self.result_list else self.tree
            current = view.currentIndex()
            if current.isValid():
                pos = view.visualRect(current).center()
            else:
                pos = QPoint(view.viewport().width() // 2, 4)
            if view is self.result_list:
                if current.isValid() and not view.selectionModel().isSelected(current):
                    current = QModelIndex()
                    pos = QPoint(4, view.viewport().height() // 2)
                self._result_context_menu(pos if current.isValid() else QPoint(-1, -1))
            else:
                self._tree_context_menu(pos)
            return True
        return super().eventFilter(watched, event)

    def _tree_context_menu(self, pos: QPoint) -> None:
        index = self.tree.indexAt(pos)
        if not index.isValid():
            return
        self.tree.setCurrentIndex(index)
        self.result_list.clearSelection()
        menu = self.context_menu(on_items=False)
        menu.popup(self.tree.viewport().mapToGlobal(pos))

    def _set_view_toolbar(self, actions: list[QAction]) -> None:
        for action in self._toolbar_extra:
            self.toolbar.removeAction(action)
        self._toolbar_extra = list(actions)
        self.toolbar.addActions(self._toolbar_extra)
        self._toolbar_separator.setVisible(bool(actions))

    # -- standard commands -----------------------------------------------------------------

    def _result_activated(self, index: QModelIndex) -> None:
        if self.current is not None and index.isValid():
            self.current.activate(self.proxy.mapToSource(index).row())

    def open_properties(self) -> None:
        if self.current is not None and self.std.properties.isEnabled():
            self.current.properties(self.selected_rows())

    def delete_selection(self) -> None:
        if self.current is not None and self.std.delete.isEnabled():
            self.current.delete(self.selected_rows())

    def rename_selection(self) -> None:
        rows = self.selected_rows()
        if self.current is None or len(rows) != 1 or not self.std.rename.isEnabled():
            return
        if self.current.can_rename(rows[0]):
            model = self.current.model
            index = self.proxy.mapFromSource(model.index(rows[0], 0))
            self.result_list.setCurrentIndex(index)
            self.result_list.edit(index)

    def refresh(self) -> None:
        if self.current is not None:
            self.current.refresh()
            self._update_title()
            self.update_actions()

    def export_list(self) -> None:
        """Write the result pane, as shown (sorted, visible columns), to a CSV file.

        The file is written on the task runner. A list that loads its rows lazily
        (``export_rows``) is also read there, so 100,000 recipients never freeze the window.
        """
        if self.current is None:
            return
        suggested = str(Path.home() / f"{self.current.node.title}.csv")
        path = ExportDialog.ask_path(self, suggested)
        if path is None:
            return
        header = self.result_list.header()
        columns = [
            header.logicalIndex(visual)
            for visual in range(header.count())
            if not header.isSectionHidden(header.logicalIndex(visual))
        ]
        titles = [str(self.proxy.headerData(c, Qt.Orientation.Horizontal) or "") for c in columns]
        export_rows = getattr(self.proxy.sourceModel(), "export_rows", None)
        if export_rows is not None and getattr(self.proxy.sourceModel(), "sorts_itself", False):
            rows: Iterable[list[str]] = export_rows(columns)
        else:  # a small list already in memory: its texts as shown, read here
            rows = [
                [str(self.proxy.index(row, c).data() or "") for c in columns]
                for row in range(self.proxy.rowCount())
            ]
        self.statusBar().showMessage(f"Exporting to {path}…")
        self.console.tasks.submit(
            "export list",
            write_csv,
            path,
            titles,
            rows,
            on_success=lambda count: self.statusBar().showMessage(
                f"Exported {count} rows to {path}", 5000
            ),
            on_failure=lambda error: messages.error(self, f"Cannot export the list: {error}"),
        )

    def show_about(self) -> None:
        AboutDialog.show_about(self, AboutFacts.of(self.console))

    def show_help(self) -> None:
        """F1: the built-in help page of the current tree node."""
        node = self.current.node if self.current is not None else None
        HelpDialog.show_topic(self, topic_for(node))

    # -- status bar ------------------------------------------------------------------------

    def _smtp_state_changed(self, *_: object) -> None:
        self.smtp_status.setText(self.console.smtp.status_text())
        self.smtp_status.setToolTip(self.console.smtp.last_error or "")
        self.update_actions()

    def _rus_status_changed(self, *_: object) -> None:
        rus = self.console.rus
        self.rus_status.setText(rus.status_text())
        running = rus.is_running_update
        self.rus_progress.setVisible(running)
        self.rus_cancel.setVisible(running)
        if not running:
            self.rus_progress.reset()
        self.update_actions()

    def _rus_progress_changed(self, done: int, total: int) -> None:
        self.rus_progress.setMaximum(max(total, 1))
        self.rus_progress.setValue(min(done, max(total, 1)))
        self.rus_progress.setFormat(f"{done:,} / {total:,}")
        self.rus_status.setText(self.console.rus.status_text())

    # -- layout memory ---------------------------------------------------------------------

    def _save_columns(self, view: ResultView) -> None:
        header = self.result_list.header()
        self.console.settings.setValue(f"columns/{view.node.key}", header.saveState())

    def _restore_columns(self, view: ResultView) -> None:
        header = self.result_list.header()
        state = self.console.settings.value(f"columns/{view.node.key}")
        restored = isinstance(state, QByteArray | bytes) and header.restoreState(QByteArray(state))
        if not restored:
            header.setSortIndicator(view.default_sort_column, view.default_sort_order)
            for column, width in enumerate(view.default_column_widths):
                self.result_list.setColumnWidth(column, width)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.result_list.sortByColumn(header.sortIndicatorSection(), header.sortIndicatorOrder())

    def save_layout(self) -> None:
        settings = self.console.settings
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        settings.setValue("window/splitter", self.splitter.saveState())
        if self.current is not None:
            self._save_columns(self.current)
            settings.setValue("window/node", self.current.node.key)
        settings.sync()

    def restore_layout(self) -> None:
        settings = self.console.settings
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray | bytes):
            self.restoreGeometry(QByteArray(geometry))
        else:
            self.resize(1000, 640)
        state = settings.value("window/state")
        if isinstance(state, QByteArray | bytes):
            self.restoreState(QByteArray(state))
        splitter = settings.value("window/splitter")
        if isinstance(splitter, QByteArray | bytes):
            self.splitter.restoreState(QByteArray(splitter))
        self.show_toolbar.setChecked(not self.toolbar.isHidden())
        key = settings.value("window/node")
        node = self.root.find(str(key)) if key else None
        self.tree.expand(self.tree_model.index_of(self.root))
        recipients = self.root.find("recipients")
        if recipients is not None:
            self.tree.expand(self.tree_model.index_of(recipients))
        self.select_node(node or self.root)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_layout()
        super().closeEvent(event)
