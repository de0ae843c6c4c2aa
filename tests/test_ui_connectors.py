"""Routing Groups > First Routing Group > Connectors through the real window: the list, the sheet
(General, Address Space, Advanced, Details), refusals that change nothing, delete."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit
from pytestqt.qtbot import QtBot

from app import connectors
from app.model import AddressSpace, SmartHost, SmtpConnector
from app.settings import save_settings
from app.store import Store
from tests.dns_responder import serving
from tests.ui_support import (
    DialogDriver,
    click_menu_item,
    double_click_row,
    menu_texts,
    right_click_row,
    right_click_tree,
    select_row,
    submenu,
)
from ui.dialogs.connector import PASSWORD_KEPT, AddressSpaceDialog, ConnectorDialog
from ui.main_window import MainWindow
from ui.models.domains import DELIVERED_HERE, NOT_CHECKED, NOT_HOSTED
from ui.views.connectors import ConnectorsView
from ui.views.domains import DomainsView

if TYPE_CHECKING:
    from tests.conftest import Prompts  # the fixture's type, not the fixture

CONNECTORS = "routing-groups/first/connectors"
SECRET = "s3cret-Passw0rd"


def connectors_view(window: MainWindow) -> ConnectorsView:
    window.select_node(CONNECTORS)
    view = window.current
    assert isinstance(view, ConnectorsView)
    return view


def shown_rows(window: MainWindow) -> list[list[str]]:
    proxy = window.proxy
    return [
        [proxy.index(row, column).data() for column in range(proxy.columnCount())]
        for row in range(proxy.rowCount())
    ]


def partner(store: Store) -> SmtpConnector:
    """'Partner link': partner.example relayed to two smart hosts, basic auth over TLS."""
    return connectors.create_connector(
        store,
        SmtpConnector(
            "Partner link",
            address_spaces=(AddressSpace("partner.example", 10), AddressSpace("*.partner.example")),
            relay=True,
            use_dns=False,
            smart_hosts=(SmartHost("relay.partner.example", 587), SmartHost("[192.0.2.25]")),
            tls="required",
            auth_user="postroom",
            password=SECRET,
            note="Managed by the partner's IT",
        ),
    )


def add_space(dialogs: DialogDriver, sheet: ConnectorDialog, pattern: str, cost: str) -> None:
    """Add... → type the domain and cost → OK, on an open sheet."""

    def fill(dialog: AddressSpaceDialog) -> None:
        dialog.pattern.setText(pattern)
        dialog.cost.setText(cost)
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()

    dialogs.expect(AddressSpaceDialog, fill)
    sheet.address_space.add_button.click()


# -- the tree and the list -------------------------------------------------------------------


def test_connectors_node_under_first_routing_group_lists_connectors(
    qtbot: QtBot, window: MainWindow, store: Store, qtmodeltester
) -> None:  # type: ignore[no-untyped-def]
    partner(store)
    connectors.create_connector(
        store, SmtpConnector("Internet", address_spaces=(AddressSpace("*", 50),))
    )
    view = connectors_view(window)
    qtmodeltester.check(view.list_model)
    node = window.node_of(CONNECTORS)
    assert [n.title for n in node.path()] == [
        "Test Organization (Postroom)",
        "Routing Groups",
        "First Routing Group",
        "Connectors",
    ]
    headers = [window.proxy.headerData(c, Qt.Orientation.Horizontal) for c in range(5)]
    assert headers == ["Name", "Route", "Address Spaces", "Relay", "Cost"]
    assert shown_rows(window) == [
        ["Internet", "DNS", "* (50)", "No", "50"],
        [
            "Partner link",
            "Smart hosts: relay.partner.example:587, [192.0.2.25]",
            "partner.example (10), *.partner.example (1)",
            "Allowed",
            "1-10",
        ],
    ]
    assert window.result.title.text() == "Connectors     2 connectors"


def test_the_list_follows_changes_made_by_another_program(
    qtbot: QtBot, window: MainWindow, store: Store
) -> None:
    connectors_view(window)
    assert window.proxy.rowCount() == 0
    partner(store)
    qtbot.waitUntil(lambda: window.proxy.rowCount() == 1, timeout=5000)
    assert shown_rows(window)[0][0] == "Partner link"


def test_menus_offer_new_smtp_connector_properties_and_delete(
    qtbot: QtBot, window: MainWindow, store: Store
) -> None:
    partner(store)
    connectors_view(window)
    menu = right_click_tree(qtbot, window, CONNECTORS)
    assert menu_texts(submenu(menu, "New")) == ["SMTP Connector..."]
    menu.close()
    menu = right_click_row(qtbot, window, "Partner link")
    assert menu_texts(menu) == ["Delete", "Refresh", "Properties"]
    menu.close()


# -- New > SMTP Connector ----------------------------------------------------------------------


def test_new_smtp_connector_through_its_sheet_creates_it(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    connectors_view(window)

    def fill(sheet: ConnectorDialog) -> None:
        assert sheet.windowTitle() == "New SMTP Connector Properties"
        assert [sheet.tabs.tabText(i) for i in range(sheet.tabs.count())] == [
            "General",
            "Address Space",
            "Advanced",
            "Details",
        ]
        assert sheet.general.use_dns.isChecked() and not sheet.general.smart_hosts.isEnabled()
        assert sheet.advanced.anonymous.isChecked() and not sheet.advanced.user.isEnabled()
        assert sheet.details.created.text() == "Not yet created"
        sheet.general.name.setText("Partner link")
        sheet.general.use_smart_hosts.setChecked(True)
        assert sheet.general.smart_hosts.isEnabled()
        sheet.general.smart_hosts.setText("relay.partner.example:587, [192.0.2.25]")
        add_space(dialogs, sheet, "Partner.Example", "10")
        add_space(dialogs, sheet, "*.bücher.example", "5")
        sheet.address_space.relay.setChecked(True)
        sheet.advanced.basic.setChecked(True)
        sheet.advanced.user.setText("postroom")
        sheet.advanced.password.setText(SECRET)
        sheet.advanced.require_tls.setChecked(True)
        sheet.details.note.setPlainText("Managed by the partner's IT")
        sheet.ok_button.click()

    dialogs.expect(ConnectorDialog, fill)
    click_menu_item(qtbot, submenu(right_click_tree(qtbot, window, CONNECTORS), "New"),
                    "SMTP Connector...")  # fmt: skip
    qtbot.waitUntil(lambda: window.proxy.rowCount() == 1, timeout=5000)
    dialogs.check()
    assert prompts.errors == []
    stored = connectors.get_connector(store, "Partner link")
    assert stored.use_dns is False
    assert stored.smart_hosts == (
        SmartHost("relay.partner.example", 587),
        SmartHost("[192.0.2.25]"),
    )
    assert stored.address_spaces == (
        AddressSpace("partner.example", 10),
        AddressSpace("*.xn--bcher-kva.example", 5),
    )
    assert stored.relay and stored.tls == "required"
    assert (stored.auth_user, stored.password) == ("postroom", SECRET)
    assert stored.note == "Managed by the partner's IT" and stored.created
    # The new connector is selected in the list, its IDN pattern shown in Unicode.
    selected = window.result_list.selectionModel().selectedRows()
    assert [index.data() for index in selected] == ["Partner link"]
    assert shown_rows(window)[0][2] == "partner.example (10), *.bücher.example (5)"


def test_new_connector_without_an_address_space_is_refused_and_nothing_is_created(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    view = connectors_view(window)
    seen: dict[str, object] = {}

    def fill(sheet: ConnectorDialog) -> None:
        sheet.general.name.setText("Nowhere")
        sheet.ok_button.click()
        seen["open"] = sheet.isVisible()
        seen["name"] = sheet.general.name.text()
        sheet.reject()

    dialogs.expect(ConnectorDialog, fill)
    view.new_connector.trigger()
    dialogs.check()
    assert prompts.errors == [
        "The connector 'Nowhere' has no address space: add at least one, e.g. example.com, "
        "or * for every domain no other connector names."
    ]
    assert seen == {"open": True, "name": "Nowhere"}, "the sheet stays open as typed"
    assert connectors.list_connectors(store) == []
    assert window.proxy.rowCount() == 0


def test_duplicate_name_is_refused_and_nothing_is_created(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    before = partner(store)
    view = connectors_view(window)

    def fill(sheet: ConnectorDialog) -> None:
        sheet.general.name.setText("partner LINK")
        add_space(dialogs, sheet, "other.example", "1")
        sheet.ok_button.click()
        assert sheet.isVisible()
        sheet.reject()

    dialogs.expect(ConnectorDialog, fill)
    view.new_connector.trigger()
    dialogs.check()
    assert prompts.errors == [
        "An SMTP connector named 'partner LINK' already exists. Choose another name."
    ]
    assert connectors.list_connectors(store) == [before]


def test_bad_smart_host_is_refused_and_the_connector_is_unchanged(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    before = partner(store)
    connectors_view(window)

    def edit(sheet: ConnectorDialog) -> None:
        sheet.general.smart_hosts.setText("relay.partner.example, 192.0.2.99")
        sheet.general.smart_hosts.textEdited.emit("")  # as typing does: Apply becomes enabled
        assert sheet.apply_button.isEnabled()
        sheet.apply_button.click()
        assert sheet.isVisible() and sheet.apply_button.isEnabled(), "still as typed"
        sheet.general.smart_hosts.setText("relay.partner.example:70000")
        sheet.ok_button.click()
        assert sheet.isVisible()
        sheet.reject()

    dialogs.expect(ConnectorDialog, edit)
    double_click_row(qtbot, window, "Partner link")
    qtbot.waitUntil(lambda: len(prompts.errors) == 2, timeout=5000)
    dialogs.check()
    assert prompts.errors == [
        "The smart host '192.0.2.99' is an IP address: write it in brackets, [192.0.2.99], as "
        "Exchange does.",
        "The port 70000 of the smart host 'relay.partner.example' is out of range: use 1 to 65535.",
    ]
    assert connectors.get_connector(store, "Partner link") == before


def test_cost_101_is_refused_in_the_address_space_dialog_and_the_list_is_unchanged(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    before = partner(store)
    connectors_view(window)
    seen: dict[str, object] = {}

    def type_bad(dialog: AddressSpaceDialog) -> None:
        dialog.pattern.setText("extra.example")
        dialog.cost.setText("101")
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
        seen["open after 101"] = dialog.isVisible()
        dialog.cost.setText("ten")
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
        seen["open after ten"] = dialog.isVisible()
        dialog.reject()

    def edit(sheet: ConnectorDialog) -> None:
        dialogs.expect(AddressSpaceDialog, type_bad)
        sheet.address_space.add_button.click()
        seen["rows"] = sheet.address_space.spaces.rowCount()
        seen["dirty"] = sheet.dirty
        sheet.ok_button.click()  # nothing changed: OK stores nothing and closes

    dialogs.expect(ConnectorDialog, edit)
    select_row(qtbot, window, "Partner link")
    window.std.properties.trigger()
    dialogs.check()
    assert prompts.errors == [
        "The cost 101 of the address space 'extra.example' is out of range: use 1 (preferred) "
        "to 100.",
        "The cost 'ten' of the address space 'extra.example:ten' is not a whole number: use 1 "
        "to 100, e.g. example.com:10.",
    ]
    assert seen == {"open after 101": True, "open after ten": True, "rows": 2, "dirty": False}
    assert connectors.get_connector(store, "Partner link") == before


# -- editing -----------------------------------------------------------------------------------


def test_editing_modifies_and_removes_address_spaces_and_stamps_modified(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    before = partner(store)
    connectors_view(window)

    def change_cost(dialog: AddressSpaceDialog) -> None:
        assert (dialog.pattern.text(), dialog.cost.text()) == ("partner.example", "10")
        dialog.cost.setText("20")
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()

    def edit(sheet: ConnectorDialog) -> None:
        assert sheet.windowTitle() == "Partner link Properties"
        page = sheet.address_space
        page.select_row(0)
        dialogs.expect(AddressSpaceDialog, change_cost)
        page.modify_button.click()
        page.select_row(1)
        page.remove_button.click()
        page.relay.setChecked(False)
        sheet.general.use_dns.setChecked(True)
        assert not sheet.general.smart_hosts.isEnabled()
        sheet.ok_button.click()

    dialogs.expect(ConnectorDialog, edit)
    double_click_row(qtbot, window, "Partner link")
    qtbot.waitUntil(lambda: shown_rows(window)[0][1] == "DNS", timeout=5000)
    dialogs.check()
    assert prompts.errors == []
    after = connectors.get_connector(store, "Partner link")
    assert after.address_spaces == (AddressSpace("partner.example", 20),)
    assert not after.relay and after.use_dns and after.smart_hosts == ()
    assert after.password == SECRET, "an empty password field keeps the stored password"
    assert after.created == before.created and after.modified >= before.modified
    assert shown_rows(window)[0][1:] == ["DNS", "partner.example (20)", "No", "20"]


def test_password_is_never_shown_and_empty_means_unchanged(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    partner(store)
    connectors_view(window)
    seen: dict[str, object] = {}

    def look(sheet: ConnectorDialog) -> None:
        advanced = sheet.advanced
        seen["basic"] = advanced.basic.isChecked()
        seen["user"] = advanced.user.text()
        seen["password"] = advanced.password.text()
        seen["placeholder"] = advanced.password.placeholderText()
        seen["echo"] = advanced.password.echoMode()
        seen["tls"] = advanced.require_tls.isChecked()
        texts = [w.text() for w in sheet.findChildren(type(advanced.user))]
        seen["anywhere"] = any(SECRET in text for text in texts)
        advanced.user.setText("relay-user")
        advanced.user.textEdited.emit("relay-user")
        sheet.ok_button.click()

    dialogs.expect(ConnectorDialog, look)
    double_click_row(qtbot, window, "Partner link")
    qtbot.waitUntil(lambda: "basic" in seen, timeout=5000)
    dialogs.check()
    assert seen == {
        "basic": True,
        "user": "postroom",
        "password": "",
        "placeholder": PASSWORD_KEPT,
        "echo": QLineEdit.EchoMode.Password,
        "tls": True,
        "anywhere": False,
    }
    stored = connectors.get_connector(store, "Partner link")
    assert (stored.auth_user, stored.password) == ("relay-user", SECRET)
    assert SECRET not in " ".join(" ".join(row) for row in shown_rows(window))

    # A new password replaces it; Anonymous clears both.
    def replace(sheet: ConnectorDialog) -> None:
        sheet.advanced.password.setText("n3w-secret")
        sheet.advanced.password.textEdited.emit("n3w-secret")
        sheet.apply_button.click()
        assert sheet.advanced.password.text() == "", "not even the new one is shown back"
        sheet.advanced.anonymous.setChecked(True)
        assert not sheet.advanced.user.isEnabled()
        sheet.ok_button.click()

    dialogs.expect(ConnectorDialog, replace)
    double_click_row(qtbot, window, "Partner link")
    qtbot.waitUntil(lambda: not window.findChildren(ConnectorDialog), timeout=5000)
    dialogs.check()
    stored = connectors.get_connector(store, "Partner link")
    assert (stored.auth_user, stored.password, stored.auth) == ("", "", "anonymous")


def test_basic_authentication_without_a_password_is_refused(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver, prompts: Prompts
) -> None:
    before = connectors.create_connector(
        store, SmtpConnector("Internet", address_spaces=(AddressSpace("*", 50),))
    )
    connectors_view(window)

    def edit(sheet: ConnectorDialog) -> None:
        sheet.advanced.basic.setChecked(True)
        sheet.advanced.user.setText("someone")
        sheet.ok_button.click()
        assert sheet.isVisible()
        sheet.reject()

    dialogs.expect(ConnectorDialog, edit)
    double_click_row(qtbot, window, "Internet")
    qtbot.waitUntil(lambda: prompts.errors != [], timeout=5000)
    dialogs.check()
    assert prompts.errors[0].startswith(
        "Basic authentication for the connector 'Internet' needs a password"
    )
    assert connectors.list_connectors(store) == [before]


# -- delete ------------------------------------------------------------------------------------


def test_delete_asks_and_deletes(
    qtbot: QtBot, window: MainWindow, store: Store, prompts: Prompts
) -> None:
    partner(store)
    connectors.create_connector(
        store, SmtpConnector("Internet", address_spaces=(AddressSpace("*", 50),))
    )
    connectors_view(window)
    prompts.answers = {"delete the SMTP connector 'Partner link'": False}
    select_row(qtbot, window, "Partner link")
    window.std.delete.trigger()
    assert [c.name for c in connectors.list_connectors(store)] == ["Internet", "Partner link"]

    prompts.answers = {"delete the SMTP connector 'Partner link'": True}
    click_menu_item(qtbot, right_click_row(qtbot, window, "Partner link"), "Delete")
    qtbot.waitUntil(lambda: window.proxy.rowCount() == 1, timeout=5000)
    assert [c.name for c in connectors.list_connectors(store)] == ["Internet"]
    assert prompts.questions[0].startswith(
        "Are you sure you want to delete the SMTP connector 'Partner link'?"
    )


def test_delete_of_a_connector_another_program_removed_says_so(
    qtbot: QtBot, window: MainWindow, store: Store, prompts: Prompts
) -> None:
    partner(store)
    view = connectors_view(window)
    select_row(qtbot, window, "Partner link")
    rows = window.selected_rows()
    connectors.delete_connector(store, "Partner link", queued_messages=0)
    prompts.answers = {"delete the SMTP connector": True}
    view.delete(rows)  # the list still shows it: the change watcher has not run yet
    qtbot.waitUntil(lambda: not view.is_busy(), timeout=5000)  # the queue is counted off-thread
    assert prompts.errors == [
        "There is no SMTP connector named 'Partner link'. See the names with: "
        "postroom connector list"
    ]
    assert window.proxy.rowCount() == 0


# -- Recipients > Domains ----------------------------------------------------------------------

ZONE = """
$TTL 300
dns.example.                MX    10 mx.dns.example.
mx.dns.example.             A     192.0.2.30
"""


def with_every_kind_of_route(store: Store) -> None:
    """Partner link (relay, smart hosts), Internet (* by DNS), a DNS connector for dns.example,
    and one whose smart host is this server's own listen address."""
    partner(store)
    for connector in (
        SmtpConnector("Internet", address_spaces=(AddressSpace("*", 50),)),
        SmtpConnector("By DNS", address_spaces=(AddressSpace("dns.example", 5),), relay=True),
        SmtpConnector(
            "Back here",
            address_spaces=(AddressSpace("loop.example"),),
            use_dns=False,
            smart_hosts=(SmartHost("[127.0.0.1]", 2525),),
        ),
    ):
        connectors.create_connector(store, connector)


