"""The property sheet of a user, contact or group: General, E-mail Addresses, Members, Member Of,
and a user's Exchange General (storage limits, password) and Exchange Features (IMAP4, POP3).

The sheet edits a ``RecipientProperties`` (the recipient and the groups it belongs to); OK or
Apply stores every change in one transaction (``recipients.save_recipient``), so a refused
change (a bad alias, an address another recipient has) saves nothing and the sheet stays open
with what was typed. GUI thread only.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass

from PySide6.QtCore import QRegularExpression, Qt
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app import rus
from app.directory import listing, passwords, recipients
from app.errors import PostroomError
from app.model import ATTRIBUTE_NAMES, SMTP, ProxyAddress, Recipient
from app.rus import Explanation
from app.settings import load_settings
from app.store import Store
from ui import icons, messages
from ui.dialogs.address import CUSTOM, AddressTypeDialog
from ui.dialogs.address_list import AddressListPage
from ui.dialogs.property_sheet import PropertyPage, PropertySheet
from ui.dialogs.recipient_address import ProxyAddressDialog
from ui.dialogs.recipient_picker import SelectRecipientsDialog
from ui.formatting import local_time
from ui.models.proxy_addresses import ProxyAddressListModel, address_key
from ui.models.recipient_attributes import EXTENSION_ATTRIBUTES, AttributeListModel
from ui.models.recipients import KIND_TEXT, RecipientRefModel
from ui.widgets import buddy_label, list_view

log = logging.getLogger(__name__)

AUTO_UPDATE_TEXT = "Automatically update e-mail addresses based on recipient policy"

# The attributes the General tab shows in fields, with their labels (LDAP name in the tooltip).
NAME_FIELDS = (("givenName", "&First name:"), ("initials", "I&nitials:"), ("sn", "&Last name:"))
ORGANIZATION_FIELDS = (
    ("title", "&Title:"),
    ("department", "&Department:"),
    ("company", "&Company:"),
    ("physicalDeliveryOfficeName", "&Office:"),
    ("l", "Cit&y:"),
    ("st", "&State/province:"),
    ("c", "Co&untry/region:"),
)


@dataclass(frozen=True)
class RecipientProperties:
    """What the sheet edits: the recipient, and the groups it is a direct member of."""

    recipient: Recipient
    member_of: tuple[str, ...] = ()


def _line(parent: QWidget, name: str, tip: str = "") -> QLineEdit:
    edit = QLineEdit(parent)
    edit.setObjectName(name)
    edit.setMaxLength(recipients.MAX_ATTRIBUTE_LENGTH)
    if tip:
        edit.setToolTip(tip)
    return edit


# -- General ----------------------------------------------------------------------------------


class GeneralPage(PropertyPage[RecipientProperties]):
    """Names, display name, alias, a contact's target, and the attributes filters test."""

    title = "General"

    def __init__(self, kind: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.fields: dict[str, QLineEdit] = {}
        self.heading = QLabel(self)
        self.heading.setObjectName("heading")
        font = self.heading.font()
        font.setBold(True)
        self.heading.setFont(font)
        icon = QLabel(self)
        icon.setPixmap(icons.icon(kind).pixmap(32, 32))
        self.kind_label = QLabel(KIND_TEXT.get(kind, kind), self)
        heading_row = QHBoxLayout()
        heading_row.addWidget(icon)
        heading_row.addWidget(self.heading, 1)
        heading_row.addWidget(self.kind_label)

        names = QGridLayout()
        row = 0
        if kind != "group":
            for name, _label in NAME_FIELDS:
                self.fields[name] = _line(self, name, f"LDAP attribute {name}")
            self.fields["initials"].setMaxLength(6)
            self.fields["initials"].setMaximumWidth(60)
            names.addWidget(buddy_label(NAME_FIELDS[0][1], self.fields["givenName"], self), 0, 0)
            names.addWidget(self.fields["givenName"], 0, 1)
            names.addWidget(buddy_label(NAME_FIELDS[1][1], self.fields["initials"], self), 0, 2)
            names.addWidget(self.fields["initials"], 0, 3)
            names.addWidget(buddy_label(NAME_FIELDS[2][1], self.fields["sn"], self), 1, 0)
            names.addWidget(self.fields["sn"], 1, 1, 1, 3)
            row = 2
        self.fields["displayName"] = _line(self, "displayName", "LDAP attribute displayName")
        display_label = "Group na&me:" if kind == "group" else "Displ&ay name:"
        names.addWidget(buddy_label(display_label, self.fields["displayName"], self), row, 0)
        names.addWidget(self.fields["displayName"], row, 1, 1, 3)
        self.alias = _line(self, "alias", "LDAP attribute mailNickname: unique, names the mailbox")
        self.alias.setMaxLength(64)
        names.addWidget(buddy_label("Alia&s:", self.alias, self), row + 1, 0)
        names.addWidget(self.alias, row + 1, 1, 1, 3)
        self.target: QLineEdit | None = None
        if kind == "contact":
            self.target = _line(self, "target", "Mail to this contact is forwarded here")
            names.addWidget(buddy_label("Tar&get address:", self.target, self), row + 2, 0)
            names.addWidget(self.target, row + 2, 1, 1, 3)
            self.target.textEdited.connect(self._emit_changed)
        names.setColumnStretch(1, 1)

        organization = QGroupBox("Organization and location", self)
        grid = QGridLayout(organization)
        for number, (name, label) in enumerate(ORGANIZATION_FIELDS):
            edit = self.fields[name] = _line(self, name, f"LDAP attribute {name}")
            grid.addWidget(buddy_label(label, edit, self), number // 2, (number % 2) * 2)
            grid.addWidget(edit, number // 2, (number % 2) * 2 + 1)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)

        custom = QGroupBox("Custom attributes", self)
        self.custom = AttributeListModel(EXTENSION_ATTRIBUTES, self)
        self.custom.edited.connect(self._emit_changed)
        self.custom_view = list_view(self, "customAttributes")
        self.custom_view.setModel(self.custom)
        self.custom_view.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked
        )
        self.custom_view.setColumnWidth(0, 150)
        self.custom_view.setMinimumHeight(110)
        custom_layout = QVBoxLayout(custom)
        custom_layout.addWidget(self.custom_view)

        for edit in (*self.fields.values(), self.alias):
            edit.textEdited.connect(self._emit_changed)
        self.fields["displayName"].textChanged.connect(self._update_heading)
        self.alias.textChanged.connect(self._update_heading)

        layout = QVBoxLayout(self)
        layout.addLayout(heading_row)
        layout.addLayout(names)
        layout.addWidget(organization)
        layout.addWidget(custom, 1)

    def _update_heading(self, *_: object) -> None:
        self.heading.setText(self.fields["displayName"].text().strip() or self.alias.text())

    def load(self, obj: RecipientProperties) -> None:
        recipient = obj.recipient
        for name, edit in self.fields.items():
            edit.setText(recipient.attribute(name))
        self.alias.setText(recipient.alias)
        if self.target is not None:
            self.target.setText(recipient.target or "")
        self.custom.load(recipient.attributes)
        self._update_heading()

    def apply(self, obj: RecipientProperties) -> RecipientProperties:
        attributes = dict(obj.recipient.attributes)
        typed = {name: edit.text().strip() for name, edit in self.fields.items()}
        typed.update(self.custom.values())
        for name, value in typed.items():
            if value:
                attributes[name] = value
            else:
                attributes.pop(name, None)
        recipient = dataclasses.replace(
            obj.recipient,
            alias=self.alias.text().strip(),
            attributes=attributes,
            target=self.target.text().strip() if self.target is not None else obj.recipient.target,
        )
        return dataclasses.replace(obj, recipient=recipient)


# -- E-mail Addresses --------------------------------------------------------------------------


class EmailAddressesPage(AddressListPage[RecipientProperties, ProxyAddress]):
    """Type | Address (primary in bold), New / Edit / Remove / Set as Primary, the automatic
    update box, and which recipient policy applies and why."""

    title = "E-mail Addresses"

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        addresses = ProxyAddressListModel()
        super().__init__(addresses, "addresses", parent)
        addresses.setParent(self)
        self.addresses = addresses
        self.store = store
        self.owner = ""

        self.auto_update = QCheckBox(AUTO_UPDATE_TEXT, self)
        self.auto_update.setObjectName("autoUpdate")
        self.auto_update.setToolTip(
            "Off: the Recipient Update Service never adds or changes this recipient's "
            "addresses, not even in a Rebuild."
        )
        self.auto_update.toggled.connect(self._emit_changed)

        policy_box = QGroupBox("Recipient policy", self)
        self.explain = QLabel(policy_box)
        self.explain.setObjectName("explain")
        self.explain.setWordWrap(True)
        self.explain.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.explain.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.explain.setMinimumHeight(64)
        policy_layout = QVBoxLayout(policy_box)
        policy_layout.addWidget(self.explain)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("E-mail addresses (the primary address of each type is in bold):"))
        layout.addWidget(self.address_box, 1)
        layout.addWidget(self.auto_update)
        layout.addWidget(policy_box)

    # -- load / apply ----------------------------------------------------------------------

    def load(self, obj: RecipientProperties) -> None:
        self.owner = obj.recipient.alias
        self.addresses.load(obj.recipient.addresses)
        self.auto_update.blockSignals(True)
        self.auto_update.setChecked(obj.recipient.auto_update)
        self.auto_update.blockSignals(False)
        self.update_buttons()

    def apply(self, obj: RecipientProperties) -> RecipientProperties:
        recipient = dataclasses.replace(
            obj.recipient,
            addresses=self.addresses.addresses(),
            auto_update=self.auto_update.isChecked(),
        )
        return dataclasses.replace(obj, recipient=recipient)

    def show_explanation(self, explanation: Explanation | None, error: str = "") -> None:
        """The read-only line: which policy applies and why, and what the RUS will do."""
        if explanation is None:
            self.explain.setText(error)
            self.addresses.set_reasons({})
            return
        self.explain.setText(explain_text(explanation))
        self.addresses.set_reasons(
            {address_key(reason.address): reason.text for reason in explanation.addresses}
        )

    # -- buttons ---------------------------------------------------------------------------

    def new_address(self) -> None:
        kind = AddressTypeDialog.choose(self)
        if kind is None:
            return
        type_ = SMTP if kind == SMTP else ""
        if kind not in (SMTP, CUSTOM):
            return
        proxy = ProxyAddressDialog.ask(
            self, self.store, type_, None, self.addresses.addresses(), self.owner
        )
        if proxy is not None:
            self.select_row(self.addresses.add(proxy))

    def edit_address(self, row: int) -> None:
        old = self.addresses.address(row)
        edited = ProxyAddressDialog.ask(
            self, self.store, old.type, old, self.addresses.addresses(), self.owner
        )
        if edited is not None and edited != old:
            self.addresses.replace(row, edited)
            self.select_row(row)


def explain_text(explanation: Explanation) -> str:
    """The RUS explain in a few lines: the effective policy and why, what the next run will do
    with the recipient, and what the last one did."""
    recipient, policy = explanation.recipient, explanation.policy
    if policy is None:
        lines = ["No recipient policy applies: no policy's filter matches this recipient."]
    elif policy.is_default:
        lines = [
            f"'{policy.name}' applies: no custom policy's filter matches this recipient, and "
            f"the {policy.name}'s filter {policy.filter} matches every recipient with an alias."
        ]
    else:
        lines = [
            f"'{policy.name}' applies: it is the highest-priority policy (priority "
            f"{policy.priority_text}) whose filter {policy.filter} matches this recipient."
        ]
    if not recipient.auto_update:
        lines.append(
            "Automatic updates are off, so the Recipient Update Service leaves these "
            "addresses alone."
        )
    else:
        next_run = _console_words(explanation.next_run)
        lines.append(f"Next: {next_run[:1].upper()}{next_run[1:]}.")
    decision = explanation.decision
    if decision is not None:
        run = explanation.run
        when = f" ({local_time(run.finished or run.started)})" if run else ""
        lines.append(
            f"Last run {decision.run_id}{when}: {decision.decision}, "
            f"{_console_words(decision.reason)}."
        )
    return "\n".join(lines)


def _console_words(text: str) -> str:
    """The engine's advice says what to type at the command line; here, what to click."""
    return re.sub(
        r"to update its addresses: postroom policy apply '([^']*)'",
        r"to update its addresses, choose Apply this policy now on '\1'",
        text,
    )


# -- Members / Member Of -----------------------------------------------------------------------


class _RecipientListPage(PropertyPage[RecipientProperties]):
    """A list of recipients with Add… and Remove."""

    hint = ""

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.own_id: int | None = None
        self.model = RecipientRefModel(self)
        self.view = list_view(self, "list")
        self.view.setModel(self.model)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setColumnWidth(0, 150)
        self.view.setColumnWidth(1, 90)
        self.view.setColumnWidth(2, 115)
        self.view.selectionModel().selectionChanged.connect(self.update_buttons)
        self.add_button = QPushButton("A&dd...", self)
        self.add_button.setObjectName("add")
        self.remove_button = QPushButton("&Remove", self)
        self.remove_button.setObjectName("remove")
        self.add_button.clicked.connect(self.add)
        self.remove_button.clicked.connect(self.remove)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        self.hint_label = QLabel(self.hint, self)
        self.hint_label.setWordWrap(True)
        layout.addWidget(self.hint_label)
        layout.addWidget(self.view, 1)
        layout.addLayout(buttons)
        self.update_buttons()

    def show_aliases(self, aliases: tuple[str, ...]) -> None:
        try:
            found = listing.summaries_by_alias(self.store, aliases)
        except PostroomError as error:
            messages.error(self, error)
            found = []
        self.model.set_rows([])
        self.model.set_rows(found)
        self.update_buttons()

    def update_buttons(self, *_: object) -> None:
        self.remove_button.setEnabled(bool(self.view.selectionModel().selectedRows()))

    def pick(self) -> list[listing.RecipientSummary]:
        raise NotImplementedError

    def add(self) -> None:
        picked = self.pick()
        present = {row.id for row in self.model.rows()}
        new = [row for row in picked if row.id not in present]
        if new:
            self.model.set_rows([*self.model.rows(), *new])
            self.changed.emit()
            self.update_buttons()

    def remove(self) -> None:
        rows = [index.row() for index in self.view.selectionModel().selectedRows()]
        if rows:
            self.model.remove_rows(rows)
            self.changed.emit()
            self.update_buttons()


class MembersPage(_RecipientListPage):
    """A group's members: mail to the group reaches each of them (nested groups expand)."""

    title = "Members"
    hint = "Mail sent to this group is delivered to each member; a member group expands too."

    def load(self, obj: RecipientProperties) -> None:
        self.own_id = obj.recipient.id
        self.show_aliases(obj.recipient.members)

    def apply(self, obj: RecipientProperties) -> RecipientProperties:
        recipient = dataclasses.replace(obj.recipient, members=self.model.aliases())
        return dataclasses.replace(obj, recipient=recipient)

    def pick(self) -> list[listing.RecipientSummary]:
        exclude = {row.id for row in self.model.rows()}
        if self.own_id is not None:
            exclude.add(self.own_id)
        return SelectRecipientsDialog.choose(self, self.store, "Select Members", exclude=exclude)


class MemberOfPage(_RecipientListPage):
    """The groups this recipient is a direct member of."""

    title = "Member Of"
    hint = "Distribution groups this recipient is a direct member of:"

    def load(self, obj: RecipientProperties) -> None:
        self.own_id = obj.recipient.id
        self.show_aliases(obj.member_of)

    def apply(self, obj: RecipientProperties) -> RecipientProperties:
        return dataclasses.replace(obj, member_of=self.model.aliases())

    def pick(self) -> list[listing.RecipientSummary]:
        exclude = {row.id for row in self.model.rows()}
        if self.own_id is not None:
            exclude.add(self.own_id)
        return SelectRecipientsDialog.choose(
            self, self.store, "Select Groups", kinds=("group",), exclude=exclude
        )


# -- Exchange General: storage limits and the password ----------------------------------------


class LimitField(QWidget):
    """A check box and a number of KB beside it: checked with a number is that limit, unchecked
    is no limit (0)."""

    def __init__(self, label: str, name: str, parent: QWidget) -> None:
        super().__init__(parent)
        self.check = QCheckBox(label, self)
        self.check.setObjectName(f"{name}Check")
        self.value = QLineEdit(self)
        self.value.setObjectName(name)
        self.value.setMaxLength(10)
        self.value.setMaximumWidth(110)
        self.value.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.value.setValidator(
            QRegularExpressionValidator(QRegularExpression("[0-9]{0,10}"), self)
        )
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.check, 1)
        row.addWidget(self.value)
        self.check.toggled.connect(self._follow)

    def _follow(self, on: bool) -> None:
        self.value.setEnabled(on and self.isEnabled())

    def set_limit(self, kib: int) -> None:
        self.check.setChecked(bool(kib))
        self.value.setText(str(kib) if kib else "")
        self._follow(bool(kib))

    def limit(self, what: str) -> int:
        """The limit in KB (0: none); PostroomError when checked without a number."""
        if not self.check.isChecked():
            return 0
        text = self.value.text().strip()
        if not text:
            raise PostroomError(f"Type the {what} limit in KB, or clear its check box.")
        return int(text)


