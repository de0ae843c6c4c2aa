"""A recipient's e-mail addresses while its sheet is open: Type | Address, the primary in bold."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence

from PySide6.QtCore import QObject

from app.directory import recipients
from app.model import ProxyAddress
from ui.formatting import shown_address
from ui.models.addresses import AddressListModel, same_type

log = logging.getLogger(__name__)


def address_key(proxy: ProxyAddress) -> tuple[str, str]:
    """Two addresses are the same when type and address match, ignoring case."""
    return (proxy.type.upper(), proxy.address.lower())


class ProxyAddressListModel(AddressListModel[ProxyAddress]):
    """The addresses being edited; nothing is stored until the sheet's OK or Apply. GUI thread."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._reasons: dict[tuple[str, str], str] = {}

    # -- access ----------------------------------------------------------------------------

    def load(self, addresses: Sequence[ProxyAddress]) -> None:
        self.reset_rows(addresses)

    def set_reasons(self, reasons: Mapping[tuple[str, str], str]) -> None:
        """Where each address came from (the RUS explain), shown as its tooltip."""
        self._reasons = dict(reasons)
        for number in range(self.rowCount()):
            self.row_changed(number)

    def addresses(self) -> tuple[ProxyAddress, ...]:
        return tuple(self._rows)

    def address(self, row: int) -> ProxyAddress:
        return self._rows[row]

    # -- edits -----------------------------------------------------------------------------

    def add(self, proxy: ProxyAddress) -> int:
        """Append an address; the first of its type becomes the primary."""
        number = self.append_row(dataclasses.replace(proxy, primary=self.is_first_of_type(proxy)))
        self.edited.emit()
        return number

    def replace(self, number: int, proxy: ProxyAddress) -> None:
        """Change an address in place; it stays primary (or secondary) as it was. When its type
        changes, the old type's first address takes over as its primary and the address is the
        primary of its new type if that type had none."""
        old = self._rows[number]
        kept = same_type(proxy, old)
        self.replace_row(number, dataclasses.replace(proxy, primary=old.primary and kept))
        if not kept and old.primary:
            self._promote_first(old)
        if not kept and not any(p.primary for p in self._rows if same_type(p, proxy)):
            self.replace_row(number, dataclasses.replace(self._rows[number], primary=True))
        self.edited.emit()

    def remove(self, number: int) -> None:
        """Remove an address (callers refuse a primary that has others of its type)."""
        removed = self.remove_row(number)
        if removed.primary:
            self._promote_first(removed)
        self.edited.emit()

    def made_primary(self, rows: list[ProxyAddress], number: int) -> list[ProxyAddress]:
        """The chosen address is the primary of its type (the engine's rule)."""
        return recipients.with_primary_address(rows, number)

    def _promote_first(self, of_type: ProxyAddress) -> None:
        for number, proxy in enumerate(self._rows):
            if same_type(proxy, of_type):
                self.replace_row(number, dataclasses.replace(proxy, primary=True))
                return

    # -- RowTableModel ---------------------------------------------------------------------

    def shown(self, row: ProxyAddress) -> str:
        return shown_address(row)

    def tooltip(self, row: ProxyAddress, column: int) -> str | None:
        reason = self._reasons.get(address_key(row))
        primary = f"The primary {row.type} address (the reply address). " if row.primary else ""
        return (primary + (f"This address was {reason}." if reason else "")).strip() or None
