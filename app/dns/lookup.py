"""DNS look-ups: the resolver, ``query_dns`` with NXDOMAIN / no answer / timeout told apart."""

from __future__ import annotations

import enum
import ipaddress
import logging
import re
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.nameserver
import dns.rdata
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.resolver
import idna

from app.errors import PostroomError

log = logging.getLogger(__name__)

_SERVER_TEXT = re.compile(r"^(?:Do53:)?(.+?)(?:@\d+)?$")


class DnsTemporaryError(PostroomError):
    """DNS could not answer now (timeout, SERVFAIL, REFUSED, no nameserver); try again later."""


class Outcome(enum.Enum):
    """What one DNS query came back with."""

    ANSWER = "answer"  # records of the asked type
    NO_ANSWER = "no answer"  # the name exists without records of that type (NOERROR, no data)
    NXDOMAIN = "nxdomain"  # the name does not exist
    FAILED = "failed"  # every nameserver failed: SERVFAIL, REFUSED, network error
    TIMEOUT = "timeout"  # no answer within the lifetime
    NO_RESOLVER = "no resolver"  # no nameserver is configured anywhere

    @property
    def is_definite(self) -> bool:
        """True when DNS actually said something about the name (records or their absence)."""
        return self in (Outcome.ANSWER, Outcome.NO_ANSWER, Outcome.NXDOMAIN)


@dataclass(frozen=True)
class QueryResult:
    """One DNS query's outcome: records when answered, a reason when it could not be."""

    name: dns.name.Name
    rdtype: dns.rdatatype.RdataType
    outcome: Outcome
    records: tuple[dns.rdata.Rdata, ...] = ()
    #: The name the answer was found at after following CNAMEs; ``name`` when there were none.
    canonical_name: dns.name.Name | None = None
    #: Why a query that is not definite failed, fit to show in a sentence.
    detail: str = ""

    @property
    def is_alias(self) -> bool:
        """True when the name is a CNAME for another name."""
        return self.canonical_name is not None and self.canonical_name != self.name


@dataclass(frozen=True)
class DnsConfig:
    """Where and how to ask DNS, and what this server is called and reachable at."""

    #: (IP address, port) pairs; empty means the system resolver from ``resolv_conf``.
    nameservers: tuple[tuple[str, int], ...] = ()
    #: Seconds to wait for one try at one nameserver.
    timeout: float = 3.0
    #: Seconds one query may take in all, across tries and nameservers.
    lifetime: float = 6.0
    #: This server's public host name, the one MX records should name; None when not set.
    server_name: str | None = None
    #: This server's public IP addresses, when known.
    server_addresses: tuple[str, ...] = ()
    #: The system resolver configuration read when ``nameservers`` is empty.
    resolv_conf: str = "/etc/resolv.conf"

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.lifetime <= 0:
            raise PostroomError("DNS timeout and lifetime must be more than 0 seconds.")
        for host, port in self.nameservers:
            if not _is_ip_address(host):
                raise PostroomError(
                    f"Nameserver {host!r} is not an IP address; give it as HOST[:PORT] "
                    "with HOST an IPv4 or IPv6 address, e.g. 192.0.2.53 or [2001:db8::53]:53."
                )
            if not 0 < port < 65536:
                raise PostroomError(f"Nameserver port {port} is not between 1 and 65535.")
        for address in self.server_addresses:
            if not _is_ip_address(address):
                raise PostroomError(f"Server address {address!r} is not an IPv4 or IPv6 address.")
        if self.server_name is not None:
            domain_name(self.server_name)


def parse_nameserver(text: str) -> tuple[str, int]:
    """Parse ``HOST[:PORT]`` (``[V6]:PORT`` or a bare IPv6 address for IPv6) into (host, port)."""
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise PostroomError(f"Nameserver {text!r} is not HOST[:PORT], e.g. [2001:db8::53]:53.")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    port = 53
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise PostroomError(
                f"Nameserver port {port_text!r} in {text!r} is not a number from 1 to 65535."
            )
        port = int(port_text)
    if not _is_ip_address(host):
        raise PostroomError(
            f"Nameserver {text!r} is not an IP address; give HOST[:PORT], "
            "e.g. 192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:53."
        )
    return host, port


def ascii_domain(domain: str) -> str:
    """The domain (typed as U-label or A-label) as lower-case A-labels without the final dot."""
    return domain_name(domain).to_text(omit_final_dot=True).lower()


def make_resolver(config: DnsConfig) -> dns.resolver.Resolver:
    """A resolver for ``config``; raises ``dns.resolver.NoResolverConfiguration`` if it has none."""
    resolver = dns.resolver.Resolver(filename=config.resolv_conf, configure=not config.nameservers)
    if config.nameservers:
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(host, port) for host, port in config.nameservers
        ]
    resolver.timeout = config.timeout
    resolver.lifetime = config.lifetime
    # Room for long TXT answers without falling back to TCP.
    resolver.use_edns(0, 0, 1232)
    resolver.search = []
    resolver.cache = None
    return resolver