class ExchangeGeneralPage(PropertyPage[RecipientProperties]):
    """Exchange 2000's Exchange General tab of a user: Storage Limits (use the Mailbox Store's
    defaults, or this user's own) and the password IMAP4, POP3 and SMTP AUTH check."""

    title = "Exchange General"

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.alias = ""
        limits = QGroupBox("Storage limits", self)
        self.use_defaults = QCheckBox("&Use mailbox store defaults", limits)
        self.use_defaults.setObjectName("useStoreDefaults")
        self.warn = LimitField("Issue &warning at (KB):", "quotaWarn", limits)
        self.prohibit = LimitField("&Prohibit send and receive at (KB):", "quotaProhibit", limits)
        self.defaults_note = QLabel(limits)
        self.defaults_note.setObjectName("storeDefaults")
        self.defaults_note.setWordWrap(True)
        box = QVBoxLayout(limits)
        box.addWidget(self.use_defaults)
        box.addWidget(self.warn)
        box.addWidget(self.prohibit)
        box.addWidget(self.defaults_note)

        password = QGroupBox("Password", self)
        self.password_state = QLabel(password)
        self.password_state.setObjectName("passwordState")
        self.set_password_button = QPushButton("&Set Password...", password)
        self.set_password_button.setObjectName("setPassword")
        row = QHBoxLayout(password)
        row.addWidget(self.password_state, 1)
        row.addWidget(self.set_password_button)

        layout = QVBoxLayout(self)
        layout.addWidget(limits)
        layout.addWidget(password)
        layout.addStretch(1)
        self.use_defaults.toggled.connect(self._use_defaults_toggled)
        for field in (self.warn, self.prohibit):
            field.check.toggled.connect(self._emit_changed)
            field.value.textEdited.connect(self._emit_changed)
        self.use_defaults.toggled.connect(self._emit_changed)
        self.set_password_button.clicked.connect(self.set_password)

    def _use_defaults_toggled(self, on: bool) -> None:
        for field in (self.warn, self.prohibit):
            field.setEnabled(not on)
            field._follow(field.check.isChecked())
        if on:
            self._show_defaults()

    def _show_defaults(self) -> None:
        current = load_settings(self.store)
        self.warn.set_limit(current.mailbox_warn_default)
        self.prohibit.set_limit(current.mailbox_prohibit_default)

    def load(self, obj: RecipientProperties) -> None:
        recipient = obj.recipient
        self.alias = recipient.alias
        current = load_settings(self.store)
        own = recipient.quota_warn is not None or recipient.quota_prohibit is not None
        self.use_defaults.setChecked(not own)
        warn = (
            current.mailbox_warn_default if recipient.quota_warn is None else recipient.quota_warn
        )
        prohibit = (
            current.mailbox_prohibit_default
            if recipient.quota_prohibit is None
            else recipient.quota_prohibit
        )
        self.warn.set_limit(warn)
        self.prohibit.set_limit(prohibit)
        self._use_defaults_toggled(not own)
        self.defaults_note.setText(
            "The Mailbox Store's defaults: warning at "
            f"{_kb(current.mailbox_warn_default)}, prohibit at "
            f"{_kb(current.mailbox_prohibit_default)} (Mailbox Store > Properties)."
        )
        self._show_password(recipient.has_password)

    def _show_password(self, has_password: bool) -> None:
        self.password_state.setText(
            "The user has a password for IMAP4, POP3 and SMTP AUTH."
            if has_password
            else "The user has no password: IMAP4, POP3 and SMTP AUTH refuse every login."
        )

    def apply(self, obj: RecipientProperties) -> RecipientProperties:
        if self.use_defaults.isChecked():
            warn: int | None = None
            prohibit: int | None = None
        else:
            warn = self.warn.limit("warning")
            prohibit = self.prohibit.limit("prohibit")
        recipient = dataclasses.replace(obj.recipient, quota_warn=warn, quota_prohibit=prohibit)
        return dataclasses.replace(obj, recipient=recipient)

    def set_password(self) -> None:
        """Set Password...: takes effect at once, as Active Directory's Reset Password does."""
        password = PasswordDialog.ask(self, self.alias)
        if password is None:
            return
        try:
            recipients.set_password(self.store, self.alias, password)
        except PostroomError as error:
            messages.error(self, error)
            return
        self._show_password(True)
        messages.info(
            self, f"The password of {self.alias} was set. IMAP4, POP3 and SMTP AUTH take it now."
        )


