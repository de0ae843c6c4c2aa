"""A base for the console's list models: rows of one engine object each, updated in place."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence
from typing import Any, Generic, TypeVar

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

SORT_ROLE = Qt.ItemDataRole.UserRole
"""The raw value a column sorts by (numbers, ISO times), for QSortFilterProxyModel."""
OBJECT_ROLE = Qt.ItemDataRole.UserRole + 1
"""The row's engine object (a RecipientPolicy, a session …)."""

Index = QModelIndex | QPersistentModelIndex


class HeaderedTableModel(QAbstractTableModel):
    """A table whose columns are its ``HEADERS`` (one per ``COL_*`` constant). GUI thread only.

    ``RowTableModel`` builds on it; so does a list that cannot hold its rows as objects (the
    lazy All Recipients list).
    """

    HEADERS: tuple[str, ...] = ()

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

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


class RowTableModel(HeaderedTableModel, Generic[T]):
    """Rows of engine objects, keyed so that a refresh keeps selections and scroll position.

    Subclasses set ``HEADERS`` (one per ``COL_*`` constant) and implement ``key``,
    ``display`` and optionally ``sort_value``, ``decoration``, ``font``, ``tooltip``,
    ``alignment``; an editable list also ``check_state`` / ``checkable`` / ``set_checked``
    (a check box) or ``editable`` / ``set_value`` (in-place editing). A list edited in a sheet
    changes its rows with ``reset_rows``, ``append_row``, ``remove_row`` and ``replace_row``; a list
    shown a batch at a time overrides ``rowCount`` (Qt makes no index past it).
    GUI thread only.
    """

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

    def alignment(self, row: T, column: int) -> Qt.AlignmentFlag | None:
        return None

    def check_state(self, row: T, column: int) -> Qt.CheckState | None:
        """The cell's check box, None for a cell without one."""
        return None

    def checkable(self, row: T, column: int) -> bool:
        """Whether the user may tick or clear the cell's check box."""
        return False

    def set_checked(self, number: int, column: int, checked: bool) -> bool:
        """The user ticked or cleared a checkable cell; True if the row changed."""
        return False

    def editable(self, row: T, column: int) -> bool:
        """Whether the cell is edited in place (double-click or F2)."""
        return False

    def set_value(self, number: int, column: int, value: Any) -> bool:
        """The user edited an editable cell; True if the row changed."""
        return False

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

    def reset_rows(self, rows: Sequence[T]) -> None:
        """Replace the contents whole (a reset), e.g. when a sheet opens."""
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def append_row(self, item: T) -> int:
        """Add a row at the end; its number."""
        number = len(self._rows)
        self.beginInsertRows(QModelIndex(), number, number)
        self._rows.append(item)
        self.endInsertRows()
        return number

    def remove_row(self, number: int) -> T:
        """Take a row out; the object it held."""
        self.beginRemoveRows(QModelIndex(), number, number)
        item = self._rows.pop(number)
        self.endRemoveRows()
        return item

    def replace_row(self, number: int, item: T) -> bool:
        """Put ``item`` in row ``number``; True (and ``dataChanged``) if that changed it."""
        if self._rows[number] == item:
            return False
        self._rows[number] = item
        self.row_changed(number)
        return True

    def row_changed(self, number: int) -> None:
        """Tell the views that every cell of a row may have changed."""
        last_column = max(len(self.HEADERS) - 1, 0)
        self.dataChanged.emit(self.index(number, 0), self.index(number, last_column))

    def set_rows(self, new_rows: Sequence[T]) -> None:
        """Replace the contents: removed rows go, changed rows update, new rows are appended."""
        wanted = {self.key(item): item for item in new_rows}
        for number in range(len(self._rows) - 1, -1, -1):
            if self.key(self._rows[number]) not in wanted:
                self.beginRemoveRows(QModelIndex(), number, number)
                del self._rows[number]
                self.endRemoveRows()
        present = set()
        for number, item in enumerate(self._rows):
            key = self.key(item)
            present.add(key)
            self.replace_row(number, wanted[key])
        added = [item for key, item in wanted.items() if key not in present]
        if added:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(added) - 1)
            self._rows.extend(added)
            self.endInsertRows()

    # -- QAbstractTableModel ---------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

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
        if role == Qt.ItemDataRole.CheckStateRole:
            return self.check_state(row, column)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            alignment = self.alignment(row, column)
            return None if alignment is None else int(alignment | Qt.AlignmentFlag.AlignVCenter)
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        flags = super().flags(index)
        if not index.isValid() or index.row() >= len(self._rows):
            return flags
        row, column = self._rows[index.row()], index.column()
        if self.checkable(row, column):
            flags |= Qt.ItemFlag.ItemIsUserCheckable
        if self.editable(row, column):
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or index.row() >= len(self._rows):
            return False
        row, column = self._rows[index.row()], index.column()
        if role == Qt.ItemDataRole.CheckStateRole and self.checkable(row, column):
            checked = value in (Qt.CheckState.Checked, Qt.CheckState.Checked.value)
            return self.set_checked(index.row(), column, checked)
        if role == Qt.ItemDataRole.EditRole and self.editable(row, column):
            return self.set_value(index.row(), column, value)
        return False
