"""The route-onward rule of a shared domain: one table, and the SMTP service, ``postroom dns check``
and the console's Domains view agreeing on every row of it, over a real loopback DNS server."""

from __future__ import annotations

import json
import smtplib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app import policies
from app.cli import main
from app.dns.lookup import DnsConfig
from app.dns.routes import (
    NoRoute,
    Route,
    RouteState,
    ThisServer,
    dns_config_from_settings,
    find_route,
)
from app.settings import Settings, format_host_port, load_settings, save_settings
from app.smtp import queue as smtp_queue
from app.smtp.service import SmtpService
from app.store import Store
from tests.conftest import Prompts
from tests.dns_responder import DnsResponder, Mode, serving
from tests.ui_support import row_index
from ui.main_window import MainWindow
from ui.views.domains import DomainsView

PUBLIC_NAME = "mail.example.org"
PUBLIC_ADDRESS = "192.0.2.10"
FQDN = "mx.example.test"
#: A listen address of the settings that no test binds: this server by its configured address.
LISTEN_ADDRESS = "192.0.2.55"

ZONE = f"""
$TTL 300
{PUBLIC_NAME}.              A     {PUBLIC_ADDRESS}

partner.example.            MX    10 mx.partner.example.
mx.partner.example.         A     192.0.2.20

loop.example.               MX    10 {PUBLIC_NAME}.
fqdn.example.               MX    10 {FQDN}.
byaddress.example.          MX    10 mx.byaddress.example.
mx.byaddress.example.       A     {PUBLIC_ADDRESS}
bylisten.example.           MX    10 mx.bylisten.example.
mx.bylisten.example.        A     {LISTEN_ADDRESS}
byloopback.example.         MX    10 mx.byloopback.example.
mx.byloopback.example.      A     127.0.0.1

nullmx.example.             MX    0 .
nohost.example.             TXT   "v=spf1 -all"
"""


@dataclass(frozen=True)
class Row:
    """One case of the rule: the settings that differ, the domain, and what must come out."""

    case: str
    domain: str
    state: RouteState
    why: NoRoute | None = None
    #: ``{port}`` is our listen port, ``{other}`` another one.
    smart_host: str = ""
    fqdn: str = FQDN
    #: Ask a nameserver that never answers.
    silent: bool = False


ROWS = [
    # This server by name, through a smart host on our listen port.
    Row("public_name", "partner.example", RouteState.NONE, NoRoute.LOOP, f"{PUBLIC_NAME}:{{port}}"),
    Row("fqdn setting", "partner.example", RouteState.NONE, NoRoute.LOOP, f"{FQDN}:{{port}}"),
    Row(
        "host_name (the machine's FQDN)",
        "partner.example",
        RouteState.NONE,
        NoRoute.LOOP,
        f"{socket.getfqdn()}:{{port}}",
        fqdn="",
    ),
    Row(
        "gethostname",
        "partner.example",
        RouteState.NONE,
        NoRoute.LOOP,
        f"{socket.gethostname()}:{{port}}",
    ),
    Row("localhost", "partner.example", RouteState.NONE, NoRoute.LOOP, "localhost:{port}"),
    # ... by address.
    Row(
        "a listen address",
        "partner.example",
        RouteState.NONE,
        NoRoute.LOOP,
        f"{LISTEN_ADDRESS}:{{port}}",
    ),
    Row(
        "a public address",
        "partner.example",
        RouteState.NONE,
        NoRoute.LOOP,
        f"{PUBLIC_ADDRESS}:{{port}}",
    ),
    Row("loopback", "partner.example", RouteState.NONE, NoRoute.LOOP, "127.0.0.1:{port}"),
    Row("IPv6 loopback", "partner.example", RouteState.NONE, NoRoute.LOOP, "[::1]:{port}"),
    # Smart hosts that are a route onward, and one that is no route at all.
    Row(
        "smart host elsewhere", "partner.example", RouteState.ROUTED, None, "relay.partner.test:25"
    ),
    Row("this host, another port", "partner.example", RouteState.ROUTED, None, "127.0.0.1:{other}"),
    Row(
        "smart host not HOST:PORT",
        "partner.example",
        RouteState.NONE,
        NoRoute.BAD_SMART_HOST,
        "relay.partner.test:smtp",
    ),
    # No smart host: DNS decides.
    Row("MX elsewhere", "partner.example", RouteState.ROUTED),
    Row("MX back here by public name", "loop.example", RouteState.NONE, NoRoute.LOOP),
    Row("MX back here by FQDN", "fqdn.example", RouteState.NONE, NoRoute.LOOP),
    Row("MX at a public address", "byaddress.example", RouteState.NONE, NoRoute.LOOP),
    Row("MX at a listen address", "bylisten.example", RouteState.NONE, NoRoute.LOOP),
    Row("MX at loopback", "byloopback.example", RouteState.NONE, NoRoute.LOOP),
    Row("null MX", "nullmx.example", RouteState.NONE, NoRoute.UNDELIVERABLE),
    Row("NXDOMAIN", "nx.example", RouteState.NONE, NoRoute.UNDELIVERABLE),
    Row("no MX and no host", "nohost.example", RouteState.NONE, NoRoute.UNDELIVERABLE),
    Row("DNS timing out", "partner.example", RouteState.UNCONFIRMED, silent=True),
]
SHARED = sorted({row.domain for row in ROWS})