def _kb(kib: int) -> str:
    return f"{kib:,} KB" if kib else "no limit"


class PasswordDialog(QDialog):
    """New password, typed twice. GUI thread only."""

    def __init__(self, parent: QWidget | None, alias: str) -> None:
        super().__init__(parent)
        self.setObjectName("passwordDialog")
        self.setWindowTitle(f"Set Password: {alias}")
        self.password = QLineEdit(self)
        self.password.setObjectName("newPassword")
        self.confirm = QLineEdit(self)
        self.confirm.setObjectName("confirmPassword")
        for edit in (self.password, self.confirm):
            edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.problem = QLabel(self)
        self.problem.setObjectName("passwordProblem")
        self.problem.setStyleSheet("color: #b00000")
        self.problem.setWordWrap(True)
        form = QFormLayout()
        form.addRow(buddy_label("&New password:", self.password, self), self.password)
        form.addRow(buddy_label("&Confirm password:", self.confirm, self), self.confirm)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self.resize(380, 0)

    def accept(self) -> None:
        """OK only with two equal passwords the engine accepts; else says why and stays."""
        if self.password.text() != self.confirm.text():
            self.problem.setText("The passwords do not match. Type the same password twice.")
            return
        try:
            passwords.check_password(self.password.text())
        except PostroomError as error:
            self.problem.setText(str(error))
            return
        super().accept()

    @classmethod
    def ask(cls, parent: QWidget | None, alias: str) -> str | None:
        """The new password, or None when cancelled."""
        dialog = cls(parent, alias)
        try:
            return dialog.password.text() if dialog.exec() == QDialog.DialogCode.Accepted else None
        finally:
            dialog.deleteLater()


