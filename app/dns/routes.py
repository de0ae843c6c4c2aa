"""Where mail goes onward: the next hop (connector, smart host or DNS), loops, and DNS settings."""

from __future__ import annotations

import enum
import ipaddress
import logging
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import dns.rdatatype

from app.connectors import CONNECTORS_PLACE
from app.directory import addressing
from app.dns.lookup import (
    DnsConfig,
    Lookup,
    QueryResult,
    answer_addresses,
    ascii_domain,
    domain_name,
    parse_nameserver,
)
from app.dns.mx import MailExchanger, UndeliverableError, mail_exchangers
from app.errors import PostroomError
from app.model import ANY_DOMAIN, AddressSpace, SmartHost, SmtpConnector
from app.settings import Settings, parse_host_port

log = logging.getLogger(__name__)

#: Where an administrator sets the smart host, in the console and with the command.
SET_SMART_HOST = (
    "Default SMTP Virtual Server > Properties > Delivery, or postroom smtp set smart_host "
    "HOST[:PORT]"
)
_SMART_HOST_PORT = 25


class RouteState(enum.Enum):
    """Whether mail for a shared domain has somewhere to go besides this server."""

    ROUTED = "routed"
    NONE = "none"  # it would loop, or it cannot be delivered: ``Route.why`` says which
    UNCONFIRMED = "unconfirmed"  # DNS did not answer (or was not asked yet)


class NoRoute(enum.Enum):
    """Why a shared domain has no route onward."""

    LOOP = "loop"  # the smart host, or the domain's MX, is this server
    UNDELIVERABLE = "undeliverable"  # DNS says the domain takes no mail
    BAD_SMART_HOST = "bad smart host"  # the smart host setting is not HOST[:PORT]


@dataclass(frozen=True)
class Route:
    """Where mail for a shared domain's unknown addresses goes onward, and what to do if nowhere.

    The console and ``postroom dns check`` show ``text`` (``summary`` then ``advice``); the
    SMTP service derives its RCPT answer from ``state``, ``why`` and ``detail``.
    """

    state: RouteState
    #: What was found, in a sentence or two for the administrator.
    summary: str
    #: What to do about it; "" when the route is fine.
    advice: str = ""
    #: Set exactly when ``state`` is NONE.
    why: NoRoute | None = None
    #: The finding alone, fit for a reply to the sending server; "" unless ``state`` is NONE.
    detail: str = ""
    #: When DNS was asked (None: decided from the settings alone).
    checked_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.state is RouteState.ROUTED

    @property
    def text(self) -> str:
        """The finding and what to do, as the console and ``postroom dns check`` show it."""
        return f"{self.summary} {self.advice}" if self.advice else self.summary