#: The SMTP service's RCPT answer for each outcome: no route confirmed is accepted (queued,
#: tried again later), never refused.
RCPT_REPLIES: dict[tuple[RouteState, NoRoute | None], tuple[int, str]] = {
    (RouteState.ROUTED, None): (250, "2.1.5"),
    (RouteState.UNCONFIRMED, None): (250, "2.1.5"),
    (RouteState.NONE, NoRoute.LOOP): (554, "5.4.6"),
    (RouteState.NONE, NoRoute.UNDELIVERABLE): (550, "5.1.2"),
    (RouteState.NONE, NoRoute.BAD_SMART_HOST): (451, "4.3.5"),
}
#: ``postroom dns check`` counts a route onward like any other check.
CHECK_STATUS = {
    RouteState.ROUTED: "ok",
    RouteState.NONE: "error",
    RouteState.UNCONFIRMED: "unknown",
}


@pytest.fixture(scope="module")
def responder() -> Iterator[DnsResponder]:
    with serving(ZONE) as server:
        yield server


@pytest.fixture(scope="module")
def silent() -> Iterator[DnsResponder]:
    with serving(ZONE, Mode.SILENT) as server:
        yield server


@pytest.fixture
def port(free_port: int) -> int:
    """Our listen port."""
    return free_port


def configure(
    store: Store, row: Row, port: int, responder: DnsResponder, silent: DnsResponder
) -> Settings:
    """The settings of ``row``: this server's names and addresses, DNS, and the smart host."""
    other = port + 1 if port < 65535 else port - 1
    nameserver = silent if row.silent else responder
    return save_settings(
        store,
        listen=[f"127.0.0.1:{port}", f"{LISTEN_ADDRESS}:{port}"],
        fqdn=row.fqdn,
        public_name=PUBLIC_NAME,
        public_addresses=[PUBLIC_ADDRESS],
        nameservers=[format_host_port(*nameserver.address)],
        dns_timeout=1,
        smart_host=row.smart_host.format(port=port, other=other),
    )


def share(store: Store) -> None:
    """Every domain of the table on a rule that is not responsible: a shared namespace."""
    policies.create_policy(store, "Partners", "(company=Partner)")
    for domain in SHARED:
        policies.add_rule(store, "Partners", f"@{domain}", responsible=False)


# --- the rule ------------------------------------------------------------------------------------


