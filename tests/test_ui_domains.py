"""Recipients > Domains: every policy domain with its type, the owning policy's sheet, and the DNS
column filled from a real loopback DNS responder without blocking the GUI thread."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import dns.reversename
import pytest
from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from app import policies
from app.dkim.catalog import prepare_keys
from app.dkim.keys import rotate
from app.dkim.published import zone_line
from app.settings import save_settings
from app.store import Store
from tests.conftest import ROOT
from tests.dkim_support import owner, publish, published_dkim, withdraw
from tests.dns_responder import DnsResponder, Mode, serving
from tests.ui_support import (
    DialogDriver,
    click_menu_item,
    double_click_row,
    menu_texts,
    right_click_row,
    right_click_tree,
    row_index,
    select_row,
)
from ui.dialogs.domain_dns import DomainDnsDialog
from ui.dialogs.policy import PolicyDialog
from ui.main_window import MainWindow
from ui.models.domains import (
    CHECKING,
    DELIVERED_HERE,
    NOT_CHECKED,
    NOT_CHECKED_ROUTE,
    DomainListModel,
)
from ui.views.domains import DomainsView

if TYPE_CHECKING:
    from tests.conftest import Prompts  # the fixture's type, not the fixture

DOMAINS = "recipients/domains"

ZONE = f"""
$TTL 300
mail.example.org.           A     192.0.2.10
{dns.reversename.from_address("192.0.2.10").to_text()} PTR mail.example.org.

example.com.                MX    10 mail.example.org.
example.com.                TXT   "v=spf1 mx -all"
_dmarc.example.com.         TXT   "v=DMARC1; p=none"

partner.example.            MX    10 mx.partner.example.
partner.example.            TXT   "v=spf1 mx -all"
_dmarc.partner.example.     TXT   "v=DMARC1; p=none"
mx.partner.example.         A     192.0.2.20

