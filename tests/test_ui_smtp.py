"""The Default SMTP Virtual Server in the console: Start / Stop, a taken port, Properties,
Current Sessions."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from pytestqt.qtbot import QtBot

from app.settings import load_settings, parse_host_port, save_settings
from app.store import Store
from tests.ui_support import (
    DialogDriver,
    click_menu_item,
    menu_texts,
    right_click_tree,
    type_text,
)
from ui.dialogs.smtp import SmtpServerDialog
from ui.main_window import MainWindow
from ui.views.sessions import CurrentSessionsView
from ui.views.smtp import SmtpVirtualServerView

if TYPE_CHECKING:
    from tests.conftest import ConsoleOpener, Prompts  # fixtures' types, not the fixtures

SERVER = "servers/host/protocols/smtp/default"
SESSIONS = "servers/host/protocols/smtp/default/sessions"


def server_view(window: MainWindow) -> SmtpVirtualServerView:
    window.select_node(SERVER)
    view = window.current
    assert isinstance(view, SmtpVirtualServerView)
    return view


def test_stop_and_start_from_the_context_menu(qtbot: QtBot, live_window: MainWindow) -> None:
    window = live_window
    smtp = window.console.smtp
    listen = smtp.addresses[0]
    assert window.smtp_status.text() == f"SMTP: running on {listen}"
    view = server_view(window)
    assert not view.start.isEnabled() and view.stop.isEnabled()
    assert view.pause.isEnabled()

    menu = right_click_tree(qtbot, window, SERVER)
    assert menu_texts(menu)[:3] == ["Start", "Stop", "Pause"]
    click_menu_item(qtbot, menu, "Stop")
    qtbot.waitUntil(lambda: smtp.state == "stopped", timeout=15_000)
    assert window.smtp_status.text() == "SMTP: stopped"
    host, port = parse_host_port(listen)
    with socket.socket() as probe:
        assert probe.connect_ex((host, port)) != 0, "nothing listens any more"
    assert view.start.isEnabled() and not view.stop.isEnabled()

    menu = right_click_tree(qtbot, window, SERVER)
    click_menu_item(qtbot, menu, "Start")
    qtbot.waitUntil(lambda: smtp.state == "running", timeout=15_000)
    with smtplib.SMTP(host, port, timeout=10) as client:
        assert client.noop()[0] == 250


def test_a_taken_port_is_a_clear_message(
    qtbot: QtBot, window: MainWindow, store: Store, prompts: Prompts
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        save_settings(store, listen=[f"127.0.0.1:{port}"])
        view = server_view(window)
        view.start.trigger()
        qtbot.waitUntil(lambda: bool(prompts.errors), timeout=10_000)
    assert prompts.errors == [
        f"Cannot listen on 127.0.0.1:{port}: the address is already in use (another postroom "
        "serve, the console, or another mail server listens there). Stop that program or "
        "choose another address with --listen HOST:PORT."
    ]
    assert window.console.smtp.state == "stopped"
    assert window.smtp_status.text() == "SMTP: stopped (could not start)"
    assert view.start.isEnabled(), "the administrator can try again"


def test_properties_save_the_settings(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver
) -> None:
    def edit(sheet: SmtpServerDialog) -> None:
        assert [sheet.tabs.tabText(i) for i in range(sheet.tabs.count())] == [
            "General",
            "Access",
            "Messages",
            "Delivery",
        ]
        assert sheet.general.listen.text() == "127.0.0.1:2525"
        assert not sheet.apply_button.isEnabled()
        sheet.general.max_connections.setValue(20)
        assert sheet.apply_button.isEnabled()
        sheet.tabs.setCurrentWidget(sheet.access)
        assert sheet.access.auth_relay.isChecked()
        assert sheet.access.auth_relay.text().startswith(
            "Allow all computers which successfully authenticate to relay"
        )
        type_text(qtbot, sheet.access.relay_ips, "192.0.2.0/24")
        sheet.tabs.setCurrentWidget(sheet.messages_page)
        assert sheet.messages_page.max_size.value() == 25
        sheet.messages_page.max_size.setValue(10)
        sheet.messages_page.max_received.setValue(40)
        sheet.ok_button.click()

    dialogs.expect(SmtpServerDialog, edit)
    server_view(window).properties([])
    settings = load_settings(store)
    assert settings.max_connections == 20
    assert settings.relay_ips == ["192.0.2.0/24"]
    assert settings.max_message_size == 10 * 1024 * 1024
    assert settings.max_received == 40


def test_properties_refuse_a_bad_listen_address_and_save_nothing(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    before = load_settings(store)

    def edit(sheet: SmtpServerDialog) -> None:
        type_text(qtbot, sheet.general.listen, "127.0.0.1:99999")
        sheet.general.max_connections.setValue(7)
        sheet.ok_button.click()
        assert sheet.isVisible()
        assert sheet.general.listen.text() == "127.0.0.1:99999"
        sheet.reject()

    dialogs.expect(SmtpServerDialog, edit)
    server_view(window).properties([])
    assert prompts.errors == [
        "listen: '127.0.0.1:99999' is not a listen address. Write HOST:PORT, e.g. "
        "127.0.0.1:2525 or [::1]:2525."
    ]
    assert load_settings(store) == before


def test_current_sessions_lists_a_connected_client(qtbot: QtBot, live_window: MainWindow) -> None:
    window = live_window
    window.select_node(SESSIONS)
    view = window.current
    assert isinstance(view, CurrentSessionsView)
    assert window.proxy.rowCount() == 0
    host, port = parse_host_port(window.console.smtp.addresses[0])
    client = smtplib.SMTP(host, port, timeout=10)
    try:
        client.ehlo("client.test")
        qtbot.waitUntil(lambda: window.proxy.rowCount() == 1, timeout=5000)
        assert window.proxy.index(0, 0).data() == "127.0.0.1"
        assert window.proxy.index(0, 1).data() == "Anonymous"
        assert "1 session" in window.result.title.text()
    finally:
        client.quit()
    qtbot.waitUntil(lambda: window.proxy.rowCount() == 0, timeout=5000)


def test_the_service_stops_when_the_window_closes(qtbot: QtBot, live_window: MainWindow) -> None:
    host, port = parse_host_port(live_window.console.smtp.addresses[0])
    from ui.app import close_window

    close_window(live_window)
    with socket.socket() as probe:
        assert probe.connect_ex((host, port)) != 0


def test_autostart_off_leaves_the_service_stopped(
    qtbot: QtBot,
    store: Store,
    open_console: ConsoleOpener,
    free_port: int,
    prompts: Prompts,
) -> None:
    save_settings(store, autostart=False, listen=[f"127.0.0.1:{free_port}"])
    shown = open_console(services=True, show=False)
    qtbot.wait(200)  # the service is not started: nothing to wait for but time
    assert shown.console.smtp.state == "stopped"
    assert shown.smtp_status.text() == "SMTP: stopped"


def test_pause_refuses_new_clients_and_start_resumes(qtbot: QtBot, live_window: MainWindow) -> None:
    window = live_window
    smtp = window.console.smtp
    listen = smtp.addresses[0]
    host, port = parse_host_port(listen)
    view = server_view(window)

    menu = right_click_tree(qtbot, window, SERVER)
    click_menu_item(qtbot, menu, "Pause")
    assert smtp.state == "paused"
    assert window.smtp_status.text().startswith(f"SMTP: paused on {listen}")
    assert view.start.isEnabled() and view.stop.isEnabled() and not view.pause.isEnabled()
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtplib.SMTP(host, port, timeout=10)
    assert refused.value.smtp_code == 421

    menu = right_click_tree(qtbot, window, SERVER)
    click_menu_item(qtbot, menu, "Start")
    assert smtp.state == "running" and not view.start.isEnabled()
    with smtplib.SMTP(host, port, timeout=10) as client:
        assert client.noop()[0] == 250


# --- Delivery and the NDR copy -------------------------------------------------------------------


def test_delivery_page_shows_exchanges_defaults_and_saves_edits(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver
) -> None:
    def edit(sheet: SmtpServerDialog) -> None:
        page = sheet.delivery
        sheet.tabs.setCurrentWidget(page)
        assert [edit.box("minutes").value() for edit in page.retries] == [15, 30, 60, 240]
        assert not any(edit.box("seconds").isVisibleTo(page) for edit in page.retries)
        delay, expiry = page.delay_notification, page.expiration_timeout
        assert [delay.box(unit).value() for unit in ("days", "hours", "minutes")] == [0, 12, 0]
        assert [expiry.box(unit).value() for unit in ("days", "hours", "minutes")] == [2, 0, 0]
        assert expiry.box("days").text() == "2 days"
        assert page.outbound_connections.value() == 1000
        assert page.per_domain.value() == 100
        assert page.outbound_timeout.box("minutes").text() == "10 minutes"
        assert page.outbound_port.value() == 25
        assert page.fqdn.text() == "" and page.smart_host.text() == ""
        assert not sheet.apply_button.isEnabled()

        page.retries[0].box("minutes").setValue(5)
        assert sheet.apply_button.isEnabled()
        page.retries[3].box("minutes").setValue(120)
        expiry.box("days").setValue(3)
        expiry.box("hours").setValue(6)
        delay.box("hours").setValue(4)
        delay.box("minutes").setValue(30)
        page.per_domain.setValue(20)
        page.outbound_timeout.box("minutes").setValue(2)
        page.outbound_port.setValue(2526)
        type_text(qtbot, page.fqdn, "mx.example.com")
        type_text(qtbot, page.smart_host, "relay.isp.example")
        sheet.tabs.setCurrentWidget(sheet.messages_page)
        type_text(qtbot, sheet.messages_page.ndr_copy_to, "Admin@Example.com")
        sheet.apply_button.click()
        assert not sheet.apply_button.isEnabled()
        assert sheet.messages_page.ndr_copy_to.text() == "Admin@example.com", "as stored"
        sheet.ok_button.click()

    dialogs.expect(SmtpServerDialog, edit)
    server_view(window).properties([])
    dialogs.check()
    settings = load_settings(store)
    assert settings.retry_intervals == [300, 1800, 3600, 7200]
    assert settings.delay_notification == 4 * 3600 + 30 * 60
    assert settings.expiration_timeout == 3 * 86400 + 6 * 3600
    assert settings.outbound_connections_per_domain == 20
    assert settings.outbound_timeout == 120
    assert settings.outbound_port == 2526
    assert settings.fqdn == "mx.example.com"
    assert settings.smart_host == "relay.isp.example"
    assert settings.ndr_copy_to == "Admin@example.com"


def test_delivery_page_keeps_seconds_it_cannot_show_in_minutes(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver
) -> None:
    save_settings(
        store,
        retry_intervals="1,30m,1h,4h",
        delay_notification="90s",
        expiration_timeout="1d12h",
        outbound_timeout="3",
    )

    def edit(sheet: SmtpServerDialog) -> None:
        page = sheet.delivery
        sheet.tabs.setCurrentWidget(page)
        first = page.retries[0]
        assert first.box("seconds").isVisibleTo(page)
        assert (first.box("minutes").value(), first.box("seconds").text()) == (0, "1 second")
        assert not page.retries[1].box("seconds").isVisibleTo(page)
        delay = page.delay_notification
        assert delay.box("minutes").text() == "1 minute"
        assert delay.box("seconds").value() == 30
        assert page.expiration_timeout.box("days").text() == "1 day"
        assert page.expiration_timeout.box("hours").value() == 12
        assert page.outbound_timeout.box("seconds").value() == 3
        page.outbound_port.setValue(2527)  # an edit elsewhere on the page
        sheet.ok_button.click()

    dialogs.expect(SmtpServerDialog, edit)
    server_view(window).properties([])
    dialogs.check()
    settings = load_settings(store)
    assert settings.retry_intervals == [1, 1800, 3600, 14400]
    assert (settings.delay_notification, settings.expiration_timeout) == (90, 129600)
    assert settings.outbound_timeout == 3
    assert settings.outbound_port == 2527


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda sheet: sheet.delivery.delay_notification.box("days").setValue(3),
            "The expiration timeout (2 days) must be longer than the delay notification "
            "(3 days 12 hours): lengthen expiration_timeout or shorten delay_notification.",
        ),
        (
            lambda sheet: sheet.delivery.retries[2].box("minutes").setValue(0),
            "retry_intervals: The third retry interval of 0 seconds is refused: use at least "
            "1 second.",
        ),
        (
            lambda sheet: sheet.delivery.outbound_timeout.box("minutes").setValue(0),
            "outbound_timeout: An outbound time-out of 0 seconds is refused: use at least "
            "1 second.",
        ),
        (
            lambda sheet: sheet.delivery.outbound_connections.setValue(50),
            "The outbound connections per domain (100) may not exceed the outbound connection "
            "limit (50): lower outbound_connections_per_domain or raise outbound_connections.",
        ),
        (
            lambda sheet: sheet.messages_page.ndr_copy_to.setText("postmaster"),
            "ndr_copy_to: The address 'postmaster' has no '@'; enter it as local-part@domain, "
            "e.g. jsmith@example.com.",
        ),
    ],
)
def test_delivery_refuses_bad_input_with_one_message_and_saves_nothing(
    qtbot: QtBot,
    window: MainWindow,
    store: Store,
    dialogs: DialogDriver,
    prompts: Prompts,
    change: Callable[[SmtpServerDialog], None],
    message: str,
) -> None:
    before = load_settings(store)

    def edit(sheet: SmtpServerDialog) -> None:
        sheet.delivery.outbound_port.setValue(2600)  # a good edit that must not be saved alone
        change(sheet)
        sheet.apply_button.click()
        assert sheet.isVisible() and sheet.apply_button.isEnabled()
        assert sheet.delivery.outbound_port.value() == 2600, "what was typed stays"
        sheet.ok_button.click()
        assert sheet.isVisible()
        sheet.reject()

    dialogs.expect(SmtpServerDialog, edit)
    server_view(window).properties([])
    dialogs.check()
    assert prompts.errors == [message, message]
    assert load_settings(store) == before