@pytest.mark.parametrize("row", ROWS, ids=[row.case for row in ROWS])
def test_the_route_onward(
    store: Store, row: Row, port: int, responder: DnsResponder, silent: DnsResponder
) -> None:
    settings = configure(store, row, port, responder, silent)
    route = find_route(row.domain, settings)
    assert (route.state, route.why) == (row.state, row.why), route.text
    assert route.ok is (row.state is RouteState.ROUTED)
    assert route.summary and route.text.startswith(route.summary)
    if row.state is RouteState.ROUTED:
        assert route.advice == "" and route.detail == ""
    else:
        assert route.advice, "a route that is not fine says what to do"
    if row.state is RouteState.NONE:
        assert route.detail


def test_texts_say_what_was_found_and_what_to_do(
    store: Store, port: int, responder: DnsResponder, silent: DnsResponder
) -> None:
    def text(case: str) -> str:
        row = next(row for row in ROWS if row.case == case)
        return find_route(row.domain, configure(store, row, port, responder, silent)).text

    assert text("MX elsewhere") == "Onward by DNS to mx.partner.example."
    assert text("smart host elsewhere") == "Onward through the smart host relay.partner.test:25."
    assert text("loopback") == (
        f"The smart host 127.0.0.1:{port} is this server, so the mail would loop. "
        "Set the smart host to the other mail system that shares the domain."
    )
    assert text("MX back here by public name") == (
        "DNS sends mail for loop.example to this server (mail.example.org), so mail for "
        "addresses that are not here would loop. Set a smart host for the other mail system "
        "that shares the domain (Default SMTP Virtual Server > Properties > Delivery, or "
        "postroom smtp set smart_host HOST[:PORT])."
    )
    assert text("null MX") == (
        "The domain nullmx.example accepts no mail: it publishes a null MX (RFC 7505). Mail to "
        "unknown addresses in nullmx.example cannot go onward. Set a smart host for the other "
        "mail system, or make the domain authoritative."
    )
    assert text("DNS timing out").startswith(
        "The route onward could not be confirmed: Could not look up the MX records of "
        "partner.example: no answer from "
    )
    assert text("DNS timing out").endswith("Check DNS again later.")
    assert text("smart host not HOST:PORT").startswith(
        "The smart host setting 'relay.partner.test:smtp' is not HOST[:PORT]"
    )


def test_this_server_counts_the_listeners_it_is_bound_to(store: Store) -> None:
    settings = save_settings(store, listen=["127.0.0.1:2525"], smart_host="192.0.2.77:2600")
    assert find_route("partner.example", settings).ok
    route = find_route("partner.example", settings, listeners=[("192.0.2.77", 2600)])
    assert (route.state, route.why) == (RouteState.NONE, NoRoute.LOOP)
    server = ThisServer.from_settings(settings, [("192.0.2.77", 2600)])
    assert server.ports == {2525, 2600}
    assert server.is_this_server("LOCALHOST.", 2525)
    assert server.is_this_server("0.0.0.0", 2600)
    assert not server.is_this_server("127.0.0.1", 25)


# --- the DNS settings ----------------------------------------------------------------------------


def test_config_from_default_settings_uses_the_system_resolver(store: Store) -> None:
    config = dns_config_from_settings(load_settings(store))
    assert config == DnsConfig(
        nameservers=(), timeout=2.5, lifetime=5.0, server_name=None, server_addresses=()
    )


def test_config_from_stored_settings(store: Store) -> None:
    settings = save_settings(
        store,
        nameservers="127.0.0.1:5353, [2001:db8::53]",
        public_name="Mail.Bücher.Example",
        public_addresses="192.0.2.10 2001:db8::10",
        dns_timeout=4,
    )
    config = dns_config_from_settings(settings)
    assert config.nameservers == (("127.0.0.1", 5353), ("2001:db8::53", 53))
    assert config.server_name == "mail.xn--bcher-kva.example"
    assert config.server_addresses == ("192.0.2.10", "2001:db8::10")
    assert (config.timeout, config.lifetime) == (2.0, 4.0)


# --- the three users agree -----------------------------------------------------------------------