# -- Exchange Features: protocols ----------------------------------------------------------------


class ExchangeFeaturesPage(PropertyPage[RecipientProperties]):
    """Exchange 2000's Exchange Features tab of a user: the protocols it may read mail with."""

    title = "Exchange Features"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        protocols = QGroupBox("Protocols", self)
        self.imap = QCheckBox("&IMAP4 (read mail with a mail program over IMAP4)", protocols)
        self.imap.setObjectName("imapEnabled")
        self.pop3 = QCheckBox("&POP3 (download mail with a mail program over POP3)", protocols)
        self.pop3.setObjectName("pop3Enabled")
        note = QLabel(
            "A protocol switched off here refuses the user's login even with the right password; "
            "the server-wide switches are on the IMAP4 and POP3 virtual servers.",
            protocols,
        )
        note.setWordWrap(True)
        box = QVBoxLayout(protocols)
        box.addWidget(self.imap)
        box.addWidget(self.pop3)
        box.addWidget(note)
        layout = QVBoxLayout(self)
        layout.addWidget(protocols)
        layout.addStretch(1)
        self.imap.toggled.connect(self._emit_changed)
        self.pop3.toggled.connect(self._emit_changed)

    def load(self, obj: RecipientProperties) -> None:
        self.imap.setChecked(obj.recipient.imap_enabled)
        self.pop3.setChecked(obj.recipient.pop3_enabled)

    def apply(self, obj: RecipientProperties) -> RecipientProperties:
        recipient = dataclasses.replace(
            obj.recipient, imap_enabled=self.imap.isChecked(), pop3_enabled=self.pop3.isChecked()
        )
        return dataclasses.replace(obj, recipient=recipient)


