"""… > Mailbox Store > Mailboxes: counts that follow new mail, a mailbox's messages, and a
message read in the console after the SMTP service delivered it."""

from __future__ import annotations

import os
import smtplib
import time
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QApplication
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from app import rus
from app.directory import recipients
from app.mailstore import maildir
from app.settings import load_settings, parse_host_port, save_settings
from app.store import Store
from tests.ui_support import (
    DialogDriver,
    click_menu_item,
    double_click_row,
    menu_texts,
    right_click_row,
    right_click_tree,
    row_index,
    type_text,
)
from ui.dialogs.mailbox import MailboxDialog, MessageDialog
from ui.dialogs.mailbox_store import MailboxStoreDialog
from ui.main_window import MainWindow
from ui.models.mailboxes import MailboxListModel, MessageListModel
from ui.views.mailboxes import MailboxesView

if TYPE_CHECKING:
    from tests.conftest import Prompts, SmtpProbe  # fixtures' types, not the fixtures

MAILBOXES = "servers/host/mailbox-store/mailboxes"
STORE = "servers/host/mailbox-store"


def mail(subject: str, body: str = "Hello.\n", to: str = "jsmith@example.com") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Ann Partner <ann@partner.example>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    return message


def mailboxes_view(qtbot: QtBot, window: MainWindow) -> MailboxesView:
    window.select_node(MAILBOXES)
    view = window.current
    assert isinstance(view, MailboxesView)
    qtbot.waitUntil(lambda: not view.is_busy() and view.status_text() != "Counting...")
    return view


def shown_rows(window: MainWindow) -> list[list[str]]:
    proxy = window.proxy
    return [
        [proxy.index(row, column).data() for column in range(proxy.columnCount())]
        for row in range(proxy.rowCount())
    ]


def items_of(window: MainWindow, name: str) -> str:
    return str(window.proxy.index(row_index(window, name).row(), 1).data())


def open_mailbox(qtbot: QtBot, window: MainWindow, view: MailboxesView, name: str) -> MailboxDialog:
    double_click_row(qtbot, window, name)
    qtbot.waitUntil(lambda: any(d.isVisible() for d in view.dialogs.values()), timeout=5000)
    [dialog] = [d for d in view.dialogs.values() if d.isVisible()]
    qtbot.waitUntil(lambda: not dialog._listing, timeout=10_000)
    return dialog


