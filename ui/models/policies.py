"""The Recipient Policies list: name, priority, filter rule, last modified; renamed in place."""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QFont

from app.model import RecipientPolicy
from ui import icons
from ui.formatting import local_time
from ui.models.table import RowTableModel

log = logging.getLogger(__name__)


class PolicyListModel(RowTableModel[RecipientPolicy]):
    """Recipient policies: Name | Priority | Filter Rule | Last Modified."""

    COL_NAME, COL_PRIORITY, COL_FILTER, COL_MODIFIED = range(4)
    HEADERS = ("Name", "Priority", "Filter Rule", "Last Modified")

    def __init__(
        self,
        parent: QObject | None = None,
        rename: Callable[[RecipientPolicy, str], bool] | None = None,
    ) -> None:
        super().__init__(parent)
        self._rename = rename

    def key(self, row: RecipientPolicy) -> Hashable:
        return row.id

    def display(self, row: RecipientPolicy, column: int) -> str:
        if column == self.COL_NAME:
            return row.name
        if column == self.COL_PRIORITY:
            return row.priority_text
        if column == self.COL_FILTER:
            return row.filter
        return local_time(row.modified)

    def sort_value(self, row: RecipientPolicy, column: int) -> Any:
        if column == self.COL_PRIORITY:
            return row.priority if row.priority is not None else 1 << 30
        if column == self.COL_MODIFIED:
            return row.modified
        return super().sort_value(row, column)

    def decoration(self, row: RecipientPolicy, column: int) -> Any:
        return icons.icon("policy")

    def font(self, row: RecipientPolicy, column: int) -> Any:
        if row.apply_pending and column == self.COL_NAME:
            font = QFont()
            font.setItalic(True)
            return font
        return None

    def tooltip(self, row: RecipientPolicy, column: int) -> str | None:
        if row.apply_pending:
            return "Waiting for the Recipient Update Service to apply this policy."
        if column == self.COL_FILTER and not row.filter:
            return "No filter yet: this policy applies to nobody. Set one in its properties."
        return None

    def editable(self, row: RecipientPolicy, column: int) -> bool:
        return column == self.COL_NAME and self._rename is not None and not row.is_default

    def set_value(self, number: int, column: int, value: Any) -> bool:
        policy = self.row_object(number)
        if self._rename is None or str(value) == policy.name:
            return False
        return self._rename(policy, str(value))