@dataclass(frozen=True)
class ThisServer:
    """Every way mail could be addressed to this server: names, addresses and listen ports."""

    #: Lower-case A-label names without the final dot.
    names: frozenset[str]
    #: IP addresses in normal form: the public addresses and those listened on.
    addresses: frozenset[str]
    ports: frozenset[int]
    #: Listening on every address (0.0.0.0, ::) or on localhost: every loopback address is here.
    all_loopback: bool = False

    @classmethod
    def from_settings(
        cls, settings: Settings, listeners: Iterable[tuple[str, int]] = ()
    ) -> ThisServer:
        """This server as the settings describe it, plus the (host, port) pairs it is bound to.

        Both listen lists count: the settings name where this data directory's SMTP service
        listens, ``listeners`` where this process really does (another port with ``--listen``
        or port 0). Names: localhost, the machine's host name, ``settings.host_name`` (which
        asks the hosts file or the resolver for the machine's FQDN when the ``fqdn`` setting is
        empty, as the SMTP greeting does), ``fqdn`` and ``public_name``.
        """
        listen = [parse_host_port(text) for text in settings.listen] + list(listeners)
        hosts = ["localhost", socket.gethostname(), settings.host_name, settings.fqdn]
        hosts += [settings.public_name, *settings.public_addresses]
        hosts += [host for host, _ in listen]
        names: set[str] = set()
        addresses: set[str] = set()
        for host in hosts:
            ip = _ip(host)
            if ip is not None:
                addresses.add(str(ip))
            elif host.strip():
                names.add(_name_key(host))
        everywhere = any(
            host.strip().lower() == "localhost"
            or ((ip := _ip(host)) is not None and ip.is_unspecified)
            for host, _ in listen
        )
        ports = frozenset(port for _, port in listen)
        return cls(frozenset(names), frozenset(addresses), ports, everywhere)

    def is_this_host(self, host: str) -> bool:
        """True when ``host`` (a name or an IP address) is this machine: one of its names, a
        public address, an address it listens on, an unspecified address, or any loopback
        address when it listens on all of them. Another loopback address (127.0.0.2 while
        listening on 127.0.0.1) is another server, as a test network or a local relay uses it."""
        ip = _ip(host)
        if ip is None:
            return _name_key(host) in self.names
        if ip.is_unspecified or str(ip) in self.addresses:
            return True
        return ip.is_loopback and self.all_loopback

    def is_this_server(self, host: str, port: int) -> bool:
        """True when ``host:port`` reaches this SMTP service: this machine, one of our ports."""
        return port in self.ports and self.is_this_host(host)


def dns_config_from_settings(settings: Settings) -> DnsConfig:
    """The DNS configuration the settings describe, for the checks and the route alike.

    ``nameservers`` (empty: the system resolver), ``public_name`` and ``public_addresses`` (this
    server), and ``dns_timeout``: the seconds one whole query may take (its lifetime), as the
    setting says. That bounds what a sender waits for at RCPT and what a check waits per record;
    each try at one nameserver gets half of it, so that a lost packet or a dead first nameserver
    leaves room for a second try.
    """
    lifetime = float(settings.dns_timeout)
    return DnsConfig(
        nameservers=tuple(parse_nameserver(text) for text in settings.nameservers),
        timeout=lifetime / 2,
        lifetime=lifetime,
        server_name=settings.public_name or None,
        server_addresses=tuple(settings.public_addresses),
    )


# -- the next hop ---------------------------------------------------------------------------------


class HopKind(enum.Enum):
    """How mail for a domain leaves this server."""

    CONNECTOR = "connector"  # an SMTP connector's address space names the domain
    SMART_HOST = "smart host"  # no connector does: the SMTP virtual server's smart host
    DNS = "dns"  # neither: the domain's MX records (the sender looks them up)


@dataclass(frozen=True)
class ConnectorHop:
    """A connector that carries mail for the domain, and the address space that says so."""

    connector: SmtpConnector
    space: AddressSpace

    @property
    def cost(self) -> int:
        return self.space.cost

    @property
    def uses_dns(self) -> bool:
        return self.connector.use_dns


@dataclass(frozen=True)
class NextHop:
    """The next hop for one domain (``domain`` in lower-case A-labels), as chosen by
    ``next_hop``. Exactly one of ``connectors`` (kind CONNECTOR) and ``smart_host`` (kind
    SMART_HOST) is set; kind DNS has neither: the sender asks DNS for the domain's MX."""

    domain: str
    kind: HopKind
    #: Every connector whose most specific address space matches, cheapest first.
    connectors: tuple[ConnectorHop, ...] = ()
    smart_host: SmartHost | None = None

    @property
    def tiers(self) -> tuple[tuple[ConnectorHop, ...], ...]:
        """The connectors grouped by cost, cheapest group first: a sender shares the load
        within a group and fails over to the next group when every host of one is down."""
        groups: list[list[ConnectorHop]] = []
        for hop in self.connectors:
            if groups and groups[-1][0].cost == hop.cost:
                groups[-1].append(hop)
            else:
                groups.append([hop])
        return tuple(tuple(group) for group in groups)

    @property
    def text(self) -> str:
        """The choice in words, for the queue views and the tracking log."""
        if self.kind is HopKind.CONNECTOR:
            return "Through " + "; ".join(_connector_text(hop) for hop in self.connectors) + "."
        if self.kind is HopKind.SMART_HOST:
            return f"Through the smart host {self.smart_host}."
        return f"By DNS (the MX records of {addressing.display_domain(self.domain)})."


