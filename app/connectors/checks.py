"""What a connector may hold: address spaces, smart hosts, a name, security; one line a refusal."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging

from app.directory import addressing
from app.errors import PostroomError
from app.model import ANY_DOMAIN, CONNECTOR_TLS, SMTP, AddressSpace, SmartHost, SmtpConnector

log = logging.getLogger(__name__)

MAX_NAME_LENGTH = 64
MIN_COST = 1
MAX_COST = 100
#: Where connectors are, for messages that tell the administrator where to look.
CONNECTORS_PLACE = "Routing Groups > First Routing Group > Connectors"

_PATTERN_HELP = "Write * (every other domain), a domain such as example.com, or *.example.com."
_HOST_HELP = (
    "Write a host name or an IP address in brackets, each with an optional port, e.g. "
    "relay.example.com, relay.example.com:587 or [192.0.2.25]:2525."
)


# -- address spaces ---------------------------------------------------------------------------


def parse_address_space(text: str) -> AddressSpace:
    """``PATTERN[:COST]`` as typed (``example.com``, ``*.example.com:10``, ``*``) → an address
    space of type SMTP; the cost defaults to 1."""
    raw = text.strip()
    pattern, colon, cost_text = raw.rpartition(":")
    if not colon:
        return make_address_space(raw)
    try:
        cost = int(cost_text)
    except ValueError:
        raise PostroomError(
            f"The cost '{cost_text}' of the address space '{raw}' is not a whole number: "
            f"use {MIN_COST} to {MAX_COST}, e.g. example.com:10."
        ) from None
    return make_address_space(pattern, cost)


def make_address_space(pattern: str, cost: int = MIN_COST, type_: str = SMTP) -> AddressSpace:
    """A checked address space: the pattern in lower-case A-labels, the cost in range."""
    if type_.upper() != SMTP:
        raise PostroomError(
            f"The address space type '{type_}' is not supported: connectors carry SMTP "
            "address spaces only."
        )
    normal = normal_pattern(pattern)
    if isinstance(cost, bool) or not MIN_COST <= cost <= MAX_COST:
        raise PostroomError(
            f"The cost {cost} of the address space '{pattern.strip()}' is out of range: "
            f"use {MIN_COST} (preferred) to {MAX_COST}."
        )
    return AddressSpace(normal, cost, SMTP)


def normal_pattern(text: str) -> str:
    """``*``, ``example.com`` or ``*.example.com`` in lower-case A-labels; a refusal otherwise."""
    raw = text.strip()
    if raw == ANY_DOMAIN:
        return ANY_DOMAIN
    domain = raw[2:] if raw.startswith("*.") else raw
    if not raw:
        raise PostroomError(f"The address space is empty. {_PATTERN_HELP}")
    if "*" in domain:
        raise PostroomError(
            f"The address space '{raw}' is not a domain pattern: '*' may stand alone or as "
            f"the first label only. {_PATTERN_HELP}"
        )
    if _is_ip(domain.removeprefix("[").removesuffix("]")):
        raise PostroomError(
            f"The address space '{raw}' is an IP address, not a domain pattern. {_PATTERN_HELP}"
        )
    try:
        normal = addressing.normalize_domain(domain)
    except PostroomError as error:
        raise PostroomError(f"The address space '{raw}' is not a domain pattern. {error}") from None
    return f"*.{normal}" if raw.startswith("*.") else normal


def display_pattern(pattern: str) -> str:
    """An address space's pattern as people read it: the domain in Unicode."""
    if pattern == ANY_DOMAIN:
        return pattern
    if pattern.startswith("*."):
        return "*." + addressing.display_domain(pattern[2:])
    return addressing.display_domain(pattern)


# -- smart hosts ------------------------------------------------------------------------------


