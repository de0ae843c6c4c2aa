"""The recipient policy property sheet: General, E-Mail Addresses (Policy), Details."""

from __future__ import annotations

import dataclasses
import logging

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app import policies
from app.errors import PostroomError
from app.model import DEFAULT_POLICY_NAME, SMTP, AddressRule, RecipientPolicy
from app.store import Store
from ui import icons, messages
from ui.dialogs.address import CUSTOM, AddressTypeDialog, CustomAddressDialog, SmtpAddressDialog
from ui.dialogs.address_list import AddressListPage
from ui.dialogs.details import DetailsPage
from ui.dialogs.filter_builder import FindRecipientsDialog
from ui.dialogs.property_sheet import PropertyPage, PropertySheet
from ui.formatting import shown_address
from ui.models.rules import RuleListModel, RuleRow

log = logging.getLogger(__name__)

UPDATE_QUESTION = (
    "Do you want to update all corresponding recipient e-mail addresses to match these new "
    "address(es)?"
)
FILTER_CHANGED_WARNING = (
    "You have changed the filter rule of this policy. Recipients that already have addresses "
    "are not re-evaluated until you choose 'Apply this policy now' on the policy (or run "
    "Rebuild on the Recipient Update Service)."
)
LOCKED_NAME = f"The {DEFAULT_POLICY_NAME} cannot be renamed."
LOCKED_FILTER = (
    f"The filter of the {DEFAULT_POLICY_NAME} is fixed: it applies to every recipient that no "
    "other policy covers. Create a new recipient policy for a narrower set of recipients."
)
LOCKED_PRIMARY_REMOVE = (
    f"The primary SMTP address of the {DEFAULT_POLICY_NAME} cannot be removed. "
    "Set another SMTP address as primary first."
)
LOCKED_PRIMARY_RESPONSIBLE = (
    f"The primary SMTP address of the {DEFAULT_POLICY_NAME} must stay one this organization "
    "is responsible for."
)


def not_selected_question(rule: AddressRule) -> str:
    return (
        f"The new address {shown_address(rule)} is not selected, so it will not be generated "
        "or accepted. Select it now?"
    )


