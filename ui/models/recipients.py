"""Recipients as short lists show them: Display Name | Alias | Type | E-mail Address."""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any, TypeVar

from app.directory.listing import RecipientSummary
from app.model import Recipient
from ui import icons
from ui.formatting import shown_smtp
from ui.models.table import RowTableModel

log = logging.getLogger(__name__)

KIND_TEXT = {"user": "User", "contact": "Contact", "group": "Distribution group"}

R = TypeVar("R", Recipient, RecipientSummary)


class RecipientColumnsModel(RowTableModel[R]):
    """The four columns every short recipient list has; subclasses say where the address is."""

    COL_DISPLAY, COL_ALIAS, COL_TYPE, COL_ADDRESS = range(4)
    HEADERS = ("Display Name", "Alias", "Type", "E-mail Address")

    def address(self, row: R) -> str | None:
        """The row's primary SMTP address, None when it has none yet."""
        raise NotImplementedError

    def display(self, row: R, column: int) -> str:
        return recipient_text(row, self.address(row), column)

    def decoration(self, row: R, column: int) -> Any:
        return icons.icon(row.kind)


def recipient_text(row: Recipient | RecipientSummary, address: str | None, column: int) -> str:
    """A recipient's text in one of the four columns every recipient list starts with (All
    Recipients adds Policy after them); any thread: no Qt involved."""
    if column == RecipientColumnsModel.COL_DISPLAY:
        return row.display_name
    if column == RecipientColumnsModel.COL_ALIAS:
        return row.alias
    if column == RecipientColumnsModel.COL_TYPE:
        return KIND_TEXT.get(row.kind, row.kind)
    return shown_smtp(address)


class RecipientMatchModel(RecipientColumnsModel[Recipient]):
    """Recipients a filter matches, as the Find Recipients dialog lists them (Find Now)."""

    def key(self, row: Recipient) -> Hashable:
        return row.id if row.id is not None else row.alias.lower()

    def address(self, row: Recipient) -> str | None:
        return row.primary_address()


class RecipientRefModel(RecipientColumnsModel[RecipientSummary]):
    """Recipients listed by reference: a group's Members, a recipient's Member Of, a pick
    list. GUI thread only."""

    def key(self, row: RecipientSummary) -> Hashable:
        return row.id

    def address(self, row: RecipientSummary) -> str | None:
        return row.primary_smtp

    def aliases(self) -> tuple[str, ...]:
        return tuple(row.alias for row in self._rows)

    def remove_rows(self, rows: list[int]) -> None:
        keep = [item for number, item in enumerate(self._rows) if number not in set(rows)]
        self.set_rows(keep)
