"""Property sheets as MMC has them: a tab per page, OK / Cancel / Apply, Apply only after a change.

A sheet edits one engine object (a frozen dataclass). Each page shows part of it (``load``) and
writes its fields into a copy (``apply``), and emits ``changed`` when the user edits something.
The sheet's ``commit`` stores the object; a ``PostroomError`` from it is shown as its message
and the sheet stays open with what the user typed. GUI thread only.
"""

from __future__ import annotations

import logging
from typing import Generic, TypeVar

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.errors import PostroomError
from ui import messages

log = logging.getLogger(__name__)

T = TypeVar("T")


class PropertyPage(QWidget, Generic[T]):
    """One tab of a property sheet. Subclasses build their widgets in code."""

    changed = Signal()
    title = ""

    def load(self, obj: T) -> None:
        """Show the object's values (called again after each successful Apply)."""
        raise NotImplementedError

    def apply(self, obj: T) -> T:
        """The object with this page's values written into it (a changed copy)."""
        raise NotImplementedError

    def _emit_changed(self, *_: object) -> None:
        self.changed.emit()


class PropertySheet(QDialog, Generic[T]):
    """A QDialog with a QTabWidget of pages and OK / Cancel / Apply."""

    def __init__(self, parent: QWidget | None, title: str, obj: T) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setObjectName("propertySheet")
        self.obj = obj
        self.result_obj: T | None = None
        self.pages: list[PropertyPage[T]] = []
        self.tabs = QTabWidget(self)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.Apply,
            self,
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.apply_button.clicked.connect(self.apply_changes)
        self.apply_button.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.buttons)
        self._loading = False

    @property
    def ok_button(self) -> QPushButton:
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok)

    @property
    def apply_button(self) -> QPushButton:
        return self.buttons.button(QDialogButtonBox.StandardButton.Apply)

    @property
    def cancel_button(self) -> QPushButton:
        return self.buttons.button(QDialogButtonBox.StandardButton.Cancel)

    def add_page(self, page: PropertyPage[T]) -> PropertyPage[T]:
        self.pages.append(page)
        self.tabs.addTab(page, page.title)
        page.changed.connect(self._page_changed)
        return page

    def load_pages(self) -> None:
        self._loading = True
        try:
            for page in self.pages:
                page.load(self.obj)
        finally:
            self._loading = False
        self.apply_button.setEnabled(False)

    def _page_changed(self) -> None:
        if not self._loading:
            self.apply_button.setEnabled(True)

    @property
    def dirty(self) -> bool:
        """Whether something was edited since the sheet opened or was last applied."""
        return self.apply_button.isEnabled()

    # -- committing ------------------------------------------------------------------------

    def collect(self) -> T:
        """The object with every page's values written into it."""
        obj = self.obj
        for page in self.pages:
            obj = page.apply(obj)
        return obj

    def commit(self, obj: T) -> T:
        """Store the edited object and return it as stored; raise PostroomError to refuse."""
        raise NotImplementedError

    def apply_changes(self) -> bool:
        """Apply: store what the pages hold. False (sheet stays as typed) when refused."""
        if not self.dirty:
            return True
        try:
            stored = self.commit(self.collect())
        except PostroomError as error:
            messages.error(self, error)
            return False
        self.obj = stored
        self.result_obj = stored
        self.after_commit()
        self.load_pages()
        return True

    def after_commit(self) -> None:
        """Hook: prompts that follow a successful save (e.g. Exchange's update question)."""

    def accept(self) -> None:
        if self.apply_changes():
            super().accept()
