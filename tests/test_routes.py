"""The route-onward rule of a shared domain: one table, and the SMTP service, ``postroom dns check``
and the console's Domains view agreeing on every row of it, over a real loopback DNS server."""

from __future__ import annotations

import json
import smtplib
import socket
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app import policies
from app.cli import main
from app.connectors import check_connector, parse_address_space, parse_smart_host
from app.connectors.catalog import create_connector, delete_connector, list_connectors
from app.dns.lookup import DnsConfig
from app.dns.routes import (
    HopKind,
    NoRoute,
    Route,
    RouteState,
    ThisServer,
    dns_config_from_settings,
    find_route,
    is_relay_domain,
    next_hop,
    settled_route,
)
from app.errors import PostroomError
from app.model import SmartHost, SmtpConnector
from app.queue import spool
from app.settings import Settings, format_host_port, load_settings, save_settings
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
    #: A connector for the domain: its smart host (``{port}`` as above), or "dns" to use DNS.
    connector: str = ""


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
    # Listening on 127.0.0.1 only, [::1] is not this server (a connection there is refused).
    Row("IPv6 loopback", "partner.example", RouteState.ROUTED, None, "[::1]:{port}"),
    Row("another loopback address", "partner.example", RouteState.ROUTED, None, "127.0.0.2:{port}"),
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
    # A connector whose address space names the domain goes first, before the smart host.
    Row(
        "connector smart host elsewhere",
        "loop.example",
        RouteState.ROUTED,
        connector="relay.partner.test:25",
    ),
    Row(
        "connector smart host back here",
        "partner.example",
        RouteState.NONE,
        NoRoute.LOOP,
        smart_host="relay.partner.test:25",
        connector="[127.0.0.1]:{port}",
    ),
    Row(
        "connector by DNS, MX back here",
        "loop.example",
        RouteState.NONE,
        NoRoute.LOOP,
        smart_host="relay.partner.test:25",
        connector="dns",
    ),
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
    for connector in list_connectors(store):
        delete_connector(store, connector.name, queued_messages=0)
    if row.connector:
        hosts = () if row.connector == "dns" else (row.connector.format(port=port, other=other),)
        create_connector(store, hop_connector("Partner", row.domain, hosts=hosts))
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
    route = find_route(row.domain, settings, connectors=list_connectors(store))
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
        settings = configure(store, row, port, responder, silent)
        return find_route(row.domain, settings, connectors=list_connectors(store)).text

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
    assert find_route("partner.example", settings, connectors=()).ok
    route = find_route("partner.example", settings, connectors=(), listeners=[("192.0.2.77", 2600)])
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
    store = view.console.store
    if settled_route(domain, load_settings(store), list_connectors(store)) is None:
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
        assert spool.list_queue(store.paths.queue) == []
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


# --- the next hop: connectors, the smart host, DNS -----------------------------------------------


def hop_connector(
    name: str, *spaces: str, hosts: tuple[str, ...] = (), relay: bool = False
) -> SmtpConnector:
    """A checked connector: address spaces as typed (PATTERN[:COST]), smart hosts or DNS."""
    return check_connector(
        SmtpConnector(
            name,
            address_spaces=tuple(parse_address_space(space) for space in spaces),
            relay=relay,
            use_dns=not hosts,
            smart_hosts=tuple(parse_smart_host(host) for host in hosts),
        )
    )


CONNECTORS = [
    hop_connector("Partner exact", "partner.example:50", hosts=("relay.partner.example",)),
    hop_connector("Partner subdomains", "*.partner.example:1", hosts=("[192.0.2.30]:2525",)),
    hop_connector("Sales deep", "*.sales.partner.example:90"),
    hop_connector("Everything", "*:10"),
    hop_connector("Everything cheap", "*:5", hosts=("relay.isp.example:587",)),
    hop_connector("B equal", "example.org:2", hosts=("b.example.org",)),
    hop_connector("A equal", "example.org:2", hosts=("a.example.org",)),
    hop_connector("C dearer", "example.org:7", "*.example.org:1"),
    hop_connector("Books", "bücher.example:3", relay=True),
]


@dataclass(frozen=True)
class HopRow:
    """One case of the next hop: the domain, and the connectors chosen in cost groups."""

    case: str
    domain: str
    tiers: tuple[tuple[str, ...], ...]


HOP_ROWS = [
    HopRow("the domain itself beats a cheaper wildcard", "partner.example", (("Partner exact",),)),
    HopRow("*.parent beats *", "www.partner.example", (("Partner subdomains",),)),
    HopRow("a wildcard covers every depth", "a.b.partner.example", (("Partner subdomains",),)),
    HopRow("a longer parent beats a shorter", "x.sales.partner.example", (("Sales deep",),)),
    HopRow(
        "* for the rest, cheapest first", "other.test", (("Everything cheap",), ("Everything",))
    ),
    HopRow(
        "equal costs share the load, then the dearer",
        "EXAMPLE.org",
        (("A equal", "B equal"), ("C dearer",)),
    ),
    HopRow("*.example.org is not example.org's parent", "www.example.org", (("C dearer",),)),
    HopRow("Unicode and A-labels alike", "Bücher.Example", (("Books",),)),
    HopRow("A-labels as typed", "xn--bcher-kva.example.", (("Books",),)),
]


@pytest.mark.parametrize("row", HOP_ROWS, ids=[row.case for row in HOP_ROWS])
def test_the_next_hop_by_connector(row: HopRow) -> None:
    hop = next_hop(row.domain, CONNECTORS, Settings(smart_host="relay.isp.example:25"))
    assert hop.kind is HopKind.CONNECTOR and hop.smart_host is None
    assert tuple(tuple(h.connector.name for h in tier) for tier in hop.tiers) == row.tiers
    costs = [h.cost for h in hop.connectors]
    assert costs == sorted(costs)


