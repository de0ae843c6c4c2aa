"""Default SMTP Virtual Server > Queues through the real window, on a loopback internet: the
console's own SMTP service queues mail for a receiver that answers 451; the queue is frozen,
forced and deleted from the Queues node, and each outcome is checked on the queue's files, the
receiver and the sender's Maildir. Retry intervals are ten minutes, so only Force Connection
sends mail that was deferred."""

from __future__ import annotations

import email
import mailbox
import smtplib
import time
from collections.abc import Callable, Iterator
from email.message import Message
from typing import TYPE_CHECKING, Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app import connectors
from app.model import AddressSpace, SmtpConnector
from app.outbound import control
from app.outbound.queue import Action, HopState, HopView, MessageView, Request, load_items
from app.queue import spool, state
from app.store import Store
from tests.dns_responder import serving
from tests.smtp_receivers import Receiver, shared_port
from tests.smtp_support import organisation
from tests.test_outbound_queue import SENDER, Internet, configure, report, wait_for
from tests.ui_support import (
    DialogDriver,
    click_menu_item,
    menu_texts,
    right_click_row,
    row_index,
    select_row,
)
from ui.dialogs.queue_message import MessagePropertiesDialog, QueueMessagesDialog
from ui.main_window import MainWindow
from ui.models.queues import QueueListModel, QueueMessageModel, size_text
from ui.views.connectors import ConnectorsView
from ui.views.queues import QueuesView
from ui.views.tracking import MessageTrackingView

if TYPE_CHECKING:
    from tests.conftest import ConsoleOpener, Prompts

QUEUES = "servers/host/protocols/smtp/default/queues"
HOP = "partner.test"
RECIPIENT = f"someone@{HOP}"
REFUSAL = "451 4.3.0 Try again later"


@pytest.fixture
def net(smtp_receiver: Callable[..., Receiver]) -> Iterator[Internet]:
    """partner.test's MX is one receiver on 127.0.0.x; it answers RCPT with 451 until told."""
    port = shared_port()
    partner = smtp_receiver(port=port, rcpt_replies={RECIPIENT: REFUSAL})
    zone = f"{HOP}. 60 IN MX 10 mx.{HOP}.\nmx.{HOP}. 60 IN A {partner.host}\n"
    with serving(zone) as dns:
        yield Internet(dns, port, {"partner": partner})


@pytest.fixture
def live(
    qtbot: QtBot,
    store: Store,
    net: Internet,
    open_console: ConsoleOpener,
    free_port: int,
    prompts: Prompts,
) -> MainWindow:
    """The console with its SMTP service (and so its queue) running on the loopback internet."""
    organisation(store)
    configure(
        store,
        net,
        listen=[f"127.0.0.1:{free_port}"],
        submission_listen="",
        retry_intervals="10m,10m,10m,10m",
    )
    window = open_console(services=True)
    qtbot.waitUntil(lambda: window.console.smtp.state == "running", timeout=10_000)
    return window


def smtp_port(window: MainWindow) -> int:
    return int(window.console.smtp.addresses[0].rsplit(":", 1)[1])


def send(window: MainWindow, subject: str, recipient: str = RECIPIENT) -> None:
    body = (
        f"From: {SENDER}\r\nTo: {recipient}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject}@example.com>\r\n\r\nHello there.\r\n"
    )
    with smtplib.SMTP("127.0.0.1", smtp_port(window), timeout=10) as client:
        client.sendmail(SENDER, [recipient], body.encode())


def notices(store: Store) -> list[Message]:
    """The messages in jsmith's Maildir (where the notifications to SENDER land)."""
    folder = store.paths.mailbox("jsmith")
    if not (folder / "new").is_dir():
        return []
    box = mailbox.Maildir(folder, create=False)
    return [email.message_from_bytes(box.get_bytes(key)) for key in sorted(box.keys())]


