"""The console end to end: a new domain on the Default Policy, Update Now, and mail arrives."""

from __future__ import annotations

import mailbox
import smtplib
from email.message import EmailMessage
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app import policies, rus
from app.directory import recipients
from app.model import DEFAULT_POLICY_NAME
from app.rus.schedule import Schedule, save_schedule
from app.settings import parse_host_port
from app.store import Store
from tests.ui_support import (
    DialogDriver,
    click_menu_item,
    double_click_row,
    menu_texts,
    right_click_row,
)
from ui.dialogs.address import AddressTypeDialog, SmtpAddressDialog
from ui.dialogs.policy import PolicyDialog
from ui.main_window import MainWindow

if TYPE_CHECKING:
    from tests.conftest import Prompts, SmtpProbe  # fixtures' types, not the fixtures


def test_new_domain_on_the_default_policy_then_update_now_then_mail_is_delivered(
    qtbot: QtBot,
    store: Store,
    live_window: MainWindow,
    dialogs: DialogDriver,
    prompts: Prompts,
    smtp_accepts: SmtpProbe,
) -> None:
    window = live_window
    # Update Now, not the schedule, is what stamps the new address here.
    save_schedule(store, Schedule("never"))
    recipients.create_recipient(store, "jsmith", attributes={"givenName": "John", "sn": "Smith"})
    rus.run(store)
    assert recipients.get_recipient(store, "jsmith").primary_address() == "jsmith@example.com"

    # Double-click Default Policy: its sheet opens.
    window.select_node("recipients/policies")
    prompts.answers = {"Do you want to update all corresponding recipient e-mail": True}

    def choose_smtp(dialog: AddressTypeDialog) -> None:
        assert dialog.chosen() == "SMTP"
        dialog.accept()

    def type_address(dialog: SmtpAddressDialog) -> None:
        assert dialog.windowTitle() == "SMTP Address Properties"
        dialog.address.setFocus()
        qtbot.keyClicks(dialog.address, "@example.net")
        assert dialog.responsible.isChecked()
        assert "jsmith@example.net" in dialog.feedback.text()
        qtbot.mouseClick(
            dialog.buttons.button(dialog.buttons.StandardButton.Ok), Qt.MouseButton.LeftButton
        )

    def sheet(dialog: PolicyDialog) -> None:
        assert dialog.windowTitle() == "Default Policy Properties"
        dialog.tabs.setCurrentWidget(dialog.addresses)
        dialogs.expect(AddressTypeDialog, choose_smtp)
        dialogs.expect(SmtpAddressDialog, type_address)
        qtbot.mouseClick(dialog.addresses.new_button, Qt.MouseButton.LeftButton)
        # Exchange's documented step: select the new address, then click OK.
        view = dialog.addresses.view
        view.setFocus()
        qtbot.keyClick(view, Qt.Key.Key_Space)
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)

    dialogs.expect(PolicyDialog, sheet)
    double_click_row(qtbot, window, DEFAULT_POLICY_NAME)
    dialogs.check()
    assert dialogs.handled == ["PolicyDialog", "AddressTypeDialog", "SmtpAddressDialog"]
    default = policies.get_policy(store, DEFAULT_POLICY_NAME)
    assert [(r.address, r.enabled) for r in default.rules] == [
        ("@example.com", True),
        ("@example.net", True),
    ]
    assert default.apply_pending, "Yes to the update prompt"

    # Right-click the Recipient Update Service > Update Now.
    window.select_node("recipients/update-services")
    name = window.proxy.index(0, 0).data()
    menu = right_click_row(qtbot, window, name)
    assert menu_texts(menu)[:3] == ["Update Now", "Rebuild", "Cancel"]
    with qtbot.waitSignal(window.console.rus.run_finished, timeout=30_000) as finished:
        click_menu_item(qtbot, menu, "Update Now")
    record = finished.args[0]
    assert record is not None and record.outcome == "completed" and record.changed == 1
    addresses = {a.address for a in recipients.get_recipient(store, "jsmith").addresses}
    assert addresses == {"jsmith@example.com", "jsmith@example.net"}
    qtbot.waitUntil(lambda: "Update Now completed" in window.proxy.index(0, 3).data())

    # An SMTP client on loopback delivers to the new address; the message is in the Maildir.
    host, port = parse_host_port(window.console.smtp.addresses[0])
    # The service follows committed changes within a second (DESIGN §6).
    qtbot.waitUntil(lambda: smtp_accepts(host, port, "jsmith@example.net"), timeout=5000)
    message = EmailMessage()
    message["From"] = "ann@partner.example"
    message["To"] = "jsmith@example.net"
    message["Subject"] = "Hello from the console test"
    message.set_content("It arrived.\n")
    with smtplib.SMTP(host, port, timeout=10) as client:
        refused = client.send_message(message)
    assert refused == {}
    box = mailbox.Maildir(store.paths.mailbox("jsmith"), create=False)
    subjects = [m["Subject"] for m in box]
    assert subjects == ["Hello from the console test"]
    delivered = next(iter(box))
    assert delivered["Delivered-To"] == "jsmith@example.net"
    assert prompts.errors == []