def _connector_text(hop: ConnectorHop) -> str:
    connector = hop.connector
    how = "by DNS" if connector.use_dns else f"to {connector.route_text}"
    return f"the connector '{connector.name}' (cost {hop.cost}) {how}"


def _match_rank(pattern: str, domain: str) -> tuple[int, int] | None:
    """How specifically ``pattern`` names ``domain`` (higher is more specific); None: not at
    all. The domain itself beats ``*.parent`` (a longer parent beats a shorter), beats ``*``.
    ``*.example.com`` names the subdomains of example.com, not example.com itself."""
    if pattern == ANY_DOMAIN:
        return (0, 0)
    if pattern.startswith("*."):
        parent = pattern[2:]
        return (1, parent.count(".") + 1) if domain.endswith("." + parent) else None
    return (2, 0) if domain == pattern else None


def connector_hops(domain: str, connectors: Iterable[SmtpConnector]) -> tuple[ConnectorHop, ...]:
    """The connectors whose most specific address space names ``domain``, cheapest first (then
    by name); empty when no connector's address space names it."""
    key = _name_key(domain)
    best: tuple[int, int] | None = None
    hops: list[ConnectorHop] = []
    for connector in connectors:
        ranked = [
            (rank, space)
            for space in connector.address_spaces
            if (rank := _match_rank(space.pattern, key)) is not None
        ]
        if not ranked:
            continue
        rank, space = max(ranked, key=lambda pair: (pair[0], -pair[1].cost))
        if best is None or rank > best:
            best, hops = rank, []
        if rank == best:
            hops.append(ConnectorHop(connector, space))
    hops.sort(key=lambda hop: (hop.cost, hop.connector.name.casefold()))
    return tuple(hops)


def next_hop(domain: str, connectors: Sequence[SmtpConnector], settings: Settings) -> NextHop:
    """Where mail for ``domain`` goes next: the connectors whose address space names it most
    specifically (cheapest first); else the smart host setting; else DNS.

    Asks nothing of DNS or the network. PostroomError when the smart host setting decides and
    is not HOST[:PORT] (the administrator's mistake: the mail waits until it is corrected).
    """
    key = _name_key(domain)
    hops = connector_hops(key, connectors)
    if hops:
        return NextHop(key, HopKind.CONNECTOR, connectors=hops)
    if settings.smart_host:
        try:
            host, port = parse_host_port(settings.smart_host, _SMART_HOST_PORT)
        except PostroomError:
            raise PostroomError(
                f"The smart host setting '{settings.smart_host}' is not HOST[:PORT]. "
                f"Correct it ({SET_SMART_HOST})."
            ) from None
        return NextHop(key, HopKind.SMART_HOST, smart_host=SmartHost(host, port))
    return NextHop(key, HopKind.DNS)


def is_relay_domain(domain: str, connectors: Iterable[SmtpConnector]) -> bool:
    """True when a connector that allows relaying carries mail for ``domain``: one of those
    whose address space names it most specifically ("Allow messages to be relayed to these
    domains"). Anyone's mail for it is accepted and sent onward (DESIGN §6 rule 4's exception).
    """
    return any(hop.connector.relay for hop in connector_hops(domain, connectors))


