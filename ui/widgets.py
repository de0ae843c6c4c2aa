"""The widgets every console dialog builds the same way: a read-only list, OK / Cancel, a
field's label."""

from __future__ import annotations

import logging

from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QTreeView,
    QWidget,
)

log = logging.getLogger(__name__)

SelectionMode = QAbstractItemView.SelectionMode


def list_view(
    parent: QWidget | None,
    name: str,
    selection: SelectionMode = SelectionMode.SingleSelection,
) -> QTreeView:
    """A list as the console shows one: rows, not a tree; whole rows selected; not edited in
    place (double-click opens, or edits through a dialog)."""
    view = QTreeView(parent)
    view.setObjectName(name)
    view.setRootIsDecorated(False)
    view.setUniformRowHeights(True)
    view.setAllColumnsShowFocus(True)
    view.setSelectionMode(selection)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.header().setStretchLastSection(True)
    return view


def ok_cancel(dialog: QDialog) -> QDialogButtonBox:
    """OK and Cancel, wired to the dialog's ``accept`` and ``reject``."""
    buttons = QDialogButtonBox(
        QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, dialog
    )
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    return buttons


def buddy_label(text: str, buddy: QWidget, parent: QWidget | None = None) -> QLabel:
    """A field's label whose ``&`` mnemonic moves the focus to the field."""
    label = QLabel(text, parent)
    label.setBuddy(buddy)
    return label
