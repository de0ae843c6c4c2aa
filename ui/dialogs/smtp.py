"""Properties of the Default SMTP Virtual Server: General, Access, Messages, Delivery."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.settings import MIB, Settings, load_settings, save_settings
from app.store import Store
from ui.dialogs.property_sheet import PropertyPage, PropertySheet
from ui.widgets import buddy_label

log = logging.getLogger(__name__)

RESTART_NOTE = (
    "Changes to the listen addresses, limits and TLS take effect when the SMTP service is "
    "next started (Stop, then Start)."
)


def _spin(parent: QWidget, low: int, high: int, suffix: str = "") -> QSpinBox:
    box = QSpinBox(parent)
    box.setRange(low, high)
    box.setSuffix(suffix)
    box.setGroupSeparatorShown(True)
    return box


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]


class _SettingsPage(PropertyPage[Settings]):
    def _watch(self, *widgets: QWidget) -> None:
        for widget in widgets:
            if isinstance(widget, QLineEdit):
                widget.textEdited.connect(self._emit_changed)
            elif isinstance(widget, QSpinBox):
                widget.valueChanged.connect(self._emit_changed)
            elif isinstance(widget, QCheckBox):
                widget.toggled.connect(self._emit_changed)


class SmtpGeneralPage(_SettingsPage):
    title = "General"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.listen = QLineEdit(self)
        self.listen.setObjectName("listen")
        self.listen.setToolTip("HOST:PORT, several separated by commas; e.g. 127.0.0.1:2525")
        self.fqdn = QLineEdit(self)
        self.fqdn.setObjectName("fqdn")
        self.banner = QLineEdit(self)
        self.max_connections = _spin(self, 1, 100_000)
        self.max_connections.setObjectName("maxConnections")
        self.idle_timeout = _spin(self, 5, 86_400, " seconds")
        self.idle_timeout.setObjectName("idleTimeout")
        self.autostart = QCheckBox("Start the SMTP service when the console opens", self)
        self.autostart.setObjectName("autostart")
        self._watch(
            self.listen,
            self.fqdn,
            self.banner,
            self.max_connections,
            self.idle_timeout,
            self.autostart,
        )
        form = QFormLayout()
        form.addRow("&Listen on:", self.listen)
        form.addRow("&Fully qualified domain name:", self.fqdn)
        form.addRow("&Banner text:", self.banner)
        form.addRow("Limit &connections to:", self.max_connections)
        form.addRow("Connection &time-out:", self.idle_timeout)
        note = QLabel(RESTART_NOTE, self)
        note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.autostart)
        layout.addSpacing(8)
        layout.addWidget(note)
        layout.addStretch(1)

    def load(self, obj: Settings) -> None:
        self.listen.setText(", ".join(obj.listen))
        self.fqdn.setText(obj.fqdn)
        self.fqdn.setPlaceholderText(obj.host_name)
        self.banner.setText(obj.banner)
        self.max_connections.setValue(obj.max_connections)
        self.idle_timeout.setValue(obj.idle_timeout)
        self.autostart.setChecked(obj.autostart)

    def apply(self, obj: Settings) -> Settings:
        return dataclasses.replace(
            obj,
            listen=_split(self.listen.text()),
            fqdn=self.fqdn.text().strip(),
            banner=self.banner.text(),
            max_connections=self.max_connections.value(),
            idle_timeout=self.idle_timeout.value(),
            autostart=self.autostart.isChecked(),
        )


class SmtpAccessPage(_SettingsPage):
    title = "Access"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        auth_box = QGroupBox("Authentication", self)
        auth_text = QLabel(
            "Clients may authenticate with AUTH PLAIN or LOGIN, only after STARTTLS, with a "
            "user's alias and password.",
            auth_box,
        )
        auth_text.setWordWrap(True)
        QVBoxLayout(auth_box).addWidget(auth_text)

        tls_box = QGroupBox("Secure communication (TLS)", self)
        self.tls_cert = QLineEdit(self)
        self.tls_cert.setObjectName("tlsCert")
        self.tls_cert.setPlaceholderText("empty: a self-signed certificate made on first use")
        self.tls_key = QLineEdit(self)
        self.tls_key.setObjectName("tlsKey")
        browse_cert = QPushButton("&Browse...", self)
        browse_key = QPushButton("B&rowse...", self)
        browse_cert.clicked.connect(lambda: self._browse(self.tls_cert, "Certificate"))
        browse_key.clicked.connect(lambda: self._browse(self.tls_key, "Private key"))
        tls_form = QFormLayout(tls_box)
        tls_form.addRow(
            buddy_label("&Certificate (PEM):", self.tls_cert, self),
            _row(self.tls_cert, browse_cert),
        )
        tls_form.addRow(
            buddy_label("Private &key (PEM):", self.tls_key, self), _row(self.tls_key, browse_key)
        )

        relay_box = QGroupBox("Relay restrictions", self)
        self.relay_ips = QLineEdit(self)
        self.relay_ips.setObjectName("relayIps")
        self.relay_ips.setPlaceholderText("none (e.g. 192.0.2.10, 192.0.2.0/24)")
        self.auth_relay = QCheckBox(
            "Allow all computers which successfully authenticate to relay, regardless of the "
            "list above",
            self,
        )
        self.auth_relay.setObjectName("authRelay")
        relay_layout = QVBoxLayout(relay_box)
        relay_form = QFormLayout()
        relay_form.addRow("Only these computers may &relay:", self.relay_ips)
        relay_layout.addLayout(relay_form)
        relay_layout.addWidget(self.auth_relay)
        self._watch(self.tls_cert, self.tls_key, self.relay_ips, self.auth_relay)

        layout = QVBoxLayout(self)
        layout.addWidget(auth_box)
        layout.addWidget(tls_box)
        layout.addWidget(relay_box)
        layout.addStretch(1)

    def _browse(self, field: QLineEdit, what: str) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, what, field.text(), "PEM files (*.pem *.crt *.key);;All files (*)"
        )
        if path:
            field.setText(path)
            self.changed.emit()

    def load(self, obj: Settings) -> None:
        self.tls_cert.setText(obj.tls_cert)
        self.tls_key.setText(obj.tls_key)
        self.relay_ips.setText(", ".join(obj.relay_ips))
        self.auth_relay.setChecked(obj.auth_relay)

    def apply(self, obj: Settings) -> Settings:
        return dataclasses.replace(
            obj,
            tls_cert=self.tls_cert.text().strip(),
            tls_key=self.tls_key.text().strip(),
            relay_ips=_split(self.relay_ips.text()),
            auth_relay=self.auth_relay.isChecked(),
        )


class SmtpMessagesPage(_SettingsPage):
    title = "Messages"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.max_size = _spin(self, 1, 2047, " MB")
        self.max_size.setObjectName("maxSize")
        self.max_recipients = _spin(self, 100, 100_000)
        self.max_recipients.setObjectName("maxRecipients")
        self.max_received = _spin(self, 5, 500)
        self.max_received.setObjectName("maxReceived")
        self.max_line_length = _spin(self, 78, 100_000, " octets")
        self.max_bad_recipients = _spin(self, 1, 10_000)
        self.max_bad_commands = _spin(self, 1, 1000)
        self.postmaster = QLineEdit(self)
        self.postmaster.setObjectName("postmaster")
        self._watch(
            self.max_size,
            self.max_recipients,
            self.max_received,
            self.max_line_length,
            self.max_bad_recipients,
            self.max_bad_commands,
            self.postmaster,
        )
        form = QFormLayout(self)
        form.addRow("Limit message &size to:", self.max_size)
        form.addRow("Limit &recipients per message to:", self.max_recipients)
        form.addRow("Maximum &hop count (Received headers):", self.max_received)
        form.addRow("Maximum &line length:", self.max_line_length)
        form.addRow("Refused recipients before hang-&up:", self.max_bad_recipients)
        form.addRow("&Bad commands before hang-up:", self.max_bad_commands)
        form.addRow("&Postmaster mail goes to (alias):", self.postmaster)

    def load(self, obj: Settings) -> None:
        self.max_size.setValue(max(1, round(obj.max_message_size / MIB)))
        self.max_recipients.setValue(obj.max_recipients)
        self.max_received.setValue(obj.max_received)
        self.max_line_length.setValue(obj.max_line_length)
        self.max_bad_recipients.setValue(obj.max_bad_recipients)
        self.max_bad_commands.setValue(obj.max_bad_commands)
        self.postmaster.setText(obj.postmaster)

    def apply(self, obj: Settings) -> Settings:
        size = self.max_size.value() * MIB
        if round(obj.max_message_size / MIB) == self.max_size.value():
            size = obj.max_message_size  # not edited: keep a size set exactly elsewhere
        return dataclasses.replace(
            obj,
            max_message_size=size,
            max_recipients=self.max_recipients.value(),
            max_received=self.max_received.value(),
            max_line_length=self.max_line_length.value(),
            max_bad_recipients=self.max_bad_recipients.value(),
            max_bad_commands=self.max_bad_commands.value(),
            postmaster=self.postmaster.text().strip(),
        )


class SmtpDeliveryPage(_SettingsPage):
    title = "Delivery"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.smart_host = QLineEdit(self)
        self.smart_host.setObjectName("smartHost")
        self.smart_host.setPlaceholderText("empty: look up the recipients' MX records")
        self.public_name = QLineEdit(self)
        self.public_name.setObjectName("publicName")
        self._watch(self.smart_host, self.public_name)
        form = QFormLayout()
        form.addRow("&Smart host:", self.smart_host)
        form.addRow("&Public host name (MX target):", self.public_name)
        note = QLabel(
            "Mail for contacts and mail relayed for authenticated clients waits in the queue "
            "until outbound delivery is built; the smart host and public name are kept for it "
            "and for the DNS checks.",
            self,
        )
        note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addSpacing(8)
        layout.addWidget(note)
        layout.addStretch(1)

    def load(self, obj: Settings) -> None:
        self.smart_host.setText(obj.smart_host)
        self.public_name.setText(obj.public_name)

    def apply(self, obj: Settings) -> Settings:
        return dataclasses.replace(
            obj,
            smart_host=self.smart_host.text().strip(),
            public_name=self.public_name.text().strip(),
        )


def _row(field: QWidget, button: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(field, 1)
    row.addWidget(button)
    return row


class SmtpServerDialog(PropertySheet[Settings]):
    """The Default SMTP Virtual Server's property sheet."""

    def __init__(self, parent: QWidget | None, store: Store) -> None:
        super().__init__(parent, "Default SMTP Virtual Server Properties", load_settings(store))
        self.setObjectName("smtpServerDialog")
        self.store = store
        self.general = SmtpGeneralPage(self)
        self.access = SmtpAccessPage(self)
        self.messages_page = SmtpMessagesPage(self)
        self.delivery = SmtpDeliveryPage(self)
        for page in (self.general, self.access, self.messages_page, self.delivery):
            self.add_page(page)
        self.load_pages()
        self.resize(600, 440)

    def commit(self, obj: Settings) -> Settings:
        old = self.obj.as_dict()
        changes: dict[str, Any] = {
            key: value for key, value in obj.as_dict().items() if old.get(key) != value
        }
        if not changes:
            return self.obj
        return save_settings(self.store, **changes)

    @classmethod
    def edit(cls, parent: QWidget | None, store: Store) -> Settings | None:
        """The settings as saved, or None if nothing was saved."""
        dialog = cls(parent, store)
        try:
            dialog.exec()
            return dialog.result_obj
        finally:
            dialog.deleteLater()