def click_message(qtbot: QtBot, dialog: MailboxDialog, subject: str) -> None:
    """Click the message with this subject and wait until the preview has read it (or says
    why it cannot)."""
    model = dialog.messages
    rows = [
        model.index(row, MessageListModel.COL_SUBJECT).data() for row in range(model.rowCount())
    ]
    row = rows.index(subject)
    rect = dialog.list.visualRect(model.index(row, 0))
    qtbot.mouseClick(dialog.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert dialog.list.currentIndex().row() == row

    def read() -> bool:
        content = dialog.preview.content
        if content is not None:
            return content.header("Subject") == subject
        return dialog._reading is None and dialog.preview.summary.text() != ""

    qtbot.waitUntil(read, timeout=10_000)


@pytest.fixture
def jsmith(store: Store) -> Path:
    recipients.create_recipient(
        store,
        "jsmith",
        attributes={"givenName": "John", "sn": "Smith", "displayName": "John Smith"},
    )
    rus.run(store)
    return store.paths.mailbox("jsmith")


def test_deliver_by_smtp_then_open_the_mailbox_and_read_the_message(
    qtbot: QtBot,
    jsmith: Path,
    live_window: MainWindow,
    dialogs: DialogDriver,
    qtmodeltester,
    smtp_accepts: SmtpProbe,
) -> None:  # type: ignore[no-untyped-def]
    window = live_window
    view = mailboxes_view(qtbot, window)
    qtmodeltester.check(view.list_model)
    assert shown_rows(window) == [["John Smith", "0", "0 KB", "", "No limit"]]
    assert window.result.title.text() == "Mailboxes     1 mailbox"

    host, port = parse_host_port(window.console.smtp.addresses[0])
    qtbot.waitUntil(lambda: smtp_accepts(host, port, "jsmith@example.com"), timeout=5000)
    with smtplib.SMTP(host, port, timeout=10) as client:
        assert client.send_message(mail("Quarterly report", "The figures are in.\n")) == {}

    # No database change: the list notices the Maildir moved on.
    qtbot.waitUntil(lambda: items_of(window, "John Smith") == "1", timeout=10_000)
    [row] = shown_rows(window)
    assert row[2] == "1 KB" and row[3] != ""

    dialog = open_mailbox(qtbot, window, view, "John Smith")
    qtmodeltester.check(dialog.messages)
    assert dialog.windowTitle() == "John Smith - Mailbox"
    assert dialog.info.text().startswith("1 message, 1 KB")
    model = dialog.messages
    assert [model.index(0, c).data() for c in range(3)][:2] == [
        "Ann Partner <ann@partner.example>",
        "Quarterly report",
    ]
    assert model.index(0, 0).data(Qt.ItemDataRole.FontRole).bold(), "unread"

    click_message(qtbot, dialog, "Quarterly report")
    preview = dialog.preview
    assert "<b>Subject:</b> Quarterly report" in preview.summary.text()
    assert "<b>From:</b> Ann Partner &lt;ann@partner.example&gt;" in preview.summary.text()
    assert preview.text.toPlainText() == "The figures are in.\n"
    assert preview.text.isReadOnly() and preview.headers.isReadOnly()
    headers = preview.headers.toPlainText()
    assert "Delivered-To: jsmith@example.com" in headers
    assert "Return-Path: <" in headers and "Received: from " in headers

    seen: dict[str, str] = {}

    def read(message_dialog: MessageDialog) -> None:
        seen["title"] = message_dialog.windowTitle()
        seen["text"] = message_dialog.view.text.toPlainText()
        seen["readonly"] = str(message_dialog.view.text.isReadOnly())
        message_dialog.reject()

    dialogs.expect(MessageDialog, read)
    qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
    assert seen == {
        "title": "Quarterly report - Message",
        "text": "The figures are in.\n",
        "readonly": "True",
    }
    dialog.reject()


def test_new_mail_shows_up_in_an_open_mailbox(
    qtbot: QtBot, window: MainWindow, jsmith: Path
) -> None:
    maildir.deliver(jsmith, mail("First").as_bytes())
    view = mailboxes_view(qtbot, window)
    assert items_of(window, "John Smith") == "1"
    dialog = open_mailbox(qtbot, window, view, "John Smith")
    click_message(qtbot, dialog, "First")

    time.sleep(0.01)  # a new modification time for new/
    maildir.deliver(jsmith, mail("Second").as_bytes())
    qtbot.waitUntil(lambda: dialog.messages.rowCount() == 2, timeout=10_000)
    subjects = [dialog.messages.index(r, 1).data() for r in range(2)]
    assert subjects == ["Second", "First"], "newest first"
    assert dialog.messages.message(dialog.list.currentIndex().row()).subject == "First", (
        "the selection stays on the message being read"
    )
    qtbot.waitUntil(lambda: items_of(window, "John Smith") == "2", timeout=10_000)
    dialog.reject()


def test_a_user_made_elsewhere_gets_a_row(qtbot: QtBot, window: MainWindow, store: Store) -> None:
    view = mailboxes_view(qtbot, window)
    assert shown_rows(window) == []
    assert view.status_text() == "0 mailboxes"
    recipients.create_recipient(store, "bwayne", attributes={"displayName": "Bruce Wayne"})
    qtbot.waitUntil(lambda: window.proxy.rowCount() == 1, timeout=5000)
    assert shown_rows(window) == [["Bruce Wayne", "0", "0 KB", "", "No limit"]]


def test_postmaster_mail_without_a_postmaster_user_is_listed(
    qtbot: QtBot, window: MainWindow, store: Store
) -> None:
    maildir.deliver(store.paths.mailbox("postmaster"), mail("Bounce", to="postmaster").as_bytes())
    mailboxes_view(qtbot, window)
    [row] = shown_rows(window)
    assert row[:2] == ["postmaster", "1"]
    index = row_index(window, "postmaster")
    assert index.data(Qt.ItemDataRole.FontRole).italic()
    assert index.data(Qt.ItemDataRole.ToolTipRole).startswith("No user owns this mailbox")


def test_a_message_a_mail_client_deleted_says_so(
    qtbot: QtBot, window: MainWindow, jsmith: Path
) -> None:
    kept = maildir.deliver(jsmith, mail("Kept").as_bytes())
    gone = maildir.deliver(jsmith, mail("Gone").as_bytes())
    view = mailboxes_view(qtbot, window)
    dialog = open_mailbox(qtbot, window, view, "John Smith")
    assert dialog.messages.rowCount() == 2
    click_message(qtbot, dialog, "Kept")
    gone.unlink()  # by a mail client, while the list still shows it
    click_message(qtbot, dialog, "Gone")
    assert dialog.preview.summary.text().startswith("The message is no longer in the mailbox")
    assert dialog.preview.content is None
    qtbot.waitUntil(lambda: dialog.messages.rowCount() == 1, timeout=10_000)
    assert kept.exists(), "reading never changes the mailbox"
    dialog.reject()


def test_the_context_menu_opens_a_mailbox(qtbot: QtBot, window: MainWindow, jsmith: Path) -> None:
    view = mailboxes_view(qtbot, window)
    menu = right_click_row(qtbot, window, "John Smith")
    assert menu_texts(menu) == ["Open", "Refresh"]
    click_menu_item(qtbot, menu, "Open")
    qtbot.waitUntil(lambda: "jsmith" in view.dialogs and view.dialogs["jsmith"].isVisible())
    dialog = view.dialogs["jsmith"]
    dialog.reject()
    # Opening it again brings back the same window.
    double_click_row(qtbot, window, "John Smith")
    qtbot.waitUntil(dialog.isVisible)
    assert view.dialogs["jsmith"] is dialog
    dialog.reject()


def test_a_big_mailbox_lists_in_batches_and_sorts_every_message(
    qtbot: QtBot, window: MainWindow, jsmith: Path, qtmodeltester
) -> None:  # type: ignore[no-untyped-def]
    base = int(time.time()) - 10_000
    for number in range(1200):
        data = mail(f"Message {number:04d}", "x" * number).as_bytes()
        name = f"{base + number}.M0P1Q{number}.test,S={len(data)}"
        (jsmith / "new" / name).write_bytes(data)
    view = mailboxes_view(qtbot, window)
    assert items_of(window, "John Smith") == "1,200"
    dialog = open_mailbox(qtbot, window, view, "John Smith")
    model = dialog.messages
    assert model.total() == 1200
    assert model.rowCount() in (500, 1000), "fetched in batches, not all at once"
    assert model.canFetchMore(QModelIndex())
    assert model.index(0, 1).data() == "Message 1199", "newest first"
    qtmodeltester.check(model)

    dialog.list.header().setSortIndicator(MessageListModel.COL_SIZE, Qt.SortOrder.AscendingOrder)
    assert model.index(0, 1).data() == "Message 0000"
    dialog.list.header().setSortIndicator(MessageListModel.COL_SIZE, Qt.SortOrder.DescendingOrder)
    assert model.index(0, 1).data() == "Message 1199"

    dialog.list.scrollToBottom()
    QApplication.processEvents()
    qtbot.waitUntil(lambda: model.rowCount() > 500)
    while model.canFetchMore(QModelIndex()):
        model.fetchMore(QModelIndex())
    assert model.rowCount() == 1200
    dialog.reject()


def test_a_mailbox_whose_folder_is_gone_is_empty_not_an_error(
    qtbot: QtBot, window: MainWindow, jsmith: Path, prompts: Prompts
) -> None:
    for folder in ("new", "cur", "tmp"):
        os.rmdir(jsmith / folder)
    os.rmdir(jsmith)
    view = mailboxes_view(qtbot, window)
    assert shown_rows(window) == [["John Smith", "0", "0 KB", "", "No limit"]]
    assert "No mail has been delivered yet." in row_index(window, "John Smith").data(
        Qt.ItemDataRole.ToolTipRole
    )
    dialog = open_mailbox(qtbot, window, view, "John Smith")
    assert dialog.messages.rowCount() == 0
    assert prompts.errors == []
    dialog.reject()


def test_only_the_node_on_screen_polls_and_it_catches_up_when_shown(
    qtbot: QtBot, window: MainWindow, jsmith: Path
) -> None:
    view = mailboxes_view(qtbot, window)
    assert items_of(window, "John Smith") == "0"
    window.select_node("recipients/domains")
    maildir.deliver(jsmith, mail("While away").as_bytes())
    qtbot.wait(1200)  # two poll intervals
    assert view.list_model.row_object(0).items == 0, "no counting behind the administrator's back"
    window.select_node(MAILBOXES)
    qtbot.waitUntil(lambda: items_of(window, "John Smith") == "1", timeout=5000)


# -- storage limits (issue 13) -------------------------------------------------------------------


def put(folder: Path, size: int, name: str = "1700000000.M1P1.host") -> None:
    maildir.ensure(folder)
    (folder / "cur" / f"{name},S={size}:2,S").write_bytes(b"x" * size)


def limits_of_row(window: MainWindow, name: str) -> str:
    column = MailboxListModel.COL_LIMITS
    return str(window.proxy.index(row_index(window, name).row(), column).data())


def test_mailboxes_show_each_size_against_the_limit_that_applies(
    qtbot: QtBot, window: MainWindow, store: Store, jsmith: Path, qtmodeltester: ModelTester
) -> None:
    recipients.create_recipient(store, "ann", attributes={"displayName": "Ann"})
    recipients.create_recipient(store, "bob", attributes={"displayName": "Bob"})
    put(jsmith, 3 * 1024)
    put(jsmith / ".Junk", 1024)  # Junk counts against the limit, as in Dovecot's quota
    put(store.paths.mailbox("ann"), 900)
    put(store.paths.mailbox("bob"), 5 * 1024)
    save_settings(store, mailbox_warn_default=3, mailbox_prohibit_default=10)
    recipients.edit_recipient(store, "ann", quota_warn=0, quota_prohibit=1)
    recipients.edit_recipient(store, "bob", quota_warn=0, quota_prohibit=0)
    view = mailboxes_view(qtbot, window)
    qtmodeltester.check(view.list_model)
    assert limits_of_row(window, "John Smith") == "Issue warning: 40% of 10 KB"
    assert limits_of_row(window, "Ann") == "88% of 1 KB"
    assert limits_of_row(window, "Bob") == "No limit"
    tip = row_index(window, "John Smith").data(Qt.ItemDataRole.ToolTipRole)
    assert tip.endswith(
        "Whole mailbox 4 KB; issue warning at 3 KB, prohibit send and receive at 10 KB "
        "(the Mailbox Store's defaults)."
    )
    # A limit lowered elsewhere (the CLI) shows within a poll: the directory changed.
    recipients.edit_recipient(store, "ann", quota_prohibit=0, quota_warn=0)
    recipients.edit_recipient(store, "jsmith", quota_warn=1, quota_prohibit=2)
    qtbot.waitUntil(
        lambda: limits_of_row(window, "John Smith") == "Prohibit send and receive: 200% of 2 KB",
        timeout=10_000,
    )
    assert limits_of_row(window, "Ann") == "No limit"
    window.proxy.sort(MailboxListModel.COL_LIMITS, Qt.SortOrder.DescendingOrder)
    assert [row[0] for row in shown_rows(window)][0] == "John Smith"


def test_mailbox_store_properties_set_the_default_limits(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, tmp_path: Path
) -> None:
    def edit(sheet: MailboxStoreDialog) -> None:
        page = sheet.limits
        assert not page.warn.check.isChecked() and page.temporary.isChecked()
        page.warn.check.click()
        type_text(qtbot, page.warn.value, "800")
        page.prohibit.check.click()
        type_text(qtbot, page.prohibit.value, "1000")
        page.permanent.click()
        sheet.grab().save(str(tmp_path / "mailbox_store.png"))
        sheet.ok_button.click()

    window.select_node(STORE)
    dialogs.expect(MailboxStoreDialog, edit)
    click_menu_item(qtbot, right_click_tree(qtbot, window, STORE), "Properties")
    dialogs.check()
    current = load_settings(store)
    assert (current.mailbox_warn_default, current.mailbox_prohibit_default) == (800, 1000)
    assert current.mailbox_full_permanent
    assert (tmp_path / "mailbox_store.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("warn", "prohibit", "message"),
    [
        ("", "100", "Type the warning limit in KB, or clear its check box."),
        ("200", "100", "The default warning limit (200 KiB) is above the default prohibit"),
        ("1", "9999999999", "mailbox_prohibit_default: 9999999999 is out of range"),
    ],
)
def test_mailbox_store_properties_refuse_bad_limits_and_change_nothing(
    qtbot: QtBot,
    window: MainWindow,
    store: Store,
    dialogs: DialogDriver,
    prompts: Prompts,
    warn: str,
    prohibit: str,
    message: str,
) -> None:
    before = load_settings(store).as_dict()

    def edit(sheet: MailboxStoreDialog) -> None:
        page = sheet.limits
        page.warn.check.click()
        page.prohibit.check.click()
        type_text(qtbot, page.warn.value, warn)
        type_text(qtbot, page.prohibit.value, prohibit)
        sheet.ok_button.click()
        assert sheet.isVisible() and prompts.errors[-1].startswith(message)
        assert page.prohibit.value.text() == prohibit
        sheet.reject()

    dialogs.expect(MailboxStoreDialog, edit)
    MailboxStoreDialog.edit(window, store)
    dialogs.check()
    assert load_settings(store).as_dict() == before