def domains_view(window: MainWindow) -> DomainsView:
    window.select_node("recipients/domains")
    view = window.current
    assert isinstance(view, DomainsView)
    return view


def test_domains_view_lists_relay_domains_and_address_spaces_with_their_route(
    qtbot: QtBot, window: MainWindow, store: Store, qtmodeltester
) -> None:  # type: ignore[no-untyped-def]
    with_every_kind_of_route(store)
    view = domains_view(window)
    qtmodeltester.check(view.list_model)
    hosts = "smart hosts relay.partner.example:587, [192.0.2.25]"
    # The routes, not the DKIM column (tests/test_ui_domains.py covers that one).
    assert [row[:5] for row in shown_rows(window)] == [
        ["*", "Address space", "", "",
         "Through the connector 'Internet' (cost 50) by DNS: each domain by its MX records."],
        ["*.partner.example", "Relay domain", "", "",
         f"Onward through the connector 'Partner link' to {hosts}."],
        ["dns.example", "Relay domain", "", "",
         "Through the connector 'By DNS' (cost 5) by DNS. DNS has not been checked yet."],
        ["example.com", "Authoritative", "Default Policy", NOT_CHECKED, DELIVERED_HERE],
        ["loop.example", "Address space", "", "",
         "The smart host [127.0.0.1]:2525 of the connector 'Back here' is this server, so the "
         "mail would loop."],
        ["partner.example", "Relay domain", "", "",
         f"Onward through the connector 'Partner link' to {hosts}."],
    ]  # fmt: skip
    rows = {row.domain: row for row in view.list_model.rows()}
    assert [domain for domain, row in rows.items() if row.flagged] == ["loop.example"]
    loop_tip = view.list_model.index(view.list_model.row_of("loop.example") or 0, 0).data(
        Qt.ItemDataRole.ToolTipRole
    )
    assert "postroom connector edit 'Back here' --smart-host" in loop_tip
    dns_tip = view.list_model.index(view.list_model.row_of("*") or 0, 3).data(
        Qt.ItemDataRole.ToolTipRole
    )
    assert dns_tip == NOT_HOSTED

    # A connector's address space has no DNS details; its Properties are the connector's.
    select_row(qtbot, window, "*.partner.example")
    assert not view.dns_details.isEnabled()
    assert view.dns_details.toolTip().startswith("DNS details are for the domains on policies")