def queues_view(window: MainWindow) -> QueuesView:
    window.select_node(QUEUES)
    view = window.current
    assert isinstance(view, QueuesView)
    return view


def shown_hop(window: MainWindow, name: str = HOP) -> dict[str, str] | None:
    """The Queues pane's row of ``name`` as the administrator reads it (None: not listed)."""
    proxy = window.proxy
    for row in range(proxy.rowCount()):
        if proxy.index(row, 0).data() == name:
            headers = QueueListModel.HEADERS
            return {headers[c]: proxy.index(row, c).data() for c in range(len(headers))}
    return None


def wait_for_row(qtbot: QtBot, window: MainWindow, check: Callable[[dict[str, str]], bool]) -> None:
    qtbot.waitUntil(lambda: (row := shown_hop(window)) is not None and check(row), timeout=15_000)


def deferred_in_the_pane(qtbot: QtBot, window: MainWindow, subject: str) -> QueuesView:
    """Send a message the receiver refuses and wait until the pane lists its queue in Retry."""
    view = queues_view(window)
    send(window, subject)
    wait_for_row(qtbot, window, lambda row: row["State"] == "Retry")
    return view


def act_from_menu(qtbot: QtBot, window: MainWindow, view: QueuesView, entry: str) -> None:
    """Right-click the queue, click ``entry`` and wait until the queue has carried it out."""
    with qtbot.waitSignal(view.acted, timeout=20_000):
        click_menu_item(qtbot, right_click_row(qtbot, window, HOP), entry)


def queue_empty(store: Store) -> bool:
    return spool.queue_length(store.paths.queue) == 0


# -- the node and its list ----------------------------------------------------------------------


def test_queues_node_lists_the_waiting_queue_with_exchanges_columns(
    qtbot: QtBot, live: MainWindow, store: Store
) -> None:
    node = live.node_of(QUEUES)
    assert node.title == "Queues" and node.parent is not None
    assert node.parent.title == "Default SMTP Virtual Server"
    view = deferred_in_the_pane(qtbot, live, "Waiting")
    assert [live.proxy.headerData(c, Qt.Orientation.Horizontal) for c in range(7)] == list(
        QueueListModel.HEADERS
    )
    row = shown_hop(live)
    assert row is not None
    assert row["Messages"] == "1"
    [item] = load_items(store.paths.queue)
    assert row["Size"] == size_text(item.entry.size)
    assert "451" in row["Last Error"] and "Try again later" in row["Last Error"]
    assert row["Oldest"] and row["Next Retry"]  # local times, ten minutes apart
    assert view.status_text().startswith("1 queue, 1 message")
    menu = right_click_row(qtbot, live, HOP)
    assert menu_texts(menu) == [
        "Find Messages...",
        "Force Connection",
        "Freeze",
        "Unfreeze",
        "Delete All Messages (no NDR)",
        "Delete All Messages (send NDR)",
        "Refresh",
    ]
    enabled = {a.text().replace("&", ""): a.isEnabled() for a in menu.actions()}
    assert enabled["Freeze"] and not enabled["Unfreeze"]
    menu.close()


