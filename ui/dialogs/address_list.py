"""The E-Mail Addresses page's list and its New / Edit / Remove / Set as Primary buttons.

Both sheets that edit addresses use it: the policy sheet (its generation rules) and the
recipient sheet (its proxy addresses). The list and the rule for removing and setting a primary
are here once; each page says how an address is added or edited, and may lock a row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from PySide6.QtCore import QItemSelectionModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from ui import messages
from ui.models.addresses import AddressListModel, TypedAddress

log = logging.getLogger(__name__)

A = TypeVar("A", bound=TypedAddress)

ALREADY_PRIMARY = "This address is already the primary address of its type."


class AddressListEditor(QWidget, Generic[A]):
    """An address list with New, Edit, Remove and Set as Primary, on one sheet page.

    ``new`` and ``edit`` are the page's: they ask for an address (in a dialog of their own) and
    change the model. ``locked`` gives why a row cannot be removed, '' when it can (e.g. the
    Default Policy's primary SMTP address). GUI thread only.
    """

    def __init__(
        self,
        model: AddressListModel[A],
        new: Callable[[], None],
        edit: Callable[[int], None],
        locked: Callable[[int], str] = lambda _row: "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.model = model
        self._edit = edit
        self._locked = locked
        self.view = QTreeView(self)
        self.view.setRootIsDecorated(False)
        self.view.setUniformRowHeights(True)
        self.view.setAllColumnsShowFocus(True)
        self.view.setModel(model)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.header().setStretchLastSection(True)
        self.view.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.view.selectionModel().selectionChanged.connect(self.update_buttons)
        self.view.doubleClicked.connect(lambda _index: self.edit_current())
        model.edited.connect(self.update_buttons)

        self.new_button = QPushButton("Ne&w...", self)
        self.edit_button = QPushButton("&Edit...", self)
        self.remove_button = QPushButton("&Remove", self)
        self.primary_button = QPushButton("&Set as Primary", self)
        buttons = QHBoxLayout()
        for button, name, slot in (
            (self.new_button, "new", new),
            (self.edit_button, "edit", self.edit_current),
            (self.remove_button, "remove", self.remove_current),
            (self.primary_button, "setPrimary", self.set_primary),
        ):
            button.setObjectName(name)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addLayout(buttons)

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
        locked = self._locked(row) if row is not None else ""
        self.remove_button.setEnabled(has and not locked)
        self.remove_button.setToolTip(locked)
        primary = row is not None and self.model.row_object(row).primary
        self.primary_button.setEnabled(has and not primary)
        self.primary_button.setToolTip(ALREADY_PRIMARY if primary else "")

    def edit_current(self) -> None:
        row = self.current_row()
        if row is not None:
            self._edit(row)

    def remove_current(self) -> None:
        """Remove the selected address, unless it is locked or a primary with others of its
        type (the administrator is told why)."""
        row = self.current_row()
        if row is None:
            return
        refusal = self._locked(row) or self.model.remove_refusal(row)
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
