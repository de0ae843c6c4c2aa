"""Which queue a recipient waits in (its next hop) and the hosts that hop reaches.

The choice of connector, smart host or DNS is ``app.dns.routes.next_hop``'s; this module names
the resulting queue and, off the event loop, turns it into addresses to connect to.
"""

from __future__ import annotations

import enum
import ipaddress
import random
from collections.abc import Sequence
from dataclasses import dataclass

import dns.rdatatype

from app.dns.lookup import DnsConfig, Lookup, answer_addresses, domain_name
from app.dns.mx import UndeliverableError, mail_exchangers
from app.dns.routes import ConnectorHop, HopKind, NextHop, ThisServer, next_hop
from app.errors import PostroomError
from app.model import SmartHost, SmtpConnector
from app.settings import Settings
from app.smtp.routing import Accept, DirectoryIndex, MailboxTarget, Target

#: The queue of mail for this server's own Maildirs (notifications to local senders).
LOCAL_DELIVERY = "Local delivery"


class Kind(enum.Enum):
    LOCAL = "local"
    REMOTE = "remote"


@dataclass(frozen=True)
class Hop:
    """A queue: mail for this server's mailboxes, or for one next hop (a connector, the smart
    host, or a domain's MX hosts). ``name`` is how the console and ``postroom queue`` call it."""

    name: str
    kind: Kind
    route: NextHop | None = None  # the next hop of a remote queue
    connector: SmtpConnector | None = None  # the connector whose security applies

    @property
    def text(self) -> str:
        return "Deliver to this server's mailboxes." if self.route is None else self.route.text


@dataclass(frozen=True)
class Unroutable:
    """A recipient with no queue: the reply that says why (5xx permanent, 4xx try again)."""

    status: str
    diagnostic: str

    @property
    def permanent(self) -> bool:
        return self.status.startswith("5")


def hop_of(
    address: str, index: DirectoryIndex, connectors: Sequence[SmtpConnector], settings: Settings
) -> Hop | Unroutable:
    """The queue ``address`` waits in. Asks nothing of DNS: any thread.

    Addresses this server holds (a sender's notification, or an address that moved here since
    the message was queued) go to ``Local delivery``; an unknown address in an authoritative
    domain fails as it would at RCPT; the rest go to the next hop of their domain.
    """
    decision = index.decide(address, may_relay=True)
    if not isinstance(decision, Accept):
        code = decision.reply[:3]
        status = decision.reply[4:9] if decision.reply[4:5].isdigit() else f"{code[0]}.0.0"
        return Unroutable(status, decision.reply)
    if any(isinstance(target, MailboxTarget) for target in decision.targets):
        return Hop(LOCAL_DELIVERY, Kind.LOCAL)
    domain = address.rpartition("@")[2]
    try:
        route = next_hop(domain, connectors, settings)
    except PostroomError as error:
        return Unroutable("4.3.5", str(error))
    if route.kind is HopKind.CONNECTOR:
        first = route.connectors[0].connector
        if first.use_dns:
            # Each domain has its own MX hosts: one queue per domain, with the connector's rules.
            return Hop(route.domain, Kind.REMOTE, route, first)
        return Hop(
            ", ".join(hop.connector.name for hop in route.connectors), Kind.REMOTE, route, first
        )
    if route.kind is HopKind.SMART_HOST:
        return Hop(str(route.smart_host), Kind.REMOTE, route)
    return Hop(route.domain, Kind.REMOTE, route)


def local_targets(address: str, index: DirectoryIndex) -> tuple[Target, ...]:
    """The copies a local delivery to ``address`` makes (mailboxes; a group's outside members)."""
    decision = index.decide(address, may_relay=True)
    return decision.targets if isinstance(decision, Accept) else ()


class HopError(Exception):
    """No host to try: the status and reply for every recipient of the hop."""

    def __init__(self, status: str, diagnostic: str) -> None:
        super().__init__(diagnostic)
        self.status = status
        self.diagnostic = diagnostic

    @property
    def permanent(self) -> bool:
        return self.status.startswith("5")


@dataclass(frozen=True)
class Tier:
    """Hosts of equal standing, tried in order; the next tier only when all of these fail."""

    hosts: tuple[tuple[str, int], ...]
    connector: SmtpConnector | None


