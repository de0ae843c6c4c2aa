"""The Recipient Update Services list: name, update interval, last run and status."""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from ui import icons
from ui.models.table import RowTableModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RusRow:
    """One Recipient Update Service as the list shows it."""

    name: str
    interval: str
    last_run: str
    last_run_sort: str
    status: str


class RusListModel(RowTableModel[RusRow]):
    """Recipient Update Services: Name | Update Interval | Last Run | Status."""

    COL_NAME, COL_INTERVAL, COL_LAST_RUN, COL_STATUS = range(4)
    HEADERS = ("Name", "Update Interval", "Last Run", "Status")

    def key(self, row: RusRow) -> Hashable:
        return row.name

    def display(self, row: RusRow, column: int) -> str:
        return (row.name, row.interval, row.last_run, row.status)[column]

    def sort_value(self, row: RusRow, column: int) -> Any:
        if column == self.COL_LAST_RUN:
            return row.last_run_sort
        return super().sort_value(row, column)

    def decoration(self, row: RusRow, column: int) -> Any:
        return icons.icon("recipient-update-service")