def find_route(
    domain: str,
    settings: Settings,
    *,
    connectors: Sequence[SmtpConnector],
    config: DnsConfig | None = None,
    listeners: Iterable[tuple[str, int]] = (),
) -> Route:
    """Where mail for ``domain`` goes onward (a shared domain's unknown addresses, a relay
    domain's mail), and whether it would come back here.

    ``settled_route`` first (the connectors and the smart host setting, no I/O); when they leave
    it to DNS, the domain's mail exchangers, asked with ``config`` (default: from the settings).
    None when DNS says the domain takes no mail or its MX is this server; unconfirmed when DNS
    did not answer. ``connectors`` has no default so that no caller forgets them: the SMTP
    service, ``dns check`` and the console must agree. Blocks on DNS for up to a few lifetimes:
    worker threads only, never the GUI thread or an event loop.
    """
    server = ThisServer.from_settings(settings, listeners)
    settled = _settled_route(domain, settings, connectors, server)
    if settled is not None:
        return settled
    if config is None:
        try:
            config = dns_config_from_settings(settings)
        except PostroomError as error:
            return _unconfirmed(domain, str(error))
    return route_by_dns(domain, config, server)


def settled_route(
    domain: str,
    settings: Settings,
    connectors: Sequence[SmtpConnector],
    listeners: Iterable[tuple[str, int]] = (),
) -> Route | None:
    """The route the connectors and the smart host setting give ``domain`` without DNS: through
    the connectors whose address space names it (none if a smart host of one is this server),
    else through the smart host setting (none if that is this server). None when DNS decides
    (no smart host, or a connector that routes by DNS). No I/O: any thread."""
    return _settled_route(
        domain, settings, connectors, ThisServer.from_settings(settings, listeners)
    )


def _settled_route(
    domain: str, settings: Settings, connectors: Sequence[SmtpConnector], server: ThisServer
) -> Route | None:
    try:
        hop: NextHop | None = next_hop(domain, connectors, settings)
    except PostroomError:
        hop = None  # the smart host setting is not HOST[:PORT]: route_by_smart_host says so
    if hop is not None and hop.kind is HopKind.CONNECTOR:
        return route_by_connectors(hop.connectors, server)
    if hop is None or hop.kind is HopKind.SMART_HOST:
        return route_by_smart_host(settings, server)
    return None


def route_by_connectors(hops: Sequence[ConnectorHop], server: ThisServer) -> Route | None:
    """The route the connectors that carry a domain give: a loop when a smart host of one is
    this server; routed when all forward to smart hosts; None when one uses DNS (DNS decides).
    Asks no DNS server for records."""
    for hop in hops:
        here = [
            host
            for host in hop.connector.smart_hosts
            if server.is_this_server(host.address, host.port or _SMART_HOST_PORT)
        ]
        if here:
            name = hop.connector.name
            return Route(
                RouteState.NONE,
                f"The smart host {here[0]} of the connector '{name}' is this server, so the "
                "mail would loop.",
                f"Point the connector at the other mail system ({CONNECTORS_PLACE} > {name}, or "
                f"postroom connector edit '{name}' --smart-host HOST[:PORT]).",
                NoRoute.LOOP,
                _LOOP_DETAIL,
            )
    if any(hop.uses_dns for hop in hops):
        return None
    return Route(
        RouteState.ROUTED,
        "Onward through "
        + "; ".join(
            f"the connector '{hop.connector.name}' to {hop.connector.route_text}" for hop in hops
        )
        + ".",
    )


def route_by_smart_host(settings: Settings, server: ThisServer | None = None) -> Route | None:
    """The route the smart host setting gives; None when none is set and DNS decides.

    Asks no DNS server for records, so the GUI thread may call it; ``server`` defaults to
    ``ThisServer.from_settings(settings)``, which may look up the machine's own FQDN.
    """
    if not settings.smart_host:
        return None
    try:
        host, port = parse_host_port(settings.smart_host, _SMART_HOST_PORT)
    except PostroomError:
        return Route(
            RouteState.NONE,
            f"The smart host setting '{settings.smart_host}' is not HOST[:PORT], so mail cannot "
            "go onward.",
            f"Correct it ({SET_SMART_HOST}).",
            NoRoute.BAD_SMART_HOST,
            "The route onward is misconfigured here",
        )
    if server is None:
        server = ThisServer.from_settings(settings)
    if server.is_this_server(host, port):
        return Route(
            RouteState.NONE,
            f"The smart host {settings.smart_host} is this server, so the mail would loop.",
            "Set the smart host to the other mail system that shares the domain.",
            NoRoute.LOOP,
            _LOOP_DETAIL,
        )
    return Route(RouteState.ROUTED, f"Onward through the smart host {settings.smart_host}.")