# -- the sheet ---------------------------------------------------------------------------------


class RecipientDialog(PropertySheet[RecipientProperties]):
    """The property sheet of one user, contact or group."""

    def __init__(self, parent: QWidget | None, store: Store, recipient: Recipient) -> None:
        obj = RecipientProperties(recipient, tuple(recipients.member_of(store, recipient.alias)))
        super().__init__(parent, f"{recipient.display_name} Properties", obj)
        self.setObjectName("recipientDialog")
        self.store = store
        self.general = GeneralPage(recipient.kind, self)
        self.addresses = EmailAddressesPage(store, self)
        self.members: MembersPage | None = (
            MembersPage(store, self) if recipient.kind == "group" else None
        )
        self.member_of = MemberOfPage(store, self)
        self.exchange_general: ExchangeGeneralPage | None = None
        self.exchange_features: ExchangeFeaturesPage | None = None
        pages: list[PropertyPage[RecipientProperties]] = [self.general, self.addresses]
        if recipient.kind == "user":
            self.exchange_general = ExchangeGeneralPage(store, self)
            pages.append(self.exchange_general)
        if self.members is not None:
            pages.append(self.members)
        pages.append(self.member_of)
        if recipient.kind == "user":
            self.exchange_features = ExchangeFeaturesPage(self)
            pages.append(self.exchange_features)
        for page in pages:
            self.add_page(page)
        self.load_pages()
        self.show_explanation()
        self.resize(600, 640)

    def show_explanation(self) -> None:
        try:
            explanation = rus.explain(self.store, self.obj.recipient.alias)
        except PostroomError as error:
            self.addresses.show_explanation(None, str(error))
            return
        self.addresses.show_explanation(explanation)

    def commit(self, obj: RecipientProperties) -> RecipientProperties:
        old, new = self.obj.recipient, obj.recipient
        changes: dict[str, object] = {}
        if new.alias != old.alias:
            changes["new_alias"] = new.alias
        attributes = {
            name: new.attribute(name)
            for name in ATTRIBUTE_NAMES
            if new.attribute(name) != old.attribute(name)
        }
        if attributes:
            changes["attributes"] = attributes
        if new.target != old.target:
            changes["target"] = new.target or ""
        if new.auto_update != old.auto_update:
            changes["auto_update"] = new.auto_update
        if sorted(new.members) != sorted(old.members):
            changes["members"] = list(new.members)
        if new.addresses != old.addresses:
            changes["addresses"] = list(new.addresses)
        if sorted(obj.member_of) != sorted(self.obj.member_of):
            changes["member_of"] = list(obj.member_of)
        for name in ("imap_enabled", "pop3_enabled", "quota_warn", "quota_prohibit"):
            if getattr(new, name) != getattr(old, name):
                changes[name] = getattr(new, name)
        if not changes:
            return self.obj
        stored = recipients.save_recipient(self.store, old.alias, **changes)  # type: ignore[arg-type]
        return RecipientProperties(stored, tuple(recipients.member_of(self.store, stored.alias)))

    def after_commit(self) -> None:
        self.setWindowTitle(f"{self.obj.recipient.display_name} Properties")
        self.show_explanation()

    @classmethod
    def edit(cls, parent: QWidget | None, store: Store, recipient: Recipient) -> Recipient | None:
        """Open the sheet; the recipient as last saved, or None if nothing was saved."""
        dialog = cls(parent, store, recipient)
        try:
            dialog.exec()
            return dialog.result_obj.recipient if dialog.result_obj is not None else None
        finally:
            dialog.deleteLater()
