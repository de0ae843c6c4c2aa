"""DNS health checks for hosted domains and this server, and MX routing for outbound mail."""

from __future__ import annotations

import enum
import ipaddress
import logging
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.nameserver
import dns.rdata
import dns.rdatatype
import dns.rdtypes.ANY.MX
import dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.resolver
import dns.reversename
import idna

from app.errors import PostroomError

log = logging.getLogger(__name__)

#: The TTL written into suggested zone-file records.
RECORD_TTL = 3600
#: How an administrator names this server; quoted in advice when the name is unset.
SET_PUBLIC_NAME_COMMAND = "postroom smtp set public_name mail.example.org"
#: How an administrator picks a nameserver, once or for good; quoted in advice when none is usable.
SET_NAMESERVER_HINT = (
    "--nameserver HOST[:PORT] for one check, or postroom smtp set nameservers IP[:PORT] to keep it"
)
#: The SPF record suggested when one is missing or broken: the domain's MX hosts may send.
SUGGESTED_SPF = "v=spf1 mx -all"
#: The DMARC record suggested when one is missing or broken: report, do not reject yet.
SUGGESTED_DMARC = "v=DMARC1; p=none"

_MAX_WORKERS = 8
# RFC 7208 §4.6.4: more than ten DNS-querying terms is a permanent error.
_SPF_MAX_DNS_TERMS = 10
_SPF_MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
_SPF_DNS_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
_SPF_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*)=(.*)")
_SPF_MECHANISM = re.compile(r"([+?~-]?)([A-Za-z0-9]+)(.*)")
_SPF_CIDR = re.compile(r"(?:/(\d+))?(?://(\d+))?")
_DOMAIN_SPEC = re.compile(r"[\x21-\x7e]+")
_DMARC_POLICIES = frozenset({"none", "quarantine", "reject"})
_SERVER_TEXT = re.compile(r"^(?:Do53:)?(.+?)(?:@\d+)?$")


class UndeliverableError(PostroomError):
    """DNS says the domain takes no mail: null MX, no such domain, or no host to deliver to."""


class DnsTemporaryError(PostroomError):
    """DNS could not answer now (timeout, SERVFAIL, REFUSED, no nameserver); try again later."""


class Status(enum.Enum):
    """How one check came out."""

    OK = "ok"
    WARNING = "warning"
    ERROR = "error"
    UNKNOWN = "unknown"


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
            _domain_name(self.server_name)


@dataclass(frozen=True)
class CheckResult:
    """One check of one domain (or of this server), with what to do about it."""

    #: The domain as shown to people (U-label), or this server's name for server checks.
    domain: str
    #: Short id: mx, mx-target, null-mx, spf, dmarc, server-a, server-aaaa, ptr-v4, ptr-v6.
    check: str
    status: Status
    #: One line saying what was found.
    summary: str
    #: What to do next; "" when the check is OK.
    advice: str = ""
    #: Zone-file line(s) to add; "" when there is nothing exact to add.
    record: str = ""


@dataclass(frozen=True)
class MailExchanger:
    """A host that takes mail for a domain; lower preference is tried first."""

    preference: int
    #: Host name as ASCII (A-label), without the final dot.
    host: str


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
    return _domain_name(domain).to_text(omit_final_dot=True).lower()


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
    """Ask DNS for ``rdtype`` records at ``name`` (a domain as typed, or an absolute name)."""
    qname = name if isinstance(name, dns.name.Name) else _domain_name(name)
    return _Lookup(config).query(qname, dns.rdatatype.from_text(rdtype))


def check_domain(domain: str, config: DnsConfig) -> list[CheckResult]:
    """Check that mail for a hosted domain reaches this server and is protected by SPF and DMARC.

    Blocks on DNS (up to ``config.lifetime`` per query): call it off the GUI thread.
    """
    return _check_name(_domain_name(domain), config)


def check_server(config: DnsConfig) -> list[CheckResult]:
    """Check this server's public name: A / AAAA, and reverse DNS that forward-confirms.

    Blocks on DNS: call it off the GUI thread.
    """
    return _ServerChecks(config, _Lookup(config)).run()


