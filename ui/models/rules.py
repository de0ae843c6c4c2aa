"""The generation rules of a policy being edited: check box, Type, Address; primary in bold."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
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

from app import policies
from app.directory import addressing
from app.model import AddressRule
from ui.models.table import OBJECT_ROLE, SORT_ROLE

Index = QModelIndex | QPersistentModelIndex

PRIMARY_TICK_TIP = (
    "The primary address is always generated. Set another address of this type as primary "
    "before clearing it."
)


def shown_address(rule: AddressRule) -> str:
    """An SMTP rule's address with its domain in Unicode (U-labels), as the admin typed it."""
    if not rule.is_smtp:
        return rule.address
    local, domain = addressing.split_address(rule.address)
    return f"{local}@{addressing.display_domain(domain)}"


@dataclass(frozen=True)
class RuleRow:
    rule: AddressRule
    new: bool = False
    """Added in this sheet and not yet saved (the Exchange 2000 trap: it starts unticked)."""


class RuleListModel(QAbstractTableModel):
    """The rules of one policy while its sheet is open; edits stay here until OK or Apply."""

    COL_TYPE, COL_ADDRESS = range(2)
    HEADERS = ("Type", "Address")

    edited = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[RuleRow] = []

    # -- access ----------------------------------------------------------------------------

    def load(self, rules: Sequence[AddressRule]) -> None:
        self.beginResetModel()
        self._rows = [RuleRow(rule) for rule in rules]
        self.endResetModel()

    def rules(self) -> tuple[AddressRule, ...]:
        return tuple(row.rule for row in self._rows)

    def rule(self, row: int) -> AddressRule:
        return self._rows[row].rule

    def is_new(self, row: int) -> bool:
        return self._rows[row].new

    def new_unticked(self) -> list[int]:
        """Rows added in this sheet that are still not selected."""
        return [n for n, row in enumerate(self._rows) if row.new and not row.rule.enabled]

    # -- edits -----------------------------------------------------------------------------

    def add(self, rule: AddressRule) -> int:
        """Append a rule added in the sheet. As in Exchange 2000 it starts unticked, unless it
        is the first of its type (which becomes the primary, and a primary is always ticked)."""
        first_of_type = all(r.rule.type.upper() != rule.type.upper() for r in self._rows)
        rule = dataclasses.replace(rule, enabled=first_of_type, primary=first_of_type)
        row = len(self._rows)
        self.beginInsertRows(QModelIndex(), row, row)
        self._rows.append(RuleRow(rule, new=True))
        self.endInsertRows()
        self.edited.emit()
        return row

    def replace(self, row: int, rule: AddressRule) -> None:
        old = self._rows[row]
        rule = dataclasses.replace(rule, primary=old.rule.primary, enabled=old.rule.enabled)
        self._rows[row] = dataclasses.replace(old, rule=rule)
        self._row_changed(row)

    def remove(self, row: int) -> None:
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._rows[row]
        self.endRemoveRows()
        self.edited.emit()

    def set_enabled(self, row: int, enabled: bool) -> None:
        old = self._rows[row]
        if old.rule.enabled == enabled:
            return
        self._rows[row] = dataclasses.replace(
            old, rule=dataclasses.replace(old.rule, enabled=enabled)
        )
        self._row_changed(row)

    def set_primary(self, row: int) -> None:
        """Make the rule the primary of its type (and tick it), as Set as Primary does."""
        updated = policies.with_primary(self.rules(), row)
        for number, rule in enumerate(updated):
            if rule != self._rows[number].rule:
                self._rows[number] = dataclasses.replace(self._rows[number], rule=rule)
                self._row_changed(number, emit=False)
        self.edited.emit()

    def _row_changed(self, row: int, emit: bool = True) -> None:
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.HEADERS) - 1))
        if emit:
            self.edited.emit()

    # -- QAbstractTableModel ---------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        rule = self._rows[index.row()].rule
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return rule.type if column == self.COL_TYPE else shown_address(rule)
        if role == SORT_ROLE:
            return rule.type.upper() if column == self.COL_TYPE else rule.address.lower()
        if role == OBJECT_ROLE:
            return rule
        if role == Qt.ItemDataRole.CheckStateRole and column == self.COL_TYPE:
            return Qt.CheckState.Checked if rule.enabled else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.FontRole and rule.primary:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == self.COL_TYPE and rule.primary:
                return PRIMARY_TICK_TIP
            if rule.is_smtp and not rule.responsible:
                return (
                    "Shared namespace: mail to an unknown address here is passed on, not refused."
                )
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == self.COL_TYPE and not self._rows[index.row()].rule.primary:
            flags |= Qt.ItemFlag.ItemIsUserCheckable
        return flags

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if (
            role != Qt.ItemDataRole.CheckStateRole
            or not index.isValid()
            or index.column() != self.COL_TYPE
            or self._rows[index.row()].rule.primary
        ):
            return False
        checked = value in (Qt.CheckState.Checked, Qt.CheckState.Checked.value, 2)
        self.set_enabled(index.row(), checked)
        return True

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