def test_frozen_queue_sends_nothing_until_unfrozen_and_forced(
    qtbot: QtBot, live: MainWindow, store: Store, net: Internet
) -> None:
    view = deferred_in_the_pane(qtbot, live, "Held")
    act_from_menu(qtbot, live, view, "Freeze")
    assert state.frozen_hops(store.paths.queue) == {HOP}  # hops.json
    assert "Queue 'partner.test' frozen (1 message)." in view.status_text()
    wait_for_row(qtbot, live, lambda row: row["State"] == HopState.FROZEN.value)

    net["partner"].rcpt_replies.clear()  # the receiver takes mail now
    menu = right_click_row(qtbot, live, HOP)
    force = next(a for a in menu.actions() if a.text() == "Force &Connection")
    assert not force.isEnabled() and "unfreeze it first" in force.toolTip()
    menu.close()
    time.sleep(1.5)  # the queue looks several times a second: give it chances to misbehave
    assert net["partner"].received == []
    assert spool.queue_length(store.paths.queue) == 1

    act_from_menu(qtbot, live, view, "Unfreeze")
    assert state.frozen_hops(store.paths.queue) == set()
    wait_for_row(qtbot, live, lambda row: row["State"] == HopState.RETRY.value)
    time.sleep(1.0)  # unfrozen, the message still waits for its retry time (ten minutes)
    assert net["partner"].received == []
    act_from_menu(qtbot, live, view, "Force Connection")
    [got] = wait_for(lambda: net["partner"].received, what="the message at the receiver")
    assert got.rcpt_tos == (RECIPIENT,) and b"Subject: Held" in got.content
    wait_for(lambda: queue_empty(store), what="the queue file to go")
    qtbot.waitUntil(lambda: shown_hop(live) is None, timeout=10_000)
    assert notices(store) == []


def row_number(view: QueuesView) -> int:
    number = view.list_model.row_of(HOP)
    assert number is not None
    return number


def test_delete_with_ndr_tells_the_sender_and_removes_the_file(
    qtbot: QtBot, live: MainWindow, store: Store, net: Internet, prompts: Prompts
) -> None:
    view = deferred_in_the_pane(qtbot, live, "Doomed")
    [item] = load_items(store.paths.queue)
    prompts.answers = {"delete all 1 message in the queue 'partner.test'": True}
    act_from_menu(qtbot, live, view, "Delete All Messages (send NDR)")
    assert "Each sender gets a non-delivery report." in prompts.questions[0]
    [notice] = wait_for(lambda: notices(store), what="the NDR in the sender's Maildir")
    assert "Doomed" in notice["Subject"]
    [fields] = report(notice)
    assert fields["Final-Recipient"] == f"rfc822; {RECIPIENT}"
    assert fields["Action"] == "failed" and fields["Status"] == "5.3.0"
    wait_for(lambda: queue_empty(store), what="the queue file to go")
    assert not (store.paths.queue / "active" / item.name).exists()
    assert not (store.paths.queue / "state" / item.name).exists()
    assert net["partner"].received == []
    qtbot.waitUntil(lambda: shown_hop(live) is None, timeout=10_000)


def test_delete_without_ndr_tells_nobody_and_tracking_shows_it(
    qtbot: QtBot, live: MainWindow, store: Store, net: Internet, prompts: Prompts
) -> None:
    view = deferred_in_the_pane(qtbot, live, "Quiet")
    prompts.answers = {"delete all 1 message in the queue 'partner.test'": True}
    act_from_menu(qtbot, live, view, "Delete All Messages (no NDR)")
    assert "The senders are not told" in prompts.questions[0]
    wait_for(lambda: queue_empty(store), what="the queue file to go")
    time.sleep(1.0)  # an NDR would be queued and delivered locally within this
    assert notices(store) == []
    assert net["partner"].received == []

    live.select_node("tools/message-tracking")
    tracking = live.current
    assert isinstance(tracking, MessageTrackingView)

    def events_shown() -> set[str]:
        proxy = live.proxy
        return {proxy.index(row, 1).data() for row in range(proxy.rowCount())}

    qtbot.waitUntil(lambda: {"Deferred", "Deleted"} <= events_shown(), timeout=10_000)
    deleted = row_index(live, "Deleted", 1)
    reason = live.proxy.index(deleted.row(), 5).data()
    assert "deleted" in reason.lower()


def test_answering_no_deletes_nothing(
    qtbot: QtBot, live: MainWindow, store: Store, prompts: Prompts
) -> None:
    view = deferred_in_the_pane(qtbot, live, "Kept")
    prompts.answers = {"delete all 1 message": False}
    select_row(qtbot, live, HOP)
    view.delete_with_ndr.trigger()
    assert prompts.questions and not view.is_busy()
    time.sleep(0.5)
    assert spool.queue_length(store.paths.queue) == 1
    assert notices(store) == []