def check_all(domains: Iterable[str], config: DnsConfig) -> list[CheckResult]:
    """Check every domain (given order, duplicates once), then this server, a few at a time.

    Blocks on DNS from the calling thread and a small pool of its own: call it off the GUI thread.
    """
    names: list[dns.name.Name] = []
    for domain in domains:
        name = _domain_name(domain)
        if name not in names:
            names.append(name)
    with ThreadPoolExecutor(max_workers=min(_MAX_WORKERS, len(names) + 1)) as pool:
        futures = [pool.submit(_check_name, name, config) for name in names]
        futures.append(pool.submit(check_server, config))
        return [result for future in futures for result in future.result()]


def _check_name(name: dns.name.Name, config: DnsConfig) -> list[CheckResult]:
    return _DomainChecks(name, config, _Lookup(config)).run()


def mail_exchangers(domain: str, config: DnsConfig) -> list[MailExchanger]:
    """The hosts to deliver mail for ``domain`` to, most preferred first (MX, else A / AAAA).

    Raises ``UndeliverableError`` for a null MX, a domain that does not exist or has no host,
    and ``DnsTemporaryError`` when DNS could not answer.
    """
    name = _domain_name(domain)
    shown = _show(name)
    lookup = _Lookup(config)
    mx = lookup.query(name, dns.rdatatype.MX)
    if mx.outcome is Outcome.NXDOMAIN:
        raise UndeliverableError(f"The domain {shown} does not exist (NXDOMAIN).")
    if not mx.outcome.is_definite:
        raise DnsTemporaryError(f"Could not look up the MX records of {shown}: {mx.detail}.")
    if mx.outcome is Outcome.ANSWER:
        records = _mx_records(mx)
        if _is_null_mx(records):
            raise UndeliverableError(
                f"The domain {shown} accepts no mail: it publishes a null MX (RFC 7505)."
            )
        hosts: list[MailExchanger] = []
        for preference, exchange in sorted(records, key=lambda r: (r[0], r[1].to_text())):
            host = exchange.to_text(omit_final_dot=True)
            if exchange != dns.name.root and all(known.host != host for known in hosts):
                hosts.append(MailExchanger(preference, host))
        return hosts
    # No MX: RFC 5321 §5.1, the domain itself is the implicit MX (after any CNAME).
    target = mx.canonical_name or name
    a = lookup.query(target, dns.rdatatype.A)
    aaaa = lookup.query(target, dns.rdatatype.AAAA)
    if _addresses(a) or _addresses(aaaa):
        return [MailExchanger(0, target.to_text(omit_final_dot=True))]
    for result in (a, aaaa):
        if not result.outcome.is_definite:
            raise DnsTemporaryError(
                f"Could not look up the addresses of {shown} (it has no MX): {result.detail}."
            )
    raise UndeliverableError(f"The domain {shown} has no MX record and no A or AAAA record.")


# --- queries ---------------------------------------------------------------------------------


class _Lookup:
    """One resolver for one run of checks; every DNS failure becomes a ``QueryResult``."""

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


def _mx_records(result: QueryResult) -> list[tuple[int, dns.name.Name]]:
    return [
        (record.preference, record.exchange)
        for record in result.records
        if isinstance(record, dns.rdtypes.ANY.MX.MX)
    ]


def _is_null_mx(records: Sequence[tuple[int, dns.name.Name]]) -> bool:
    return len(records) == 1 and records[0][1] == dns.name.root


def _addresses(result: QueryResult) -> list[str]:
    return [
        _normal_ip(record.address)
        for record in result.records
        if isinstance(record, dns.rdtypes.IN.A.A | dns.rdtypes.IN.AAAA.AAAA)
    ]


def _texts(result: QueryResult) -> list[str]:
    # RFC 7208 §3.3: the strings of one TXT record are joined without separators.
    return [
        b"".join(record.strings).decode("utf-8", errors="replace")
        for record in result.records
        if isinstance(record, dns.rdtypes.ANY.TXT.TXT)
    ]


