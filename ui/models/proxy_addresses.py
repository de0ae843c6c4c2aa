"""A recipient's e-mail addresses while its sheet is open: Type | Address, the primary in bold."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QFont

from app.model import SMTP, ProxyAddress
from ui.formatting import shown_smtp
from ui.models.table import OBJECT_ROLE, SORT_ROLE

Index = QModelIndex | QPersistentModelIndex


def address_key(proxy: ProxyAddress) -> tuple[str, str]:
    """Two addresses are the same when type and address match, ignoring case."""
    return (proxy.type.upper(), proxy.address.lower())


def shown_address(proxy: ProxyAddress) -> str:
    return shown_smtp(proxy.address) if proxy.type.upper() == SMTP else proxy.address


class ProxyAddressListModel(QAbstractTableModel):
    """The addresses being edited; nothing is stored until the sheet's OK or Apply. GUI thread."""

    COL_TYPE, COL_ADDRESS = range(2)
    HEADERS = ("Type", "Address")

    edited = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[ProxyAddress] = []
        self._reasons: dict[tuple[str, str], str] = {}

    # -- access ----------------------------------------------------------------------------

    def load(self, addresses: Sequence[ProxyAddress]) -> None:
        self.beginResetModel()
        self._rows = list(addresses)
        self.endResetModel()

    def set_reasons(self, reasons: Mapping[tuple[str, str], str]) -> None:
        """Where each address came from (the RUS explain), shown as its tooltip."""
        self._reasons = dict(reasons)
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, 1))

    def addresses(self) -> tuple[ProxyAddress, ...]:
        return tuple(self._rows)

    def address(self, row: int) -> ProxyAddress:
        return self._rows[row]

    def row_of(self, proxy: ProxyAddress) -> int | None:
        key = address_key(proxy)
        return next((n for n, p in enumerate(self._rows) if address_key(p) == key), None)

    # -- edits -----------------------------------------------------------------------------

    def add(self, proxy: ProxyAddress) -> int:
        """Append an address; the first of its type becomes the primary."""
        first = all(p.type.upper() != proxy.type.upper() for p in self._rows)
        row = len(self._rows)
        self.beginInsertRows(QModelIndex(), row, row)
        self._rows.append(dataclasses.replace(proxy, primary=first))
        self.endInsertRows()
        self.edited.emit()
        return row

    def replace(self, row: int, proxy: ProxyAddress) -> None:
        """Change an address in place; it stays primary (or secondary) as it was."""
        old = self._rows[row]
        same_type = proxy.type.upper() == old.type.upper()
        self._rows[row] = dataclasses.replace(proxy, primary=old.primary and same_type)
        self._changed(row)
        if not same_type and old.primary:
            self._promote_first(old.type)
        if not same_type and not any(
            p.primary for p in self._rows if p.type.upper() == proxy.type.upper()
        ):
            self._rows[row] = dataclasses.replace(self._rows[row], primary=True)
            self._changed(row)
        self.edited.emit()

    def remove(self, row: int) -> None:
        """Remove an address (callers refuse a primary that has others of its type)."""
        self.beginRemoveRows(QModelIndex(), row, row)
        removed = self._rows.pop(row)
        self.endRemoveRows()
        if removed.primary:
            self._promote_first(removed.type)
        self.edited.emit()

    def set_primary(self, row: int) -> None:
        """Make the address the primary of its type; the old primary stays, as secondary."""
        chosen = self._rows[row]
        for number, proxy in enumerate(self._rows):
            if proxy.type.upper() != chosen.type.upper():
                continue
            primary = number == row
            if proxy.primary != primary:
                self._rows[number] = dataclasses.replace(proxy, primary=primary)
                self._changed(number)
        self.edited.emit()

    def _promote_first(self, type_: str) -> None:
        for number, proxy in enumerate(self._rows):
            if proxy.type.upper() == type_.upper():
                self._rows[number] = dataclasses.replace(proxy, primary=True)
                self._changed(number)
                return

    def _changed(self, row: int) -> None:
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.HEADERS) - 1))

    # -- QAbstractTableModel ---------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        proxy = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return proxy.type if column == self.COL_TYPE else shown_address(proxy)
        if role == SORT_ROLE:
            return proxy.type.upper() if column == self.COL_TYPE else proxy.address.lower()
        if role == OBJECT_ROLE:
            return proxy
        if role == Qt.ItemDataRole.FontRole and proxy.primary:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            reason = self._reasons.get(address_key(proxy))
            primary = (
                f"The primary {proxy.type} address (the reply address). " if proxy.primary else ""
            )
            return (primary + (f"This address was {reason}." if reason else "")).strip() or None
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(self.HEADERS)
        ):
            return self.HEADERS[section]
        return None
