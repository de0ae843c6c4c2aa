"""Recipients listed by reference: a group's Members, a recipient's Member Of, a pick list."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from app.directory.recipients import RecipientSummary
from ui import icons
from ui.formatting import shown_smtp
from ui.models.recipients import KIND_TEXT
from ui.models.table import RowTableModel


class RecipientRefModel(RowTableModel[RecipientSummary]):
    """Display Name | Alias | Type | E-mail Address of some recipients. GUI thread only."""

    COL_DISPLAY, COL_ALIAS, COL_TYPE, COL_ADDRESS = range(4)
    HEADERS = ("Display Name", "Alias", "Type", "E-mail Address")

    def key(self, row: RecipientSummary) -> Hashable:
        return row.id

    def display(self, row: RecipientSummary, column: int) -> str:
        if column == self.COL_DISPLAY:
            return row.display_name
        if column == self.COL_ALIAS:
            return row.alias
        if column == self.COL_TYPE:
            return KIND_TEXT.get(row.kind, row.kind)
        return shown_smtp(row.primary_smtp)

    def decoration(self, row: RecipientSummary, column: int) -> Any:
        return icons.icon(row.kind)

    def aliases(self) -> tuple[str, ...]:
        return tuple(row.alias for row in self._rows)

    def remove_rows(self, rows: list[int]) -> None:
        keep = [item for number, item in enumerate(self._rows) if number not in set(rows)]
        self.set_rows(keep)
