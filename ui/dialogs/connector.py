"""The SMTP connector property sheet: General, Address Space, Advanced, Details.

Every rule about what a connector may hold is ``app.connectors``'s: the pages only collect what
was typed, and the sheet stores it through ``app.connectors.catalog``, whose refusal is shown as
its one line while the sheet stays open as typed. GUI thread only.
"""

from __future__ import annotations

import dataclasses
import logging
import re

from PySide6.QtCore import QItemSelectionModel
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from app import connectors
from app.errors import PostroomError
from app.model import AddressSpace, ConnectorTls, SmartHost, SmtpConnector
from app.store import Store
from ui import icons, messages
from ui.dialogs.details import DetailsPage
from ui.dialogs.property_sheet import PropertyPage, PropertySheet
from ui.models.connectors import AddressSpaceModel
from ui.widgets import buddy_label, list_view, ok_cancel

log = logging.getLogger(__name__)

USE_DNS_TEXT = "Use &DNS to route to each address space on this connector"
SMART_HOSTS_TEXT = "&Forward all mail through this connector to the following smart hosts"
RELAY_TEXT = "Allow messages to be &relayed to these domains"
PASSWORD_KEPT = "(unchanged: type a new password to replace it)"
NEW_TITLE = "New SMTP Connector Properties"

_HOST_SEPARATORS = re.compile(r"[\s,;]+")


def parse_smart_hosts(text: str) -> tuple[SmartHost, ...]:
    """The smart hosts typed in one field, separated by commas, semicolons or spaces; each is
    read by ``app.connectors.parse_smart_host`` (a PostroomError names the first bad one)."""
    return tuple(connectors.parse_smart_host(part) for part in _HOST_SEPARATORS.split(text) if part)