def route_by_dns(domain: str, config: DnsConfig, server: ThisServer) -> Route:
    """Where DNS sends mail for ``domain``: its mail exchangers, unless one is this server (by
    name, or by an address of its). Blocks on DNS for up to a few lifetimes: worker threads
    only, never the GUI thread or an event loop."""
    shown = addressing.display_domain(ascii_domain(domain))
    checked_at = datetime.now().astimezone()
    try:
        exchangers = mail_exchangers(domain, config)
    except UndeliverableError as error:
        return Route(
            RouteState.NONE,
            f"{error} Mail to unknown addresses in {shown} cannot go onward.",
            "Set a smart host for the other mail system, or make the domain authoritative.",
            NoRoute.UNDELIVERABLE,
            str(error),
            checked_at,
        )
    except PostroomError as error:
        return _unconfirmed(domain, str(error), checked_at)
    hosts = ", ".join(addressing.display_domain(mx.host) for mx in exchangers)
    here, unanswered = _exchangers_here(exchangers, config, server)
    if here:
        return Route(
            RouteState.NONE,
            f"DNS sends mail for {shown} to this server ({hosts}), so mail for addresses that "
            "are not here would loop.",
            "Set a smart host for the other mail system that shares the domain "
            f"({SET_SMART_HOST}).",
            NoRoute.LOOP,
            _LOOP_DETAIL,
            checked_at,
        )
    if unanswered is not None:
        return _unconfirmed(
            domain,
            f"Could not look up the addresses of {addressing.display_domain(unanswered.host)} "
            f"(an MX host of {shown}) to tell whether it is this server.",
            checked_at,
        )
    return Route(RouteState.ROUTED, f"Onward by DNS to {hosts}.", checked_at=checked_at)


_LOOP_DETAIL = "Routing loop: the route for this domain points back here"


def _exchangers_here(
    exchangers: list[MailExchanger], config: DnsConfig, server: ThisServer
) -> tuple[list[MailExchanger], MailExchanger | None]:
    """The exchangers that are this server, by name or else by address; and one whose
    addresses DNS did not give (None if every one answered)."""
    here = [mx for mx in exchangers if server.is_this_host(mx.host)]
    if here:
        return here, None
    lookup = Lookup(config)
    unanswered: MailExchanger | None = None
    for mx in exchangers:
        name = domain_name(mx.host)
        results: list[QueryResult] = [
            lookup.query(name, rdtype) for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
        ]
        found = [ip for result in results for ip in answer_addresses(result)]
        if any(server.is_this_host(ip) for ip in found):
            return [mx], None  # one is enough for a loop: ask no more
        if not found and not all(result.outcome.is_definite for result in results):
            unanswered = unanswered or mx
    return [], unanswered


def _unconfirmed(domain: str, problem: str, checked_at: datetime | None = None) -> Route:
    log.info("no route onward confirmed for %s: %s", domain, problem)
    return Route(
        RouteState.UNCONFIRMED,
        f"The route onward could not be confirmed: {problem}",
        "Check DNS again later.",
        checked_at=checked_at,
    )


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def _name_key(host: str) -> str:
    """A host name as compared: lower-case A-labels without the final dot."""
    try:
        return ascii_domain(host)
    except PostroomError:
        return host.strip().rstrip(".").lower()
