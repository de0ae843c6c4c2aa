"""A base for the console's list models: rows of one engine object each, updated in place."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Generic, TypeVar

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)

T = TypeVar("T")

SORT_ROLE = Qt.ItemDataRole.UserRole
"""The raw value a column sorts by (numbers, ISO times), for QSortFilterProxyModel."""
OBJECT_ROLE = Qt.ItemDataRole.UserRole + 1
"""The row's engine object (a RecipientPolicy, a session …)."""

Index = QModelIndex | QPersistentModelIndex


class RowTableModel(QAbstractTableModel, Generic[T]):
    """Rows of engine objects, keyed so that a refresh keeps selections and scroll position.

    Subclasses set ``HEADERS`` (one per ``COL_*`` constant) and implement ``key``,
    ``display`` and optionally ``sort_value``, ``decoration``, ``font``, ``tooltip``.
    GUI thread only.
    """

    HEADERS: tuple[str, ...] = ()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[T] = []

    # -- what subclasses say about a row ---------------------------------------------------

    def key(self, row: T) -> Hashable:
        raise NotImplementedError

    def display(self, row: T, column: int) -> str:
        raise NotImplementedError

    def sort_value(self, row: T, column: int) -> Any:
        return self.display(row, column).casefold()

    def decoration(self, row: T, column: int) -> Any:
        return None

    def font(self, row: T, column: int) -> Any:
        return None

    def tooltip(self, row: T, column: int) -> str | None:
        return None

    # -- access ----------------------------------------------------------------------------

    def rows(self) -> list[T]:
        return list(self._rows)

    def row_object(self, row: int) -> T:
        return self._rows[row]

    def row_of(self, key: Hashable) -> int | None:
        for number, item in enumerate(self._rows):
            if self.key(item) == key:
                return number
        return None

    def set_rows(self, new_rows: Sequence[T]) -> None:
        """Replace the contents: removed rows go, changed rows update, new rows are appended."""
        wanted = {self.key(item): item for item in new_rows}
        for number in range(len(self._rows) - 1, -1, -1):
            if self.key(self._rows[number]) not in wanted:
                self.beginRemoveRows(QModelIndex(), number, number)
                del self._rows[number]
                self.endRemoveRows()
        present = set()
        last_column = max(len(self.HEADERS) - 1, 0)
        for number, item in enumerate(self._rows):
            key = self.key(item)
            present.add(key)
            fresh = wanted[key]
            if fresh != item:
                self._rows[number] = fresh
                self.dataChanged.emit(self.index(number, 0), self.index(number, last_column))
        added = [item for key, item in wanted.items() if key not in present]
        if added:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(added) - 1)
            self._rows.extend(added)
            self.endInsertRows()

    # -- QAbstractTableModel ---------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row = self._rows[index.row()]
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return self.display(row, column)
        if role == SORT_ROLE:
            return self.sort_value(row, column)
        if role == OBJECT_ROLE:
            return row
        if role == Qt.ItemDataRole.DecorationRole and column == 0:
            return self.decoration(row, column)
        if role == Qt.ItemDataRole.FontRole:
            return self.font(row, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(row, column)
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(self.HEADERS)
        ):
            return self.HEADERS[section]
        return None
