"""Recipients > Recipient Policies through the real window: the list, the sheet, the traps."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app import policies
from app.directory import recipients
from app.directory.filters import FilterError, parse_filter
from app.model import DEFAULT_POLICY_NAME
from app.store import Store
from tests.ui_support import (
    DialogDriver,
    click_menu_item,
    double_click_row,
    menu_texts,
    right_click_row,
    right_click_tree,
    select_row,
    submenu,
    type_text,
)
from ui.dialogs.address import AddressTypeDialog, SmtpAddressDialog
from ui.dialogs.filter_builder import FindRecipientsDialog
from ui.dialogs.policy import PolicyDialog
from ui.main_window import MainWindow
from ui.views.policies import RecipientPoliciesView

if TYPE_CHECKING:
    from tests.conftest import Prompts  # the fixture's type, not the fixture

NET_QUESTION = "The new address @example.net is not selected"
UPDATE = "Do you want to update all corresponding recipient e-mail addresses"


def policies_view(window: MainWindow) -> RecipientPoliciesView:
    window.select_node("recipients/policies")
    view = window.current
    assert isinstance(view, RecipientPoliciesView)
    return view


def shown_names(window: MainWindow) -> list[str]:
    return [window.proxy.index(row, 0).data() for row in range(window.proxy.rowCount())]


def add_smtp_rule(dialogs: DialogDriver, sheet: PolicyDialog, address: str) -> None:
    """New… → SMTP Address → type the address → OK, on an open sheet."""
    dialogs.expect(AddressTypeDialog, lambda d: d.accept())  # SMTP Address is preselected

    def fill(dialog: SmtpAddressDialog) -> None:
        dialog.address.setText(address)
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()

    dialogs.expect(SmtpAddressDialog, fill)
    sheet.addresses.new_button.click()


def default_policy(store: Store):  # type: ignore[no-untyped-def]
    return next(p for p in policies.list_policies(store) if p.is_default)


# -- the list ---------------------------------------------------------------------------------


def test_list_shows_policies_in_priority_order_with_exchange_columns(
    window: MainWindow, store: Store
) -> None:
    policies.create_policy(store, "Sales", "(department=Sales)")
    policies.create_policy(store, "Staff")
    policies_view(window)
    headers = [window.proxy.headerData(c, Qt.Orientation.Horizontal) for c in range(4)]
    assert headers == ["Name", "Priority", "Filter Rule", "Last Modified"]
    assert shown_names(window) == ["Sales", "Staff", DEFAULT_POLICY_NAME]
    assert [window.proxy.index(r, 1).data() for r in range(3)] == ["1", "2", "Lowest"]
    assert window.proxy.index(0, 2).data() == "(department=Sales)"
    assert "3 policies" in window.result.title.text()


def test_list_follows_changes_made_by_another_program(
    qtbot: QtBot, window: MainWindow, store: Store
) -> None:
    policies_view(window)
    policies.create_policy(store, "Made by the CLI")  # another process would do the same
    qtbot.waitUntil(lambda: "Made by the CLI" in shown_names(window), timeout=3000)


# -- the Default Policy's restrictions --------------------------------------------------------


def test_default_policy_locked_actions_are_disabled_with_a_reason(
    qtbot: QtBot, window: MainWindow, store: Store
) -> None:
    policies.create_policy(store, "Sales")
    view = policies_view(window)
    select_row(qtbot, window, DEFAULT_POLICY_NAME)
    std = window.std
    assert not std.delete.isEnabled()
    assert std.delete.toolTip() == "The Default Policy cannot be deleted."
    assert not std.rename.isEnabled() and "cannot be renamed" in std.rename.toolTip()
    for move in (view.move_up, view.move_down):
        assert not move.isEnabled()
        assert "lowest priority and cannot be moved" in move.toolTip()
    assert std.properties.isEnabled() and view.apply_now.isEnabled()

    menu = right_click_row(qtbot, window, DEFAULT_POLICY_NAME)
    delete = next(a for a in menu.actions() if a.text() == "&Delete")
    assert not delete.isEnabled() and menu.toolTipsVisible()
    menu.close()
    # Del does nothing to it.
    qtbot.keyClick(window.result_list, Qt.Key.Key_Delete)
    assert DEFAULT_POLICY_NAME in [p.name for p in policies.list_policies(store)]


def test_default_policy_sheet_locks_name_filter_and_primary(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver
) -> None:
    policies_view(window)

    def inspect(sheet: PolicyDialog) -> None:
        assert sheet.general.name.isReadOnly()
        assert "cannot be renamed" in sheet.general.name.toolTip()
        assert not sheet.general.modify.isEnabled()
        assert "filter of the Default Policy is fixed" in sheet.general.modify.toolTip()
        page = sheet.addresses
        sheet.tabs.setCurrentWidget(page)
        page.select_row(0)
        assert page.rules.rule(0).primary
        assert not page.remove_button.isEnabled()
        assert "cannot be removed" in page.remove_button.toolTip()
        assert not page.primary_button.isEnabled()
        # The primary's tick cannot be cleared.
        index = page.rules.index(0, 0)
        assert not (page.rules.flags(index) & Qt.ItemFlag.ItemIsUserCheckable)

        def edit(dialog: SmtpAddressDialog) -> None:
            assert not dialog.responsible.isEnabled()
            assert "must stay one this organization is responsible for" in (
                dialog.responsible.toolTip()
            )
            dialog.reject()

        dialogs.expect(SmtpAddressDialog, edit)
        page.edit_button.click()
        sheet.reject()

    dialogs.expect(PolicyDialog, inspect)
    double_click_row(qtbot, window, DEFAULT_POLICY_NAME)
    assert dialogs.handled == ["PolicyDialog", "SmtpAddressDialog"]


# -- the sheet --------------------------------------------------------------------------------


def test_apply_is_enabled_only_after_a_change(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver
) -> None:
    policies.create_policy(store, "Sales", "(department=Sales)")
    policies_view(window)

    def edit(sheet: PolicyDialog) -> None:
        assert not sheet.apply_button.isEnabled()
        sheet.tabs.setCurrentWidget(sheet.details)
        assert not sheet.apply_button.isEnabled(), "switching tabs is not a change"
        qtbot.keyClicks(sheet.details.note, "Sales staff only")
        assert sheet.apply_button.isEnabled()
        sheet.apply_button.click()
        assert not sheet.apply_button.isEnabled()
        assert policies.get_policy(store, "Sales").note == "Sales staff only"
        sheet.tabs.setCurrentWidget(sheet.general)
        type_text(qtbot, sheet.general.name, "Sales people")
        assert sheet.apply_button.isEnabled()
        sheet.ok_button.click()

    dialogs.expect(PolicyDialog, edit)
    double_click_row(qtbot, window, "Sales")
    assert [p.name for p in policies.list_policies(store)][0] == "Sales people"
    assert shown_names(window)[0] == "Sales people"


def test_new_rule_appears_unticked_and_ok_asks_to_select_it(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    policies_view(window)
    prompts.answers = {NET_QUESTION: True, UPDATE: False}

    def edit(sheet: PolicyDialog) -> None:
        sheet.tabs.setCurrentWidget(sheet.addresses)
        add_smtp_rule(dialogs, sheet, "@example.net")
        rules = sheet.addresses.rules
        assert [r.address for r in rules.rules()] == ["@example.com", "@example.net"]
        new = rules.index(1, 0)
        assert new.data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Unchecked
        assert sheet.apply_button.isEnabled()
        sheet.ok_button.click()

    dialogs.expect(PolicyDialog, edit)
    double_click_row(qtbot, window, DEFAULT_POLICY_NAME)
    assert prompts.questions[0] == (
        "The new address @example.net is not selected, so it will not be generated or "
        "accepted. Select it now?"
    )
    saved = {r.address: r.enabled for r in default_policy(store).rules}
    assert saved == {"@example.com": True, "@example.net": True}
    assert not default_policy(store).apply_pending, "No to the update question only saves"


def test_answering_no_keeps_the_new_rule_unticked(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    policies_view(window)
    prompts.answers = {NET_QUESTION: False}

    def edit(sheet: PolicyDialog) -> None:
        add_smtp_rule(dialogs, sheet, "@example.net")
        sheet.ok_button.click()

    dialogs.expect(PolicyDialog, edit)
    double_click_row(qtbot, window, DEFAULT_POLICY_NAME)
    saved = {r.address: r.enabled for r in default_policy(store).rules}
    assert saved == {"@example.com": True, "@example.net": False}
    assert not [q for q in prompts.questions if UPDATE in q], "nothing new is generated"


def test_ticked_rule_and_yes_marks_the_policy_applied(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    policies_view(window)
    prompts.answers = {UPDATE: True}

    def edit(sheet: PolicyDialog) -> None:
        add_smtp_rule(dialogs, sheet, "@example.net")
        view = sheet.addresses.view
        view.setFocus()
        qtbot.keyClick(view, Qt.Key.Key_Space)  # tick the selected new address
        assert sheet.addresses.rules.rule(1).enabled
        sheet.ok_button.click()

    dialogs.expect(PolicyDialog, edit)
    double_click_row(qtbot, window, DEFAULT_POLICY_NAME)
    assert prompts.questions == [
        "Do you want to update all corresponding recipient e-mail addresses to match these "
        "new address(es)?"
    ]
    assert default_policy(store).apply_pending


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("@exa mple.net", "contains a space"),
        ("jsmith@", "has no domain after '@'"),
        ("@*.example.net", "*"),
        ("%q@example.net", "%q"),
        ("@example.com", "already has the SMTP address @example.com"),
    ],
)
def test_invalid_address_is_refused_with_its_message_and_nothing_saved(
    qtbot: QtBot,
    window: MainWindow,
    store: Store,
    dialogs: DialogDriver,
    prompts: Prompts,
    typed: str,
    message: str,
) -> None:
    before = default_policy(store)
    policies_view(window)
    seen: dict[str, str] = {}

    def type_address(dialog: SmtpAddressDialog) -> None:
        type_text(qtbot, dialog.address, typed)
        seen["inline"] = dialog.feedback.text()
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
        assert dialog.isVisible(), "the dialog stays open"
        assert dialog.address.text() == typed, "with what the user typed"
        seen["error"] = prompts.errors[-1]
        dialog.reject()

    def edit(sheet: PolicyDialog) -> None:
        dialogs.expect(AddressTypeDialog, lambda d: d.accept())
        dialogs.expect(SmtpAddressDialog, type_address)
        sheet.addresses.new_button.click()
        assert sheet.addresses.rules.rowCount() == 1
        sheet.ok_button.click()

    dialogs.expect(PolicyDialog, edit)
    double_click_row(qtbot, window, DEFAULT_POLICY_NAME)
    assert message in seen["error"]
    assert seen["inline"] == seen["error"], "inline validation says the same"
    try:
        policies.make_rule(typed)
    except Exception as error:  # the engine's own message, shown as is
        assert str(error) == seen["error"]
    assert default_policy(store) == before


def test_refusal_from_the_store_keeps_the_sheet_open_as_typed(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    policies.create_policy(store, "Sales")
    policies.create_policy(store, "Staff")
    policies_view(window)

    def edit(sheet: PolicyDialog) -> None:
        type_text(qtbot, sheet.general.name, "staff")
        sheet.ok_button.click()
        assert sheet.isVisible()
        assert sheet.general.name.text() == "staff"
        assert prompts.errors == [
            "A recipient policy named 'staff' already exists. Choose another name."
        ]
        sheet.reject()

    dialogs.expect(PolicyDialog, edit)
    double_click_row(qtbot, window, "Sales")
    assert [p.name for p in policies.list_policies(store)] == [
        "Sales",
        "Staff",
        DEFAULT_POLICY_NAME,
    ]


def test_set_as_primary_makes_it_bold_and_remove_refuses_the_primary(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    policies.create_policy(store, "Sales", "(department=Sales)")
    policies.add_rule(store, "Sales", "@sales.example.com")
    policies.add_rule(store, "Sales", "%g.%s@sales.example.com", enabled=False)
    policies_view(window)
    prompts.answers = {UPDATE: False}

    def edit(sheet: PolicyDialog) -> None:
        page = sheet.addresses
        page.select_row(1)
        page.primary_button.click()
        font = page.rules.index(1, 1).data(Qt.ItemDataRole.FontRole)
        assert font is not None and font.bold()
        assert page.rules.index(0, 1).data(Qt.ItemDataRole.FontRole) is None
        assert page.rules.rule(1).enabled, "Set as Primary ticks it"
        page.select_row(1)
        page.remove_button.click()
        assert "is the primary SMTP address" in prompts.errors[-1]
        page.select_row(0)
        page.remove_button.click()
        assert page.rules.rowCount() == 1
        sheet.ok_button.click()

    dialogs.expect(PolicyDialog, edit)
    double_click_row(qtbot, window, "Sales")
    rules = policies.get_policy(store, "Sales").rules
    assert [(r.address, r.primary) for r in rules] == [("%g.%s@sales.example.com", True)]


# -- New, Move Up / Down, Delete, Rename, Apply this policy now -------------------------------


def test_new_recipient_policy_from_the_context_menu(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    recipients.create_recipient(store, "ann", attributes={"department": "Sales"})
    recipients.create_recipient(store, "bob", attributes={"department": "Support"})
    policies_view(window)
    prompts.answers = {UPDATE: True}

    def build_filter(finder: FindRecipientsDialog) -> None:
        finder.field.setCurrentIndex(finder.field.findData("department"))
        finder.condition.setCurrentText("Is (exactly)")
        type_text(qtbot, finder.value, "Sales")
        finder.add_button.click()
        assert finder.filter_text() == "(department=Sales)"
        assert finder.conditions.rowCount() == 1
        finder.find_button.click()
        qtbot.waitUntil(lambda: not finder.searching)
        assert finder.match_count.text() == "1 recipient found"
        assert finder.matches.rows()[0].alias == "ann"
        finder.accept()

    def new_policy(sheet: PolicyDialog) -> None:
        assert sheet.windowTitle() == "New Policy Properties"
        type_text(qtbot, sheet.general.name, "Sales")
        dialogs.expect(FindRecipientsDialog, build_filter)
        sheet.general.modify.click()
        assert sheet.general.filter.toPlainText() == "(department=Sales)"
        add_smtp_rule(dialogs, sheet, "@sales.example.com")
        assert sheet.addresses.rules.rule(0).enabled, "the first SMTP rule is the primary"
        sheet.ok_button.click()

    dialogs.expect(PolicyDialog, new_policy)
    menu = right_click_tree(qtbot, window, "recipients/policies")
    new_menu = submenu(menu, "New")
    assert menu_texts(new_menu) == ["Recipient Policy..."]
    menu.close()
    window.current.new_policy.trigger()  # type: ignore[union-attr]
    created = policies.get_policy(store, "Sales")
    assert created.filter == "(department=Sales)" and created.priority == 1
    assert [(r.address, r.primary, r.enabled) for r in created.rules] == [
        ("@sales.example.com", True, True)
    ]
    assert created.apply_pending
    assert window.selected_rows() and window.proxy.index(0, 0).data() == "Sales"


def test_move_up_and_down_swap_neighbours(qtbot: QtBot, window: MainWindow, store: Store) -> None:
    for name in ("A", "B", "C"):
        policies.create_policy(store, name)
    view = policies_view(window)
    select_row(qtbot, window, "B")
    menu = right_click_row(qtbot, window, "B")
    tasks = submenu(menu, "All Tasks")
    assert menu_texts(tasks) == ["Move Up", "Move Down"]
    click_menu_item(qtbot, tasks, "Move Up")
    assert [p.name for p in policies.list_policies(store)][:3] == ["B", "A", "C"]
    assert shown_names(window) == ["B", "A", "C", DEFAULT_POLICY_NAME]
    # B is still selected and now first: Move Up is disabled and says why.
    assert window.proxy.index(0, 0).data() == "B" and window.selected_rows()
    assert not view.move_up.isEnabled()
    assert view.move_up.toolTip() == "'B' already has the highest priority."
    view.move_down.trigger()
    view.move_down.trigger()
    assert [p.name for p in policies.list_policies(store)][:3] == ["A", "C", "B"]
    assert not view.move_down.isEnabled()
    assert "only the Default Policy is lower" in view.move_down.toolTip()


def test_delete_asks_first(
    qtbot: QtBot, window: MainWindow, store: Store, prompts: Prompts
) -> None:
    policies.create_policy(store, "Old")
    policies.create_policy(store, "Keep")
    policies_view(window)
    select_row(qtbot, window, "Old")
    prompts.answers = {"Are you sure you want to delete": False}
    qtbot.keyClick(window.result_list, Qt.Key.Key_Delete)
    assert prompts.questions[-1].startswith(
        "Are you sure you want to delete the recipient policy 'Old'?"
    )
    assert "Old" in [p.name for p in policies.list_policies(store)]
    prompts.answers = {"Are you sure you want to delete": True}
    menu = right_click_row(qtbot, window, "Old")
    click_menu_item(qtbot, menu, "Delete")
    assert [p.name for p in policies.list_policies(store)] == ["Keep", DEFAULT_POLICY_NAME]
    assert shown_names(window) == ["Keep", DEFAULT_POLICY_NAME]
    assert policies.get_policy(store, "Keep").priority == 1


def test_rename_in_place_with_f2(qtbot: QtBot, window: MainWindow, store: Store) -> None:
    policies.create_policy(store, "Sales")
    policies_view(window)
    select_row(qtbot, window, "Sales")
    qtbot.keyClick(window.result_list, Qt.Key.Key_F2)
    editor = QApplication.focusWidget()
    assert editor is not None and editor.metaObject().className() == "QExpandingLineEdit"
    editor.selectAll()  # type: ignore[attr-defined]
    qtbot.keyClicks(editor, "Sales team")
    qtbot.keyClick(editor, Qt.Key.Key_Return)  # the delegate commits on its next turn
    qtbot.waitUntil(lambda: policies.list_policies(store)[0].name == "Sales team")
    assert shown_names(window)[0] == "Sales team"


def test_rename_refused_shows_the_reason(
    qtbot: QtBot, window: MainWindow, store: Store, prompts: Prompts
) -> None:
    policies.create_policy(store, "Sales")
    policies_view(window)
    select_row(qtbot, window, "Sales")
    qtbot.keyClick(window.result_list, Qt.Key.Key_F2)
    editor = QApplication.focusWidget()
    editor.selectAll()  # type: ignore[union-attr]
    qtbot.keyClicks(editor, DEFAULT_POLICY_NAME.lower())
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(prompts.errors))
    assert "already exists" in prompts.errors[-1]
    assert [p.name for p in policies.list_policies(store)][0] == "Sales"


def test_apply_this_policy_now_asks_then_marks_it(
    qtbot: QtBot, window: MainWindow, store: Store, prompts: Prompts
) -> None:
    policies.create_policy(store, "Sales", "(department=Sales)")
    policies_view(window)
    prompts.answers = {"Do you want to continue?": True}
    menu = right_click_row(qtbot, window, "Sales")
    click_menu_item(qtbot, menu, "Apply this policy now...")
    assert "'Sales'" in prompts.questions[-1]
    assert policies.get_policy(store, "Sales").apply_pending


def test_a_malformed_filter_is_refused_where_it_breaks_and_kept_as_typed(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    policies.create_policy(store, "Sales", "(department=Sales)")
    policies_view(window)

    def build(finder: FindRecipientsDialog) -> None:
        finder.raw.setPlainText("(&(department=Sales)(title=Boss")
        assert "cannot be read" in finder.conditions_note.text()
        assert not finder.add_button.isEnabled()
        finder.find_button.click()
        assert finder.matches.rowCount() == 0
        finder.accept()
        assert finder.isVisible(), "the dialog stays open"
        assert finder.raw.toPlainText() == "(&(department=Sales)(title=Boss"
        finder.reject()

    def edit(sheet: PolicyDialog) -> None:
        dialogs.expect(FindRecipientsDialog, build)
        sheet.general.modify.click()
        assert sheet.general.filter.toPlainText() == "(department=Sales)"
        assert not sheet.apply_button.isEnabled()
        sheet.reject()

    dialogs.expect(PolicyDialog, edit)
    double_click_row(qtbot, window, "Sales")
    assert len(prompts.errors) == 2  # Find Now, then OK
    assert all(error == prompts.errors[0] for error in prompts.errors)
    try:
        parse_filter("(&(department=Sales)(title=Boss")
    except FilterError as error:  # the engine's message, which says where it breaks
        assert prompts.errors[0] == str(error)
    assert policies.get_policy(store, "Sales").filter == "(department=Sales)"


def test_changing_a_filter_warns_that_recipients_are_not_re_evaluated(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    policies.create_policy(store, "Sales", "(department=Sales)")
    policies_view(window)

    def build(finder: FindRecipientsDialog) -> None:
        assert finder.conditions.rowCount() == 1
        finder.condition_view.setCurrentIndex(finder.conditions.index(0, 0))
        finder.remove_button.click()
        finder.field.setCurrentIndex(finder.field.findData("company"))
        finder.condition.setCurrentText("Starts with")
        type_text(qtbot, finder.value, "Contoso")
        finder.add_button.click()
        finder.accept()

    def edit(sheet: PolicyDialog) -> None:
        dialogs.expect(FindRecipientsDialog, build)
        sheet.general.modify.click()
        assert sheet.general.filter.toPlainText() == "(company=Contoso*)"
        assert sheet.apply_button.isEnabled()
        sheet.ok_button.click()

    dialogs.expect(PolicyDialog, edit)
    double_click_row(qtbot, window, "Sales")
    assert policies.get_policy(store, "Sales").filter == "(company=Contoso*)"
    assert len(prompts.of("warn")) == 1
    assert "not re-evaluated until you choose 'Apply this policy now'" in prompts.of("warn")[0]
