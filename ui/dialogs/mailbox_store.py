"""The Mailbox Store's property sheet: its Limits tab, the default mailbox limits of every user
who uses the store's defaults, and how mail to a full mailbox is refused. GUI thread only."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from PySide6.QtWidgets import QGroupBox, QLabel, QRadioButton, QVBoxLayout, QWidget

from app.settings import load_settings, save_settings
from app.store import Store
from ui.dialogs.property_sheet import PropertyPage, PropertySheet
from ui.dialogs.recipient import LimitField

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreLimits:
    """What the sheet edits: the default limits in KB (0: none) and 552 instead of 452."""

    warn: int = 0
    prohibit: int = 0
    permanent: bool = False


class LimitsPage(PropertyPage[StoreLimits]):
    """Exchange 2000's Limits tab of a mailbox store."""

    title = "Limits"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        limits = QGroupBox("Storage limits", self)
        self.warn = LimitField("Issue &warning at (KB):", "storeWarn", limits)
        self.prohibit = LimitField("&Prohibit send and receive at (KB):", "storeProhibit", limits)
        note = QLabel(
            "These apply to every user whose Exchange General tab uses the mailbox store "
            "defaults. Mail to a mailbox at its prohibit limit is refused at RCPT; Dovecot's "
            "quota is the same limit.",
            limits,
        )
        note.setWordWrap(True)
        box = QVBoxLayout(limits)
        box.addWidget(self.warn)
        box.addWidget(self.prohibit)
        box.addWidget(note)
        full = QGroupBox("Mail to a full mailbox", self)
        self.temporary = QRadioButton(
            "Refuse &temporarily (452 4.2.2): the sender retries for a while", full
        )
        self.temporary.setObjectName("fullTemporary")
        self.permanent = QRadioButton(
            "Refuse p&ermanently (552 5.2.2): the sender gets a non-delivery report at once", full
        )
        self.permanent.setObjectName("fullPermanent")
        box = QVBoxLayout(full)
        box.addWidget(self.temporary)
        box.addWidget(self.permanent)
        layout = QVBoxLayout(self)
        layout.addWidget(limits)
        layout.addWidget(full)
        layout.addStretch(1)
        for field in (self.warn, self.prohibit):
            field.check.toggled.connect(self._emit_changed)
            field.value.textEdited.connect(self._emit_changed)
        self.permanent.toggled.connect(self._emit_changed)

    def load(self, obj: StoreLimits) -> None:
        self.warn.set_limit(obj.warn)
        self.prohibit.set_limit(obj.prohibit)
        (self.permanent if obj.permanent else self.temporary).setChecked(True)

    def apply(self, obj: StoreLimits) -> StoreLimits:
        return dataclasses.replace(
            obj,
            warn=self.warn.limit("warning"),
            prohibit=self.prohibit.limit("prohibit"),
            permanent=self.permanent.isChecked(),
        )


class MailboxStoreDialog(PropertySheet[StoreLimits]):
    """Mailbox Store Properties."""

    def __init__(self, parent: QWidget | None, store: Store) -> None:
        current = load_settings(store)
        obj = StoreLimits(
            current.mailbox_warn_default,
            current.mailbox_prohibit_default,
            current.mailbox_full_permanent,
        )
        super().__init__(parent, "Mailbox Store Properties", obj)
        self.setObjectName("mailboxStoreDialog")
        self.store = store
        self.limits = LimitsPage(self)
        self.add_page(self.limits)
        self.load_pages()
        self.resize(520, 420)

    def commit(self, obj: StoreLimits) -> StoreLimits:
        saved = save_settings(
            self.store,
            mailbox_warn_default=obj.warn,
            mailbox_prohibit_default=obj.prohibit,
            mailbox_full_permanent=obj.permanent,
        )
        return StoreLimits(
            saved.mailbox_warn_default,
            saved.mailbox_prohibit_default,
            saved.mailbox_full_permanent,
        )

    @classmethod
    def edit(cls, parent: QWidget | None, store: Store) -> StoreLimits | None:
        """Open the sheet; the limits as last saved, or None if nothing was saved."""
        dialog = cls(parent, store)
        try:
            dialog.exec()
            return dialog.result_obj
        finally:
            dialog.deleteLater()
