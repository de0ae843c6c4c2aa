"""Properties of the Default SMTP Virtual Server: General, Access, Messages, Delivery."""

from __future__ import annotations

import dataclasses
import logging
from functools import partial
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.settings import DAY, HOUR, MIB, MINUTE, Settings, load_settings, save_settings
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


def _name_unit(box: QSpinBox, unit: str, value: int) -> None:
    box.setSuffix(f" {unit}" if value != 1 else f" {unit.removesuffix('s')}")


class DurationEdit(QWidget):
    """A duration in spin boxes, largest unit first, as Exchange shows them (days, hours,
    minutes). A stored value that is not whole minutes (only tests set those) shows a seconds
    box too, so that nothing is rounded away; ``seconds()`` is the exact total."""

    changed = Signal()

    def __init__(self, units: tuple[tuple[str, int], ...], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._units = (*units, ("seconds", 1))
        self._boxes: list[QSpinBox] = []
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for index, (name, size) in enumerate(self._units):
            larger = self._units[index - 1][1] if index else 0
            box = _spin(self, 0, larger // size - 1 if larger else 99_999)
            box.setObjectName(name)
            box.valueChanged.connect(partial(_name_unit, box, name))
            box.valueChanged.connect(self._emit_changed)
            _name_unit(box, name, box.value())
            row.addWidget(box)
            self._boxes.append(box)
        row.addStretch(1)
        self.setFocusProxy(self._boxes[0])
        self._boxes[-1].setVisible(False)

    def _emit_changed(self, *_: object) -> None:
        self.changed.emit()

    def box(self, name: str) -> QSpinBox:
        """The spin box of one unit ("days", "hours", "minutes", "seconds")."""
        return self._boxes[[unit for unit, _ in self._units].index(name)]

    def set_seconds(self, seconds: int) -> None:
        rest = max(0, seconds)
        for box, (_, size) in zip(self._boxes, self._units, strict=True):
            count, rest = divmod(rest, size)
            box.setValue(min(count, box.maximum()))
        self._boxes[-1].setVisible(seconds % self._units[-2][1] != 0)

    def seconds(self) -> int:
        return sum(
            box.value() * size for box, (_, size) in zip(self._boxes, self._units, strict=True)
        )


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
        self.banner = QLineEdit(self)
        self.max_connections = _spin(self, 1, 100_000)
        self.max_connections.setObjectName("maxConnections")
        self.idle_timeout = _spin(self, 5, 86_400, " seconds")
        self.idle_timeout.setObjectName("idleTimeout")
        self.autostart = QCheckBox("Start the SMTP service when the console opens", self)
        self.autostart.setObjectName("autostart")
        self._watch(
            self.listen,
            self.banner,
            self.max_connections,
            self.idle_timeout,
            self.autostart,
        )
        form = QFormLayout()
        form.addRow("&Listen on:", self.listen)
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
        self.banner.setText(obj.banner)
        self.max_connections.setValue(obj.max_connections)
        self.idle_timeout.setValue(obj.idle_timeout)
        self.autostart.setChecked(obj.autostart)

    def apply(self, obj: Settings) -> Settings:
        return dataclasses.replace(
            obj,
            listen=_split(self.listen.text()),
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
        self.ndr_copy_to = QLineEdit(self)
        self.ndr_copy_to.setObjectName("ndrCopyTo")
        self.ndr_copy_to.setPlaceholderText("nobody (e.g. postmaster@example.com)")
        self._watch(
            self.max_size,
            self.max_recipients,
            self.max_received,
            self.max_line_length,
            self.max_bad_recipients,
            self.max_bad_commands,
            self.postmaster,
            self.ndr_copy_to,
        )
        form = QFormLayout(self)
        form.addRow("Limit message &size to:", self.max_size)
        form.addRow("Limit &recipients per message to:", self.max_recipients)
        form.addRow("Maximum &hop count (Received headers):", self.max_received)
        form.addRow("Maximum &line length:", self.max_line_length)
        form.addRow("Refused recipients before hang-&up:", self.max_bad_recipients)
        form.addRow("&Bad commands before hang-up:", self.max_bad_commands)
        form.addRow("&Postmaster mail goes to (alias):", self.postmaster)
        form.addRow("Send copy of &Non-Delivery Report to:", self.ndr_copy_to)

    def load(self, obj: Settings) -> None:
        self.max_size.setValue(max(1, round(obj.max_message_size / MIB)))
        self.max_recipients.setValue(obj.max_recipients)
        self.max_received.setValue(obj.max_received)
        self.max_line_length.setValue(obj.max_line_length)
        self.max_bad_recipients.setValue(obj.max_bad_recipients)
        self.max_bad_commands.setValue(obj.max_bad_commands)
        self.postmaster.setText(obj.postmaster)
        self.ndr_copy_to.setText(obj.ndr_copy_to)

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
            ndr_copy_to=self.ndr_copy_to.text().strip(),
        )


class SmtpDeliveryPage(_SettingsPage):
    """Exchange's Delivery tab: outbound retries and expiry, outbound connections, and the
    Advanced settings (FQDN, smart host) on the page itself rather than behind buttons."""

    title = "Delivery"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        minutes = (("minutes", MINUTE),)
        days_hours_minutes = (("days", DAY), ("hours", HOUR), ("minutes", MINUTE))
        self.retries = [DurationEdit(minutes, self) for _ in range(4)]
        for edit, name in zip(
            self.retries, ("first", "second", "third", "subsequent"), strict=True
        ):
            edit.setObjectName(f"{name}Retry")
        self.delay_notification = DurationEdit(days_hours_minutes, self)
        self.delay_notification.setObjectName("delayNotification")
        self.expiration_timeout = DurationEdit(days_hours_minutes, self)
        self.expiration_timeout.setObjectName("expirationTimeout")
        outbound = QGroupBox("Outbound", self)
        outbound_grid = QGridLayout(outbound)
        labels = ("&First retry interval:", "&Second retry interval:", "&Third retry interval:")
        for row, (label, edit) in enumerate(
            zip((*labels, "Su&bsequent retry interval:"), self.retries, strict=True)
        ):
            outbound_grid.addWidget(buddy_label(label, edit, outbound), row, 0)
            outbound_grid.addWidget(edit, row, 1)
        outbound_grid.addWidget(
            buddy_label("&Delay notification:", self.delay_notification, outbound), 0, 3
        )
        outbound_grid.addWidget(self.delay_notification, 1, 3)
        outbound_grid.addWidget(
            buddy_label("E&xpiration timeout:", self.expiration_timeout, outbound), 2, 3
        )
        outbound_grid.addWidget(self.expiration_timeout, 3, 3)
        outbound_grid.setColumnStretch(1, 1)
        outbound_grid.setColumnMinimumWidth(2, 16)  # a gutter between the two columns

        self.outbound_connections = _spin(self, 1, 100_000)
        self.outbound_connections.setObjectName("outboundConnections")
        self.per_domain = _spin(self, 1, 100_000)
        self.per_domain.setObjectName("outboundConnectionsPerDomain")
        self.outbound_timeout = DurationEdit(minutes, self)
        self.outbound_timeout.setObjectName("outboundTimeout")
        self.outbound_port = _spin(self, 1, 65_535)
        self.outbound_port.setObjectName("outboundPort")
        self.outbound_port.setGroupSeparatorShown(False)
        connections = QGroupBox("Outbound connections", self)
        connections_form = QFormLayout(connections)
        for label, widget in (
            ("&Limit number of connections to:", self.outbound_connections),
            ("Limit number of connections &per domain to:", self.per_domain),
            ("Ti&me-out:", self.outbound_timeout),
            ("TCP p&ort:", self.outbound_port),
        ):
            connections_form.addRow(buddy_label(label, widget, connections), _left(widget))

        self.fqdn = QLineEdit(self)
        self.fqdn.setObjectName("fqdn")
        self.smart_host = QLineEdit(self)
        self.smart_host.setObjectName("smartHost")
        self.smart_host.setPlaceholderText("empty: look up the recipients' MX records")
        self.public_name = QLineEdit(self)
        self.public_name.setObjectName("publicName")
        advanced = QGroupBox("Advanced", self)
        advanced_form = QFormLayout(advanced)
        advanced_form.addRow(
            buddy_label("Fully-&qualified domain name:", self.fqdn, advanced), self.fqdn
        )
        advanced_form.addRow(
            buddy_label("Smart &host:", self.smart_host, advanced), self.smart_host
        )
        advanced_form.addRow(
            buddy_label("P&ublic host name (MX target):", self.public_name, advanced),
            self.public_name,
        )

        self._watch(
            self.outbound_connections,
            self.per_domain,
            self.outbound_port,
            self.fqdn,
            self.smart_host,
            self.public_name,
        )
        for edit in (
            *self.retries,
            self.delay_notification,
            self.expiration_timeout,
            self.outbound_timeout,
        ):
            edit.changed.connect(self._emit_changed)
        layout = QVBoxLayout(self)
        layout.addWidget(outbound)
        layout.addWidget(connections)
        layout.addWidget(advanced)
        layout.addStretch(1)

    def load(self, obj: Settings) -> None:
        for edit, seconds in zip(self.retries, obj.retry_intervals, strict=True):
            edit.set_seconds(seconds)
        self.delay_notification.set_seconds(obj.delay_notification)
        self.expiration_timeout.set_seconds(obj.expiration_timeout)
        self.outbound_connections.setValue(obj.outbound_connections)
        self.per_domain.setValue(obj.outbound_connections_per_domain)
        self.outbound_timeout.set_seconds(obj.outbound_timeout)
        self.outbound_port.setValue(obj.outbound_port)
        self.fqdn.setText(obj.fqdn)
        self.fqdn.setPlaceholderText(obj.host_name)
        self.smart_host.setText(obj.smart_host)
        self.public_name.setText(obj.public_name)

    def apply(self, obj: Settings) -> Settings:
        return dataclasses.replace(
            obj,
            retry_intervals=[edit.seconds() for edit in self.retries],
            delay_notification=self.delay_notification.seconds(),
            expiration_timeout=self.expiration_timeout.seconds(),
            outbound_connections=self.outbound_connections.value(),
            outbound_connections_per_domain=self.per_domain.value(),
            outbound_timeout=self.outbound_timeout.seconds(),
            outbound_port=self.outbound_port.value(),
            fqdn=self.fqdn.text().strip(),
            smart_host=self.smart_host.text().strip(),
            public_name=self.public_name.text().strip(),
        )


def _left(field: QWidget) -> QHBoxLayout:
    """The field at its natural width, as MMC's numeric fields are."""
    row = QHBoxLayout()
    row.addWidget(field)
    row.addStretch(1)
    return row


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
        self.resize(640, 560)

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
