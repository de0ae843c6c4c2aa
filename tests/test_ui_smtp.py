"""The Default SMTP Virtual Server in the console: Start / Stop, a taken port, Properties,
Current Sessions."""

from __future__ import annotations

import smtplib
import socket
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
