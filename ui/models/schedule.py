"""The Recipient Update Service's weekly schedule as a grid: 7 days of 24 hours."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, Qt
from PySide6.QtGui import QBrush, QColor

from app.rus.schedule import DAY_NAMES, Week
from ui.models.table import Index

log = logging.getLogger(__name__)

RUN_COLOR = QColor("#2f6fb5")


class ScheduleModel(QAbstractTableModel):
    """The weekly grid: seven days (rows) of 24 hours (columns); a filled cell runs.

    Not a ``RowTableModel``: its cells are one grid of booleans with day and hour headers on
    both sides, not rows of engine objects with a key, so the keyed base has nothing to give.
    """

    def __init__(self, week: Week, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._grid = [list(day) for day in week]

    def week(self) -> Week:
        return tuple(tuple(day) for day in self._grid)

    def set_cells(self, indexes: list[QModelIndex], run: bool) -> None:
        for index in indexes:
            if index.isValid():
                self._grid[index.row()][index.column()] = run
                self.dataChanged.emit(index, index)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else 7

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else 24

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        run = self._grid[index.row()][index.column()]
        if role == Qt.ItemDataRole.BackgroundRole:
            return QBrush(RUN_COLOR) if run else None
        if role == Qt.ItemDataRole.ToolTipRole:
            hour = index.column()
            state = "runs" if run else "does not run"
            return f"{DAY_NAMES[index.row()]} {hour:02d}:00-{hour:02d}:59: {state}"
        if role == Qt.ItemDataRole.UserRole:
            return run
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Vertical and 0 <= section < 7:
            return DAY_NAMES[section]
        if orientation == Qt.Orientation.Horizontal and 0 <= section < 24:
            return str(section)
        return None
