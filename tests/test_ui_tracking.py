"""Tools > Message Tracking Center: the log's queries, and finding a delivery and a rejection
made by the real SMTP service through the console's widgets."""

from __future__ import annotations

import smtplib
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING

import pytest
from PySide6.QtCore import QDateTime, QModelIndex, Qt
from pytestqt.qtbot import QtBot

from app import rus
from app.directory import recipients
from app.settings import parse_host_port
from app.store import Store
from app.store import tracking as log_rows
from app.store.tracking import TrackingQuery, TrackingRow, time_text
from tests.ui_support import (
    DialogDriver,
    menu_texts,
    right_click_tree,
    type_text,
)
from ui.dialogs.tracking import RANGE_BACKWARDS, MessageHistoryDialog, TrackingSearchDialog
from ui.main_window import MainWindow
from ui.models.tracking import TrackingEventModel
from ui.views.tracking import PAGE_SIZE, MessageTrackingView

if TYPE_CHECKING:
    from tests.conftest import SmtpProbe  # the fixture's type, not the fixture

TRACKING = "tools/message-tracking"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def entry(minutes: int, event: str = "delivered", **fields: object) -> TrackingRow:
    values: dict[str, object] = {
        "sender": "ann@partner.example",
        "recipients": ("jsmith@example.com",),
        "message_id": "<1@partner.example>",
        "client": "192.0.2.1",
        "code": 250,
        "reason": "mailbox jsmith",
    }
    values.update(fields)
    return TrackingRow(time=time_text(T0 + timedelta(minutes=minutes)), event=event, **values)  # type: ignore[arg-type]


@pytest.fixture
def logged(store: Store) -> Store:
    log_rows.append_rows(
        store.connection(),
        [
            entry(0, "received", recipients=("jsmith@example.com", "bwayne@example.com")),
            entry(1, "delivered"),
            entry(2, "rejected", sender="spam@bad.example", recipients=("nobody@example.com",),
                  message_id="", code=550, reason="5.1.1 <nobody@example.com>: User unknown"),
            entry(3, "session-opened", sender="", recipients=(), message_id="", code=None),
            entry(4, "received", sender="", message_id="<2@example.com>"),
            entry(5, "received", message_id="", reason="to mailbox jsmith [id 7F3A01]"),
            entry(6, "delivered", message_id="", reason="mailbox jsmith (17.M1) [id 7F3A01]"),
        ],
    )  # fmt: skip
    return store


# -- the queries behind the view -------------------------------------------------------------


def ids(rows: list[TrackingRow]) -> list[int | None]:
    return [row.id for row in rows]


def test_query_by_sender_recipient_and_message_id_any_case(logged: Store) -> None:
    conn = logged.connection()
    assert ids(log_rows.query(conn, TrackingQuery())) == [7, 6, 5, 4, 3, 2, 1], "newest first"
    assert ids(log_rows.query(conn, TrackingQuery(sender="ANN@"))) == [7, 6, 2, 1]
    assert ids(log_rows.query(conn, TrackingQuery(recipient="bwayne"))) == [1]
    assert ids(log_rows.query(conn, TrackingQuery(recipient="nobody@example.com"))) == [3]
    assert ids(log_rows.query(conn, TrackingQuery(message_id="2@example"))) == [5]
    assert ids(log_rows.query(conn, TrackingQuery(events=("rejected", "failed")))) == [3]
    both = TrackingQuery(sender="ann", recipient="jsmith", events=("delivered",))
    assert ids(log_rows.query(conn, both)) == [7, 2]
    assert log_rows.query(conn, TrackingQuery(sender="nobody-sent-this")) == []
    rejected = log_rows.query(conn, TrackingQuery(events=("rejected",)))[0]
    assert (rejected.code, rejected.reason) == (550, "5.1.1 <nobody@example.com>: User unknown")
    assert rejected.recipients == ("nobody@example.com",)


def test_query_by_time_range(logged: Store) -> None:
    conn = logged.connection()
    since = time_text(T0 + timedelta(minutes=1))
    until = time_text(T0 + timedelta(minutes=3))
    assert ids(log_rows.query(conn, TrackingQuery(since=since))) == [7, 6, 5, 4, 3, 2]
    assert ids(log_rows.query(conn, TrackingQuery(until=until))) == [3, 2, 1], "until excluded"
    assert ids(log_rows.query(conn, TrackingQuery(since=since, until=until))) == [3, 2]
    # Any time zone, compared as UTC.
    local = (T0 + timedelta(minutes=4)).astimezone(UTC).astimezone()
    assert ids(log_rows.query(conn, TrackingQuery(since=time_text(local)))) == [7, 6, 5]


