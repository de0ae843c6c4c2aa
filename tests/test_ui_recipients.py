"""Recipients > All Recipients through the real window: the lazy list, the New wizards, the
recipient sheet, and the Recipient Update Service stamping what the console made."""

from __future__ import annotations

import csv
import imaplib
import mailbox
import poplib
import shutil
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QDialogButtonBox, QHeaderView, QLineEdit, QWizard
from pytestqt.qtbot import QtBot

from app import policies, rus
from app.directory import passwords, recipients
from app.model import DEFAULT_POLICY_NAME, SMTP, ProxyAddress, Recipient
from app.rus.schedule import Schedule, save_schedule
from app.settings import parse_host_port, save_settings
from app.store import Store, directory
from app.store.database import next_usn
from tests.dovecot_support import PASSWORD as DOVECOT_PASSWORD
from tests.dovecot_support import (
    make_user,
    new_store,
    reachable_folder,
    start_mail_server,
    stop_mail_server,
)
from tests.smtp_support import tls_client
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
from ui.dialogs.address import AddressTypeDialog
from ui.dialogs.new_recipient import NewRecipientWizard
from ui.dialogs.recipient import AUTO_UPDATE_TEXT, PasswordDialog, RecipientDialog
from ui.dialogs.recipient_address import ProxyAddressDialog
from ui.dialogs.recipient_picker import SelectRecipientsDialog
from ui.export import ExportDialog
from ui.main_window import MainWindow
from ui.views.recipients import AllRecipientsView
from ui.views.rus import REBUILD_WARNING

if TYPE_CHECKING:
    from tests.conftest import Prompts, SmtpProbe  # fixtures' types, not the fixtures

HEADERS = ["Display Name", "Alias", "Type", "Primary SMTP Address", "Policy"]


# -- helpers ----------------------------------------------------------------------------------


def people(store: Store) -> None:
    """Two users, a contact and a group, stamped by the Recipient Update Service."""
    recipients.create_recipient(store, "jsmith", attributes={"givenName": "John", "sn": "Smith"})
    recipients.create_recipient(
        store, "agarcia", attributes={"givenName": "Ana", "sn": "García", "department": "Sales"}
    )
    recipients.create_recipient(
        store,
        "partner",
        "contact",
        attributes={"displayName": "Partner Desk"},
        target="desk@partner.example",
    )
    recipients.create_recipient(store, "staff", "group", attributes={"displayName": "All Staff"})
    rus.run(store)


def bulk_users(store: Store, count: int) -> None:
    """``count`` users with a primary address each, written in one transaction (fast)."""
    stamp = policies.now()
    with store.write() as conn:
        for n in range(count):
            alias = f"u{n:05d}"
            recipient = Recipient(
                alias=alias,
                attributes={"displayName": f"User {n:05d}", "givenName": "User", "sn": f"{n}"},
                created=stamp,
                modified=stamp,
            )
            rid = directory.insert_recipient(conn, recipient, next_usn(conn), None)
            directory.replace_addresses(
                conn, rid, [ProxyAddress(SMTP, f"{alias}@example.com", True)]
            )


def all_recipients(qtbot: QtBot, window: MainWindow) -> AllRecipientsView:
    window.select_node("recipients/all")
    view = window.current
    assert isinstance(view, AllRecipientsView)
    settle(qtbot, view)
    return view


def settle(qtbot: QtBot, view: AllRecipientsView) -> None:
    """Wait until the list shows what the store holds now."""
    qtbot.waitUntil(lambda: view.list_model.has_loaded and not view.is_busy(), timeout=10_000)


def shown(window: MainWindow, column: int | None = None) -> list[object]:
    proxy = window.proxy
    if column is not None:
        return [proxy.index(row, column).data() for row in range(proxy.rowCount())]
    return [
        [proxy.index(row, c).data() for c in range(proxy.columnCount())]
        for row in range(proxy.rowCount())
    ]


def wizard_next(wizard: QWizard) -> None:
    button = wizard.button(QWizard.WizardButton.NextButton)
    assert button.isEnabled(), "Next is disabled"
    button.click()


def wizard_finish(wizard: QWizard) -> None:
    button = wizard.button(QWizard.WizardButton.FinishButton)
    assert button.isVisible() and button.isEnabled()
    button.click()


def new_from_menu(qtbot: QtBot, window: MainWindow, what: str) -> None:
    """Right-click All Recipients in the tree > New > ``what``."""
    menu = right_click_tree(qtbot, window, "recipients/all")
    new = submenu(menu, "New")
    assert menu_texts(new) == ["User...", "Contact...", "Group..."]
    new.popup(menu.pos())
    qtbot.waitExposed(new)
    click_menu_item(qtbot, new, what)


def add_address_in_sheet(dialogs: DialogDriver, sheet: RecipientDialog, address: str) -> None:
    """E-mail Addresses > New… > SMTP Address > type the address > OK."""
    dialogs.expect(AddressTypeDialog, lambda d: d.accept())  # SMTP Address is preselected

    def fill(dialog: ProxyAddressDialog) -> None:
        assert dialog.windowTitle() == "Internet Address Properties"
        dialog.address.setText(address)
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()

    dialogs.expect(ProxyAddressDialog, fill)
    sheet.addresses.new_button.click()


# -- the models --------------------------------------------------------------------------------