class GeneralPage(PropertyPage[RecipientPolicy]):
    """Name and the filter rules, with Modify… opening Find Recipients."""

    title = "General"

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.name = QLineEdit(self)
        self.name.setObjectName("name")
        self.name.setMaxLength(policies.MAX_NAME_LENGTH)
        self.filter = QPlainTextEdit(self)
        self.filter.setObjectName("filter")
        self.filter.setReadOnly(True)
        self.filter.setMaximumHeight(80)
        self.modify = QPushButton("&Modify...", self)
        self.modify.setObjectName("modify")
        self.modify.clicked.connect(self.modify_filter)
        self.name.textEdited.connect(self._emit_changed)

        title_row = QHBoxLayout()
        self.icon_label = QLabel(self)
        self.icon_label.setPixmap(icons.icon("policy").pixmap(32, 32))
        title_row.addWidget(self.icon_label)
        title_row.addWidget(self.name, 1)

        filter_box = QGroupBox("Filter rules", self)
        filter_layout = QGridLayout(filter_box)
        filter_layout.addWidget(self.filter, 0, 0, 1, 2)
        filter_layout.addWidget(self.modify, 1, 1, Qt.AlignmentFlag.AlignRight)
        self.filter_note = QLabel(self)
        self.filter_note.setWordWrap(True)
        filter_layout.addWidget(self.filter_note, 1, 0)

        self.priority = QLabel(self)
        self.priority.setObjectName("priority")
        self.state = QLabel(self)
        self.state.setObjectName("state")
        self.state.setWordWrap(True)
        facts = QFormLayout()
        facts.addRow("Priority:", self.priority)
        facts.addRow("State:", self.state)

        layout = QVBoxLayout(self)
        layout.addLayout(title_row)
        layout.addWidget(filter_box)
        layout.addLayout(facts)
        layout.addStretch(1)

    def load(self, obj: RecipientPolicy) -> None:
        self.name.setText(obj.name)
        self.filter.setPlainText(obj.filter)
        if obj.id is None:
            self.priority.setText("Lowest of the custom policies, once created")
        else:
            self.priority.setText(
                "Lowest (applies when no other policy does)"
                if obj.is_default
                else f"{obj.priority} (1 is the highest)"
            )
        if obj.apply_pending:
            self.state.setText(
                "Applied: the Recipient Update Service gives its recipients its addresses at "
                "its next run."
            )
        elif obj.id is None:
            self.state.setText("New")
        else:
            self.state.setText("Up to date")
        locked = obj.is_default
        self.name.setReadOnly(locked)
        self.name.setToolTip(LOCKED_NAME if locked else "")
        self.modify.setEnabled(not locked)
        self.modify.setToolTip(LOCKED_FILTER if locked else "Build the filter and preview it")
        if locked:
            self.filter_note.setText("Applies to every recipient no other policy covers.")
        elif not obj.filter:
            self.filter_note.setText("No filter yet: this policy applies to nobody.")
        else:
            self.filter_note.setText("")

    def apply(self, obj: RecipientPolicy) -> RecipientPolicy:
        return dataclasses.replace(
            obj, name=self.name.text(), filter=self.filter.toPlainText().strip()
        )

    def modify_filter(self) -> None:
        built = FindRecipientsDialog.edit(self, self.store, self.filter.toPlainText())
        if built is not None and built != self.filter.toPlainText():
            self.filter.setPlainText(built)
            self.filter_note.setText("" if built else "No filter: this policy applies to nobody.")
            self.changed.emit()


class EmailAddressesPage(AddressListPage[RecipientPolicy, RuleRow]):
    """Generation rules: check box, Type, Address (primary in bold); New, Edit, Remove, Primary."""

    title = "E-Mail Addresses (Policy)"

    def __init__(self, parent: QWidget | None = None) -> None:
        rules = RuleListModel()
        super().__init__(rules, "rules", parent)
        rules.setParent(self)
        self.rules = rules
        self.is_default = False
        self.view.setMinimumWidth(360)

        box = QGroupBox("Generation rules", self)
        box_layout = QVBoxLayout(box)
        box_layout.addWidget(self.address_box)
        hint = QLabel(
            "Select (tick) an address to generate it and accept mail for it. "
            "The primary address is in bold and becomes the recipients' reply address.",
            self,
        )
        hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(box, 1)
        layout.addWidget(hint)

    # -- load / apply ----------------------------------------------------------------------

    def load(self, obj: RecipientPolicy) -> None:
        self.is_default = obj.is_default
        self.rules.load(obj.rules)
        self.update_buttons()

    def apply(self, obj: RecipientPolicy) -> RecipientPolicy:
        return dataclasses.replace(obj, rules=self.rules.rules())

    # -- buttons ---------------------------------------------------------------------------

    def _locked_default_primary(self, row: int) -> bool:
        rule = self.rules.rule(row)
        return self.is_default and rule.primary and rule.is_smtp

    def locked(self, row: int) -> str:
        return LOCKED_PRIMARY_REMOVE if self._locked_default_primary(row) else ""

    def new_address(self) -> None:
        kind = AddressTypeDialog.choose(self)
        if kind is None:
            return
        existing = self.rules.rules()
        if kind == SMTP:
            rule = SmtpAddressDialog.ask(self, None, existing)
        elif kind == CUSTOM:
            rule = CustomAddressDialog.ask(self, None, existing)
        else:
            return
        if rule is not None:
            self.select_row(self.rules.add(rule))

    def edit_address(self, row: int) -> None:
        rule = self.rules.rule(row)
        existing = self.rules.rules()
        if rule.is_smtp:
            lock = LOCKED_PRIMARY_RESPONSIBLE if self._locked_default_primary(row) else ""
            edited = SmtpAddressDialog.ask(self, rule, existing, lock_responsible=lock)
        else:
            edited = CustomAddressDialog.ask(self, rule, existing)
        if edited is not None and edited != rule:
            self.rules.replace(row, edited)