def test_a_time_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        time_text(datetime(2026, 3, 1, 12, 0))


def test_paging_and_following_the_log(logged: Store) -> None:
    conn = logged.connection()
    assert ids(log_rows.query(conn, TrackingQuery(), limit=2)) == [7, 6]
    assert ids(log_rows.query(conn, TrackingQuery(), before_id=4, limit=2)) == [3, 2]
    assert ids(log_rows.query(conn, TrackingQuery(), after_id=5)) == [7, 6]
    assert log_rows.last_id(conn) == 7
    history = log_rows.message_history(conn, "<1@partner.example>")
    assert [(row.id, row.event) for row in history] == [(1, "received"), (2, "delivered")]
    assert log_rows.message_history(conn, "") == []


def test_a_message_without_a_message_id_is_followed_by_its_queue_id(logged: Store) -> None:
    conn = logged.connection()
    [delivered] = log_rows.query(conn, TrackingQuery(message_id="", events=("delivered",)), limit=1)
    assert log_rows.queue_id_of(delivered) == "7F3A01"
    history = log_rows.queue_history(conn, "7F3A01")
    assert [(row.id, row.event) for row in history] == [(6, "received"), (7, "delivered")]
    refused = log_rows.query(conn, TrackingQuery(events=("rejected",)))[0]
    assert log_rows.queue_id_of(refused) == ""
    assert log_rows.queue_history(conn, "") == []
    assert log_rows.queue_history(conn, "7F%") == [], "a pattern is not a queue id"


def test_an_empty_log(store: Store) -> None:
    assert log_rows.last_id(store.connection()) == 0
    assert log_rows.query(store.connection(), TrackingQuery()) == []


# -- the view ----------------------------------------------------------------------------------


def tracking_view(qtbot: QtBot, window: MainWindow) -> MessageTrackingView:
    window.select_node(TRACKING)
    view = window.current
    assert isinstance(view, MessageTrackingView)
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=10_000)
    return view


def column(window: MainWindow, number: int) -> list[str]:
    proxy = window.proxy
    return [proxy.index(row, number).data() for row in range(proxy.rowCount())]


