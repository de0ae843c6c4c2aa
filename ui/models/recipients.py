"""Recipients found by a filter (Find Now): Display Name | Alias | Type | E-mail Address."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from app.model import Recipient
from ui import icons
from ui.formatting import shown_smtp
from ui.models.table import RowTableModel

KIND_TEXT = {"user": "User", "contact": "Contact", "group": "Distribution group"}


class RecipientMatchModel(RowTableModel[Recipient]):
    """Recipients a filter matches, as the Find Recipients dialog lists them."""

    COL_DISPLAY, COL_ALIAS, COL_TYPE, COL_ADDRESS = range(4)
    HEADERS = ("Display Name", "Alias", "Type", "E-mail Address")

    def key(self, row: Recipient) -> Hashable:
        return row.id if row.id is not None else row.alias.lower()

    def display(self, row: Recipient, column: int) -> str:
        if column == self.COL_DISPLAY:
            return row.display_name
        if column == self.COL_ALIAS:
            return row.alias
        if column == self.COL_TYPE:
            return KIND_TEXT.get(row.kind, row.kind)
        return shown_smtp(row.primary_address())

    def decoration(self, row: Recipient, column: int) -> Any:
        return icons.icon(row.kind)
