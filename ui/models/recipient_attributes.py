"""A recipient's custom attributes (extensionAttribute1..15) as an editable two-column list."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.directory.recipients import MAX_ATTRIBUTE_LENGTH
from ui.models.table import RowTableModel

log = logging.getLogger(__name__)

EXTENSION_ATTRIBUTES: tuple[str, ...] = tuple(f"extensionAttribute{n}" for n in range(1, 16))

Attribute = tuple[str, str]
"""One row: the attribute's name and its value ('' for none)."""


class AttributeListModel(RowTableModel[Attribute]):
    """Attribute | Value; the values are edited in place (double-click or F2). GUI thread."""

    COL_NAME, COL_VALUE = range(2)
    HEADERS = ("Attribute", "Value")

    edited = Signal()

    def __init__(
        self, names: Sequence[str] = EXTENSION_ATTRIBUTES, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._names = tuple(names)
        self.reset_rows([(name, "") for name in self._names])

    def load(self, attributes: Mapping[str, str]) -> None:
        """Show a recipient's values (the names stay, so the rows only change)."""
        for number, name in enumerate(self._names):
            self.replace_row(number, (name, attributes.get(name, "")))

    def values(self) -> dict[str, str]:
        """Every attribute's value, '' for an empty one."""
        return dict(self.rows())

    # -- RowTableModel ---------------------------------------------------------------------

    def key(self, row: Attribute) -> Hashable:
        return row[0]

    def display(self, row: Attribute, column: int) -> str:
        return row[0] if column == self.COL_NAME else row[1]

    def sort_value(self, row: Attribute, column: int) -> Any:
        return self.display(row, column)

    def tooltip(self, row: Attribute, column: int) -> str | None:
        if column == self.COL_VALUE:
            return f"Filters test it as ({row[0]}=...). Double-click to edit."
        return None

    def editable(self, row: Attribute, column: int) -> bool:
        return column == self.COL_VALUE

    def set_value(self, number: int, column: int, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        name = self.row_object(number)[0]
        if not self.replace_row(number, (name, value.strip()[:MAX_ATTRIBUTE_LENGTH])):
            return False
        self.edited.emit()
        return True