class PolicyDialog(PropertySheet[RecipientPolicy]):
    """The property sheet of one recipient policy (or of a new one, before it exists)."""

    def __init__(self, parent: QWidget | None, store: Store, policy: RecipientPolicy) -> None:
        title = f"{policy.name} Properties" if policy.id is not None else "New Policy Properties"
        super().__init__(parent, title, policy)
        self.setObjectName("policyDialog")
        self.store = store
        self.general = GeneralPage(store, self)
        self.addresses = EmailAddressesPage(self)
        self.details: DetailsPage[RecipientPolicy] = DetailsPage(self)
        for page in (self.general, self.addresses, self.details):
            self.add_page(page)
        self.load_pages()
        if policy.id is None:
            self.apply_button.setEnabled(True)  # a new policy has something to save
        self._before: RecipientPolicy = policy
        self.resize(560, 480)

    # -- committing ------------------------------------------------------------------------

    def _ask_about_unticked(self) -> None:
        """Exchange 2000's trap, caught: a new address left unticked would do nothing."""
        for row in self.addresses.rules.new_unticked():
            rule = self.addresses.rules.rule(row)
            if messages.ask(self, not_selected_question(rule)):
                self.addresses.rules.set_enabled(row, True)

    def collect(self) -> RecipientPolicy:
        self._ask_about_unticked()
        return super().collect()

    def commit(self, obj: RecipientPolicy) -> RecipientPolicy:
        self._before = self.obj
        if obj.id is None:
            probe = dataclasses.replace(obj, name=obj.name.strip())
            policies.check_rules(probe)
            created = policies.create_policy(self.store, obj.name, obj.filter, obj.note)
            # From here on the sheet edits the stored policy: a refusal below leaves it open
            # on the created policy, and OK again saves only the rules.
            self.obj = created
            self.setWindowTitle(f"{created.name} Properties")
            obj = dataclasses.replace(obj, id=created.id, name=created.name)
            self._before = created
        return policies.save_policy(self.store, obj)

    def after_commit(self) -> None:
        before, after = self._before, self.obj
        if after.filter != before.filter and before.id is not None:
            messages.warn(self, FILTER_CHANGED_WARNING)
        addresses_changed = _generated(after) != _generated(before) and bool(_generated(after))
        if not addresses_changed or not messages.ask(self, UPDATE_QUESTION):
            return
        try:
            self.obj = policies.apply_policy(self.store, after.name)
            self.result_obj = self.obj
        except PostroomError as error:
            messages.error(self, error)

    # -- entry points ----------------------------------------------------------------------

    @classmethod
    def edit(
        cls, parent: QWidget | None, store: Store, policy: RecipientPolicy
    ) -> RecipientPolicy | None:
        """Open the sheet of a stored policy; the policy as last saved, or None if unchanged."""
        dialog = cls(parent, store, policy)
        try:
            dialog.exec()
            return dialog.result_obj
        finally:
            dialog.deleteLater()

    @classmethod
    def new(cls, parent: QWidget | None, store: Store) -> RecipientPolicy | None:
        """New > Recipient Policy: the sheet of a policy that does not exist until OK."""
        return cls.edit(parent, store, RecipientPolicy(name=""))


def _generated(policy: RecipientPolicy) -> set[tuple[str, str, bool, bool]]:
    """What the Recipient Update Service would stamp: the enabled rules and the primaries."""
    return {
        (rule.type.upper(), rule.address.lower(), rule.primary, rule.responsible)
        for rule in policy.rules
        if rule.enabled
    }
