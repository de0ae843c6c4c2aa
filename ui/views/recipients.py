"""Recipients > All Recipients: the lazy list, New > User / Contact / Group, Properties, Delete,
and the filter box in the toolbar."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLineEdit, QWidgetAction

from app.directory import recipients
from app.errors import PostroomError
from app.model import RecipientKind
from ui import messages
from ui.actions import MenuEntry, SubMenu, make_action, set_enabled
from ui.dialogs.new_recipient import NewRecipientWizard
from ui.dialogs.recipient import RecipientDialog
from ui.formatting import plural
from ui.models.recipient_list import RecipientListModel
from ui.views.base import ResultView

if TYPE_CHECKING:
    from app.store import Store
    from ui.console import Console
    from ui.node import Node

log = logging.getLogger(__name__)

FILTER_DELAY_MS = 250
"""Typing pauses this long before the list is filtered (one query per pause, not per key)."""


class AllRecipientsView(ResultView):
    """The All Recipients node: every user, contact and group in the directory."""

    default_column_widths = (200, 110, 120, 240, 140)

    def __init__(self, console: Console, node: Node) -> None:
        super().__init__(console, node)
        self.list_model = RecipientListModel(console.store, console.tasks, self)
        self.model = self.list_model
        self.new_user = make_action(self, "&User...", "user", None, "Create a user with a mailbox")
        self.new_contact = make_action(
            self, "&Contact...", "contact", None, "Create a contact that forwards elsewhere"
        )
        self.new_group = make_action(
            self, "&Group...", "group", None, "Create a distribution group"
        )
        self.new_user.triggered.connect(lambda: self.create("user"))
        self.new_contact.triggered.connect(lambda: self.create("contact"))
        self.new_group.triggered.connect(lambda: self.create("group"))

        self.filter_edit = QLineEdit()
        self.filter_edit.setObjectName("recipientFilter")
        self.filter_edit.setPlaceholderText("Filter by name, alias or address")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setMinimumWidth(220)
        self.filter_edit.setMaximumWidth(320)
        self.filter_edit.setToolTip(
            "Type part of a display name, alias or e-mail address to show only those "
            "recipients (Ctrl+F; Esc clears)"
        )
        self.filter_action = QWidgetAction(self)
        self.filter_action.setDefaultWidget(self.filter_edit)
        self.focus_filter = make_action(self, "&Find...", None, QKeySequence.StandardKey.Find)
        self.focus_filter.triggered.connect(self._focus_filter)
        self.filter_edit.addAction(self.focus_filter)
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(FILTER_DELAY_MS)
        self._filter_timer.timeout.connect(self._apply_filter)
        self.filter_edit.textChanged.connect(lambda _text: self._filter_timer.start())
        self.filter_edit.returnPressed.connect(self._apply_filter)
        clear = QAction(self.filter_edit)
        clear.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        clear.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        clear.triggered.connect(self.filter_edit.clear)
        self.filter_edit.addAction(clear)

        self._select_after_load: int | None = None
        self._stale = True
        self._deleting = False
        self.list_model.loading.connect(self.status_changed)
        self.list_model.loaded.connect(self._loaded)
        self.list_model.failed.connect(lambda _message: self.status_changed.emit())
        console.watcher.changed.connect(self._directory_changed)

    # -- list ------------------------------------------------------------------------------

    def shown(self) -> None:
        if self._stale or not self.list_model.has_loaded:
            self.refresh()

    def refresh(self) -> None:
        self._stale = False
        self.list_model.reload()
        self.status_changed.emit()

    def _directory_changed(self) -> None:
        # Only the list on screen follows every change; a hidden one reloads when shown again.
        if self.is_current():
            self.refresh()
        else:
            self._stale = True

    def _loaded(self) -> None:
        self.status_changed.emit()
        self.actions_changed.emit()
        if self._select_after_load is not None:
            key, self._select_after_load = self._select_after_load, None
            if self.list_model.row_of(key) is not None:
                self.console.select_requested.emit(self.node, key)

    def _apply_filter(self) -> None:
        self._filter_timer.stop()
        self.list_model.set_filter_text(self.filter_edit.text())
        self.status_changed.emit()

    def _focus_filter(self) -> None:
        self.filter_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_edit.selectAll()

    def status_text(self) -> str:
        model = self.list_model
        if model.last_error:
            return f"Cannot list the recipients: {model.last_error}"
        if not model.has_loaded:
            return "Loading..."
        shown = model.rowCount()
        if model.filter_text:
            text = f"{shown:,} of {plural(model.total, 'recipient')} match '{model.filter_text}'"
        else:
            text = plural(shown, "recipient")
        return text + ("  (sorting...)" if model.is_reordering else "")

    def is_busy(self) -> bool:
        return self.list_model.is_loading or self._deleting or self._filter_timer.isActive()

    # -- actions ---------------------------------------------------------------------------

    def update_actions(self, rows: list[int]) -> None:
        for action in (self.new_user, self.new_contact, self.new_group, self.focus_filter):
            set_enabled(action, True)
        set_enabled(self.std.properties, len(rows) == 1)
        set_enabled(self.std.delete, bool(rows) and not self._deleting)

    def node_menu(self) -> list[MenuEntry]:
        return [
            SubMenu("&New", [self.new_user, self.new_contact, self.new_group]),
            None,
            self.focus_filter,
            self.std.refresh,
            self.std.export_list,
        ]

    def item_menu(self, rows: list[int]) -> list[MenuEntry]:
        return [
            SubMenu("&New", [self.new_user, self.new_contact, self.new_group]),
            None,
            self.std.delete,
            self.std.refresh,
            None,
            self.std.properties,
        ]

    def toolbar_actions(self) -> list[QAction]:
        return [self.new_user, self.new_contact, self.new_group, self.filter_action]

    # -- commands --------------------------------------------------------------------------

    def create(self, kind: RecipientKind) -> None:
        """New > User / Contact / Group: the wizard, then the new recipient selected."""
        created = NewRecipientWizard.ask(self.parent_widget, self.console.store, kind)
        if created is not None and created.id is not None:
            self._select_after_load = created.id
            self.refresh()

    def properties(self, rows: list[int]) -> None:
        if len(rows) != 1:
            return
        summary = self.list_model.summary(rows[0])
        if summary is None:
            return
        try:
            recipient = recipients.get_recipient(self.console.store, summary.alias)
        except PostroomError as error:
            messages.error(self.parent_widget, error)
            self.refresh()
            return
        RecipientDialog.edit(self.parent_widget, self.console.store, recipient)
        self.refresh()

    def delete(self, rows: list[int]) -> None:
        chosen = [s for s in (self.list_model.summary(row) for row in rows) if s is not None]
        if not chosen or self._deleting:
            return
        if len(chosen) == 1:
            what = f"'{chosen[0].display_name}' ({chosen[0].alias})"
        else:
            what = plural(len(chosen), "recipient")
        question = f"Are you sure you want to delete {what}?"
        if any(s.kind == "user" for s in chosen):
            question += "\n\nA user's mailbox folder stays on disk: mail is never thrown away."
        if not messages.ask(self.parent_widget, question, default_yes=False):
            return
        self._deleting = True
        self.actions_changed.emit()
        self.console.tasks.submit(
            "delete recipients",
            _delete_all,
            self.console.store,
            [s.alias for s in chosen],
            on_success=lambda _result: self._deleted(None),
            on_failure=self._deleted,
        )

    def _deleted(self, error: Exception | None) -> None:
        self._deleting = False
        if error is not None:
            messages.error(self.parent_widget, error)
        self.refresh()
        self.actions_changed.emit()


def _delete_all(store: Store, aliases: list[str]) -> None:
    """Task thread: delete the recipients one by one (each is its own transaction)."""
    for alias in aliases:
        recipients.delete_recipient(store, alias)
