"""An E-Mail Addresses page: the address list and New / Edit / Remove / Set as Primary.

Both sheets that edit addresses build on it: the policy sheet (its generation rules) and the
recipient sheet (its proxy addresses). The list, the buttons and the rule for removing and
setting a primary are here once; each page says how an address is added or edited, may lock a
row, and lays out ``address_box`` with whatever else it shows.
"""

from __future__ import annotations

import logging
from typing import Generic, TypeVar

from PySide6.QtCore import QItemSelectionModel
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ui import messages
from ui.dialogs.property_sheet import PropertyPage
from ui.models.addresses import AddressListModel, TypedAddress
from ui.widgets import list_view

log = logging.getLogger(__name__)

T = TypeVar("T")
A = TypeVar("A", bound=TypedAddress)

ALREADY_PRIMARY = "This address is already the primary address of its type."


class AddressListPage(PropertyPage[T], Generic[T, A]):
    """A sheet page listing ``model``'s addresses with New, Edit, Remove and Set as Primary.

    Subclasses implement ``new_address`` and ``edit_address`` (each asks in a dialog of its
    own and changes the model) and may override ``locked`` (why a row cannot be removed, e.g.
    the Default Policy's primary SMTP address). GUI thread only.
    """

    def __init__(
        self, model: AddressListModel[A], list_name: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.model = model
        model.edited.connect(self._emit_changed)
        model.edited.connect(self.update_buttons)
        self.address_box = QWidget(self)
        self.view = list_view(self.address_box, list_name)
        self.view.setModel(model)
        self.view.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.view.selectionModel().selectionChanged.connect(self.update_buttons)
        self.view.doubleClicked.connect(lambda _index: self.edit_current())

        self.new_button = QPushButton("Ne&w...", self.address_box)
        self.edit_button = QPushButton("&Edit...", self.address_box)
        self.remove_button = QPushButton("&Remove", self.address_box)
        self.primary_button = QPushButton("&Set as Primary", self.address_box)
        buttons = QHBoxLayout()
        for button, name, slot in (
            (self.new_button, "new", self.new_address),
            (self.edit_button, "edit", self.edit_current),
            (self.remove_button, "remove", self.remove_current),
            (self.primary_button, "setPrimary", self.set_primary),
        ):
            button.setObjectName(name)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self.address_box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addLayout(buttons)

    # -- what a page says ------------------------------------------------------------------

    def new_address(self) -> None:
        """New…: ask for an address and add it to the model."""
        raise NotImplementedError

    def edit_address(self, row: int) -> None:
        """Edit… or double-click: ask for the row's new address and put it in the model."""
        raise NotImplementedError

    def locked(self, row: int) -> str:
        """Why the row cannot be removed, '' when it can."""
        return ""

    # -- the list and its buttons ----------------------------------------------------------

    def current_row(self) -> int | None:
        rows = self.view.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def select_row(self, row: int) -> None:
        self.view.selectionModel().setCurrentIndex(
            self.model.index(row, 0),
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )

    def update_buttons(self, *_: object) -> None:
        row = self.current_row()
        has = row is not None
        self.edit_button.setEnabled(has)
        locked = self.locked(row) if row is not None else ""
        self.remove_button.setEnabled(has and not locked)
        self.remove_button.setToolTip(locked)
        primary = row is not None and self.model.row_object(row).primary
        self.primary_button.setEnabled(has and not primary)
        self.primary_button.setToolTip(ALREADY_PRIMARY if primary else "")

    def edit_current(self) -> None:
        row = self.current_row()
        if row is not None:
            self.edit_address(row)

    def remove_current(self) -> None:
        """Remove the selected address, unless it is locked or a primary with others of its
        type (the administrator is told why)."""
        row = self.current_row()
        if row is None:
            return
        refusal = self.locked(row) or self.model.remove_refusal(row)
        if refusal:
            messages.error(self, refusal)
            return
        self.model.remove(row)
        self.update_buttons()

    def set_primary(self) -> None:
        row = self.current_row()
        if row is not None:
            self.model.set_primary(row)
            self.update_buttons()
