"""The result pane's sort proxy, which lets a large lazy list sort itself."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)

log = logging.getLogger(__name__)

Index = QModelIndex | QPersistentModelIndex


def sorts_itself(model: QAbstractItemModel | None) -> bool:
    """Whether a list model sorts (and searches) itself: it says so with ``sorts_itself = True``."""
    return bool(getattr(model, "sorts_itself", False))


class ResultProxyModel(QSortFilterProxyModel):
    """Sorts the current view's list for the result pane, unless the list sorts itself.

    A source model with ``sorts_itself = True`` (All Recipients: 100,000 rows that the store
    sorts, fetched a page at a time) is never sorted here. Sorting it here would call its
    ``data()`` millions of times from C++ (17 s for 100,000 rows) and fetch every row; instead it
    gets ``sort(column, order)`` itself and this proxy keeps its order. Its ``match`` (type-ahead
    in the list) is its own too. GUI thread only.
    """

    def setSourceModel(self, model: QAbstractItemModel) -> None:
        if sorts_itself(model):
            # Before its rows are mapped: the previous list's sort column must not apply to it.
            super().sort(-1, Qt.SortOrder.AscendingOrder)
        super().setSourceModel(model)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        source = self.sourceModel()
        if sorts_itself(source):
            super().sort(-1, Qt.SortOrder.AscendingOrder)
            source.sort(column, order)
            return
        super().sort(column, order)

    def match(
        self,
        start: Index,
        role: int,
        value: Any,
        hits: int = 1,
        flags: Qt.MatchFlag = Qt.MatchFlag.MatchStartsWith | Qt.MatchFlag.MatchWrap,
    ) -> list[QModelIndex]:
        source = self.sourceModel()
        if not sorts_itself(source) or not start.isValid():
            return super().match(start, role, value, hits, flags)
        found = source.match(self.mapToSource(start), role, value, hits, flags)
        return [self.mapFromSource(index) for index in found]
