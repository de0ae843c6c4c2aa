"""New… / Edit… on a recipient's E-mail Addresses tab: one address, checked as it is typed."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from app import policies
from app.directory import addressing, recipients
from app.errors import ConflictError, PostroomError
from app.model import SMTP, ProxyAddress
from app.store import Store
from ui import messages
from ui.formatting import shown_address
from ui.models.proxy_addresses import address_key
from ui.widgets import ok_cancel

log = logging.getLogger(__name__)

ERROR_STYLE = "color: #b00020;"
WARNING_STYLE = "color: #8a5a00;"


class ProxyAddressDialog(QDialog):
    """ "Internet Address Properties" (SMTP) or "Custom Address Properties" (any other type)."""

    def __init__(
        self,
        parent: QWidget | None,
        store: Store,
        type_: str,
        proxy: ProxyAddress | None,
        existing: Sequence[ProxyAddress],
        owner: str,
    ) -> None:
        super().__init__(parent)
        self.is_smtp = type_.upper() == SMTP
        self.setWindowTitle(
            "Internet Address Properties" if self.is_smtp else "Custom Address Properties"
        )
        self.setObjectName("proxyAddressDialog")
        self.store = store
        self.owner = owner
        self.original = proxy
        self.existing = {address_key(p) for p in existing if p != proxy}
        self.result_address: ProxyAddress | None = None
        self._hosted = {d.domain.lower() for d in _hosted_domains(store)} if self.is_smtp else set()

        self.type = QLineEdit(SMTP if self.is_smtp else "", self)
        self.type.setObjectName("type")
        self.type.setPlaceholderText("X400")
        self.type.setReadOnly(self.is_smtp)
        self.type.setVisible(not self.is_smtp)  # an SMTP address's type is not typed
        self.address = QLineEdit(self)
        self.address.setObjectName("address")
        self.address.setPlaceholderText(
            "ann@example.com" if self.is_smtp else "c=US;a= ;p=Example;o=Mail;s=Ann;"
        )
        self.feedback = QLabel(self)
        self.feedback.setObjectName("feedback")
        self.feedback.setWordWrap(True)
        self.feedback.setMinimumHeight(40)
        self.feedback.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.buttons = ok_cancel(self)
        form = QFormLayout()
        if not self.is_smtp:
            form.addRow("E-mail address &type:", self.type)
        form.addRow("E-mail &address:", self.address)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.feedback)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        if proxy is not None:
            self.type.setText(proxy.type)
            self.address.setText(shown_address(proxy))
        self.address.textChanged.connect(self.validate)
        self.type.textChanged.connect(self.validate)
        self.validate()
        self.resize(460, 170)

    def make(self) -> ProxyAddress:
        """The address as typed, or a PostroomError saying what is wrong with it."""
        proxy = recipients.check_address(self.address.text(), self.type.text())
        if address_key(proxy) in self.existing:
            raise ConflictError(f"This recipient already has the address {shown_address(proxy)}.")
        if self.original is not None:
            proxy = dataclasses.replace(proxy, primary=self.original.primary)
        return proxy

    def validate(self) -> bool:
        """Inline: what is wrong, or what the address will do."""
        if not self.address.text().strip():
            self._say("", "Type an address such as ann@example.com." if self.is_smtp else "")
            return False
        try:
            proxy = self.make()
        except PostroomError as error:
            self._say(ERROR_STYLE, str(error))
            return False
        if self.is_smtp:
            domain = addressing.split_address(proxy.address)[1].lower()
            if domain not in self._hosted:
                self._say(
                    WARNING_STYLE,
                    f"No recipient policy has {addressing.display_domain(domain)}, so the SMTP "
                    "service refuses mail to this address from outside. Add the domain to a "
                    "policy to accept it.",
                )
                return True
            self._say("", f"Mail to {shown_address(proxy)} will be delivered to this recipient.")
        else:
            self._say("", f"Kept as a {proxy.type} address; Postroom does not route it.")
        return True

    def _say(self, style: str, text: str) -> None:
        self.feedback.setStyleSheet(style)
        self.feedback.setText(text)

    def accept(self) -> None:
        try:
            proxy = self.make()
            holder = recipients.address_owner(self.store, proxy.address, proxy.type)
            if holder is not None and holder.lower() != self.owner.lower():
                raise ConflictError(
                    f"The address {shown_address(proxy)} already belongs to '{holder}'. "
                    "Proxy addresses must be unique in the organization."
                )
        except PostroomError as error:
            messages.error(self, error)
            self.address.setFocus()
            return
        self.result_address = proxy
        super().accept()

    @classmethod
    def ask(
        cls,
        parent: QWidget | None,
        store: Store,
        type_: str,
        proxy: ProxyAddress | None,
        existing: Sequence[ProxyAddress],
        owner: str,
    ) -> ProxyAddress | None:
        """A new (``proxy`` None) or edited address of ``owner``, or None when cancelled."""
        dialog = cls(parent, store, type_, proxy, existing, owner)
        try:
            return dialog.result_address if dialog.exec() == QDialog.DialogCode.Accepted else None
        finally:
            dialog.deleteLater()


def _hosted_domains(store: Store) -> list[policies.HostedDomain]:
    try:
        return policies.hosted_domains(policies.list_policies(store))
    except PostroomError:
        return []
