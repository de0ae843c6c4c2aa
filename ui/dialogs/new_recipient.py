"""New > User, Contact or Group: a short wizard, as Active Directory Users and Computers has it.

User: names and alias, then a password for SMTP authentication, then a summary. Contact: names
and alias, then the target address. Group: name and alias. Finish creates the recipient; a
refusal (a bad or taken alias) is shown as its message and the wizard stays open with what was
typed. GUI thread only.
"""

from __future__ import annotations

import logging
import re
import unicodedata

from PySide6.QtWidgets import (
    QFormLayout,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from app import organization
from app.directory import addressing, recipients
from app.errors import ConflictError, NotFoundError, PostroomError
from app.model import Recipient, RecipientKind
from app.store import Store
from ui import icons, messages
from ui.formatting import shown_smtp
from ui.widgets import buddy_label

log = logging.getLogger(__name__)

KIND_TITLES = {"user": "User", "contact": "Contact", "group": "Group"}
PASSWORD_HINT = (
    "The password lets this user send mail through Postroom's SMTP service with SMTP "
    "authentication (AUTH PLAIN or LOGIN, after STARTTLS). Leave both fields empty for a user "
    "without a password; you can set one later."
)
ERROR_STYLE = "color: #b00020;"


def suggest_alias(*parts: str, separator: str = "") -> str:
    """An alias made of name parts: ASCII, lower case, only characters an alias may have."""
    text = separator.join(part.strip() for part in parts if part.strip())
    text = text.replace("ß", "ss")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^a-z0-9._'-]", "", ascii_text.lower().replace(" ", separator or ""))
    return re.sub(r"\.{2,}", ".", cleaned).strip(".-'_")[:64]


def _field(
    parent: QWidget, name: str, max_length: int = recipients.MAX_ATTRIBUTE_LENGTH
) -> QLineEdit:
    edit = QLineEdit(parent)
    edit.setObjectName(name)
    edit.setMaxLength(max_length)
    return edit


def check_new_alias(store: Store, alias: str) -> str:
    """The alias, checked and not yet used; PostroomError saying why not."""
    alias = recipients.check_alias(alias)
    try:
        existing = recipients.get_recipient(store, alias)
    except NotFoundError:
        return alias
    raise ConflictError(
        f"The alias '{alias}' is already used by '{existing.display_name}'. Choose another alias."
    )


class NamesPage(QWizardPage):
    """First name, initials, last name, full (display) name and alias; for a group its name."""

    def __init__(self, store: Store, kind: RecipientKind, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.kind = kind
        self.setTitle(f"New {KIND_TITLES[kind]}")
        self.setSubTitle(f"Create in: {_container(store)}")
        self.given = _field(self, "givenName")
        self.initials = _field(self, "initials", 6)
        self.initials.setMaximumWidth(60)
        self.surname = _field(self, "sn")
        self.display = _field(self, "displayName")
        self.alias = _field(self, "alias", 64)
        self.alias.setToolTip(
            "Unique; names the mailbox folder and is what %m stands for in address templates."
        )
        self._alias_typed = False
        self._display_typed = False
        grid = QGridLayout(self)
        row = 0
        if kind != "group":
            grid.addWidget(buddy_label("&First name:", self.given, self), 0, 0)
            grid.addWidget(self.given, 0, 1)
            grid.addWidget(buddy_label("I&nitials:", self.initials, self), 0, 2)
            grid.addWidget(self.initials, 0, 3)
            grid.addWidget(buddy_label("&Last name:", self.surname, self), 1, 0)
            grid.addWidget(self.surname, 1, 1, 1, 3)
            row = 2
            display_label = "F&ull name:"
        else:
            display_label = "Group na&me:"
            for edit in (self.given, self.initials, self.surname):
                edit.setVisible(False)  # a group has no person's names
        grid.addWidget(buddy_label(display_label, self.display, self), row, 0)
        grid.addWidget(self.display, row, 1, 1, 3)
        grid.addWidget(buddy_label("&Alias:", self.alias, self), row + 1, 0)
        grid.addWidget(self.alias, row + 1, 1, 1, 3)
        self.feedback = QLabel(self)
        self.feedback.setObjectName("feedback")
        self.feedback.setWordWrap(True)
        grid.addWidget(self.feedback, row + 2, 0, 1, 4)
        grid.setColumnStretch(1, 1)
        grid.setRowStretch(row + 3, 1)
        for edit in (self.given, self.initials, self.surname):
            edit.textEdited.connect(self._names_edited)
        self.display.textEdited.connect(self._display_edited)
        self.alias.textEdited.connect(self._alias_edited)
        self.display.textChanged.connect(self.completeChanged)
        self.alias.textChanged.connect(self.completeChanged)

    def _names_edited(self, *_: object) -> None:
        if not self._display_typed:
            self.display.setText(
                recipients.default_display_name(self.attributes(with_display=False), "")
            )
        self._suggest_alias()

    def _display_edited(self, text: str) -> None:
        self._display_typed = bool(text)
        self._suggest_alias()

    def _alias_edited(self, text: str) -> None:
        self._alias_typed = bool(text)
        self.feedback.setText("")

    def _suggest_alias(self) -> None:
        if self._alias_typed:
            return
        if self.kind == "group":
            self.alias.setText(suggest_alias(self.display.text(), separator="-"))
        else:
            given, surname = self.given.text().strip(), self.surname.text().strip()
            if surname:
                self.alias.setText(suggest_alias(given[:1], surname))
            else:
                self.alias.setText(suggest_alias(self.display.text(), separator="."))

    def attributes(self, with_display: bool = True) -> dict[str, str]:
        values = {"displayName": self.display.text().strip()} if with_display else {}
        if self.kind != "group":
            values.update(
                givenName=self.given.text().strip(),
                initials=self.initials.text().strip(),
                sn=self.surname.text().strip(),
            )
        return {name: value for name, value in values.items() if value}

    def isComplete(self) -> bool:
        return bool(self.display.text().strip() and self.alias.text().strip())

    def validatePage(self) -> bool:
        try:
            self.alias.setText(check_new_alias(self.store, self.alias.text()))
            recipients.check_attributes(self.attributes())
        except PostroomError as error:
            self.feedback.setStyleSheet(ERROR_STYLE)
            self.feedback.setText(str(error))
            messages.error(self, error)
            self.alias.setFocus()
            return False
        return True


class PasswordPage(QWizardPage):
    """A user's password for SMTP authentication, typed twice."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("Password")
        self.setSubTitle("For sending mail with SMTP authentication")
        self.password = QLineEdit(self)
        self.password.setObjectName("password")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.confirm = QLineEdit(self)
        self.confirm.setObjectName("confirm")
        self.confirm.setEchoMode(QLineEdit.EchoMode.Password)
        hint = QLabel(PASSWORD_HINT, self)
        hint.setWordWrap(True)
        form = QFormLayout()
        form.addRow("&Password:", self.password)
        form.addRow("&Confirm password:", self.confirm)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(hint)
        layout.addStretch(1)

    def chosen(self) -> str | None:
        return self.password.text() or None

    def validatePage(self) -> bool:
        if self.password.text() != self.confirm.text():
            messages.error(
                self, "The passwords you typed do not match. Type the same password twice."
            )
            self.confirm.clear()
            self.confirm.setFocus()
            return False
        return True


class TargetPage(QWizardPage):
    """A contact's target: the outside address its mail is forwarded to."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("Target Address")
        self.setSubTitle("Mail to this contact is forwarded to this address")
        self.target = QLineEdit(self)
        self.target.setObjectName("target")
        self.target.setPlaceholderText("ann@partner.example")
        self.feedback = QLabel(self)
        self.feedback.setObjectName("feedback")
        self.feedback.setWordWrap(True)
        form = QFormLayout()
        form.addRow("&E-mail address:", self.target)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.feedback)
        layout.addStretch(1)
        self.target.textChanged.connect(self._check)
        self.target.textChanged.connect(self.completeChanged)

    def _check(self) -> None:
        text = self.target.text().strip()
        if not text:
            self.feedback.setText("")
            return
        try:
            addressing.normalize_smtp_address(text)
        except PostroomError as error:
            self.feedback.setStyleSheet(ERROR_STYLE)
            self.feedback.setText(str(error))
        else:
            self.feedback.setStyleSheet("")
            self.feedback.setText("")

    def isComplete(self) -> bool:
        try:
            addressing.normalize_smtp_address(self.target.text())
        except PostroomError:
            return False
        return True


class SummaryPage(QWizardPage):
    """What Finish will create, and the address the Recipient Update Service will give it."""

    def __init__(self, wizard: NewRecipientWizard) -> None:
        super().__init__(wizard)
        self.owner = wizard
        self.setTitle("Summary")
        self.setSubTitle("When you click Finish, the following object will be created:")
        self.summary = QPlainTextEdit(self)
        self.summary.setObjectName("summary")
        self.summary.setReadOnly(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        self.setFinalPage(True)

    def initializePage(self) -> None:
        self.summary.setPlainText(self.owner.summary_text())

    def validatePage(self) -> bool:
        return self.owner.create_now()


class NewRecipientWizard(QWizard):
    """New Object - User / Contact / Group."""

    def __init__(self, parent: QWidget | None, store: Store, kind: RecipientKind) -> None:
        super().__init__(parent)
        self.setObjectName("newRecipientWizard")
        self.setWindowTitle(f"New Object - {KIND_TITLES[kind]}")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setPixmap(QWizard.WizardPixmap.LogoPixmap, icons.icon(kind).pixmap(32, 32))
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.store = store
        self.kind = kind
        self.created: Recipient | None = None
        self.names = NamesPage(store, kind, self)
        self.password = PasswordPage(self) if kind == "user" else None
        self.target = TargetPage(self) if kind == "contact" else None
        self.summary = SummaryPage(self)
        for page in (self.names, self.password, self.target, self.summary):
            if page is not None:
                self.addPage(page)
        self.resize(520, 380)

    def summary_text(self) -> str:
        names = self.names
        lines = []
        if self.kind == "group":
            lines.append(f"Group name: {names.display.text().strip()}")
        else:
            lines.append(f"Full name: {names.display.text().strip()}")
        lines.append(f"Alias: {names.alias.text().strip()}")
        if self.password is not None:
            lines.append(
                "Password: set (for SMTP authentication)"
                if self.password.chosen()
                else "Password: none (this user cannot authenticate to send mail)"
            )
        if self.target is not None:
            lines.append(f"Target address: {shown_smtp(self.target.target.text().strip())}")
        if self.kind == "user":
            lines.append(f"Mailbox folder: {self.store.paths.mailbox(names.alias.text().strip())}")
        lines.append("")
        lines.append(self._address_text())
        return "\n".join(lines)

    def _address_text(self) -> str:
        try:
            preview = recipients.preview_addresses(
                self.store, self.names.alias.text(), self.kind, self.names.attributes()
            )
        except PostroomError as error:
            return f"E-mail addresses: cannot tell ({error})"
        if preview.policy is None:
            return (
                "E-mail addresses: none. No recipient policy's filter matches this recipient, "
                "so the Recipient Update Service gives it no address."
            )
        if not preview.addresses:
            return f"E-mail addresses: none ('{preview.policy}' generates no SMTP address)."
        shown = [
            shown_smtp(a) + (" (taken: a number will be appended)" if a in preview.taken else "")
            for a in preview.addresses
        ]
        text = f"E-mail addresses from '{preview.policy}', stamped by the Recipient Update Service:"
        return "\n".join([text, *(f"  {a}" for a in shown)]) + "\n  (the first is the primary)"

    def create_now(self) -> bool:
        """Finish: create the recipient; False (and the message) when refused."""
        if self.created is not None:
            return True
        try:
            self.created = recipients.create_recipient(
                self.store,
                self.names.alias.text(),
                self.kind,
                attributes=self.names.attributes(),
                target=self.target.target.text() if self.target is not None else None,
                password=self.password.chosen() if self.password is not None else None,
            )
        except PostroomError as error:
            messages.error(self, error)
            return False
        return True

    @classmethod
    def ask(cls, parent: QWidget | None, store: Store, kind: RecipientKind) -> Recipient | None:
        """Run the wizard; the new recipient, or None when cancelled. (Not ``create``: that is
        QWidget's own.)"""
        wizard = cls(parent, store, kind)
        try:
            wizard.exec()
            return wizard.created
        finally:
            wizard.deleteLater()


def _container(store: Store) -> str:
    try:
        org = organization.get_organization(store)
    except PostroomError:
        org = None
    name = org.name if org else organization.DEFAULT_ORGANIZATION_NAME
    return f"{name}/Recipients"