loop.example.               MX    10 mail.example.org.
loop.example.               TXT   "v=spf1 mx -all"
"""


@pytest.fixture(scope="module")
def responder() -> Iterator[DnsResponder]:
    with serving(ZONE) as server:
        yield server


@pytest.fixture
def silent() -> Iterator[DnsResponder]:
    with serving(ZONE, Mode.SILENT) as server:
        yield server


@pytest.fixture
def hosted(store: Store) -> Store:
    """example.com (Default Policy), partner.example and loop.example shared on 'Partners',
    and old.example on a rule nobody selected."""
    policies.create_policy(store, "Partners", "(company=Partner)")
    policies.add_rule(store, "Partners", "@partner.example", responsible=False)
    policies.add_rule(store, "Partners", "@loop.example", responsible=False)
    policies.add_rule(store, "Partners", "@example.com")
    policies.add_rule(store, "Default Policy", "@old.example", enabled=False)
    return store


def use_dns(store: Store, server: DnsResponder, timeout: int = 2) -> None:
    host, port = server.address
    save_settings(
        store,
        nameservers=[f"{host}:{port}"],
        public_name="mail.example.org",
        public_addresses=["192.0.2.10"],
        dns_timeout=timeout,
    )


def domains_view(window: MainWindow) -> DomainsView:
    window.select_node(DOMAINS)
    view = window.current
    assert isinstance(view, DomainsView)
    return view


def domains_view_with_keys(qtbot: QtBot, window: MainWindow) -> DomainsView:
    """The Domains view once its worker has read (or made) the DKIM keys of example.com."""
    view = domains_view(window)
    qtbot.waitUntil(lambda: "example.com" in view.dkim_keys, timeout=10_000)
    return view


def selector(store: Store) -> str:
    [entry] = [e for e in prepare_keys(store) if e.domain == "example.com"]
    return entry.keys[0].selector


def shown_rows(window: MainWindow) -> list[list[str]]:
    proxy = window.proxy
    return [
        [proxy.index(row, column).data() for column in range(proxy.columnCount())]
        for row in range(proxy.rowCount())
    ]


def cell(window: MainWindow, domain: str, column: int, role: int = Qt.ItemDataRole.DisplayRole):  # type: ignore[no-untyped-def]
    index = row_index(window, domain)
    return window.proxy.index(index.row(), column).data(role)


def check_dns_from_the_toolbar(qtbot: QtBot, window: MainWindow, view: DomainsView) -> None:
    button = window.toolbar.widgetForAction(view.check_dns)
    assert button is not None and button.isEnabled()
    with qtbot.waitSignal(view.checked, timeout=30_000):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


# -- the list ------------------------------------------------------------------------------------


def test_every_domain_of_every_policy_with_its_type(
    qtbot: QtBot, window: MainWindow, hosted: Store, qtmodeltester
) -> None:  # type: ignore[no-untyped-def]
    view = domains_view_with_keys(qtbot, window)
    qtmodeltester.check(view.list_model)
    unchecked = NOT_CHECKED_ROUTE.summary
    dkim = f"{selector(hosted)}: not checked"
    assert shown_rows(window) == [
        ["example.com", "Authoritative", "Partners, Default Policy", NOT_CHECKED, DELIVERED_HERE,
         dkim],
        ["loop.example", "Shared namespace", "Partners", NOT_CHECKED, unchecked, ""],
        ["old.example", "Not accepted", "Default Policy", NOT_CHECKED, "", ""],
        ["partner.example", "Shared namespace", "Partners", NOT_CHECKED, unchecked, ""],
    ]  # fmt: skip
    assert window.result.title.text() == "Domains     4 domains"
    assert window.node_of(DOMAINS).parent is window.node_of("recipients")

    # A shared domain with no smart host and no DNS answer yet has no confirmed route onward.
    partner = cell(window, "partner.example", 0, Qt.ItemDataRole.ToolTipRole)
    assert partner.startswith("No smart host is set and DNS has not been checked yet")
    old = cell(window, "old.example", 0, Qt.ItemDataRole.ToolTipRole)
    assert "refuses its mail (550 5.7.1 Unable to relay)" in old
    assert "select the address on the E-Mail Addresses tab of 'Default Policy'" in old
    assert cell(window, "example.com", 0, Qt.ItemDataRole.ToolTipRole) is None
    rows = {row.domain: row for row in view.list_model.rows()}
    assert [d for d, row in rows.items() if row.flagged] == [
        "loop.example",
        "old.example",
        "partner.example",
    ]


def test_idn_domains_are_shown_in_unicode(qtbot: QtBot, window: MainWindow, store: Store) -> None:
    policies.add_rule(store, "Default Policy", "@bücher.example")
    domains_view(window)
    assert [row[0] for row in shown_rows(window)] == ["bücher.example", "example.com"]


def test_the_list_follows_policy_changes_from_another_process(
    qtbot: QtBot, window: MainWindow, store: Store, data_dir
) -> None:  # type: ignore[no-untyped-def]
    domains_view(window)
    subprocess.run(
        [sys.executable, "-m", "app", "--data-dir", str(data_dir), "policy", "rule", "add",
         "Default Policy", "@later.example", "--not-responsible"],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    qtbot.waitUntil(lambda: window.proxy.rowCount() == 2, timeout=5000)
    assert shown_rows(window)[1][:2] == ["later.example", "Shared namespace"]


def test_double_click_opens_the_policy_that_owns_the_domain(
    qtbot: QtBot, window: MainWindow, hosted: Store, dialogs: DialogDriver
) -> None:
    domains_view(window)
    seen: list[str] = []

    def look(sheet: PolicyDialog) -> None:
        seen.append(sheet.windowTitle())
        sheet.reject()

    dialogs.expect(PolicyDialog, look)
    double_click_row(qtbot, window, "partner.example")
    qtbot.waitUntil(lambda: seen != [], timeout=5000)
    dialogs.expect(PolicyDialog, look)
    double_click_row(qtbot, window, "old.example")
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=5000)
    assert seen == ["Partners Properties", "Default Policy Properties"]


# -- DNS -----------------------------------------------------------------------------------------


def test_check_dns_fills_the_dns_column_from_a_real_dns_server(
    qtbot: QtBot, window: MainWindow, hosted: Store, responder: DnsResponder, qtmodeltester
) -> None:  # type: ignore[no-untyped-def]
    use_dns(hosted, responder)
    view = domains_view_with_keys(qtbot, window)
    with published_dkim(responder, hosted):
        check_dns_from_the_toolbar(qtbot, window, view)
    qtmodeltester.check(view.list_model)
    dns_column = {row[0]: row[3] for row in shown_rows(window)}
    assert dns_column["example.com"] == "OK (5 checks)"
    dkim_column = {row[0]: row[5] for row in shown_rows(window)}
    assert dkim_column["example.com"] == f"{selector(hosted)}: published"
    assert dkim_column["partner.example"] == ""  # shared: its other mail system signs
    assert dns_column["partner.example"] == (
        "Error: MX of partner.example names mx.partner.example (10), not this server "
        "(mail.example.org); its mail goes elsewhere."
    )
    assert dns_column["loop.example"].startswith("Warning: loop.example has no DMARC record")
    assert dns_column["old.example"].startswith("Error: ")
    tip = cell(window, "example.com", DomainListModel.COL_DNS, Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("Every check is OK.\nChecked at ")
    assert "DNS checked at" in window.result.title.text()

    # The route onward, from DNS: partner.example's MX is elsewhere; loop.example's is here.
    rows = {row.domain: row for row in view.list_model.rows()}
    assert not rows["partner.example"].flagged
    assert rows["partner.example"].route.text == "Onward by DNS to mx.partner.example."  # type: ignore[union-attr]
    assert rows["loop.example"].flagged
    loop_tip = cell(window, "loop.example", 0, Qt.ItemDataRole.ToolTipRole)
    assert loop_tip.startswith("DNS sends mail for loop.example to this server (mail.example.org)")
    assert "Set a smart host" in loop_tip


def test_check_dns_from_the_context_menu_checks_the_selected_domain(
    qtbot: QtBot, window: MainWindow, hosted: Store, responder: DnsResponder
) -> None:
    use_dns(hosted, responder)
    view = domains_view_with_keys(qtbot, window)
    menu = right_click_row(qtbot, window, "example.com")
    assert menu_texts(menu) == [
        "Check DNS", "DNS Details...", "Copy DNS Record", "Refresh", "Properties"
    ]  # fmt: skip
    with published_dkim(responder, hosted), qtbot.waitSignal(view.checked, timeout=30_000):
        click_menu_item(qtbot, menu, "Check DNS")
    dns_column = {row[0]: row[3] for row in shown_rows(window)}
    assert dns_column["example.com"] == "OK (5 checks)"
    assert dns_column["partner.example"] == NOT_CHECKED


def test_check_dns_never_blocks_the_gui_thread(
    qtbot: QtBot, window: MainWindow, store: Store, silent: DnsResponder
) -> None:
    use_dns(store, silent, timeout=1)
    view = domains_view(window)
    gaps: list[int] = []
    clock = QElapsedTimer()
    clock.start()
    probe = QTimer()
    probe.setInterval(5)

    def tick() -> None:
        gaps.append(clock.restart())

    probe.timeout.connect(tick)
    probe.start()
    started = time.monotonic()
    try:
        with qtbot.waitSignal(view.checked, timeout=30_000):
            view.check_dns.trigger()
            assert cell(window, "example.com", DomainListModel.COL_DNS) == CHECKING
            assert not view.check_dns.isEnabled()
            assert "running" in view.check_dns.toolTip()
            assert view.is_busy()
    finally:
        probe.stop()
    assert time.monotonic() - started > 0.9, "the check really waited for the silent server"
    assert len(gaps) > 50
    assert max(gaps[1:]) < 150, f"the GUI thread stalled for {max(gaps[1:])} ms"
    text = cell(window, "example.com", DomainListModel.COL_DNS)
    assert text.startswith("Unknown: "), text
    assert "missing" not in text.lower() and "no mx" not in text.lower()
    assert view.check_dns.isEnabled()


def test_dns_details_say_what_to_add_and_check_again(
    qtbot: QtBot,
    window: MainWindow,
    hosted: Store,
    responder: DnsResponder,
    dialogs: DialogDriver,
    qtmodeltester,
) -> None:  # type: ignore[no-untyped-def]
    use_dns(hosted, responder)
    view = domains_view(window)
    check_dns_from_the_toolbar(qtbot, window, view)
    select_row(qtbot, window, "loop.example")
    seen: dict[str, object] = {}

    def inspect(dialog: DomainDnsDialog) -> None:
        qtmodeltester.check(dialog.results)
        seen["title"] = dialog.windowTitle()
        seen["type"] = dialog.type_label.text()
        seen["route"] = dialog.route_label.text()
        checks = [dialog.results.index(row, 0).data() for row in range(dialog.results.rowCount())]
        seen["checks"] = checks
        seen["advice"] = dialog.advice.text()
        seen["record"] = dialog.record.toPlainText()
        with qtbot.waitSignal(view.checked, timeout=30_000):
            qtbot.mouseClick(dialog.check_button, Qt.MouseButton.LeftButton)
            seen["during"] = dialog.checked_label.text()
            seen["button during"] = dialog.check_button.isEnabled()
        seen["after"] = dialog.checked_label.text()
        dialog.reject()

    dialogs.expect(DomainDnsDialog, inspect)
    menu = right_click_row(qtbot, window, "loop.example")
    click_menu_item(qtbot, menu, "DNS Details...")
    qtbot.waitUntil(lambda: "after" in seen, timeout=30_000)
    assert seen["title"] == "loop.example DNS"
    assert seen["type"] == "Shared namespace"
    assert str(seen["route"]).startswith("DNS sends mail for loop.example to this server")
    assert seen["checks"] == [
        "MX records",
        "MX host",
        "SPF",
        "DMARC",
        "This server: IPv4 address",
        "This server: IPv6 address",
        "This server: reverse DNS (IPv4)",
    ]
    # The first finding that is not OK is selected: the missing DMARC record, with its record.
    assert "DMARC" in str(seen["advice"])
    assert seen["record"] == '_dmarc.loop.example. 3600 IN TXT "v=DMARC1; p=none"'
    assert (seen["during"], seen["button during"]) == (CHECKING, False)
    assert seen["after"] not in (CHECKING, "")


def test_a_dns_check_that_cannot_start_says_why(
    qtbot: QtBot, window: MainWindow, store: Store, prompts: Prompts, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from app.errors import PostroomError
    from ui.views import domains as domains_module

    def refuse(_settings: object) -> object:
        raise PostroomError("Nameserver 'x' is not an IP address.")

    monkeypatch.setattr(domains_module, "dns_config_from_settings", refuse)
    view = domains_view(window)
    view.check_dns.trigger()
    assert prompts.errors == ["Nameserver 'x' is not an IP address."]
    assert not view.is_busy()
    assert cell(window, "example.com", DomainListModel.COL_DNS) == NOT_CHECKED


def test_right_click_on_the_node_offers_check_dns(qtbot: QtBot, window: MainWindow) -> None:
    domains_view(window)
    menu = right_click_tree(qtbot, window, DOMAINS)
    assert menu_texts(menu) == ["Check DNS", "Refresh", "Export List..."]
    menu.close()


# -- DKIM ----------------------------------------------------------------------------------------


def test_dkim_column_says_the_record_is_missing_and_copy_dns_record_copies_it(
    qtbot: QtBot, window: MainWindow, hosted: Store, responder: DnsResponder, qtmodeltester
) -> None:  # type: ignore[no-untyped-def]
    use_dns(hosted, responder)
    view = domains_view_with_keys(qtbot, window)
    check_dns_from_the_toolbar(qtbot, window, view)
    qtmodeltester.check(view.list_model)
    [key] = prepare_keys(hosted)[0].keys
    assert cell(window, "example.com", DomainListModel.COL_DKIM) == (
        f"{key.selector}: record missing"
    )
    icon = cell(window, "example.com", DomainListModel.COL_DKIM, Qt.ItemDataRole.DecorationRole)
    assert icon is not None and not icon.isNull()
    tip = cell(window, "example.com", DomainListModel.COL_DKIM, Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith(f"Signs with: {key.record_name} (rsa), record missing")
    assert cell(window, "example.com", DomainListModel.COL_DNS).startswith(
        f"Error: {key.record_name} does not exist"
    )
    # A shared domain has no key: nothing to copy, and the action says why.
    select_row(qtbot, window, "partner.example")
    assert not view.copy_record.isEnabled()
    assert "only those have DKIM keys" in view.copy_record.toolTip()
    QGuiApplication.clipboard().setText("before")
    menu = right_click_row(qtbot, window, "example.com")
    click_menu_item(qtbot, menu, "Copy DNS Record")
    copied = QGuiApplication.clipboard().text()
    assert copied == zone_line(key)
    assert copied.startswith(f'{key.record_name}. 3600 IN TXT "v=DKIM1; k=rsa; p=')


def test_a_damaged_key_shows_its_domain_unsigned_with_what_to_do(
    qtbot: QtBot, window: MainWindow, store: Store
) -> None:
    [key] = prepare_keys(store)[0].keys
    key.path.write_bytes(b"not a key")
    view = domains_view_with_keys(qtbot, window)
    assert cell(window, "example.com", DomainListModel.COL_DKIM) == (
        "Unsigned: its DKIM key cannot be used"
    )
    tip = cell(window, "example.com", DomainListModel.COL_DKIM, Qt.ItemDataRole.ToolTipRole)
    assert tip == (
        f"DKIM: mail from example.com goes out unsigned: the key file {key.path} is damaged "
        "(not a PEM private key); make a new key with postroom dkim rotate example.com --force "
        "and publish its record."
    )
    assert cell(window, "example.com", 0, Qt.ItemDataRole.ToolTipRole) == tip
    [row] = view.list_model.rows()
    assert row.flagged
    assert key.path.read_bytes() == b"not a key"  # shown, never replaced behind the admin's back
    # The record of the damaged key is still known, so it can still be copied.
    select_row(qtbot, window, "example.com")
    assert view.copy_record.isEnabled()


def test_a_rotation_shows_the_new_key_until_dns_has_its_record(
    qtbot: QtBot, window: MainWindow, store: Store, responder: DnsResponder
) -> None:
    use_dns(store, responder)
    [old] = prepare_keys(store)[0].keys
    new = rotate(store.paths, "example.com")[1]
    view = domains_view_with_keys(qtbot, window)
    assert cell(window, "example.com", DomainListModel.COL_DKIM) == (
        f"{old.selector}: not checked; new key {new.selector} waits for its record"
    )
    select_row(qtbot, window, "example.com")
    view.copy_record.trigger()
    assert QGuiApplication.clipboard().text() == f"{zone_line(old)}\n{zone_line(new)}"
    publish(responder, owner(new), new.txt)
    try:
        check_dns_from_the_toolbar(qtbot, window, view)
    finally:
        withdraw(responder, owner(new))
    assert cell(window, "example.com", DomainListModel.COL_DKIM) == f"{new.selector}: published"
    assert [k.selector for k in prepare_keys(store)[0].keys] == [new.selector]