# -- bad cases ----------------------------------------------------------------------------------


def test_deleting_a_queue_emptied_meanwhile_shows_the_one_line(
    qtbot: QtBot, live: MainWindow, store: Store, prompts: Prompts
) -> None:
    view = deferred_in_the_pane(qtbot, live, "Gone")
    number = row_number(view)
    # Another program empties the queue; the pane still lists it (nothing ran meanwhile).
    control.submit(store, Request(Action.DELETE, hop=HOP))
    prompts.answers = {"delete all 1 message in the queue 'partner.test'": True}
    with qtbot.waitSignal(view.acted, timeout=20_000):
        view.act(Action.DELETE, ndr=True, rows=[number])
    assert prompts.errors == [
        "No mail waits in the queue 'partner.test' (it may have been sent or deleted "
        "meanwhile). See postroom queue list."
    ]
    qtbot.waitUntil(lambda: shown_hop(live) is None, timeout=10_000)
    assert notices(store) == []  # the first deletion sent no NDR, the refused one none either


def test_connector_with_mail_waiting_refuses_deletion(
    qtbot: QtBot, live: MainWindow, store: Store, prompts: Prompts
) -> None:
    connectors.create_connector(
        store,
        SmtpConnector("Partner link", address_spaces=(AddressSpace(HOP, 1),)),
    )
    window = live
    send(window, "Waiting")
    wait_for(lambda: control.queued_for_connector(store, "Partner link") == 1)
    window.select_node("routing-groups/first/connectors")
    view = window.current
    assert isinstance(view, ConnectorsView)
    prompts.answers = {"delete the SMTP connector 'Partner link'": True}
    select_row(qtbot, window, "Partner link")
    with qtbot.waitSignal(view.deleted, timeout=10_000):
        window.std.delete.trigger()
    assert prompts.errors == [
        "1 message is queued for the SMTP connector 'Partner link'. Let the queue empty or "
        "delete its messages first (postroom queue), or delete the connector anyway with --force."
    ]
    assert [c.name for c in connectors.list_connectors(store)] == ["Partner link"]


# -- Find Messages ------------------------------------------------------------------------------


def test_find_messages_freezes_and_deletes_one_message(
    qtbot: QtBot,
    live: MainWindow,
    store: Store,
    net: Internet,
    prompts: Prompts,
    dialogs: DialogDriver,
) -> None:
    view = deferred_in_the_pane(qtbot, live, "Listed")
    [item] = load_items(store.paths.queue)
    seen: dict[str, Any] = {}

    def inside(dialog: QueueMessagesDialog) -> None:
        model = dialog.model
        assert model.rowCount() == 1
        shown = {h: model.index(0, c).data() for c, h in enumerate(QueueMessageModel.HEADERS)}
        seen.update(shown)
        dialog.list.setCurrentIndex(model.index(0, 0))
        assert dialog.freeze.isEnabled() and not dialog.unfreeze.isEnabled()
        with qtbot.waitSignal(dialog.acted, timeout=20_000):
            dialog.freeze.trigger()
        assert state.load(store.paths.queue, item.name).frozen
        qtbot.waitUntil(lambda: model.rowCount() == 1 and model.row_object(0).frozen)
        dialog.list.setCurrentIndex(model.index(0, 0))
        assert dialog.unfreeze.isEnabled() and not dialog.freeze.isEnabled()
        dialogs.expect(MessagePropertiesDialog, look_at_envelope)
        dialog.properties.trigger()
        # Another program deletes the message; the list still shows it.
        control.submit(store, Request(Action.DELETE, message=item.name))
        prompts.answers = {"delete this message": True}
        with qtbot.waitSignal(dialog.acted, timeout=20_000):
            dialog.delete_with_ndr.trigger()
        qtbot.waitUntil(lambda: model.rowCount() == 0)
        assert "No mail waits in the queue 'partner.test' now" in dialog.summary.text()
        dialog.reject()

    def look_at_envelope(sheet: MessagePropertiesDialog) -> None:
        seen["envelope"] = {k: label.text() for k, label in sheet.fields.items()}
        sheet.reject()

    dialogs.expect(QueueMessagesDialog, inside)
    select_row(qtbot, live, HOP)
    view.find_messages.trigger()
    dialogs.check()
    assert seen["Sender"] == SENDER and seen["Recipients"] == RECIPIENT
    assert seen["Size"] == size_text(item.entry.size)
    assert seen["State"] == "Retry" and "451" in seen["Last Error"]
    envelope = seen["envelope"]
    assert envelope["Queue"] == HOP and envelope["Sender"] == SENDER
    assert envelope["Recipients"] == RECIPIENT and envelope["State"] == "Frozen"
    assert envelope["Message-ID"] == "<Listed@example.com>" and envelope["File"] == item.name
    assert prompts.errors == [
        f"The message {item.name} is not in the queue (it may have been sent or deleted "
        "meanwhile). See postroom queue list."
    ]
    assert notices(store) == []