def test_find_the_delivery_and_a_rejection_made_by_the_smtp_service(
    qtbot: QtBot,
    store: Store,
    live_window: MainWindow,
    dialogs: DialogDriver,
    qtmodeltester,
    smtp_accepts: SmtpProbe,
) -> None:  # type: ignore[no-untyped-def]
    window = live_window
    recipients.create_recipient(store, "jsmith", attributes={"displayName": "John Smith"})
    rus.run(store)
    host, port = parse_host_port(window.console.smtp.addresses[0])
    qtbot.waitUntil(lambda: smtp_accepts(host, port, "jsmith@example.com"), timeout=5000)
    view = tracking_view(qtbot, window)
    probes = len(column(window, TrackingEventModel.COL_EVENT))

    message = EmailMessage()
    message["From"] = "ann@partner.example"
    message["To"] = "jsmith@example.com, nobody@example.com"
    message["Subject"] = "Tracked"
    message["Message-ID"] = "<tracked-1@partner.example>"
    message.set_content("Track me.\n")
    with smtplib.SMTP(host, port, timeout=10) as client:
        refused = client.send_message(message)
    assert refused == {
        "nobody@example.com": (
            550,
            b"5.1.1 <nobody@example.com>: Recipient address rejected: User unknown",
        )
    }

    # The new entries appear by themselves.
    def logged_here() -> bool:
        ids = column(window, TrackingEventModel.COL_MESSAGE_ID)
        return ids.count("<tracked-1@partner.example>") == 2 and len(ids) >= probes + 3

    qtbot.waitUntil(logged_here, timeout=10_000)
    qtmodeltester.check(view.list_model)

    # Find Messages: the rejected recipient.
    def search(dialog: TrackingSearchDialog) -> None:
        type_text(qtbot, dialog.recipient_edit, "NOBODY@example")
        qtbot.mouseClick(dialog.find_button, Qt.MouseButton.LeftButton)

    dialogs.expect(TrackingSearchDialog, search)
    with qtbot.waitSignal(view.searched, timeout=10_000):
        view.find.trigger()
    assert column(window, TrackingEventModel.COL_EVENT) == ["Rejected"]
    assert column(window, TrackingEventModel.COL_CODE) == ["550"]
    assert column(window, TrackingEventModel.COL_REASON) == [
        "5.1.1 <nobody@example.com>: Recipient address rejected: User unknown"
    ]
    assert column(window, TrackingEventModel.COL_SENDER) == ["ann@partner.example"]
    assert window.result.title.text().startswith(
        "Message Tracking Center     1 entry - recipient contains 'NOBODY@example'"
    )

    # Find Messages: everything about the message, by its Message-ID.
    def by_message_id(dialog: TrackingSearchDialog) -> None:
        assert dialog.recipient_edit.text() == "NOBODY@example", "the last search is kept"
        qtbot.mouseClick(dialog.clear_button, Qt.MouseButton.LeftButton)
        type_text(qtbot, dialog.message_id_edit, "tracked-1@")
        qtbot.mouseClick(dialog.find_button, Qt.MouseButton.LeftButton)

    dialogs.expect(TrackingSearchDialog, by_message_id)
    with qtbot.waitSignal(view.searched, timeout=10_000):
        view.find.trigger()
    assert sorted(column(window, TrackingEventModel.COL_EVENT)) == ["Delivered", "Received"]

    # Double-click the delivery: its history.
    seen: dict[str, object] = {}

    def history(dialog: MessageHistoryDialog) -> None:
        qtbot.waitUntil(lambda: dialog.entries.rowCount() == 2, timeout=10_000)
        qtmodeltester.check(dialog.entries)
        seen["reply"] = dialog.fields["Reply"].text()
        seen["recipients"] = dialog.fields["Recipients"].text()
        seen["events"] = [dialog.entries.index(r, 1).data() for r in range(2)]
        dialog.reject()

    dialogs.expect(MessageHistoryDialog, history)
    delivered_row = column(window, TrackingEventModel.COL_EVENT).index("Delivered")
    index = window.proxy.index(delivered_row, 0)
    rect = window.result_list.visualRect(index)
    qtbot.mouseClick(window.result_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(window.result_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: "events" in seen, timeout=10_000)
    assert str(seen["reply"]).startswith("250 mailbox jsmith (")
    assert seen["recipients"] == "jsmith@example.com"
    assert seen["events"] == ["Received", "Delivered"]

    # Show All Messages goes back to the newest of everything.
    with qtbot.waitSignal(view.searched, timeout=10_000):
        view.show_all.trigger()
    assert not view.show_all.isEnabled()
    assert "Rejected" in column(window, TrackingEventModel.COL_EVENT)


def test_entries_written_by_another_process_appear(
    qtbot: QtBot, window: MainWindow, logged: Store
) -> None:
    view = tracking_view(qtbot, window)
    assert len(column(window, 0)) == 6, "message events only: no sessions"
    # As postroom serve would: a row in the log, no change counter, no signal in this console.
    log_rows.append_rows(
        logged.connection(),
        [entry(10, "rejected", recipients=("x@example.net",), code=550, reason="5.7.1 relay")],
    )
    qtbot.waitUntil(lambda: len(column(window, 0)) == 7, timeout=5000)
    events = column(window, TrackingEventModel.COL_EVENT)
    assert events == [
        "Rejected",
        "Delivered",
        "Received",
        "Received",
        "Rejected",
        "Delivered",
        "Received",
    ], "newest first"
    assert view.list_model.newest_id() == 8


def test_a_time_range_that_ends_before_it_starts_is_refused(
    qtbot: QtBot, window: MainWindow, logged: Store, dialogs: DialogDriver
) -> None:
    view = tracking_view(qtbot, window)
    before = column(window, 0)
    seen: dict[str, object] = {}

    def backwards(dialog: TrackingSearchDialog) -> None:
        dialog.use_since.setChecked(True)
        dialog.use_until.setChecked(True)
        dialog.since.setDateTime(QDateTime.currentDateTime())
        dialog.until.setDateTime(QDateTime.currentDateTime().addDays(-2))
        seen["feedback"] = dialog.feedback.text()
        seen["enabled"] = dialog.find_button.isEnabled()
        qtbot.keyClick(dialog, Qt.Key.Key_Return)
        seen["still open"] = dialog.isVisible()
        dialog.reject()

    dialogs.expect(TrackingSearchDialog, backwards)
    view.find.trigger()
    assert seen == {"feedback": RANGE_BACKWARDS, "enabled": False, "still open": True}
    assert view.criteria.since == "" and column(window, 0) == before


def test_search_by_time_range_and_all_events(
    qtbot: QtBot, window: MainWindow, logged: Store, dialogs: DialogDriver
) -> None:
    view = tracking_view(qtbot, window)

    def between(dialog: TrackingSearchDialog) -> None:
        dialog.use_since.setChecked(True)
        dialog.use_until.setChecked(True)
        dialog.since.setDateTime(QDateTime.fromSecsSinceEpoch(int(T0.timestamp()) + 60))
        dialog.until.setDateTime(QDateTime.fromSecsSinceEpoch(int(T0.timestamp()) + 240))
        dialog.events.setCurrentIndex(dialog.events.findText("Everything, with connections"))
        qtbot.mouseClick(dialog.find_button, Qt.MouseButton.LeftButton)

    dialogs.expect(TrackingSearchDialog, between)
    with qtbot.waitSignal(view.searched, timeout=10_000):
        view.find.trigger()
    assert sorted(column(window, TrackingEventModel.COL_EVENT)) == [
        "Delivered",
        "Rejected",
        "Session opened",
    ]
    assert "with sessions" in window.result.title.text()


def test_a_long_log_comes_a_page_at_a_time(
    qtbot: QtBot, window: MainWindow, store: Store, qtmodeltester
) -> None:  # type: ignore[no-untyped-def]
    log_rows.append_rows(
        store.connection(),
        [entry(n, reason=f"mailbox jsmith #{n}") for n in range(PAGE_SIZE * 2 + 100)],
    )
    view = tracking_view(qtbot, window)
    model = view.list_model
    assert model.rowCount() == PAGE_SIZE and model.canFetchMore(QModelIndex())
    assert "scroll down for older ones" in window.result.title.text()
    qtmodeltester.check(model)
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=10_000)
    while model.canFetchMore(QModelIndex()) or view.is_busy():
        if model.canFetchMore(QModelIndex()):
            with qtbot.waitSignal(view.searched, timeout=10_000):
                window.result_list.scrollToBottom()
                model.fetchMore(QModelIndex())
        else:
            qtbot.waitUntil(lambda: not view.is_busy(), timeout=10_000)
    assert model.rowCount() == PAGE_SIZE * 2 + 100
    assert len({row.id for row in model.rows()}) == model.rowCount(), "no entry twice"


