"""New… on a policy's E-Mail Addresses tab: the address type, then the address's own dialog."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import policies
from app.directory import addressing
from app.errors import ConflictError, PostroomError
from app.model import SMTP, AddressRule
from ui import messages
from ui.formatting import shown_address
from ui.widgets import ok_cancel

log = logging.getLogger(__name__)

CUSTOM = "custom"
SAMPLE = addressing.NameValues(
    alias="jsmith", given="John", surname="Smith", initials="Q", display="John Q. Smith"
)
RESPONSIBLE_TEXT = "This organization is responsible for all mail delivery to this address"


def _check_duplicate(rule: AddressRule, existing: Sequence[AddressRule]) -> None:
    for other in existing:
        if (
            other.type.upper() == rule.type.upper()
            and other.address.lower() == rule.address.lower()
        ):
            raise ConflictError(
                f"This policy already has the {rule.type} address {shown_address(rule)}."
            )


class AddressTypeDialog(QDialog):
    """ "New E-mail Address": which type of address to add."""

    TYPES = (("SMTP Address", SMTP), ("Custom Address", CUSTOM))

    def __init__(self, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New E-mail Address")
        self.list = QListWidget(self)
        for text, value in self.TYPES:
            item = QListWidgetItem(text, self.list)
            item.setData(Qt.ItemDataRole.UserRole, value)
        self.list.setCurrentRow(0)
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        buttons = ok_cancel(self)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("E-mail address type:", self))
        layout.addWidget(self.list)
        layout.addWidget(buttons)
        self.resize(320, 220)

    def chosen(self) -> str | None:
        item = self.list.currentItem()
        return str(item.data(Qt.ItemDataRole.UserRole)) if item else None

    @classmethod
    def choose(cls, parent: QWidget | None) -> str | None:
        """``"SMTP"``, ``"custom"``, or None when cancelled."""
        dialog = cls(parent)
        try:
            return dialog.chosen() if dialog.exec() == QDialog.DialogCode.Accepted else None
        finally:
            dialog.deleteLater()


class SmtpAddressDialog(QDialog):
    """ "SMTP Address Properties": the address template and the responsible check box."""

    def __init__(
        self,
        parent: QWidget | None,
        rule: AddressRule | None,
        existing: Sequence[AddressRule],
        lock_responsible: str = "",
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("SMTP Address Properties")
        self.setObjectName("smtpAddressDialog")
        self.original = rule
        self.existing = [r for r in existing if r != rule]
        self.result_rule: AddressRule | None = None
        self.address = QLineEdit(self)
        self.address.setObjectName("address")
        self.address.setPlaceholderText("@example.com  or  %g.%s@example.com")
        self.address.setToolTip(
            "[local-part template]@domain. Tokens: %g given name, %s surname, %i initials, "
            "%d display name, %m alias, %1g first letter, %r._ replace '.' with '_', %% a '%'. "
            "Nothing before the '@' means the alias."
        )
        self.responsible = QCheckBox(RESPONSIBLE_TEXT, self)
        self.responsible.setObjectName("responsible")
        self.responsible.setChecked(True)
        if lock_responsible:
            self.responsible.setEnabled(False)
            self.responsible.setToolTip(lock_responsible)
        self.feedback = QLabel(self)
        self.feedback.setObjectName("feedback")
        self.feedback.setWordWrap(True)
        self.feedback.setMinimumHeight(48)
        self.feedback.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.buttons = ok_cancel(self)
        form = QFormLayout()
        form.addRow("&Address:", self.address)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.feedback)
        layout.addWidget(self.responsible)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self.address.textChanged.connect(self.validate)
        if rule is not None:
            self.address.setText(shown_address(rule))
            self.responsible.setChecked(rule.responsible)
        self.validate()
        self.resize(520, 200)

    def make(self) -> AddressRule:
        """The rule as typed, or a PostroomError saying what is wrong."""
        rule = policies.make_rule(
            self.address.text(), SMTP, responsible=self.responsible.isChecked()
        )
        _check_duplicate(rule, self.existing)
        if self.original is not None:
            rule = dataclasses.replace(rule, id=self.original.id)
        return rule

    def validate(self) -> bool:
        """Inline validation: what is wrong, or an example of what the rule generates."""
        if not self.address.text().strip():
            self.feedback.setStyleSheet("")
            self.feedback.setText("Type an address such as @example.net.")
            return False
        try:
            rule = self.make()
            example = addressing.generate_address(addressing.parse_template(rule.address), SAMPLE)
        except PostroomError as error:
            self.feedback.setStyleSheet("color: #b00020;")
            self.feedback.setText(str(error))
            return False
        local, domain = addressing.split_address(example)
        self.feedback.setStyleSheet("")
        self.feedback.setText(
            f"John Q. Smith (alias jsmith) would get {local}@{addressing.display_domain(domain)}."
        )
        return True

    def accept(self) -> None:
        try:
            self.result_rule = self.make()
        except PostroomError as error:
            messages.error(self, error)
            self.address.setFocus()
            return
        super().accept()

    @classmethod
    def ask(
        cls,
        parent: QWidget | None,
        rule: AddressRule | None,
        existing: Sequence[AddressRule],
        lock_responsible: str = "",
    ) -> AddressRule | None:
        """A new (``rule`` None) or edited SMTP rule, or None when cancelled."""
        dialog = cls(parent, rule, existing, lock_responsible)
        try:
            return dialog.result_rule if dialog.exec() == QDialog.DialogCode.Accepted else None
        finally:
            dialog.deleteLater()


class CustomAddressDialog(QDialog):
    """ "Custom Address Properties": an address of a type Postroom only keeps as text."""

    def __init__(
        self, parent: QWidget | None, rule: AddressRule | None, existing: Sequence[AddressRule]
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Custom Address Properties")
        self.original = rule
        self.existing = [r for r in existing if r != rule]
        self.result_rule: AddressRule | None = None
        self.type = QLineEdit(self)
        self.type.setObjectName("type")
        self.type.setPlaceholderText("X400")
        self.address = QLineEdit(self)
        self.address.setObjectName("address")
        if rule is not None:
            self.type.setText(rule.type)
            self.address.setText(rule.address)
        buttons = ok_cancel(self)
        form = QFormLayout()
        form.addRow("E-mail address &type:", self.type)
        form.addRow("E-mail &address:", self.address)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.resize(440, 130)

    def accept(self) -> None:
        try:
            rule = policies.make_rule(self.address.text(), self.type.text())
            _check_duplicate(rule, self.existing)
        except PostroomError as error:
            messages.error(self, error)
            return
        if self.original is not None:
            rule = dataclasses.replace(rule, id=self.original.id)
        self.result_rule = rule
        super().accept()

    @classmethod
    def ask(
        cls, parent: QWidget | None, rule: AddressRule | None, existing: Sequence[AddressRule]
    ) -> AddressRule | None:
        dialog = cls(parent, rule, existing)
        try:
            return dialog.result_rule if dialog.exec() == QDialog.DialogCode.Accepted else None
        finally:
            dialog.deleteLater()
