"""A recipient's custom attributes (extensionAttribute1..15) as an editable two-column list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)

from app.directory.recipients import MAX_ATTRIBUTE_LENGTH
from ui.models.table import OBJECT_ROLE, SORT_ROLE

Index = QModelIndex | QPersistentModelIndex

EXTENSION_ATTRIBUTES: tuple[str, ...] = tuple(f"extensionAttribute{n}" for n in range(1, 16))


class AttributeListModel(QAbstractTableModel):
    """Attribute | Value; the values are edited in place (double-click or F2). GUI thread."""

    COL_NAME, COL_VALUE = range(2)
    HEADERS = ("Attribute", "Value")

    edited = Signal()

    def __init__(
        self, names: Sequence[str] = EXTENSION_ATTRIBUTES, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._names = tuple(names)
        self._values = ["" for _ in self._names]

    def load(self, attributes: Mapping[str, str]) -> None:
        self._values = [attributes.get(name, "") for name in self._names]
        if self._names:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._names) - 1, 1))

    def values(self) -> dict[str, str]:
        """Every attribute's value, '' for an empty one."""
        return dict(zip(self._names, self._values, strict=True))

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._names)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._names):
            return None
        name, value = self._names[index.row()], self._values[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole, SORT_ROLE):
            return name if index.column() == self.COL_NAME else value
        if role == OBJECT_ROLE:
            return (name, value)
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == self.COL_VALUE:
            return f"Filters test it as ({name}=...). Double-click to edit."
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == self.COL_VALUE:
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if (
            role != Qt.ItemDataRole.EditRole
            or not index.isValid()
            or index.column() != self.COL_VALUE
            or not isinstance(value, str)
        ):
            return False
        value = value.strip()[:MAX_ATTRIBUTE_LENGTH]
        if value == self._values[index.row()]:
            return False
        self._values[index.row()] = value
        self.dataChanged.emit(index, index)
        self.edited.emit()
        return True

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