def test_the_next_hop_without_a_connector_for_the_domain() -> None:
    only_partners = CONNECTORS[:2]
    by_smart_host = next_hop("other.test", only_partners, Settings(smart_host="[2001:db8::25]:26"))
    assert (by_smart_host.kind, by_smart_host.connectors) == (HopKind.SMART_HOST, ())
    assert by_smart_host.smart_host == SmartHost("2001:db8::25", 26)
    assert next_hop("other.test", [], Settings(smart_host="relay.isp.example")).smart_host == (
        SmartHost("relay.isp.example", 25)
    )
    by_dns = next_hop("Other.Test.", only_partners, Settings())
    assert (by_dns.kind, by_dns.domain, by_dns.connectors, by_dns.smart_host) == (
        HopKind.DNS,
        "other.test",
        (),
        None,
    )
    assert by_dns.text == "By DNS (the MX records of other.test)."
    with pytest.raises(PostroomError, match="The smart host setting 'relay:smtp' is not HOST"):
        next_hop("other.test", [], Settings(smart_host="relay:smtp"))
    # A connector decides before a smart host setting that is wrong is even read.
    assert next_hop("partner.example", only_partners, Settings(smart_host="relay:smtp")).connectors


def test_the_next_hop_says_where_in_words() -> None:
    hop = next_hop("example.org", CONNECTORS, Settings())
    assert hop.text == (
        "Through the connector 'A equal' (cost 2) to smart hosts a.example.org; the connector "
        "'B equal' (cost 2) to smart hosts b.example.org; the connector 'C dearer' (cost 7) by "
        "DNS."
    )


def test_relay_domains_follow_the_most_specific_connector() -> None:
    assert is_relay_domain("bücher.example", CONNECTORS)
    assert not is_relay_domain("www.bücher.example", CONNECTORS)  # * (no relay) carries it
    assert not is_relay_domain("partner.example", CONNECTORS)
    private = hop_connector("Private", "private.partner.example")
    relaying = hop_connector("Relaying", "*.partner.example", relay=True)
    assert is_relay_domain("www.partner.example", [relaying, private])
    assert not is_relay_domain("private.partner.example", [relaying, private])


@dataclass(frozen=True)
class ConnectorRouteRow:
    """The route onward of a shared domain when connectors are there too."""

    case: str
    domain: str
    #: A smart host's port 1 stands for our listen port.
    connector: SmtpConnector
    state: RouteState
    why: NoRoute | None = None
    #: The smart host setting, ``{port}`` our listen port.
    smart_host: str = ""


CONNECTOR_ROUTE_ROWS = [
    ConnectorRouteRow(
        "connector elsewhere, smart host setting back here",
        "partner.example",
        hop_connector("Out", "partner.example", hosts=("relay.partner.example:1",)),
        RouteState.ROUTED,
        smart_host="127.0.0.1:{port}",
    ),
    ConnectorRouteRow(
        "connector back here by address",
        "partner.example",
        hop_connector("Back", "partner.example", hosts=("[127.0.0.1]:1",)),
        RouteState.NONE,
        NoRoute.LOOP,
        smart_host="relay.partner.example:25",
    ),
    ConnectorRouteRow(
        "connector back here by public name",
        "partner.example",
        hop_connector("Back", "*", hosts=(f"{PUBLIC_NAME}:1",)),
        RouteState.NONE,
        NoRoute.LOOP,
    ),
    ConnectorRouteRow(
        "connector by DNS, MX elsewhere",
        "partner.example",
        hop_connector("By DNS", "partner.example"),
        RouteState.ROUTED,
        smart_host="127.0.0.1:{port}",
    ),
    ConnectorRouteRow(
        "connector by DNS, MX back here",
        "loop.example",
        hop_connector("By DNS", "loop.example"),
        RouteState.NONE,
        NoRoute.LOOP,
        smart_host="relay.partner.example:25",
    ),
    ConnectorRouteRow(
        "a connector for another domain leaves it to the smart host",
        "partner.example",
        hop_connector("Other", "other.example", hosts=("relay.other.example",)),
        RouteState.NONE,
        NoRoute.LOOP,
        smart_host="127.0.0.1:{port}",
    ),
]


@pytest.mark.parametrize(
    "row", CONNECTOR_ROUTE_ROWS, ids=[row.case for row in CONNECTOR_ROUTE_ROWS]
)
def test_the_route_onward_with_connectors(
    store: Store, row: ConnectorRouteRow, port: int, responder: DnsResponder
) -> None:
    settings = save_settings(
        store,
        listen=[f"127.0.0.1:{port}"],
        fqdn=FQDN,
        public_name=PUBLIC_NAME,
        public_addresses=[PUBLIC_ADDRESS],
        nameservers=[format_host_port(*responder.address)],
        dns_timeout=1,
        smart_host=row.smart_host.format(port=port),
    )
    hosts = tuple(
        SmartHost(host.host, port if host.port == 1 else host.port)
        for host in row.connector.smart_hosts
    )
    connector = replace(row.connector, smart_hosts=hosts)
    route = find_route(row.domain, settings, connectors=[connector])
    assert (route.state, route.why) == (row.state, row.why), route.text
    if row.why is NoRoute.LOOP and hosts and "back here" in row.case:
        assert route.text == (
            f"The smart host {hosts[0]} of the connector '{connector.name}' is this server, so "
            "the mail would loop. Point the connector at the other mail system (Routing Groups "
            f"> First Routing Group > Connectors > {connector.name}, or postroom connector edit "
            f"'{connector.name}' --smart-host HOST[:PORT])."
        )
        assert route.detail == "Routing loop: the route for this domain points back here"