# -- the models ---------------------------------------------------------------------------------


def _message(name: str, frozen: bool = False, attempts: int = 0) -> MessageView:
    return MessageView(
        name=name,
        queue_id=name.upper(),
        sender="",
        recipients=("a@partner.test", "b@partner.test"),
        size=2500,
        submitted=1_700_000_000.0,
        expires=1_700_172_800.0,
        next_retry=1_700_000_600.0 if attempts else 0.0,
        attempts=attempts,
        frozen=frozen,
        last_error="451 4.3.0 busy" if attempts else "",
        message_id="",
    )


def test_models_pass_the_model_tester_while_they_change(qtmodeltester: Any) -> None:
    hops = QueueListModel()
    one = HopView("partner.test", HopState.RETRY, (_message("m1", attempts=1),), "451", 1.0)
    two = HopView("other.test", HopState.FROZEN, (), "", 0.0)
    hops.set_rows([one, two])
    qtmodeltester.check(hops)
    hops.set_rows([two])
    qtmodeltester.check(hops)
    assert hops.display(two, QueueListModel.COL_SIZE) == "0 KB"
    assert hops.display(two, QueueListModel.COL_NEXT_RETRY) == ""  # none, not 1970
    messages = QueueMessageModel()
    messages.set_rows([_message("m1", attempts=1), _message("m2", frozen=True)])
    qtmodeltester.check(messages)
    first, second = messages.rows()
    assert messages.display(first, QueueMessageModel.COL_SENDER) == "<>"  # the null sender
    assert messages.display(first, QueueMessageModel.COL_STATE) == "Retry"
    assert messages.display(second, QueueMessageModel.COL_STATE) == "Frozen"
    assert messages.display(second, QueueMessageModel.COL_NEXT_RETRY) == ""
    assert messages.display(first, QueueMessageModel.COL_SIZE) == "2 KB"
    assert messages.sort_value(first, QueueMessageModel.COL_SIZE) == 2500


def test_queues_pane_and_find_messages_render(
    qtbot: QtBot, live: MainWindow, dialogs: DialogDriver
) -> None:
    view = deferred_in_the_pane(qtbot, live, "Picture")
    live.resize(1100, 420)
    qtbot.wait(50)
    assert live.grab().save("/tmp/queues.png")

    def picture(dialog: QueueMessagesDialog) -> None:
        dialog.list.setCurrentIndex(dialog.model.index(0, 0))
        qtbot.wait(50)
        assert dialog.grab().save("/tmp/queue_messages.png")
        dialog.reject()

    dialogs.expect(QueueMessagesDialog, picture)
    index = row_index(live, HOP)
    view.activate(live.proxy.mapToSource(index).row())  # as a double-click does