def test_domains_view_routes_a_dns_connectors_domain_by_a_real_dns_server(
    qtbot: QtBot, window: MainWindow, store: Store
) -> None:
    with_every_kind_of_route(store)
    with serving(ZONE) as responder:
        host, port = responder.address
        save_settings(store, nameservers=[f"{host}:{port}"], dns_timeout=2)
        view = domains_view(window)
        with qtbot.waitSignal(view.checked, timeout=30_000):
            assert view.start_check(["dns.example", "*"])
    route = {row[0]: row[4] for row in shown_rows(window)}
    assert route["dns.example"] == "Onward by DNS to mx.dns.example."
    assert route["*"].startswith("Through the connector 'Internet'"), "a pattern has no MX"
    # Only the patterns: DNS has nothing to say, and no check starts.
    assert not view.start_check(["*", "*.partner.example"])
    assert not view.is_busy()


def test_double_click_on_an_address_space_opens_its_connector(
    qtbot: QtBot, window: MainWindow, store: Store, dialogs: DialogDriver
) -> None:
    with_every_kind_of_route(store)
    domains_view(window)
    seen: list[str] = []

    def look(sheet: ConnectorDialog) -> None:
        seen.append(sheet.windowTitle())
        sheet.reject()

    dialogs.expect(ConnectorDialog, look)
    double_click_row(qtbot, window, "partner.example")
    qtbot.waitUntil(lambda: seen != [], timeout=5000)
    dialogs.check()
    assert seen == ["Partner link Properties"]