class AddressSpaceDialog(QDialog):
    """ "Internet Address Space Properties": an SMTP address space's domain and cost."""

    def __init__(self, parent: QWidget | None, space: AddressSpace | None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Internet Address Space Properties")
        self.setObjectName("addressSpaceDialog")
        self.result_space: AddressSpace | None = None
        self.pattern = QLineEdit(self)
        self.pattern.setObjectName("pattern")
        self.pattern.setPlaceholderText("example.com,  *.example.com  or  *")
        self.cost = QLineEdit(self)
        self.cost.setObjectName("cost")
        self.cost.setMaximumWidth(80)
        self.cost.setToolTip(
            f"{connectors.MIN_COST} (preferred) to {connectors.MAX_COST}: among connectors "
            "with the same address space, the cheapest carries the mail."
        )
        hint = QLabel(
            "* is every domain no other address space names; *.example.com the subdomains of "
            "example.com.",
            self,
        )
        hint.setWordWrap(True)
        self.buttons = ok_cancel(self)
        form = QFormLayout()
        form.addRow("&E-mail domain:", self.pattern)
        form.addRow("&Cost:", self.cost)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(hint)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        if space is not None:
            self.pattern.setText(connectors.display_pattern(space.pattern))
            self.cost.setText(str(space.cost))
        else:
            self.cost.setText(str(connectors.MIN_COST))
        self.resize(440, 170)

    def make(self) -> AddressSpace:
        """The address space as typed, or a PostroomError saying what is wrong."""
        return connectors.parse_address_space(
            f"{self.pattern.text().strip()}:{self.cost.text().strip()}"
        )

    def accept(self) -> None:
        try:
            self.result_space = self.make()
        except PostroomError as error:
            messages.error(self, error)
            return
        super().accept()

    @classmethod
    def ask(cls, parent: QWidget | None, space: AddressSpace | None) -> AddressSpace | None:
        """Add (``space`` None) or modify an address space; the result, or None on Cancel."""
        dialog = cls(parent, space)
        try:
            dialog.exec()
            return dialog.result_space
        finally:
            dialog.deleteLater()


class GeneralPage(PropertyPage[SmtpConnector]):
    """Name; DNS, or the smart hosts all mail is forwarded to."""

    title = "General"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = QLineEdit(self)
        self.name.setObjectName("name")
        self.name.setMaxLength(connectors.MAX_NAME_LENGTH)
        self.use_dns = QRadioButton(USE_DNS_TEXT, self)
        self.use_dns.setObjectName("useDns")
        self.use_smart_hosts = QRadioButton(SMART_HOSTS_TEXT, self)
        self.use_smart_hosts.setObjectName("useSmartHosts")
        self.route = QButtonGroup(self)
        self.route.addButton(self.use_dns)
        self.route.addButton(self.use_smart_hosts)
        self.smart_hosts = QLineEdit(self)
        self.smart_hosts.setObjectName("smartHosts")
        self.smart_hosts.setPlaceholderText("relay.example.com:587, [192.0.2.25]")
        self.smart_hosts.setToolTip(
            "Host names, or IP addresses in brackets, each with an optional port; separate "
            "them with commas."
        )
        self.name.textEdited.connect(self._emit_changed)
        self.smart_hosts.textEdited.connect(self._emit_changed)
        self.use_dns.toggled.connect(self._route_toggled)

        title_row = QHBoxLayout()
        icon_label = QLabel(self)
        icon_label.setPixmap(icons.icon("connectors").pixmap(32, 32))
        title_row.addWidget(icon_label)
        title_row.addWidget(self.name, 1)

        route_box = QGroupBox("Route", self)
        route_layout = QVBoxLayout(route_box)
        route_layout.addWidget(self.use_dns)
        route_layout.addWidget(self.use_smart_hosts)
        hosts_row = QHBoxLayout()
        hosts_row.addSpacing(24)
        hosts_row.addWidget(self.smart_hosts, 1)
        route_layout.addLayout(hosts_row)

        layout = QVBoxLayout(self)
        layout.addLayout(title_row)
        layout.addWidget(route_box)
        layout.addStretch(1)

    def _route_toggled(self, _checked: bool) -> None:
        self.smart_hosts.setEnabled(self.use_smart_hosts.isChecked())
        self.changed.emit()

    def load(self, obj: SmtpConnector) -> None:
        self.name.setText(obj.name)
        self.smart_hosts.setText(", ".join(str(host) for host in obj.smart_hosts))
        self.use_dns.setChecked(obj.use_dns)
        self.use_smart_hosts.setChecked(not obj.use_dns)
        self.smart_hosts.setEnabled(not obj.use_dns)

    def apply(self, obj: SmtpConnector) -> SmtpConnector:
        use_dns = self.use_dns.isChecked()
        hosts = () if use_dns else parse_smart_hosts(self.smart_hosts.text())
        return dataclasses.replace(obj, name=self.name.text(), use_dns=use_dns, smart_hosts=hosts)


class AddressSpacePage(PropertyPage[SmtpConnector]):
    """The address spaces (Add / Modify / Remove) and whether anyone may relay to them."""

    title = "Address Space"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spaces = AddressSpaceModel(self)
        self.view = list_view(self, "addressSpaces")
        self.view.setModel(self.spaces)
        self.view.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.view.setColumnWidth(AddressSpaceModel.COL_ADDRESS, 240)
        self.view.selectionModel().selectionChanged.connect(self.update_buttons)
        self.view.doubleClicked.connect(lambda _index: self.modify_current())
        self.add_button = QPushButton("A&dd...", self)
        self.modify_button = QPushButton("&Modify...", self)
        self.remove_button = QPushButton("Re&move", self)
        buttons = QHBoxLayout()
        for button, name, slot in (
            (self.add_button, "add", self.add_space),
            (self.modify_button, "modify", self.modify_current),
            (self.remove_button, "remove", self.remove_current),
        ):
            button.setObjectName(name)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.relay = QCheckBox(RELAY_TEXT, self)
        self.relay.setObjectName("relay")
        self.relay.toggled.connect(self._emit_changed)
        relay_hint = QLabel(
            "Mail from anyone for these domains is accepted and sent onward. Never on *: that "
            "would make this server an open relay.",
            self,
        )
        relay_hint.setWordWrap(True)

        box = QGroupBox("Create, modify or remove an address space", self)
        box_layout = QVBoxLayout(box)
        box_layout.addWidget(self.view, 1)
        box_layout.addLayout(buttons)
        layout = QVBoxLayout(self)
        layout.addWidget(box, 1)
        layout.addWidget(self.relay)
        layout.addWidget(relay_hint)
        self.update_buttons()

    def current_row(self) -> int | None:
        rows = self.view.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def update_buttons(self, *_: object) -> None:
        chosen = self.current_row() is not None
        self.modify_button.setEnabled(chosen)
        self.remove_button.setEnabled(chosen)

    def select_row(self, row: int) -> None:
        self.view.selectionModel().setCurrentIndex(
            self.spaces.index(row, 0),
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )

    def add_space(self) -> None:
        space = AddressSpaceDialog.ask(self, None)
        if space is not None:
            self.select_row(self.spaces.append_row(space))
            self.changed.emit()

    def modify_current(self) -> None:
        row = self.current_row()
        if row is None:
            return
        edited = AddressSpaceDialog.ask(self, self.spaces.row_object(row))
        if edited is not None and self.spaces.replace_row(row, edited):
            self.changed.emit()

    def remove_current(self) -> None:
        row = self.current_row()
        if row is None:
            return
        self.spaces.remove_row(row)
        if self.spaces.rowCount():
            self.select_row(min(row, self.spaces.rowCount() - 1))
        self.update_buttons()
        self.changed.emit()

    def load(self, obj: SmtpConnector) -> None:
        self.spaces.reset_rows(obj.address_spaces)
        self.relay.setChecked(obj.relay)
        self.update_buttons()

    def apply(self, obj: SmtpConnector) -> SmtpConnector:
        return dataclasses.replace(
            obj, address_spaces=self.spaces.spaces(), relay=self.relay.isChecked()
        )


class AdvancedPage(PropertyPage[SmtpConnector]):
    """Outbound security: anonymous or basic authentication, and whether TLS is required.

    The password field starts empty, always: empty means "keep the stored password"; the
    stored one is never put back into a widget.
    """

    title = "Advanced"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.anonymous = QRadioButton("&Anonymous access", self)
        self.anonymous.setObjectName("anonymous")
        self.basic = QRadioButton("&Basic authentication (password is sent over TLS only)", self)
        self.basic.setObjectName("basic")
        group = QButtonGroup(self)
        group.addButton(self.anonymous)
        group.addButton(self.basic)
        self.user = QLineEdit(self)
        self.user.setObjectName("user")
        self.password = QLineEdit(self)
        self.password.setObjectName("password")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.require_tls = QCheckBox(
            "&Require TLS encryption (otherwise TLS is used whenever the server offers it)", self
        )
        self.require_tls.setObjectName("requireTls")
        self.basic.toggled.connect(self._auth_toggled)
        self.user.textEdited.connect(self._emit_changed)
        self.password.textEdited.connect(self._emit_changed)
        self.require_tls.toggled.connect(self._emit_changed)
        self._has_password = False

        box = QGroupBox("Outbound security", self)
        box_layout = QVBoxLayout(box)
        box_layout.addWidget(self.anonymous)
        box_layout.addWidget(self.basic)
        credentials = QFormLayout()
        credentials.setContentsMargins(24, 0, 0, 0)
        credentials.addRow(buddy_label("&User name:", self.user, self), self.user)
        credentials.addRow(buddy_label("&Password:", self.password, self), self.password)
        box_layout.addLayout(credentials)
        box_layout.addSpacing(8)
        box_layout.addWidget(self.require_tls)
        layout = QVBoxLayout(self)
        layout.addWidget(box)
        layout.addStretch(1)

    def _auth_toggled(self, _checked: bool) -> None:
        basic = self.basic.isChecked()
        self.user.setEnabled(basic)
        self.password.setEnabled(basic)
        self.changed.emit()

    def load(self, obj: SmtpConnector) -> None:
        self._has_password = obj.has_password
        basic = obj.auth == "basic"
        self.basic.setChecked(basic)
        self.anonymous.setChecked(not basic)
        self.user.setText(obj.auth_user)
        self.password.clear()
        self.password.setPlaceholderText(PASSWORD_KEPT if obj.has_password else "")
        self.user.setEnabled(basic)
        self.password.setEnabled(basic)
        self.require_tls.setChecked(obj.tls == "required")

    def apply(self, obj: SmtpConnector) -> SmtpConnector:
        tls: ConnectorTls = "required" if self.require_tls.isChecked() else "opportunistic"
        if not self.basic.isChecked():
            return dataclasses.replace(obj, auth_user="", password="", tls=tls)
        typed = self.password.text()
        return dataclasses.replace(
            obj, auth_user=self.user.text(), password=typed or obj.password, tls=tls
        )


class ConnectorDialog(PropertySheet[SmtpConnector]):
    """The property sheet of one SMTP connector (or of a new one, until OK creates it)."""

    def __init__(self, parent: QWidget | None, store: Store, connector: SmtpConnector) -> None:
        title = f"{connector.name} Properties" if connector.id is not None else NEW_TITLE
        super().__init__(parent, title, connector)
        self.setObjectName("connectorDialog")
        self.store = store
        self.general = GeneralPage(self)
        self.address_space = AddressSpacePage(self)
        self.advanced = AdvancedPage(self)
        self.details: DetailsPage[SmtpConnector] = DetailsPage(self)
        for page in (self.general, self.address_space, self.advanced, self.details):
            self.add_page(page)
        self.load_pages()
        if connector.id is None:
            self.apply_button.setEnabled(True)  # a new connector has something to save
        self.resize(560, 460)

    def commit(self, obj: SmtpConnector) -> SmtpConnector:
        if obj.id is None:
            stored = connectors.create_connector(self.store, obj)
        else:
            stored = connectors.save_connector(self.store, obj)
        self.setWindowTitle(f"{stored.name} Properties")
        return stored

    # -- entry points ----------------------------------------------------------------------

    @classmethod
    def edit(
        cls, parent: QWidget | None, store: Store, connector: SmtpConnector
    ) -> SmtpConnector | None:
        """Open the sheet of a stored connector; the connector as last saved, or None if
        nothing was saved."""
        dialog = cls(parent, store, connector)
        try:
            dialog.exec()
            return dialog.result_obj
        finally:
            dialog.deleteLater()

    @classmethod
    def new(cls, parent: QWidget | None, store: Store) -> SmtpConnector | None:
        """New > SMTP Connector: the sheet of a connector that does not exist until OK."""
        return cls.edit(parent, store, SmtpConnector(name="", address_spaces=()))