def test_every_model_passes_the_model_tester(
    qtbot: QtBot, qtmodeltester, window: MainWindow, store: Store, dialogs: DialogDriver
) -> None:  # type: ignore[no-untyped-def]
    bulk_users(store, 450)  # more than two pages
    people(store)
    view = all_recipients(qtbot, window)
    model = view.list_model
    assert model.rowCount() == 454
    qtmodeltester.check(model)
    qtmodeltester.check(window.proxy)
    with qtbot.waitSignal(model.loaded, timeout=10_000):
        window.result_list.sortByColumn(model.COL_ADDRESS, Qt.SortOrder.DescendingOrder)
    qtmodeltester.check(model)
    with qtbot.waitSignal(model.loaded, timeout=10_000):
        model.set_filter_text("u001")
    assert model.rowCount() == 100
    qtmodeltester.check(model)

    def sheet(dialog: RecipientDialog) -> None:
        qtmodeltester.check(dialog.addresses.addresses)
        qtmodeltester.check(dialog.general.custom)
        qtmodeltester.check(dialog.member_of.model)
        assert dialog.members is not None
        qtmodeltester.check(dialog.members.model)

        def picker(chooser: SelectRecipientsDialog) -> None:
            qtbot.waitUntil(lambda: not chooser.busy)
            qtmodeltester.check(chooser.results)
            chooser.reject()

        dialogs.expect(SelectRecipientsDialog, picker)
        dialog.members.add_button.click()
        dialog.reject()

    dialogs.expect(RecipientDialog, sheet)
    RecipientDialog.edit(window, store, recipients.get_recipient(store, "staff"))


# -- the list ----------------------------------------------------------------------------------


def test_list_shows_every_recipient_with_the_design_columns(
    qtbot: QtBot, window: MainWindow, store: Store
) -> None:
    people(store)
    policies.create_policy(store, "Sales", "(department=Sales)")
    view = all_recipients(qtbot, window)
    assert [window.proxy.headerData(c, Qt.Orientation.Horizontal) for c in range(5)] == HEADERS
    assert shown(window) == [
        ["All Staff", "staff", "Distribution group", "staff@example.com", DEFAULT_POLICY_NAME],
        ["Ana García", "agarcia", "User", "agarcia@example.com", "Sales"],
        ["John Smith", "jsmith", "User", "jsmith@example.com", DEFAULT_POLICY_NAME],
        ["Partner Desk", "partner", "Contact", "partner@example.com", DEFAULT_POLICY_NAME],
    ]
    assert "4 recipients" in window.result.title.text()
    assert view.status_text() == "4 recipients"
    tip = window.proxy.index(1, 4).data(Qt.ItemDataRole.ToolTipRole)
    assert "'Sales' is the highest-priority recipient policy" in tip


def test_sorting_is_the_stores_and_keeps_the_selection(
    qtbot: QtBot, window: MainWindow, store: Store
) -> None:
    people(store)
    view = all_recipients(qtbot, window)
    select_row(qtbot, window, "John Smith")
    header = window.result_list.header()
    with qtbot.waitSignal(view.list_model.loaded, timeout=10_000):
        qtbot.mouseClick(
            header.viewport(), Qt.MouseButton.LeftButton, pos=_section_center(header, 1)
        )
    assert shown(window, 1) == ["agarcia", "jsmith", "partner", "staff"]
    # The proxy did not sort: the model did, in the store.
    assert window.proxy.sortColumn() == -1
    assert view.list_model.sort_column == 1
    assert [window.proxy.index(r.row(), 1).data() for r in _selected(window)] == ["jsmith"]
    with qtbot.waitSignal(view.list_model.loaded, timeout=10_000):
        window.result_list.sortByColumn(2, Qt.SortOrder.DescendingOrder)
        # Until the store answers, the old order stays on screen and the title says why.
        assert window.result.title.text().endswith("4 recipients  (sorting...)")
    assert window.result.title.text().endswith("4 recipients")
    assert shown(window, 2) == ["User", "User", "Distribution group", "Contact"]
    with qtbot.waitSignal(view.list_model.loaded, timeout=10_000):
        window.result_list.sortByColumn(4, Qt.SortOrder.AscendingOrder)
    assert shown(window, 4) == [DEFAULT_POLICY_NAME] * 4