def rcpt_answer(store: Store, port: int, domain: str) -> tuple[int, str]:
    """RCPT TO an unknown address of ``domain``, spoken to a real SMTP service on ``port``."""
    service = SmtpService(store, listen=[f"127.0.0.1:{port}"])
    service.start()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo("client.test")
            client.mail("sender@outside.test")
            code, text = client.rcpt(f"unknown@{domain}")
    finally:
        service.stop()
    return code, text.decode()


def dns_check_route(
    capsys: pytest.CaptureFixture[str], data_dir: Path, domain: str
) -> tuple[dict[str, str | None], str]:
    """``postroom dns check DOMAIN --json``: the domain's route and its 'route' check status."""
    main(["--data-dir", str(data_dir), "dns", "check", domain, "--json"])
    report = json.loads(capsys.readouterr().out)
    [checked] = report["domains"]
    [check] = [check for check in checked["checks"] if check["check"] == "route"]
    assert f"{check['summary']} {check['advice']}".strip() == checked["route"]["text"]
    return checked["route"], check["status"]


def console_route(qtbot: QtBot, window: MainWindow, domain: str) -> Route:
    """The route the Domains view shows for ``domain``, after Check DNS when DNS decides."""
    window.select_node("recipients/domains")
    view = window.current
    assert isinstance(view, DomainsView)
    view.refresh()
    row = view.row(domain)
    assert row is not None and row.kind == "shared"
    if load_settings(view.console.store).smart_host == "":
        with qtbot.waitSignal(view.checked, timeout=30_000):
            assert view.start_check([domain])
    row = view.row(domain)
    assert row is not None and row.route is not None
    tip = window.proxy.index(row_index(window, domain).row(), 0).data(Qt.ItemDataRole.ToolTipRole)
    assert tip == row.route.text
    assert row.flagged is not row.route.ok
    return row.route


@pytest.mark.parametrize("row", ROWS, ids=[row.case for row in ROWS])
def test_smtp_dns_check_and_console_agree(
    qtbot: QtBot,
    capsys: pytest.CaptureFixture[str],
    store: Store,
    data_dir: Path,
    port: int,
    responder: DnsResponder,
    silent: DnsResponder,
    row: Row,
    window: MainWindow,
    prompts: Prompts,
) -> None:
    share(store)
    configure(store, row, port, responder, silent)

    code, text = rcpt_answer(store, port, row.domain)
    checked, status = dns_check_route(capsys, data_dir, row.domain)
    shown = console_route(qtbot, window, row.domain)

    assert (code, text[:5]) == RCPT_REPLIES[(row.state, row.why)], text
    assert (checked["state"], checked["why"]) == (
        row.state.value,
        row.why.value if row.why else None,
    )
    assert status == CHECK_STATUS[row.state]
    assert (shown.state, shown.why) == (row.state, row.why)
    assert checked["text"] == shown.text
    if code != 250:
        assert smtp_queue.list_queue(store.paths.queue) == []
    assert prompts.errors == []


def test_the_console_follows_a_smart_host_change(
    qtbot: QtBot, window: MainWindow, store: Store
) -> None:
    share(store)
    save_settings(store, smart_host="relay.partner.example:25")
    window.select_node("recipients/domains")
    view = window.current
    assert isinstance(view, DomainsView)
    rows = {row.domain: row for row in view.list_model.rows()}
    assert not rows["partner.example"].flagged
    tip = window.proxy.index(row_index(window, "partner.example").row(), 1).data(
        Qt.ItemDataRole.ToolTipRole
    )
    assert tip == "Onward through the smart host relay.partner.example:25."

    save_settings(store, smart_host="127.0.0.1:2525")
    qtbot.waitUntil(lambda: view.row("partner.example").flagged, timeout=5000)  # type: ignore[union-attr]
    tip = window.proxy.index(row_index(window, "partner.example").row(), 0).data(
        Qt.ItemDataRole.ToolTipRole
    )
    assert tip.startswith("The smart host 127.0.0.1:2525 is this server, so the mail would loop")
