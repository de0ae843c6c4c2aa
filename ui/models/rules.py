"""The generation rules of a policy being edited: check box, Type, Address; primary in bold."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import Qt

from app import policies
from app.model import AddressRule
from ui.formatting import shown_address
from ui.models.addresses import AddressListModel

log = logging.getLogger(__name__)

PRIMARY_TICK_TIP = (
    "The primary address is always generated. Set another address of this type as primary "
    "before clearing it."
)


@dataclass(frozen=True)
class RuleRow:
    rule: AddressRule
    new: bool = False
    """Added in this sheet and not yet saved (the Exchange 2000 trap: it starts unticked)."""

    @property
    def type(self) -> str:
        return self.rule.type

    @property
    def address(self) -> str:
        return self.rule.address

    @property
    def primary(self) -> bool:
        return self.rule.primary


class RuleListModel(AddressListModel[RuleRow]):
    """The rules of one policy while its sheet is open; edits stay here until OK or Apply."""

    # -- access ----------------------------------------------------------------------------

    def load(self, rules: Sequence[AddressRule]) -> None:
        self.reset_rows([RuleRow(rule) for rule in rules])

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
        first_of_type = self.is_first_of_type(RuleRow(rule))
        rule = dataclasses.replace(rule, enabled=first_of_type, primary=first_of_type)
        number = self.append_row(RuleRow(rule, new=True))
        self.edited.emit()
        return number

    def replace(self, number: int, rule: AddressRule) -> None:
        old = self._rows[number]
        rule = dataclasses.replace(rule, primary=old.rule.primary, enabled=old.rule.enabled)
        self.replace_row(number, dataclasses.replace(old, rule=rule))
        self.edited.emit()

    def set_enabled(self, number: int, enabled: bool) -> bool:
        old = self._rows[number]
        rule = dataclasses.replace(old.rule, enabled=enabled)
        if not self.replace_row(number, dataclasses.replace(old, rule=rule)):
            return False
        self.edited.emit()
        return True

    def made_primary(self, rows: list[RuleRow], number: int) -> list[RuleRow]:
        """The engine's rule (``policies.with_primary``): the chosen rule is also ticked."""
        updated = policies.with_primary([row.rule for row in rows], number)
        return [
            dataclasses.replace(row, rule=rule) for row, rule in zip(rows, updated, strict=True)
        ]

    # -- RowTableModel ---------------------------------------------------------------------

    def shown(self, row: RuleRow) -> str:
        return shown_address(row.rule)

    def check_state(self, row: RuleRow, column: int) -> Qt.CheckState | None:
        if column != self.COL_TYPE:
            return None
        return Qt.CheckState.Checked if row.rule.enabled else Qt.CheckState.Unchecked

    def checkable(self, row: RuleRow, column: int) -> bool:
        return column == self.COL_TYPE and not row.rule.primary

    def set_checked(self, number: int, column: int, checked: bool) -> bool:
        self.set_enabled(number, checked)
        return True

    def tooltip(self, row: RuleRow, column: int) -> str | None:
        if column == self.COL_TYPE and row.rule.primary:
            return PRIMARY_TICK_TIP
        if row.rule.is_smtp and not row.rule.responsible:
            return "Shared namespace: mail to an unknown address here is passed on, not refused."
        return None
