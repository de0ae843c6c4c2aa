"""The Details tab that policies and connectors share: created, last modified, the note."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, TypeVar

from PySide6.QtWidgets import QFormLayout, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from ui.dialogs.property_sheet import PropertyPage
from ui.formatting import local_time
from ui.widgets import buddy_label


class Noted(Protocol):
    """An engine object with Exchange's Details tab: times as stored, and a free note."""

    @property
    def created(self) -> str: ...

    @property
    def modified(self) -> str: ...

    @property
    def note(self) -> str: ...


N = TypeVar("N", bound=Noted)


class DetailsPage(PropertyPage[N]):
    """Created and modified times, and the administrative note."""

    title = "Details"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.created = QLabel(self)
        self.created.setObjectName("created")
        self.modified = QLabel(self)
        self.modified.setObjectName("modified")
        self.note = QPlainTextEdit(self)
        self.note.setObjectName("note")
        self.note.textChanged.connect(self._note_changed)
        self._loaded_note = ""
        form = QFormLayout()
        form.addRow("Created:", self.created)
        form.addRow("Last modified:", self.modified)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buddy_label("&Administrative note:", self.note, self))
        layout.addWidget(self.note, 1)

    def _note_changed(self) -> None:
        if self.note.toPlainText() != self._loaded_note:
            self.changed.emit()

    def load(self, obj: N) -> None:
        self.created.setText(local_time(obj.created) or "Not yet created")
        self.modified.setText(local_time(obj.modified) or "-")
        self._loaded_note = obj.note
        self.note.setPlainText(obj.note)

    def apply(self, obj: N) -> N:
        changed: Any = dataclasses.replace(obj, note=self.note.toPlainText())  # type: ignore[type-var]
        return changed  # type: ignore[no-any-return]