def _section_center(header: QHeaderView, section: int) -> QPoint:
    x = header.sectionViewportPosition(section) + header.sectionSize(section) // 2
    return QPoint(x, header.height() // 2)


def _selected(window: MainWindow):  # type: ignore[no-untyped-def]
    return window.result_list.selectionModel().selectedRows()


def test_typing_in_the_filter_box_narrows_the_list(
    qtbot: QtBot, window: MainWindow, store: Store
) -> None:
    people(store)
    view = all_recipients(qtbot, window)
    box = view.filter_edit
    assert box.isVisible(), "the filter box is in the toolbar while All Recipients is shown"
    qtbot.keyClicks(box, "SMI")
    settle(qtbot, view)
    assert shown(window, 0) == ["John Smith"]
    assert view.status_text() == "1 of 4 recipients match 'SMI'"
    # Addresses count too: the contact's address is partner@example.com.
    type_text(qtbot, box, "partner@")
    settle(qtbot, view)
    assert shown(window, 0) == ["Partner Desk"]
    qtbot.keyClick(box, Qt.Key.Key_Escape)
    settle(qtbot, view)
    assert box.text() == "" and len(shown(window, 0)) == 4
    # Another node's toolbar has no filter box.
    window.select_node("recipients/policies")
    assert not box.isVisible()


def test_export_list_writes_the_list_as_shown(
    qtbot: QtBot,
    window: MainWindow,
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    people(store)
    all_recipients(qtbot, window)
    target = tmp_path / "recipients.csv"
    monkeypatch.setattr(ExportDialog, "ask_path", staticmethod(lambda _parent, _name: target))
    window.std.export_list.trigger()
    qtbot.waitUntil(target.exists, timeout=5000)  # written whole, off the GUI thread
    with target.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == HEADERS
    assert rows[2] == ["Ana García", "agarcia", "User", "agarcia@example.com", DEFAULT_POLICY_NAME]
    assert len(rows) == 5


def test_list_follows_changes_made_by_another_program(
    qtbot: QtBot, window: MainWindow, store: Store
) -> None:
    people(store)
    all_recipients(qtbot, window)
    select_row(qtbot, window, "John Smith")
    recipients.create_recipient(store, "zoe", attributes={"displayName": "Zoë Adams"})
    recipients.delete_recipient(store, "partner")
    qtbot.waitUntil(lambda: shown(window, 1) == ["staff", "agarcia", "jsmith", "zoe"], timeout=5000)
    # The new row was appended where the store put it, and the selection stayed put.
    assert [window.proxy.index(r.row(), 1).data() for r in _selected(window)] == ["jsmith"]


def test_a_large_list_is_fetched_a_page_at_a_time(
    qtbot: QtBot, window: MainWindow, store: Store
) -> None:
    bulk_users(store, 20_000)
    view = all_recipients(qtbot, window)
    model = view.list_model
    assert window.proxy.rowCount() == 20_000
    assert window.proxy.sortColumn() == -1, "the proxy never sorts 20,000 rows through Python"
    assert len(model._cache) <= 2 * model.PAGE_SIZE, "only the rows on screen were fetched"
    window.result_list.scrollToBottom()
    qtbot.waitUntil(lambda: window.proxy.index(19_999, 1).data() == "u19999")
    assert len(model._cache) <= 4 * model.PAGE_SIZE
    # Type-ahead in the list finds a name without fetching every row.
    window.result_list.setFocus()
    window.result_list.setCurrentIndex(window.proxy.index(0, 0))
    qtbot.keyClicks(window.result_list, "User 12345")
    assert window.result_list.currentIndex().data() == "User 12345"
    assert len(model._cache) <= 6 * model.PAGE_SIZE


# -- New > User, and the RUS stamps it ----------------------------------------------------------


def test_new_user_in_the_wizard_then_update_now_stamps_it(
    qtbot: QtBot, store: Store, live_window: MainWindow, dialogs: DialogDriver
) -> None:
    window = live_window
    save_schedule(store, Schedule("never"))  # Update Now, not the schedule, stamps it
    view = all_recipients(qtbot, window)

    def wizard(w: NewRecipientWizard) -> None:
        assert w.windowTitle() == "New Object - User"
        names = w.names
        qtbot.keyClicks(names.given, "Ann")
        qtbot.keyClicks(names.initials, "M")
        qtbot.keyClicks(names.surname, "Lee")
        assert names.display.text() == "Ann M. Lee"
        assert names.alias.text() == "alee"
        wizard_next(w)
        assert w.password is not None
        qtbot.keyClicks(w.password.password, "correct horse")
        qtbot.keyClicks(w.password.confirm, "correct horse")
        wizard_next(w)
        summary = w.summary.summary.toPlainText()
        assert "Alias: alee" in summary and "Password: set" in summary
        assert f"E-mail addresses from '{DEFAULT_POLICY_NAME}'" in summary
        assert "alee@example.com" in summary
        wizard_finish(w)

    dialogs.expect(NewRecipientWizard, wizard)
    new_from_menu(qtbot, window, "User...")
    dialogs.check()
    created = recipients.get_recipient(store, "alee")
    assert created.display_name == "Ann M. Lee" and created.has_password
    with store.read() as conn:
        assert passwords.verify_password("correct horse", directory.password_hash(conn, "alee"))
    assert store.paths.mailbox("alee").is_dir()
    settle(qtbot, view)
    assert shown(window) == [["Ann M. Lee", "alee", "User", "", DEFAULT_POLICY_NAME]]
    assert [i.data() for i in _selected(window)] == ["Ann M. Lee"], "the new user is selected"

    with qtbot.waitSignal(window.console.rus.run_finished, timeout=30_000) as finished:
        window.console.rus.update_now()
    assert finished.args[0].changed == 1
    qtbot.waitUntil(lambda: shown(window, 3) == ["alee@example.com"], timeout=5000)


# -- the sheet ---------------------------------------------------------------------------------


def test_sheet_adds_an_address_and_makes_it_primary(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver
) -> None:
    people(store)
    view = all_recipients(qtbot, window)

    def edit(sheet: RecipientDialog) -> None:
        assert sheet.windowTitle() == "John Smith Properties"
        assert [sheet.tabs.tabText(i) for i in range(sheet.tabs.count())] == [
            "General",
            "E-mail Addresses",
            "Exchange General",
            "Member Of",
            "Exchange Features",
        ]
        page = sheet.addresses
        sheet.tabs.setCurrentWidget(page)
        assert "'Default Policy' applies" in page.explain.text()
        assert "Last run 1" in page.explain.text() and "stamped" in page.explain.text()
        assert page.auto_update.text() == AUTO_UPDATE_TEXT and page.auto_update.isChecked()
        assert not sheet.apply_button.isEnabled()
        add_address_in_sheet(dialogs, sheet, "John.Smith@example.com")
        model = page.addresses
        assert [p.address for p in model.addresses()] == [
            "jsmith@example.com",
            "John.Smith@example.com",
        ]
        bold = model.index(0, 1).data(Qt.ItemDataRole.FontRole)
        assert bold is not None and bold.bold()
        assert model.index(1, 1).data(Qt.ItemDataRole.FontRole) is None
        assert "made by the rule @example.com of 'Default Policy'" in model.index(0, 1).data(
            Qt.ItemDataRole.ToolTipRole
        )
        assert page.current_row() == 1
        page.primary_button.click()
        assert model.address(1).primary and not model.address(0).primary
        assert not page.primary_button.isEnabled()
        assert sheet.apply_button.isEnabled()
        sheet.ok_button.click()

    dialogs.expect(RecipientDialog, edit)
    double_click_row(qtbot, window, "John Smith")
    dialogs.check()
    stored = recipients.get_recipient(store, "jsmith")
    assert [str(p) for p in stored.addresses] == [
        "smtp:jsmith@example.com",
        "SMTP:John.Smith@example.com",
    ]
    settle(qtbot, view)
    assert shown(window, 3)[2] == "John.Smith@example.com"


def test_sheet_edits_and_removes_addresses_and_names(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    people(store)
    recipients.add_address(store, "jsmith", "js@example.com")
    all_recipients(qtbot, window)

    def edit(sheet: RecipientDialog) -> None:
        general = sheet.general
        type_text(qtbot, general.fields["department"], "Support")
        type_text(qtbot, general.fields["displayName"], "Johnny Smith")
        assert general.heading.text() == "Johnny Smith"
        general.custom_view.edit(general.custom.index(2, 1))
        editor = general.custom_view.viewport().findChild(QLineEdit)
        assert editor is not None, "double-click or F2 opens an editor on the value"
        qtbot.keyClicks(editor, "cost centre 7")
        qtbot.keyClick(editor, Qt.Key.Key_Return)  # the view commits it queued
        qtbot.waitUntil(lambda: general.custom.values()["extensionAttribute3"] == "cost centre 7")
        page = sheet.addresses
        sheet.tabs.setCurrentWidget(page)
        # The primary cannot go while the type has others.
        page.select_row(0)
        page.remove_button.click()
        assert prompts.errors[-1].startswith("jsmith@example.com is the primary SMTP address")
        page.select_row(1)

        def change(dialog: ProxyAddressDialog) -> None:
            assert dialog.address.text() == "js@example.com"
            type_text(qtbot, dialog.address, "j.smith@example.com")
            assert "will be delivered to this recipient" in dialog.feedback.text()
            dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()

        dialogs.expect(ProxyAddressDialog, change)
        page.edit_button.click()
        assert page.addresses.address(1).address == "j.smith@example.com"
        sheet.apply_button.click()
        assert sheet.windowTitle() == "Johnny Smith Properties"
        page.select_row(1)
        page.remove_button.click()
        sheet.ok_button.click()

    dialogs.expect(RecipientDialog, edit)
    double_click_row(qtbot, window, "John Smith")
    dialogs.check()
    stored = recipients.get_recipient(store, "jsmith")
    assert [p.address for p in stored.addresses] == ["jsmith@example.com"]
    assert stored.display_name == "Johnny Smith"
    assert stored.attribute("department") == "Support"
    assert stored.attribute("extensionAttribute3") == "cost centre 7"


def test_auto_update_off_and_a_rebuild_leaves_the_recipient_alone(
    qtbot: QtBot, store: Store, live_window: MainWindow, dialogs: DialogDriver, prompts: Prompts
) -> None:
    window = live_window
    save_schedule(store, Schedule("never"))
    people(store)
    view = all_recipients(qtbot, window)

    def switch_off(sheet: RecipientDialog) -> None:
        page = sheet.addresses
        sheet.tabs.setCurrentWidget(page)
        qtbot.mouseClick(page.auto_update, Qt.MouseButton.LeftButton)
        assert not page.auto_update.isChecked() and sheet.apply_button.isEnabled()
        sheet.apply_button.click()
        assert "Automatic updates are off" in page.explain.text()
        sheet.ok_button.click()

    dialogs.expect(RecipientDialog, switch_off)
    double_click_row(qtbot, window, "John Smith")
    dialogs.check()
    assert not recipients.get_recipient(store, "jsmith").auto_update
    settle(qtbot, view)
    italic = shown_font(window, "John Smith")
    assert italic is not None and italic.italic(), "the Policy column says it is not applied"

    policies.add_rule(store, DEFAULT_POLICY_NAME, "@example.net")
    policies.apply_policy(store, DEFAULT_POLICY_NAME)
    window.select_node("recipients/update-services")
    name = window.proxy.index(0, 0).data()
    menu = right_click_row(qtbot, window, name)
    prompts.answers = {REBUILD_WARNING[:40]: True}
    with qtbot.waitSignal(window.console.rus.run_finished, timeout=30_000) as finished:
        click_menu_item(qtbot, menu, "Rebuild")
    assert finished.args[0].outcome == "completed"
    assert [p.address for p in recipients.get_recipient(store, "jsmith").addresses] == [
        "jsmith@example.com"
    ]
    assert "agarcia@example.net" in [
        p.address for p in recipients.get_recipient(store, "agarcia").addresses
    ]


def shown_font(window: MainWindow, display_name: str):  # type: ignore[no-untyped-def]
    row = shown(window, 0).index(display_name)
    return window.proxy.index(row, 4).data(Qt.ItemDataRole.FontRole)


def test_contact_wizard_and_its_target_address(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    all_recipients(qtbot, window)

    def wizard(w: NewRecipientWizard) -> None:
        assert w.windowTitle() == "New Object - Contact"
        qtbot.keyClicks(w.names.given, "Ann")
        qtbot.keyClicks(w.names.surname, "Partner")
        wizard_next(w)
        assert w.target is not None
        qtbot.keyClicks(w.target.target, "ann@")
        assert not w.button(QWizard.WizardButton.NextButton).isEnabled()
        assert "ann@" in w.target.feedback.text()
        qtbot.keyClicks(w.target.target, "partner.example")
        wizard_next(w)
        assert "Target address: ann@partner.example" in w.summary.summary.toPlainText()
        wizard_finish(w)

    dialogs.expect(NewRecipientWizard, wizard)
    view = window.current
    assert isinstance(view, AllRecipientsView)
    view.new_contact.trigger()
    dialogs.check()
    contact = recipients.get_recipient(store, "apartner")
    assert contact.kind == "contact" and contact.target == "ann@partner.example"
    settle(qtbot, view)

    def edit(sheet: RecipientDialog) -> None:
        target = sheet.general.target
        assert target is not None and target.text() == "ann@partner.example"
        type_text(qtbot, target, "not an address")
        sheet.ok_button.click()
        assert sheet.isVisible(), "refused: the sheet stays open"
        assert target.text() == "not an address"
        type_text(qtbot, target, "ann.p@partner.example")
        sheet.ok_button.click()

    dialogs.expect(RecipientDialog, edit)
    double_click_row(qtbot, window, "Ann Partner")
    dialogs.check()
    assert len(prompts.errors) == 1
    assert recipients.get_recipient(store, "apartner").target == "ann.p@partner.example"


# -- groups ------------------------------------------------------------------------------------


def test_group_made_in_the_console_receives_mail_for_its_members(
    qtbot: QtBot,
    store: Store,
    live_window: MainWindow,
    dialogs: DialogDriver,
    smtp_accepts: SmtpProbe,
) -> None:
    window = live_window
    save_schedule(store, Schedule("never"))
    people(store)
    view = all_recipients(qtbot, window)

    def wizard(w: NewRecipientWizard) -> None:
        assert w.windowTitle() == "New Object - Group"
        qtbot.keyClicks(w.names.display, "Sales Team")
        assert w.names.alias.text() == "sales-team"
        wizard_next(w)
        assert "Group name: Sales Team" in w.summary.summary.toPlainText()
        wizard_finish(w)

    dialogs.expect(NewRecipientWizard, wizard)
    new_from_menu(qtbot, window, "Group...")
    dialogs.check()
    settle(qtbot, view)

    def members(sheet: RecipientDialog) -> None:
        assert sheet.members is not None
        page = sheet.members
        sheet.tabs.setCurrentWidget(page)

        def pick(chooser: SelectRecipientsDialog) -> None:
            qtbot.waitUntil(lambda: not chooser.busy)
            qtbot.keyClicks(chooser.search, "smith")
            qtbot.waitUntil(lambda: not chooser.busy and chooser.results.rowCount() == 1)
            chooser.view.selectAll()
            chooser.buttons.button(chooser.buttons.StandardButton.Ok).click()

        dialogs.expect(SelectRecipientsDialog, pick)
        page.add_button.click()
        assert page.model.aliases() == ("jsmith",)
        sheet.ok_button.click()

    dialogs.expect(RecipientDialog, members)
    double_click_row(qtbot, window, "Sales Team")
    dialogs.check()
    assert recipients.get_recipient(store, "sales-team").members == ("jsmith",)
    assert recipients.member_of(store, "jsmith") == ["sales-team"]

    with qtbot.waitSignal(window.console.rus.run_finished, timeout=30_000):
        window.console.rus.update_now()
    assert recipients.get_recipient(store, "sales-team").primary_address() == (
        "sales-team@example.com"
    )
    host, port = parse_host_port(window.console.smtp.addresses[0])
    qtbot.waitUntil(lambda: smtp_accepts(host, port, "sales-team@example.com"), timeout=5000)
    message = EmailMessage()
    message["From"] = "boss@partner.example"
    message["To"] = "sales-team@example.com"
    message["Subject"] = "Quarterly figures"
    message.set_content("For the whole team.\n")
    with smtplib.SMTP(host, port, timeout=10) as client:
        assert client.send_message(message) == {}
    box = mailbox.Maildir(store.paths.mailbox("jsmith"), create=False)
    assert [m["Subject"] for m in box] == ["Quarterly figures"]


def test_member_of_adds_a_user_to_a_group(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver
) -> None:
    people(store)
    recipients.create_recipient(store, "team", "group", attributes={"displayName": "Team"})
    all_recipients(qtbot, window)

    def edit(sheet: RecipientDialog) -> None:
        page = sheet.member_of
        sheet.tabs.setCurrentWidget(page)

        def pick(chooser: SelectRecipientsDialog) -> None:
            qtbot.waitUntil(lambda: not chooser.busy)
            assert chooser.results.aliases() == ("staff", "team"), "groups only"
            chooser.view.selectAll()
            chooser.buttons.button(chooser.buttons.StandardButton.Ok).click()

        dialogs.expect(SelectRecipientsDialog, pick)
        page.add_button.click()
        sheet.ok_button.click()

    dialogs.expect(RecipientDialog, edit)
    double_click_row(qtbot, window, "Ana García")
    dialogs.check()
    assert recipients.member_of(store, "agarcia") == ["staff", "team"]
    assert recipients.get_recipient(store, "team").members == ("agarcia",)


# -- refusals ----------------------------------------------------------------------------------


def test_wizard_refuses_a_bad_or_taken_alias_and_keeps_what_was_typed(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    people(store)
    view = all_recipients(qtbot, window)

    def wizard(w: NewRecipientWizard) -> None:
        names = w.names
        qtbot.keyClicks(names.given, "John")
        qtbot.keyClicks(names.surname, "Smith")
        assert names.alias.text() == "jsmith"
        wizard_next(w)
        assert w.currentPage() is names, "a taken alias keeps the wizard on the names page"
        assert "The alias 'jsmith' is already used by 'John Smith'" in prompts.errors[-1]
        type_text(qtbot, names.alias, "john smith!")
        wizard_next(w)
        assert w.currentPage() is names
        assert "'john smith!' is not a valid alias" in prompts.errors[-1]
        assert names.alias.text() == "john smith!" and names.given.text() == "John"
        assert "not a valid alias" in names.feedback.text()
        w.reject()

    dialogs.expect(NewRecipientWizard, wizard)
    view.new_user.trigger()
    dialogs.check()
    assert len(prompts.errors) == 2
    assert sorted(r.alias for r in recipients.list_recipients(store)) == [
        "agarcia",
        "jsmith",
        "partner",
        "staff",
    ]


def test_wizard_refuses_passwords_that_differ(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    view = all_recipients(qtbot, window)

    def wizard(w: NewRecipientWizard) -> None:
        qtbot.keyClicks(w.names.display, "Printer")
        qtbot.keyClicks(w.names.alias, "printer")
        wizard_next(w)
        assert w.password is not None
        qtbot.keyClicks(w.password.password, "one")
        qtbot.keyClicks(w.password.confirm, "two")
        wizard_next(w)
        assert w.currentPage() is w.password
        assert prompts.errors == [
            "The passwords you typed do not match. Type the same password twice."
        ]
        w.reject()

    dialogs.expect(NewRecipientWizard, wizard)
    view.new_user.trigger()
    dialogs.check()
    assert recipients.list_recipients(store) == []


def test_sheet_refuses_a_bad_alias_and_stays_open_with_it(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    people(store)
    all_recipients(qtbot, window)
    before = recipients.get_recipient(store, "jsmith")

    def edit(sheet: RecipientDialog) -> None:
        type_text(qtbot, sheet.general.alias, "john smith!")
        type_text(qtbot, sheet.general.fields["title"], "Manager")
        sheet.ok_button.click()
        assert sheet.isVisible()
        assert "'john smith!' is not a valid alias" in prompts.errors[-1]
        assert sheet.general.alias.text() == "john smith!"
        assert sheet.general.fields["title"].text() == "Manager"
        type_text(qtbot, sheet.general.alias, "agarcia")
        sheet.apply_button.click()
        assert "The alias 'agarcia' is already used" in prompts.errors[-1]
        assert sheet.apply_button.isEnabled(), "still unsaved"
        sheet.reject()

    dialogs.expect(RecipientDialog, edit)
    double_click_row(qtbot, window, "John Smith")
    dialogs.check()
    assert recipients.get_recipient(store, "jsmith") == before, "nothing was saved"


def test_an_address_another_recipient_has_is_refused_and_nothing_is_saved(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    people(store)
    all_recipients(qtbot, window)
    before = recipients.get_recipient(store, "agarcia")

    def edit(sheet: RecipientDialog) -> None:
        page = sheet.addresses
        sheet.tabs.setCurrentWidget(page)
        # Typed in the address dialog: refused there, which stays open.
        dialogs.expect(AddressTypeDialog, lambda d: d.accept())

        def taken(dialog: ProxyAddressDialog) -> None:
            dialog.address.setText("JSmith@example.com")
            dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
            assert dialog.isVisible()
            assert prompts.errors[-1].startswith(
                "The address JSmith@example.com already belongs to 'jsmith'."
            )
            dialog.address.setText("ana@example.com")
            dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()

        dialogs.expect(ProxyAddressDialog, taken)
        page.new_button.click()
        type_text(qtbot, sheet.general.fields["title"], "Buyer")
        # Another program takes the address before OK: the sheet refuses it and keeps it all.
        recipients.add_address(store, "jsmith", "ana@example.com")
        sheet.ok_button.click()
        assert sheet.isVisible()
        assert "The address ana@example.com already belongs to 'jsmith'" in prompts.errors[-1]
        assert [p.address for p in page.addresses.addresses()] == [
            "agarcia@example.com",
            "ana@example.com",
        ]
        assert sheet.general.fields["title"].text() == "Buyer"
        sheet.reject()

    dialogs.expect(RecipientDialog, edit)
    double_click_row(qtbot, window, "Ana García")
    dialogs.check()
    assert recipients.get_recipient(store, "agarcia") == before, "all or nothing"


def test_an_invalid_address_is_explained_as_it_is_typed(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    people(store)
    all_recipients(qtbot, window)

    def edit(sheet: RecipientDialog) -> None:
        dialogs.expect(AddressTypeDialog, lambda d: d.accept())

        def typing(dialog: ProxyAddressDialog) -> None:
            qtbot.keyClicks(dialog.address, "john smith@example.com")
            assert "john smith@example.com" in dialog.feedback.text()
            assert "b00020" in dialog.feedback.styleSheet()
            type_text(qtbot, dialog.address, "john@elsewhere.example")
            assert "No recipient policy has elsewhere.example" in dialog.feedback.text()
            type_text(qtbot, dialog.address, "jsmith@example.com")
            assert "already has the address jsmith@example.com" in dialog.feedback.text()
            dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
            assert dialog.isVisible()
            dialog.reject()

        dialogs.expect(ProxyAddressDialog, typing)
        sheet.addresses.new_button.click()
        assert not sheet.apply_button.isEnabled(), "nothing was added"
        sheet.reject()

    dialogs.expect(RecipientDialog, edit)
    double_click_row(qtbot, window, "John Smith")
    dialogs.check()
    assert prompts.errors == ["This recipient already has the address jsmith@example.com."]


# -- delete ------------------------------------------------------------------------------------


def test_delete_asks_then_deletes_and_keeps_the_mailbox_folder(
    qtbot: QtBot, window: MainWindow, store: Store, prompts: Prompts
) -> None:
    people(store)
    view = all_recipients(qtbot, window)
    select_row(qtbot, window, "John Smith")
    prompts.answers = {"Are you sure you want to delete 'John Smith' (jsmith)?": False}
    qtbot.keyClick(window.result_list, Qt.Key.Key_Delete)
    assert "jsmith" in shown(window, 1)
    assert "mailbox folder stays on disk" in prompts.questions[-1]
    prompts.answers = {"Are you sure you want to delete 'John Smith' (jsmith)?": True}
    menu = right_click_row(qtbot, window, "John Smith")
    assert menu_texts(menu) == ["New", "Delete", "Refresh", "Properties"]
    click_menu_item(qtbot, menu, "Delete")
    settle(qtbot, view)
    assert shown(window, 1) == ["staff", "agarcia", "partner"]
    assert "jsmith" not in [r.alias for r in recipients.list_recipients(store)]
    assert store.paths.mailbox("jsmith").is_dir()


def test_sheet_says_which_policy_applies_and_why(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver
) -> None:
    people(store)  # stamped by the Default Policy before Sales existed
    policies.create_policy(store, "Sales", "(department=Sales)")
    policies.add_rule(store, "Sales", "%g.%s@sales.example.com")
    all_recipients(qtbot, window)

    def inspect(sheet: RecipientDialog) -> None:
        lines = sheet.addresses.explain.text().splitlines()
        assert lines[0] == (
            "'Sales' applies: it is the highest-priority policy (priority 1) whose filter "
            "(department=Sales) matches this recipient."
        )
        assert lines[1].startswith("Next: Update Now will not look at it until it changes")
        assert lines[1].endswith(
            "to update its addresses, choose Apply this policy now on 'Sales'."
        )
        assert (
            lines[2].startswith("Last run 1 (")
            and "stamped, it had never been stamped" in (lines[2])
        )
        sheet.reject()

    dialogs.expect(RecipientDialog, inspect)
    double_click_row(qtbot, window, "Ana García")


# -- Exchange General and Exchange Features (issue 13) ------------------------------------------


def test_only_a_users_sheet_has_exchange_general_and_features(
    window: MainWindow, store: Store, dialogs: DialogDriver
) -> None:
    people(store)
    seen: dict[str, list[str]] = {}

    def tabs_of(alias: str) -> Callable[[RecipientDialog], None]:
        def look(sheet: RecipientDialog) -> None:
            seen[alias] = [sheet.tabs.tabText(n) for n in range(sheet.tabs.count())]
            sheet.reject()

        return look

    for alias in ("jsmith", "staff", "partner"):
        dialogs.expect(RecipientDialog, tabs_of(alias))
        RecipientDialog.edit(window, store, recipients.get_recipient(store, alias))
    dialogs.check()
    assert seen["jsmith"] == [
        "General",
        "E-mail Addresses",
        "Exchange General",
        "Member Of",
        "Exchange Features",
    ]
    assert "Exchange General" not in seen["staff"] and "Exchange Features" not in seen["staff"]
    assert "Exchange Features" not in seen["partner"]


def test_sheet_sets_protocols_and_own_limits_then_store_defaults_again(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, tmp_path: Path
) -> None:
    people(store)
    save_settings(store, mailbox_warn_default=500, mailbox_prohibit_default=800)

    def edit(sheet: RecipientDialog) -> None:
        general, features = sheet.exchange_general, sheet.exchange_features
        assert general is not None and features is not None
        assert general.use_defaults.isChecked()
        assert (general.warn.value.text(), general.prohibit.value.text()) == ("500", "800")
        assert not general.warn.value.isEnabled()  # the store's, not editable here
        assert "warning at 500 KB, prohibit at 800 KB" in general.defaults_note.text()
        sheet.tabs.setCurrentWidget(features)
        features.pop3.click()
        assert sheet.apply_button.isEnabled()
        sheet.tabs.setCurrentWidget(general)
        general.use_defaults.click()
        assert general.warn.value.isEnabled()
        type_text(qtbot, general.warn.value, "1000")
        type_text(qtbot, general.prohibit.value, "2000")
        for page in (general, features):
            sheet.tabs.setCurrentWidget(page)
            page.grab().save(str(tmp_path / f"{page.title.replace(' ', '_')}.png"))
        sheet.ok_button.click()

    dialogs.expect(RecipientDialog, edit)
    RecipientDialog.edit(window, store, recipients.get_recipient(store, "jsmith"))
    dialogs.check()
    user = recipients.get_recipient(store, "jsmith")
    assert (user.imap_enabled, user.pop3_enabled) == (True, False)
    assert (user.quota_warn, user.quota_prohibit) == (1000, 2000)
    assert (tmp_path / "Exchange_General.png").stat().st_size > 0

    def back_to_defaults(sheet: RecipientDialog) -> None:
        general = sheet.exchange_general
        assert general is not None and not general.use_defaults.isChecked()
        assert (general.warn.value.text(), general.prohibit.value.text()) == ("1000", "2000")
        general.prohibit.check.click()  # no prohibit limit of its own: 0
        sheet.apply_button.click()
        assert recipients.get_recipient(store, "jsmith").quota_prohibit == 0
        general.use_defaults.click()
        sheet.ok_button.click()

    dialogs.expect(RecipientDialog, back_to_defaults)
    RecipientDialog.edit(window, store, recipients.get_recipient(store, "jsmith"))
    dialogs.check()
    user = recipients.get_recipient(store, "jsmith")
    assert (user.quota_warn, user.quota_prohibit) == (None, None)


@pytest.mark.parametrize(
    ("warn", "prohibit", "message"),
    [
        ("", "2000", "Type the warning limit in KB, or clear its check box."),
        ("3000", "2000", "The warning limit (3000 KiB) is above the prohibit limit (2000 KiB)"),
        ("1", "9999999999", "The prohibit limit 9999999999 KiB is out of range"),
    ],
)
def test_sheet_refuses_bad_limits_and_keeps_what_was_typed(
    qtbot: QtBot,
    window: MainWindow,
    store: Store,
    dialogs: DialogDriver,
    prompts: Prompts,
    warn: str,
    prohibit: str,
    message: str,
) -> None:
    people(store)
    before = recipients.get_recipient(store, "jsmith")

    def edit(sheet: RecipientDialog) -> None:
        general = sheet.exchange_general
        assert general is not None
        general.use_defaults.click()
        general.warn.check.setChecked(True)
        general.prohibit.check.setChecked(True)
        type_text(qtbot, general.warn.value, warn)
        type_text(qtbot, general.prohibit.value, prohibit)
        sheet.ok_button.click()
        assert sheet.isVisible()  # refused: the sheet stays open with what was typed
        assert prompts.errors[-1].startswith(message)
        assert general.prohibit.value.text() == prohibit
        sheet.reject()

    dialogs.expect(RecipientDialog, edit)
    RecipientDialog.edit(window, store, before)
    dialogs.check()
    assert recipients.get_recipient(store, "jsmith") == before


def test_set_password_refuses_a_mismatch_empty_and_overlong_then_sets_it(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    people(store)
    with store.read() as conn:
        assert directory.password_hash(conn, "jsmith") is None

    def password(dialog: PasswordDialog) -> None:
        for first, second, problem in (
            ("one", "two", "The passwords do not match."),
            ("", "", "The password is empty."),
            ("x" * 1025, "x" * 1025, "The password is longer than 1024 bytes."),
        ):
            dialog.password.setText(first)
            dialog.confirm.setText(second)
            dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
            assert dialog.isVisible() and dialog.problem.text().startswith(problem)
        with store.read() as conn:
            assert directory.password_hash(conn, "jsmith") is None  # nothing set meanwhile
        type_text(qtbot, dialog.password, "s3cret words")
        type_text(qtbot, dialog.confirm, "s3cret words")
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()

    def sheet(dialog: RecipientDialog) -> None:
        general = dialog.exchange_general
        assert general is not None
        assert "no password" in general.password_state.text()
        dialogs.expect(PasswordDialog, password)
        general.set_password_button.click()
        assert "has a password" in general.password_state.text()
        dialog.reject()  # the password is set at once, as Reset Password is: Cancel keeps it

    dialogs.expect(RecipientDialog, sheet)
    RecipientDialog.edit(window, store, recipients.get_recipient(store, "jsmith"))
    dialogs.check()
    assert prompts.of("info")[-1].startswith("The password of jsmith was set.")
    with store.read() as conn:
        assert passwords.verify_password("s3cret words", directory.password_hash(conn, "jsmith"))


def test_a_password_set_in_the_console_counts_for_imap_pop3_and_smtp_auth_at_once(
    qtbot: QtBot, dialogs: DialogDriver, prompts: Prompts
) -> None:
    folder = reachable_folder()
    data_dir = folder / "data"
    new_store(data_dir).close()
    make_user(data_dir, "ann", "Ann")  # password dovecot_support.PASSWORD, through the CLI
    server = start_mail_server(data_dir)
    try:
        server.imap("ann@example.com").logout()  # the old password works everywhere first
        server.pop3("ann").quit()

        def password(dialog: PasswordDialog) -> None:
            type_text(qtbot, dialog.password, "the new one")
            type_text(qtbot, dialog.confirm, "the new one")
            dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()

        def sheet(dialog: RecipientDialog) -> None:
            assert dialog.exchange_general is not None
            dialogs.expect(PasswordDialog, password)
            dialog.exchange_general.set_password_button.click()
            dialog.reject()

        dialogs.expect(RecipientDialog, sheet)
        RecipientDialog.edit(None, server.store, recipients.get_recipient(server.store, "ann"))
        dialogs.check()
        server.imap("ann@example.com", "the new one").logout()
        server.imap("ann", "the new one").logout()
        server.pop3("ann@example.com", "the new one").quit()
        with tls_client(server.smtp) as client:
            assert client.login("ann@example.com", "the new one")[0] == 235
        with pytest.raises(imaplib.IMAP4.error):
            server.imap("ann@example.com", DOVECOT_PASSWORD)
        with pytest.raises(poplib.error_proto):
            server.pop3("ann@example.com", DOVECOT_PASSWORD)
        with tls_client(server.smtp) as client, pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("ann@example.com", DOVECOT_PASSWORD)
    finally:
        stop_mail_server(server)
        shutil.rmtree(folder)