def test_the_node_menu(qtbot: QtBot, window: MainWindow) -> None:
    tracking_view(qtbot, window)
    menu = right_click_tree(qtbot, window, TRACKING)
    assert menu_texts(menu) == [
        "Find Messages...",
        "Show All Messages",
        "Refresh",
        "Export List...",
    ]
    assert window.node_of(TRACKING).parent is window.node_of("tools")
    menu.close()


def open_history(qtbot: QtBot, window: MainWindow, row: int) -> None:
    index = window.proxy.index(row, 0)
    rect = window.result_list.visualRect(index)
    qtbot.mouseClick(window.result_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(window.result_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_history_of_a_message_without_a_message_id_and_of_a_refusal(
    qtbot: QtBot, window: MainWindow, logged: Store, dialogs: DialogDriver
) -> None:
    tracking_view(qtbot, window)
    seen: list[tuple[str, list[str], str]] = []

    def history(dialog: MessageHistoryDialog) -> None:
        qtbot.waitUntil(lambda: dialog.entries.rowCount() > 0, timeout=10_000)
        events = [dialog.entries.index(r, 1).data() for r in range(dialog.entries.rowCount())]
        seen.append((dialog.history_label.text(), events, dialog.fields["Message-ID"].text()))
        dialog.reject()

    dialogs.expect(MessageHistoryDialog, history)
    open_history(qtbot, window, column(window, TrackingEventModel.COL_EVENT).index("Delivered"))
    qtbot.waitUntil(lambda: len(seen) == 1, timeout=10_000)
    dialogs.expect(MessageHistoryDialog, history)
    open_history(qtbot, window, column(window, TrackingEventModel.COL_EVENT).index("Rejected"))
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=10_000)
    assert seen == [
        ("Every entry of this message, oldest first (2):", ["Received", "Delivered"], "(none)"),
        (
            "This entry belongs to no message: the command was refused before a message was sent.",
            ["Rejected"],
            "(none)",
        ),
    ]
