"""The one route-onward rule for a shared domain's unknown addresses, and DNS settings to ask."""

from __future__ import annotations

import enum
import ipaddress
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import dns.rdatatype

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
    #: IP addresses in normal form; loopback and unspecified addresses count without being here.
    addresses: frozenset[str]
    ports: frozenset[int]

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
        return cls(frozenset(names), frozenset(addresses), frozenset(port for _, port in listen))

    def is_this_host(self, host: str) -> bool:
        """True when ``host`` (a name or an IP address) is this machine."""
        ip = _ip(host)
        if ip is None:
            return _name_key(host) in self.names
        return ip.is_loopback or ip.is_unspecified or str(ip) in self.addresses

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


def find_route(
    domain: str,
    settings: Settings,
    *,
    config: DnsConfig | None = None,
    listeners: Iterable[tuple[str, int]] = (),
) -> Route:
    """Where mail for the shared ``domain`` goes when it is for no address here.

    Through the smart host when one is set (none if that is this server); else to the domain's
    mail exchangers from DNS, asked with ``config`` (default: from the settings). None when DNS
    says the domain takes no mail or its MX is this server; unconfirmed when DNS did not answer.
    Blocks on DNS for up to a few lifetimes: worker threads only, never the GUI thread or an
    event loop.
    """
    server = ThisServer.from_settings(settings, listeners)
    by_smart_host = route_by_smart_host(settings, server)
    if by_smart_host is not None:
        return by_smart_host
    if config is None:
        try:
            config = dns_config_from_settings(settings)
        except PostroomError as error:
            return _unconfirmed(domain, str(error))
    return route_by_dns(domain, config, server)


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