def tiers_for(
    hop: Hop, domain: str, config: DnsConfig, server: ThisServer, port: int
) -> list[Tier]:
    """The hosts to connect to for ``domain``'s mail on ``hop``, as IP addresses and ports,
    cheapest tier first (equal costs and equal MX preferences shuffled to share the load).

    Raises HopError: 5.1.10 for a null MX, 5.1.2 for a domain that takes no mail, 5.4.6 when
    the route points back here, 4.4.3 when DNS did not answer. Blocks on DNS: worker threads.
    """
    route = hop.route
    if route is None:
        raise HopError("4.3.0", "a local queue has no hosts")
    if route.kind is HopKind.SMART_HOST:
        assert route.smart_host is not None
        hosts = _smart_hosts([route.smart_host], config, server, port)
        return [Tier(tuple(hosts), None)]
    if route.kind is HopKind.DNS:
        return [Tier(tuple(_by_dns(domain, config, server, port)), None)]
    result: list[Tier] = []
    problems: list[HopError] = []
    for tier in route.tiers:
        shuffled: list[ConnectorHop] = list(tier)
        random.shuffle(shuffled)
        for connector_hop in shuffled:
            connector = connector_hop.connector
            try:
                if connector.use_dns:
                    hosts = _by_dns(domain, config, server, port)
                else:
                    hosts = _smart_hosts(connector.smart_hosts, config, server, port)
            except HopError as error:
                problems.append(error)
                continue
            result.append(Tier(tuple(hosts), connector))
    if not result:
        raise problems[0] if problems else HopError("4.4.4", "no connector has a usable host")
    return result


def _smart_hosts(
    hosts: Sequence[SmartHost], config: DnsConfig, server: ThisServer, port: int
) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for host in hosts:
        host_port = host.port or port
        if server.is_this_server(host.address, host_port):
            raise HopError("5.4.6", f"Routing loop: the smart host {host} is this server")
        if _is_ip(host.address):  # [192.0.2.25], or a bare address in the smart host setting
            found.append((host.address, host_port))
            continue
        addresses = _addresses(host.host, config)
        if any(server.is_this_server(ip, host_port) for ip in addresses):
            raise HopError("5.4.6", f"Routing loop: the smart host {host} is this server")
        found += [(ip, host_port) for ip in addresses]
    if not found:
        raise HopError("4.4.3", "the smart hosts' addresses could not be found in DNS")
    return found


def _by_dns(domain: str, config: DnsConfig, server: ThisServer, port: int) -> list[tuple[str, int]]:
    try:
        exchangers = mail_exchangers(domain, config)
    except UndeliverableError as error:
        status = "5.1.10" if "null MX" in str(error) else "5.1.2"
        raise HopError(status, str(error)) from None
    except PostroomError as error:
        raise HopError("4.4.3", str(error)) from None
    # RFC 5321 §5.1: this server in the list ends it (only better exchangers are tried).
    by_preference: dict[int, list[str]] = {}
    for mx in exchangers:
        by_preference.setdefault(mx.preference, []).append(mx.host)
    found: list[tuple[str, int]] = []
    unanswered = ""
    for preference in sorted(by_preference):
        names = by_preference[preference]
        random.shuffle(names)
        level: list[tuple[str, int]] = []
        for name in names:
            if server.is_this_host(name):
                return _or_loop(found, domain)
            addresses = _addresses(name, config)
            if any(server.is_this_host(ip) for ip in addresses):
                return _or_loop(found, domain)
            if not addresses:
                unanswered = unanswered or name
            level += [(ip, port) for ip in addresses]
        found += level
    if not found:
        raise HopError(
            "4.4.3", f"no address found for the mail exchangers of {domain} ({unanswered})"
        )
    return found


def _or_loop(found: list[tuple[str, int]], domain: str) -> list[tuple[str, int]]:
    if not found:
        raise HopError("5.4.6", f"Routing loop: the best mail exchanger of {domain} is this server")
    return found


def _addresses(host: str, config: DnsConfig) -> list[str]:
    lookup = Lookup(config)
    name = domain_name(host)
    found: list[str] = []
    for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        found += answer_addresses(lookup.query(name, rdtype))
    return found


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
