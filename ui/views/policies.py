"""Recipients > Recipient Policies: the list, New, Properties, Apply now, Move Up/Down, Delete."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction

from app import policies
from app.errors import PostroomError
from app.model import DEFAULT_POLICY_NAME, RecipientPolicy
from ui import messages
from ui.actions import MenuEntry, SubMenu, make_action, set_enabled
from ui.dialogs.policy import PolicyDialog
from ui.formatting import plural
from ui.models.policies import PolicyListModel
from ui.views.base import ResultView

if TYPE_CHECKING:
    from ui.console import Console
    from ui.node import Node

log = logging.getLogger(__name__)

DEFAULT_LOCKED_DELETE = f"The {DEFAULT_POLICY_NAME} cannot be deleted."
DEFAULT_LOCKED_RENAME = f"The {DEFAULT_POLICY_NAME} cannot be renamed."
DEFAULT_LOCKED_MOVE = (
    f"The {DEFAULT_POLICY_NAME} always has the lowest priority and cannot be moved."
)


class RecipientPoliciesView(ResultView):
    """The Recipient Policies node."""

    default_sort_column = PolicyListModel.COL_PRIORITY
    default_column_widths = (220, 80, 300, 140)

    def __init__(self, console: Console, node: Node) -> None:
        super().__init__(console, node)
        self.list_model = PolicyListModel(self, rename=self._rename)
        self.model = self.list_model
        self.new_policy = make_action(
            self, "Recipient &Policy...", "policy", None, "Create a recipient policy"
        )
        self.apply_now = make_action(
            self,
            "&Apply this policy now...",
            "update-now",
            None,
            "Give the policy's recipients its addresses at the next update",
        )
        self.move_up = make_action(
            self, "Move &Up", "move-up", None, "Give the policy a higher priority"
        )
        self.move_down = make_action(
            self, "Move &Down", "move-down", None, "Give the policy a lower priority"
        )
        self.new_policy.triggered.connect(self.create_policy)
        self.apply_now.triggered.connect(lambda: self._apply_selected())
        self.move_up.triggered.connect(lambda: self._move_selected("up"))
        self.move_down.triggered.connect(lambda: self._move_selected("down"))
        self._selection: list[int] = []
        console.watcher.changed.connect(self.refresh)

    # -- list ------------------------------------------------------------------------------

    def refresh(self) -> None:
        try:
            self.list_model.set_rows(policies.list_policies(self.console.store))
        except PostroomError as error:
            messages.error(self.parent_widget, error)
        self.status_changed.emit()

    def status_text(self) -> str:
        return plural(self.list_model.rowCount(), "policy", "policies")

    def _selected(self, rows: list[int]) -> list[RecipientPolicy]:
        return [self.list_model.row_object(row) for row in rows]

    def _custom_count(self) -> int:
        return sum(1 for policy in self.list_model.rows() if not policy.is_default)

    # -- actions ---------------------------------------------------------------------------

    def update_actions(self, rows: list[int]) -> None:
        self._selection = list(rows)
        chosen = self._selected(rows)
        one = chosen[0] if len(chosen) == 1 else None
        set_enabled(self.new_policy, True)
        set_enabled(self.std.properties, one is not None)
        set_enabled(self.apply_now, one is not None)
        if one is not None and one.is_default:
            set_enabled(self.std.delete, False, DEFAULT_LOCKED_DELETE)
            set_enabled(self.std.rename, False, DEFAULT_LOCKED_RENAME)
            set_enabled(self.move_up, False, DEFAULT_LOCKED_MOVE)
            set_enabled(self.move_down, False, DEFAULT_LOCKED_MOVE)
        elif one is not None:
            set_enabled(self.std.delete, True)
            set_enabled(self.std.rename, True)
            set_enabled(
                self.move_up, one.priority != 1, f"'{one.name}' already has the highest priority."
            )
            set_enabled(
                self.move_down,
                one.priority != self._custom_count(),
                f"'{one.name}' already has the lowest priority a custom policy can have; "
                f"only the {DEFAULT_POLICY_NAME} is lower.",
            )
        else:
            if any(policy.is_default for policy in chosen):
                set_enabled(self.std.delete, False, DEFAULT_LOCKED_DELETE)
            else:
                set_enabled(self.std.delete, bool(chosen))
            set_enabled(self.std.rename, False)
            set_enabled(self.move_up, False)
            set_enabled(self.move_down, False)

    def node_menu(self) -> list[MenuEntry]:
        return [
            SubMenu("&New", [self.new_policy]),
            None,
            self.std.refresh,
            self.std.export_list,
        ]

    def item_menu(self, rows: list[int]) -> list[MenuEntry]:
        return [
            self.apply_now,
            SubMenu("All Tas&ks", [self.move_up, self.move_down]),
            None,
            self.std.delete,
            self.std.rename,
            self.std.refresh,
            None,
            self.std.properties,
        ]

    def toolbar_actions(self) -> list[QAction]:
        return [self.new_policy, self.move_up, self.move_down]

    def can_rename(self, row: int) -> bool:
        return not self.list_model.row_object(row).is_default

    # -- commands --------------------------------------------------------------------------

    def create_policy(self) -> None:
        created = PolicyDialog.new(self.parent_widget, self.console.store)
        self.refresh()
        if created is not None:
            self.console.select_requested.emit(self.node, created.id)

    def properties(self, rows: list[int]) -> None:
        chosen = self._selected(rows)
        if len(chosen) != 1:
            return
        PolicyDialog.edit(self.parent_widget, self.console.store, chosen[0])
        self.refresh()

    def delete(self, rows: list[int]) -> None:
        chosen = self._selected(rows)
        if not chosen or any(policy.is_default for policy in chosen):
            return
        names = ", ".join(f"'{policy.name}'" for policy in chosen)
        question = (
            f"Are you sure you want to delete the recipient polic"
            f"{'y' if len(chosen) == 1 else 'ies'} {names}?\n\n"
            "Recipients keep the addresses they have; the policies below move up one place."
        )
        if not messages.ask(self.parent_widget, question, default_yes=False):
            return
        for policy in chosen:
            try:
                policies.delete_policy(self.console.store, policy.name)
            except PostroomError as error:
                messages.error(self.parent_widget, error)
                break
        self.refresh()

    def _rename(self, policy: RecipientPolicy, new_name: str) -> bool:
        """The in-place editor's commit (F2 / Rename)."""
        try:
            policies.edit_policy(self.console.store, policy.name, new_name=new_name)
        except PostroomError as error:
            messages.error(self.parent_widget, error)
            return False
        self.refresh()
        return True

    def _move_selected(self, direction: str) -> None:
        chosen = self._selected(self._selection)
        if len(chosen) != 1:
            return
        try:
            policies.move_policy(
                self.console.store, chosen[0].name, "up" if direction == "up" else "down"
            )
        except PostroomError as error:
            messages.error(self.parent_widget, error)
        self.refresh()
        self.actions_changed.emit()

    def _apply_selected(self) -> None:
        chosen = self._selected(self._selection)
        if len(chosen) != 1:
            return
        apply_policy_now(self, chosen[0])
        self.refresh()


def apply_policy_now(view: ResultView, policy: RecipientPolicy) -> None:
    """Exchange's "Apply this policy now": ask, mark the policy applied, wake the RUS."""
    question = (
        f"This will update the e-mail addresses of every recipient to which '{policy.name}' "
        "applies, at the next run of the Recipient Update Service. Do you want to continue?"
    )
    if not messages.ask(view.parent_widget, question):
        return
    try:
        view.console.rus.apply_policy(policy.name)
    except PostroomError as error:
        messages.error(view.parent_widget, error)