def _ptr_names(result: QueryResult) -> list[dns.name.Name]:
    return sorted(
        (record.target for record in result.records if isinstance(record, dns.rdtypes.ANY.PTR.PTR)),
        key=lambda name: name.to_text(),
    )


# --- names and messages ----------------------------------------------------------------------


def _domain_name(domain: str) -> dns.name.Name:
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


def _show(name: dns.name.Name) -> str:
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


def _normal_ip(text: str) -> str:
    return str(ipaddress.ip_address(text))


def _record(owner: dns.name.Name, rdtype: str, data: str) -> str:
    return f"{owner.to_text()} {RECORD_TTL} IN {rdtype} {data}"


def _txt(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unknown(domain: str, check: str, what: str, result: QueryResult) -> CheckResult:
    """A check DNS could not answer: says so, and never calls the record missing."""
    if result.outcome is Outcome.NO_RESOLVER:
        advice = (
            f"Set a nameserver to ask ({SET_NAMESERVER_HINT}), or give this machine one in "
            "/etc/resolv.conf, then check again."
        )
    else:
        advice = (
            "This says nothing about whether the record exists. Check that the nameserver is "
            f"reachable and answers for this name (or pick another with {SET_NAMESERVER_HINT}), "
            "then check again."
        )
    return CheckResult(
        domain, check, Status.UNKNOWN, f"Could not check {what}: {result.detail}.", advice
    )


_PUBLIC_NAME_UNSET = (
    "This server's public host name is not set. Set it to the name the world reaches this "
    f"server by: {SET_PUBLIC_NAME_COMMAND}"
)


# --- per-domain checks -----------------------------------------------------------------------


class _DomainChecks:
    """The checks of one hosted domain, in a fixed order."""

    def __init__(self, name: dns.name.Name, config: DnsConfig, lookup: _Lookup) -> None:
        self.name = name
        self.shown = _show(name)
        self.config = config
        self.lookup = lookup
        self.server = _domain_name(config.server_name) if config.server_name else None

    def run(self) -> list[CheckResult]:
        return [*self._mx(), self._spf(), self._dmarc()]

    def _result(
        self, check: str, status: Status, summary: str, advice: str = "", record: str = ""
    ) -> CheckResult:
        return CheckResult(self.shown, check, status, summary, advice, record)

    def _mx_record(self) -> str:
        if self.server is None:
            return ""
        return _record(self.name, "MX", f"10 {self.server.to_text()}")

    def _add_mx_advice(self, first: str = "") -> str:
        if self.server is None:
            advice = f"{_PUBLIC_NAME_UNSET}, then add an MX record naming it."
        else:
            advice = f"Add an MX record naming this server ({_show(self.server)}):"
        return f"{first} {advice}" if first else advice

    # MX ---------------------------------------------------------------------------------------

    def _mx(self) -> list[CheckResult]:
        mx = self.lookup.query(self.name, dns.rdatatype.MX)
        if not mx.outcome.is_definite:
            return [_unknown(self.shown, "mx", f"the MX records of {self.shown}", mx)]
        if mx.outcome is Outcome.NXDOMAIN:
            return [
                self._result(
                    "mx",
                    Status.ERROR,
                    f"{self.shown} does not exist in DNS (NXDOMAIN); no mail can reach it.",
                    self._add_mx_advice(
                        "Register or delegate the domain so that its nameservers answer for it."
                    ),
                    self._mx_record(),
                )
            ]
        records = _mx_records(mx)
        if not records:
            return [
                self._result(
                    "mx",
                    Status.ERROR,
                    f"{self.shown} has no MX record; senders will not route its mail here.",
                    self._add_mx_advice(),
                    self._mx_record(),
                )
            ]
        null = [r for r in records if r[1] == dns.name.root]
        real = sorted((r for r in records if r[1] != dns.name.root), key=lambda r: r[0])
        null_record = f"{self.name.to_text()} IN MX 0 ."
        if not real:
            return [
                self._result(
                    "null-mx",
                    Status.ERROR,
                    f"{self.shown} publishes a null MX (RFC 7505): it declares that it takes no "
                    "mail, so senders refuse mail to it without trying.",
                    self._add_mx_advice(f"Delete the null MX record ({null_record})."),
                    self._mx_record(),
                )
            ]
        results: list[CheckResult] = []
        if null:
            results.append(
                self._result(
                    "null-mx",
                    Status.ERROR,
                    f"{self.shown} mixes a null MX ('0 .') with other MX records, which RFC 7505 "
                    "forbids; senders may treat the domain as taking no mail.",
                    f"Delete the null MX record ({null_record}) and keep the other MX records.",
                )
            )
        targets: list[CheckResult] = []
        aliases: dict[dns.name.Name, dns.name.Name] = {}
        for preference, target in real:
            if target not in aliases:
                result, aliases[target] = self._mx_target(preference, target)
                targets.append(result)
        return [*results, self._mx_points_here(real, aliases), *targets]

    def _mx_points_here(
        self, records: list[tuple[int, dns.name.Name]], aliases: dict[dns.name.Name, dns.name.Name]
    ) -> CheckResult:
        listed = ", ".join(f"{_show(target)} ({preference})" for preference, target in records)
        if self.server is None:
            return self._result(
                "mx",
                Status.WARNING,
                f"MX of {self.shown} names {listed}; cannot tell whether that is this server.",
                _PUBLIC_NAME_UNSET + ".",
            )
        server = _show(self.server)
        here = [preference for preference, target in records if target == self.server]
        via_alias = [_show(target) for _, target in records if aliases[target] == self.server]
        if not here and via_alias:
            return self._result(
                "mx",
                Status.ERROR,
                f"MX of {self.shown} names {', '.join(via_alias)}, an alias (CNAME) of this "
                f"server ({server}) rather than its own name.",
                f"Replace the MX records of {self.shown} with one naming this server itself:",
                self._mx_record(),
            )
        if not here:
            return self._result(
                "mx",
                Status.ERROR,
                f"MX of {self.shown} names {listed}, not this server ({server}); "
                "its mail goes elsewhere.",
                f"Replace the MX records of {self.shown} with one naming this server:",
                self._mx_record(),
            )
        best = records[0][0]
        if min(here) > best:
            others = ", ".join(_show(t) for p, t in records if p < min(here))
            return self._result(
                "mx",
                Status.WARNING,
                f"MX of {self.shown} prefers {others} over this server ({server}); mail comes "
                "here only when that host is down.",
                "Unless that host is a backup that passes mail on here, give this server the "
                "lowest preference number or delete the other MX records:",
                self._mx_record(),
            )
        return self._result("mx", Status.OK, f"MX of {self.shown} names this server ({server}).")

    def _mx_target(
        self, preference: int, target: dns.name.Name
    ) -> tuple[CheckResult, dns.name.Name]:
        """The check of one MX target, and the name it is an alias for (itself if none)."""
        a = self.lookup.query(target, dns.rdatatype.A)
        aaaa = self.lookup.query(target, dns.rdatatype.AAAA)
        alias = next((r.canonical_name for r in (a, aaaa) if r.is_alias), None)
        return self._mx_target_result(preference, target, a, aaaa, alias), alias or target

    def _mx_target_result(
        self,
        preference: int,
        target: dns.name.Name,
        a: QueryResult,
        aaaa: QueryResult,
        alias: dns.name.Name | None,
    ) -> CheckResult:
        shown = _show(target)
        if alias is not None:
            return self._result(
                "mx-target",
                Status.ERROR,
                f"MX target {shown} is an alias (CNAME) for {_show(alias)}; an MX must name a "
                "host with its own A/AAAA records (RFC 2181 §10.3), and some senders refuse it.",
                f"Point the MX record at {_show(alias)} itself (or replace the CNAME at {shown} "
                "with A/AAAA records):",
                _record(self.name, "MX", f"{preference} {alias.to_text()}"),
            )
        addresses = _addresses(a) + _addresses(aaaa)
        if addresses:
            return self._result(
                "mx-target",
                Status.OK,
                f"MX target {shown} has address {', '.join(addresses)}.",
            )
        for result in (a, aaaa):
            if not result.outcome.is_definite:
                return _unknown(
                    self.shown, "mx-target", f"the addresses of MX target {shown}", result
                )
        if a.outcome is Outcome.NXDOMAIN:
            found = f"MX target {shown} does not exist (NXDOMAIN)"
        else:
            found = f"MX target {shown} has no A or AAAA record"
        summary = f"{found}; senders cannot deliver mail for {self.shown} to it."
        if target == self.server and self.config.server_addresses:
            return self._result(
                "mx-target",
                Status.ERROR,
                summary,
                f"Add the address records of {shown}:",
                _address_records(target, self.config.server_addresses),
            )
        return self._result(
            "mx-target",
            Status.ERROR,
            summary,
            f"Add an A record (IPv4) and/or an AAAA record (IPv6) for {shown} giving the mail "
            "server's public address, or point the MX at a host that has them.",
        )

    # SPF --------------------------------------------------------------------------------------

    def _spf(self) -> CheckResult:
        txt = self.lookup.query(self.name, dns.rdatatype.TXT)
        if not txt.outcome.is_definite:
            return _unknown(self.shown, "spf", f"the SPF record of {self.shown}", txt)
        suggested = _record(self.name, "TXT", _txt(SUGGESTED_SPF))
        spf = [text for text in _texts(txt) if _is_spf(text)]
        if not spf:
            return self._result(
                "spf",
                Status.ERROR,
                f"{self.shown} has no SPF record (TXT v=spf1); receivers cannot tell which hosts "
                "may send its mail, and many junk or refuse it.",
                "Add an SPF record; this one lets the domain's MX hosts send:",
                suggested,
            )
        if len(spf) > 1:
            return self._result(
                "spf",
                Status.ERROR,
                f"{self.shown} has {len(spf)} SPF records; receivers treat that as a permanent "
                "error (RFC 7208 §4.5) and SPF fails for all its mail.",
                "Merge them into one TXT record and delete the others, e.g.:",
                suggested,
            )
        errors, warnings = _spf_problems(spf[0])
        if errors:
            return self._result(
                "spf",
                Status.ERROR,
                f"SPF record of {self.shown} is malformed: {'; '.join(errors + warnings)}.",
                f"Fix the record {_txt(spf[0])}; if unsure, replace it with:",
                suggested,
            )
        if warnings:
            return self._result(
                "spf",
                Status.WARNING,
                f"SPF record of {self.shown} works but: {'; '.join(warnings)}.",
                f"Consider fixing the record {_txt(spf[0])}, e.g.:",
                suggested,
            )
        return self._result("spf", Status.OK, f"SPF record of {self.shown}: {spf[0]}")

    # DMARC ------------------------------------------------------------------------------------

    def _dmarc(self) -> CheckResult:
        owner = dns.name.from_text("_dmarc", origin=self.name)
        shown_owner = f"_dmarc.{self.shown}"
        txt = self.lookup.query(owner, dns.rdatatype.TXT)
        if not txt.outcome.is_definite:
            return _unknown(self.shown, "dmarc", f"the DMARC record at {shown_owner}", txt)
        suggested = _record(owner, "TXT", _txt(SUGGESTED_DMARC))
        dmarc = [text for text in _texts(txt) if text.lstrip().lower().startswith("v=dmarc1")]
        if not dmarc:
            return self._result(
                "dmarc",
                Status.WARNING,
                f"{self.shown} has no DMARC record (TXT v=DMARC1 at {shown_owner}); receivers "
                "get no policy for mail that fails SPF.",
                "Add a DMARC record; p=none only reports, move to p=quarantine once mail passes:",
                suggested,
            )
        if len(dmarc) > 1:
            return self._result(
                "dmarc",
                Status.ERROR,
                f"{shown_owner} has {len(dmarc)} DMARC records; receivers ignore them all "
                "(RFC 7489 §6.6.3).",
                "Keep one DMARC record and delete the others, e.g.:",
                suggested,
            )
        problem = _dmarc_problem(dmarc[0])
        if problem:
            return self._result(
                "dmarc",
                Status.ERROR,
                f"DMARC record of {self.shown} is malformed: {problem}; receivers ignore it.",
                f"Fix the record {_txt(dmarc[0])}, e.g.:",
                suggested,
            )
        return self._result("dmarc", Status.OK, f"DMARC record of {self.shown}: {dmarc[0]}")


def _address_records(owner: dns.name.Name, addresses: Iterable[str]) -> str:
    lines = []
    for address in addresses:
        ip = ipaddress.ip_address(address)
        lines.append(_record(owner, "A" if ip.version == 4 else "AAAA", str(ip)))
    return "\n".join(lines)


def _is_spf(text: str) -> bool:
    lowered = text.lower()
    return lowered == "v=spf1" or lowered.startswith("v=spf1 ")


def _spf_problems(text: str) -> tuple[list[str], list[str]]:
    """Errors (receivers fail the record) and warnings (it works, but likely not as meant)."""
    errors: list[str] = []
    warnings: list[str] = []
    modifiers: dict[str, int] = {}
    alls = 0
    dns_terms = 0
    after_all: list[str] = []
    for term in text.split()[1:]:
        modifier = _SPF_MODIFIER.fullmatch(term)
        if modifier:
            key = modifier.group(1).lower()
            modifiers[key] = modifiers.get(key, 0) + 1
            if key in ("redirect", "exp"):
                if not _DOMAIN_SPEC.fullmatch(modifier.group(2)):
                    errors.append(f"'{term}' needs a domain")
                if key == "redirect":
                    dns_terms += 1
            else:
                warnings.append(f"unknown modifier '{term}' is ignored (a typo?)")
            continue
        mechanism = _SPF_MECHANISM.fullmatch(term)
        if not mechanism or mechanism.group(2).lower() not in _SPF_MECHANISMS:
            errors.append(f"unknown mechanism '{term}'")
            continue
        qualifier, kind, rest = mechanism.group(1), mechanism.group(2).lower(), mechanism.group(3)
        if alls:
            after_all.append(term)
        problem = _spf_argument_problem(kind, rest)
        if problem:
            errors.append(f"'{term}' {problem}")
        if kind == "all":
            alls += 1
            if qualifier in ("", "+"):
                errors.append(f"'{term}' lets every host on the internet send as the domain")
        elif kind in _SPF_DNS_MECHANISMS:
            dns_terms += 1
        if kind == "ptr":
            warnings.append("'ptr' is slow and deprecated (RFC 7208 §5.5)")
    if alls > 1:
        errors.append(f"{alls} 'all' terms where at most one is allowed")
    for key in ("redirect", "exp"):
        if modifiers.get(key, 0) > 1:
            errors.append(f"'{key}=' appears {modifiers[key]} times where at most once is allowed")
    if dns_terms > _SPF_MAX_DNS_TERMS:
        errors.append(
            f"{dns_terms} terms that need DNS lookups, more than the {_SPF_MAX_DNS_TERMS} allowed"
        )
    if after_all:
        warnings.append(f"terms after 'all' are never used: {' '.join(after_all)}")
    if alls and modifiers.get("redirect"):
        warnings.append("'redirect=' is ignored because the record has 'all'")
    if not alls and not modifiers.get("redirect"):
        warnings.append("it does not end in '-all' or '~all', so it does not say who may NOT send")
    return errors, warnings


def _spf_argument_problem(kind: str, rest: str) -> str:
    """What is wrong with the part after a mechanism's name; "" when it is sane."""
    if kind == "all":
        return "takes no argument" if rest else ""
    if kind in ("include", "exists"):
        ok = rest.startswith(":") and _DOMAIN_SPEC.fullmatch(rest[1:]) is not None
        return "" if ok else "needs ':' and a domain"
    if kind == "ptr":
        ok = not rest or (rest.startswith(":") and _DOMAIN_SPEC.fullmatch(rest[1:]) is not None)
        return "" if ok else "takes only an optional ':domain'"
    if kind in ("a", "mx"):
        domain, slash, cidr = rest.partition("/")
        if domain and (not domain.startswith(":") or not _DOMAIN_SPEC.fullmatch(domain[1:])):
            return "has a malformed domain"
        return "" if _cidr_ok(slash + cidr) else "has a malformed prefix length"
    # ip4 / ip6
    if not rest.startswith(":"):
        return "needs ':' and an address"
    try:
        network = ipaddress.ip_network(rest[1:], strict=False)
    except ValueError:
        return "has a malformed address or prefix length"
    if network.version != (4 if kind == "ip4" else 6):
        return f"holds an IPv{network.version} address"
    return ""


def _cidr_ok(text: str) -> bool:
    match = _SPF_CIDR.fullmatch(text)
    if not match:
        return False
    v4, v6 = match.group(1), match.group(2)
    return (v4 is None or int(v4) <= 32) and (v6 is None or int(v6) <= 128)


def _dmarc_problem(text: str) -> str:
    """What makes a v=DMARC1 record unusable; "" when it has a valid policy."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        key, equals, value = part.partition("=")
        if equals:
            tags.setdefault(key.strip().lower(), value.strip())
    if tags.get("v") != "DMARC1":
        return "it must start with exactly 'v=DMARC1'"
    if "p" not in tags:
        return "it has no p= tag (the policy: none, quarantine or reject)"
    if tags["p"].lower() not in _DMARC_POLICIES:
        return f"p={tags['p']} is not none, quarantine or reject"
    return ""


# --- this server -----------------------------------------------------------------------------


class _ServerChecks:
    """The checks of this server's public name and addresses, in a fixed order."""

    def __init__(self, config: DnsConfig, lookup: _Lookup) -> None:
        self.config = config
        self.lookup = lookup

    def run(self) -> list[CheckResult]:
        if self.config.server_name is None:
            return [
                CheckResult(
                    "",
                    "server-a",
                    Status.WARNING,
                    "This server's public host name is not set, so its addresses and reverse "
                    "DNS cannot be checked.",
                    _PUBLIC_NAME_UNSET + ".",
                )
            ]
        name = _domain_name(self.config.server_name)
        shown = _show(name)
        a = self.lookup.query(name, dns.rdatatype.A)
        aaaa = self.lookup.query(name, dns.rdatatype.AAAA)
        configured = [_normal_ip(address) for address in self.config.server_addresses]
        results = [
            self._family(name, shown, 4, a, aaaa, configured),
            self._family(name, shown, 6, aaaa, a, configured),
        ]
        for version, result in ((4, a), (6, aaaa)):
            if not result.outcome.is_definite:
                continue
            found = _addresses(result)
            extra = [
                ip
                for ip in configured
                if ipaddress.ip_address(ip).version == version and ip not in found
            ]
            for ip in found + extra:
                results.append(self._ptr(name, shown, version, ip, found))
        return results

    def _family(
        self,
        name: dns.name.Name,
        shown: str,
        version: int,
        result: QueryResult,
        other: QueryResult,
        configured: list[str],
    ) -> CheckResult:
        rdtype = "A" if version == 4 else "AAAA"
        check = "server-a" if version == 4 else "server-aaaa"
        if not result.outcome.is_definite:
            return _unknown(shown, check, f"the {rdtype} record of {shown}", result)
        found = _addresses(result)
        wanted = [ip for ip in configured if ipaddress.ip_address(ip).version == version]
        absent = [ip for ip in wanted if ip not in found]
        if found and absent:
            return CheckResult(
                shown,
                check,
                Status.ERROR,
                f"{shown} has {rdtype} {', '.join(found)}, not this server's {', '.join(absent)}.",
                f"Add this server's address to {shown} (and delete {rdtype} records that are "
                "not this server's):",
                _address_records(name, absent),
            )
        if found:
            return CheckResult(shown, check, Status.OK, f"{shown} has {rdtype} {', '.join(found)}.")
        record = _address_records(name, wanted)
        family = f"IPv{version}"
        if record:
            advice = f"Add the {rdtype} record of this server's {family} address:"
        else:
            advice = (
                f"Add an {rdtype} record for {shown} with this server's public {family} address."
            )
        if result.outcome is Outcome.NXDOMAIN:
            return CheckResult(
                shown,
                check,
                Status.ERROR,
                f"{shown} does not exist in DNS (NXDOMAIN); nothing can reach this server by name.",
                advice,
                record,
            )
        if wanted:
            return CheckResult(
                shown,
                check,
                Status.ERROR,
                f"{shown} has no {rdtype} record, though this server has {family} "
                f"address {', '.join(wanted)}.",
                advice,
                record,
            )
        if _addresses(other):
            if version == 6:
                return CheckResult(
                    shown, check, Status.OK, f"{shown} has no AAAA record (no IPv6 published)."
                )
            return CheckResult(
                shown,
                check,
                Status.WARNING,
                f"{shown} has no A record, so senders with only IPv4 cannot reach it.",
                advice,
                record,
            )
        return CheckResult(
            shown,
            check,
            Status.ERROR,
            f"{shown} has neither an A nor an AAAA record; nothing can reach this server by name.",
            advice,
            record,
        )

    def _ptr(
        self, server: dns.name.Name, shown: str, version: int, ip: str, forward: list[str]
    ) -> CheckResult:
        check = f"ptr-v{version}"
        rdtype = dns.rdatatype.A if version == 4 else dns.rdatatype.AAAA
        reverse = dns.reversename.from_address(ip)
        ptr_record = _record(reverse, "PTR", server.to_text())
        set_ptr = (
            f"Ask whoever controls {ip} (usually the hosting provider, in its control panel) "
            f"to set its reverse DNS to {shown}:"
        )
        ptr = self.lookup.query(reverse, dns.rdatatype.PTR)
        if not ptr.outcome.is_definite:
            return _unknown(shown, check, f"the reverse DNS (PTR) of {ip}", ptr)
        names = _ptr_names(ptr)
        if not names:
            return CheckResult(
                shown,
                check,
                Status.ERROR,
                f"{ip} has no reverse DNS (PTR) record; many receivers refuse or junk mail from "
                "such addresses.",
                set_ptr,
                ptr_record,
            )
        if server in names:
            if ip in forward:
                return CheckResult(
                    shown,
                    check,
                    Status.OK,
                    f"{ip} reverses to {shown}, which resolves back to {ip}.",
                )
            return CheckResult(
                shown,
                check,
                Status.ERROR,
                f"{ip} reverses to {shown}, but {shown} does not resolve back to {ip}.",
                f"Add {ip} to the addresses of {shown}:",
                _address_records(server, [ip]),
            )
        unknown: QueryResult | None = None
        for name in names:
            back = self.lookup.query(name, rdtype)
            if ip in _addresses(back):
                return CheckResult(
                    shown,
                    check,
                    Status.WARNING,
                    f"{ip} reverses to {_show(name)}, which resolves back but is not this "
                    f"server's public name {shown}; receivers that compare it with the "
                    "greeting name may distrust the mail.",
                    set_ptr,
                    ptr_record,
                )
            if not back.outcome.is_definite:
                unknown = back
        if unknown is not None:
            return _unknown(
                shown, check, f"whether the reverse DNS of {ip} forward-confirms", unknown
            )
        reversed_to = ", ".join(_show(name) for name in names)
        return CheckResult(
            shown,
            check,
            Status.ERROR,
            f"PTR mismatch: {ip} reverses to {reversed_to}, which does not resolve back to {ip}.",
            set_ptr,
            ptr_record,
        )