def parse_smart_host(text: str) -> SmartHost:
    """``HOST[:PORT]`` as typed: a host name, or an IP literal in brackets (``[192.0.2.25]``,
    ``[IPv6:2001:db8::25]:2525``); no port means the outbound port."""
    raw = text.strip()
    if raw.startswith("["):
        literal, bracket, rest = raw[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise PostroomError(f"The smart host '{raw}' is not a host name. {_HOST_HELP}")
        host, port_text = f"[{literal}]", rest[1:] if rest else None
    elif raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
    else:
        host, port_text = raw, None
    if port_text is None:
        return make_smart_host(host)
    try:
        port = int(port_text)
    except ValueError:
        raise PostroomError(
            f"The port '{port_text}' of the smart host '{raw}' is not a number: use 1 to 65535."
        ) from None
    return make_smart_host(host, port)


def make_smart_host(host: str, port: int | None = None) -> SmartHost:
    """A checked smart host: a host name in lower-case A-labels or a normal IP literal in
    brackets, and a port of 1 to 65535 (or None)."""
    raw = host.strip()
    if port is not None and (isinstance(port, bool) or not 1 <= port <= 65535):
        raise PostroomError(
            f"The port {port} of the smart host '{raw}' is out of range: use 1 to 65535."
        )
    return SmartHost(_normal_host(raw), port)


def _normal_host(raw: str) -> str:
    if not raw:
        raise PostroomError(f"The smart host is empty. {_HOST_HELP}")
    if raw.startswith("[") and raw.endswith("]"):
        literal = raw[1:-1]
        if literal[:5].lower() == "ipv6:":
            literal = literal[5:]
        try:
            return f"[{ipaddress.ip_address(literal)}]"
        except ValueError:
            raise PostroomError(
                f"The smart host '{raw}' is not an IP address in brackets. {_HOST_HELP}"
            ) from None
    if _is_ip(raw):
        raise PostroomError(
            f"The smart host '{raw}' is an IP address: write it in brackets, [{raw}], as "
            "Exchange does."
        )
    try:
        return addressing.normalize_domain(raw)
    except PostroomError as error:
        raise PostroomError(f"The smart host '{raw}' is not a full host name. {error}") from None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# -- the whole connector ----------------------------------------------------------------------


def check_name(name: str) -> str:
    """The connector name, stripped; a refusal if it is empty, too long or has control
    characters."""
    name = name.strip()
    if not name:
        raise PostroomError("The connector name is empty. Type a name for the connector.")
    if len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise PostroomError(
            f"The connector name must be printable text of at most {MAX_NAME_LENGTH} characters."
        )
    return name


def check_connector(connector: SmtpConnector) -> SmtpConnector:
    """The connector with every part checked and normalised; a PostroomError naming the first
    thing wrong (the message says what to do)."""
    name = check_name(connector.name)
    spaces = tuple(
        make_address_space(space.pattern, space.cost, space.type)
        for space in connector.address_spaces
    )
    if not spaces:
        raise PostroomError(
            f"The connector '{name}' has no address space: add at least one, e.g. example.com, "
            "or * for every domain no other connector names."
        )
    seen: set[str] = set()
    for space in spaces:
        if space.pattern in seen:
            raise PostroomError(
                f"The address space '{display_pattern(space.pattern)}' is on the connector "
                f"'{name}' twice: keep one entry, with the cost you want."
            )
        seen.add(space.pattern)
    if connector.relay and ANY_DOMAIN in seen:
        # Exchange allows it and becomes an open relay; this is the trap DESIGN §10 fixes.
        raise PostroomError(
            f"The connector '{name}' cannot allow relaying to '*': anyone could send mail to "
            "any domain through this server (an open relay). Allow relaying on a connector "
            "for named domains only, e.g. example.com or *.example.com."
        )
    hosts = tuple(make_smart_host(host.host, host.port) for host in connector.smart_hosts)
    if connector.use_dns and hosts:
        raise PostroomError(
            f"The connector '{name}' cannot use DNS and smart hosts together: choose DNS, or "
            "forward all mail to the smart hosts."
        )
    if not connector.use_dns and not hosts:
        raise PostroomError(
            f"The connector '{name}' forwards to smart hosts but names none: add a smart host, "
            "or choose DNS."
        )
    if len(set(hosts)) != len(hosts):
        raise PostroomError(f"The connector '{name}' names a smart host twice: keep one.")
    if connector.tls not in CONNECTOR_TLS:
        raise PostroomError(
            f"'{connector.tls}' is not a TLS choice: use {' or '.join(CONNECTOR_TLS)}."
        )
    user = connector.auth_user.strip()
    if user and not connector.password:
        raise PostroomError(
            f"Basic authentication for the connector '{name}' needs a password as well as the "
            "user name (on the command line: --password-stdin)."
        )
    if connector.password and not user:
        raise PostroomError(
            f"The connector '{name}' has a password but no user name: give the user name for "
            "basic authentication (--auth-user), or choose anonymous."
        )
    if not user.isprintable() or not connector.password.isprintable():
        raise PostroomError(
            "The user name and password for basic authentication must be printable text."
        )
    return dataclasses.replace(
        connector,
        name=name,
        address_spaces=spaces,
        smart_hosts=hosts,
        auth_user=user,
        note=connector.note.strip(),
    )
