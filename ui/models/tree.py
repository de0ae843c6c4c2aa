"""The console tree as a Qt model: one column, each node's title and icon. GUI thread only."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from ui import icons
from ui.node import Node

log = logging.getLogger(__name__)

Index = QModelIndex | QPersistentModelIndex


class ConsoleTreeModel(QAbstractItemModel):
    """The console tree as a Qt model: one column, the node's title and icon. GUI thread only."""

    def __init__(self, root: Node, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.root = root

    def node(self, index: Index) -> Node | None:
        if not index.isValid():
            return None
        node = index.internalPointer()
        return node if isinstance(node, Node) else None

    def index_of(self, node: Node) -> QModelIndex:
        if node is self.root:
            return self.createIndex(0, 0, node)
        return self.createIndex(node.row(), 0, node)

    def node_changed(self, node: Node) -> None:
        """Tell the views that a node's title or icon changed."""
        index = self.index_of(node)
        self.dataChanged.emit(index, index)

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        if column != 0 or row < 0:
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(0, 0, self.root) if row == 0 else QModelIndex()
        node = self.node(parent)
        if node is None or row >= len(node.children):
            return QModelIndex()
        return self.createIndex(row, 0, node.children[row])

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        node = self.node(index)
        if node is None or node.parent is None:
            return QModelIndex()
        return self.index_of(node.parent)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        if parent.column() > 0:
            return 0
        if not parent.isValid():
            return 1
        node = self.node(parent)
        return len(node.children) if node else 0

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 1

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        node = self.node(index)
        if node is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return node.title
        if role == Qt.ItemDataRole.DecorationRole:
            return icons.icon(node.icon)
        if role == Qt.ItemDataRole.ToolTipRole:
            return node.description or None
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return "Tree"
        return None
