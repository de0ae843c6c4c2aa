"""A list of e-mail addresses being edited in a sheet: Type | Address, one primary per type."""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any, Protocol, TypeVar

from PySide6.QtCore import Signal
from PySide6.QtGui import QFont

from ui.models.table import RowTableModel

log = logging.getLogger(__name__)


class TypedAddress(Protocol):
    """What the list needs of a row: a policy's rule or a recipient's address."""

    @property
    def type(self) -> str: ...

    @property
    def address(self) -> str: ...

    @property
    def primary(self) -> bool: ...


A = TypeVar("A", bound=TypedAddress)


def same_type(one: TypedAddress, other: TypedAddress) -> bool:
    """Address types compare without case (``SMTP`` is ``smtp``)."""
    return one.type.upper() == other.type.upper()


class AddressListModel(RowTableModel[A]):
    """Type | Address, the primary of each type in bold; edits stay here until OK or Apply.

    The E-Mail Addresses pages of the policy sheet (generation rules) and of the recipient
    sheet (proxy addresses) both list their rows with it. Subclasses say how an address is
    shown (``shown``) and how a row becomes the primary of its type (``made_primary``, the
    engine's rule). GUI thread only.
    """

    COL_TYPE, COL_ADDRESS = range(2)
    HEADERS = ("Type", "Address")

    edited = Signal()
    """The user changed the list (add, edit, remove, tick, set as primary)."""

    def shown(self, row: A) -> str:
        """The address as the list shows it."""
        return row.address

    def made_primary(self, rows: list[A], number: int) -> list[A]:
        """``rows`` with row ``number`` made the primary of its type."""
        raise NotImplementedError

    # -- edits -----------------------------------------------------------------------------

    def remove_refusal(self, number: int) -> str:
        """Why row ``number`` cannot be removed ('' when it can): a primary with others of its
        type must hand over first, as in Exchange."""
        row = self.row_object(number)
        others = [other for n, other in enumerate(self._rows) if n != number]
        if row.primary and any(same_type(row, other) for other in others):
            return (
                f"{self.shown(row)} is the primary {row.type} address. "
                "Set another address as primary before removing it."
            )
        return ""

    def remove(self, number: int) -> None:
        self.remove_row(number)
        self.edited.emit()

    def set_primary(self, number: int) -> None:
        """Make the row the primary of its type, as Set as Primary does."""
        for n, row in enumerate(self.made_primary(list(self._rows), number)):
            self.replace_row(n, row)
        self.edited.emit()

    def is_first_of_type(self, row: A) -> bool:
        """Whether no row has the type of ``row`` yet (an added one then becomes primary)."""
        return not any(same_type(row, other) for other in self._rows)

    # -- RowTableModel ---------------------------------------------------------------------

    def key(self, row: A) -> Hashable:
        return (row.type.upper(), row.address.lower())

    def display(self, row: A, column: int) -> str:
        return row.type if column == self.COL_TYPE else self.shown(row)

    def sort_value(self, row: A, column: int) -> Any:
        return row.type.upper() if column == self.COL_TYPE else row.address.lower()

    def font(self, row: A, column: int) -> Any:
        if not row.primary:
            return None
        font = QFont()
        font.setBold(True)
        return font