def query_dns(name: str | dns.name.Name, rdtype: str, config: DnsConfig) -> QueryResult:
    """Ask DNS for ``rdtype`` records at ``name`` (a domain as typed, or an absolute name).

    Blocks on DNS for up to ``config.lifetime``: call it off the GUI thread and the event loop.
    """
    qname = name if isinstance(name, dns.name.Name) else domain_name(name)
    return Lookup(config).query(qname, dns.rdatatype.from_text(rdtype))


class Lookup:
    """One resolver for one run of checks; every DNS failure becomes a ``QueryResult``.

    ``query`` blocks on DNS for up to ``config.lifetime``: worker threads only.
    """

    def __init__(self, config: DnsConfig) -> None:
        self.config = config
        self.resolver: dns.resolver.Resolver | None = None
        self.setup_problem = ""
        try:
            self.resolver = make_resolver(config)
        except dns.resolver.NoResolverConfiguration as error:
            log.warning("no usable resolver configuration in %s: %s", config.resolv_conf, error)
            self.setup_problem = (
                f"no nameserver is set, and the system has none ({config.resolv_conf}: {error})"
            )

    def servers(self) -> str:
        """The nameservers asked, for messages."""
        if self.config.nameservers:
            return ", ".join(_host_port(host, port) for host, port in self.config.nameservers)
        if self.resolver is None:
            return "the system resolver"
        listed = ", ".join(
            _host_port(server.address, server.port)
            if isinstance(server, dns.nameserver.AddressAndPortNameserver)
            else str(server)
            for server in self.resolver.nameservers
        )
        return f"the system resolver ({listed})"

    def query(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> QueryResult:
        """Ask for ``rdtype`` at the absolute ``name``; never raises for DNS trouble."""
        result = self._query(name, rdtype)
        log.debug(
            "%s %s: %s %s",
            name,
            rdtype.name,
            result.outcome.value,
            result.detail or [r.to_text() for r in result.records],
        )
        return result

    def _query(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> QueryResult:
        if self.resolver is None:
            return QueryResult(name, rdtype, Outcome.NO_RESOLVER, detail=self.setup_problem)
        try:
            answer = self.resolver.resolve(name, rdtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN as error:
            try:
                canonical = error.canonical_name
            except TypeError:
                canonical = name
            return QueryResult(name, rdtype, Outcome.NXDOMAIN, canonical_name=canonical)
        except dns.resolver.NoNameservers as error:
            return QueryResult(name, rdtype, Outcome.FAILED, detail=_failures(error))
        except dns.exception.Timeout:
            detail = f"no answer from {self.servers()} within {self.config.lifetime:g} s"
            return QueryResult(name, rdtype, Outcome.TIMEOUT, detail=detail)
        except (dns.exception.DNSException, OSError) as error:
            detail = f"the query to {self.servers()} failed ({error})"
            return QueryResult(name, rdtype, Outcome.FAILED, detail=detail)
        if answer.rrset is None:
            return QueryResult(
                name, rdtype, Outcome.NO_ANSWER, canonical_name=answer.canonical_name
            )
        return QueryResult(
            name,
            rdtype,
            Outcome.ANSWER,
            records=tuple(answer.rrset),
            canonical_name=answer.canonical_name,
        )


def _failures(error: dns.resolver.NoNameservers) -> str:
    texts: list[str] = []
    for failure in error.kwargs.get("errors", []):
        server, _tcp, port, problem = failure[0], failure[1], failure[2], failure[3]
        # dnspython names a server "Do53:ADDRESS@PORT"; show it as the user wrote it.
        address = _SERVER_TEXT.sub(r"\1", str(server))
        text = f"{_host_port(address, int(port))} answered {problem}"
        if text not in texts:
            texts.append(text)
    return "; ".join(texts) or "every nameserver failed"


def answer_addresses(result: QueryResult) -> list[str]:
    """The IPv4 and IPv6 addresses of an A or AAAA answer, in normal form."""
    return [
        normal_ip(record.address)
        for record in result.records
        if isinstance(record, dns.rdtypes.IN.A.A | dns.rdtypes.IN.AAAA.AAAA)
    ]


def domain_name(domain: str) -> dns.name.Name:
    """The absolute DNS name (A-label) of a domain typed as U-label or A-label."""
    text = domain.strip().removesuffix(".")
    if not text:
        raise PostroomError("A domain name is required, e.g. example.net.")
    try:
        ascii_text = idna.encode(text, uts46=True).decode("ascii")
        return dns.name.from_text(ascii_text, origin=dns.name.root)
    except (idna.IDNAError, UnicodeError, dns.exception.DNSException) as error:
        raise PostroomError(
            f"{domain!r} is not a valid domain name ({error}); "
            "write it like example.net, bücher.example or xn--bcher-kva.example."
        ) from None


def show_name(name: dns.name.Name) -> str:
    """A name as people read it: U-labels, no final dot."""
    if name == dns.name.root:
        return "."
    text = name.to_text(omit_final_dot=True)
    try:
        return str(idna.decode(text))
    except (idna.IDNAError, UnicodeError):
        return text


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def normal_ip(text: str) -> str:
    """An IP address in its normal form (e.g. IPv6 compressed), so that equal ones compare equal."""
    return str(ipaddress.ip_address(text))
