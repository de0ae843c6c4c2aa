"""The domain types: recipients with their proxy addresses, recipient policies with their rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

RecipientKind = Literal["user", "contact", "group"]
RECIPIENT_KINDS: tuple[RecipientKind, ...] = ("user", "contact", "group")

SMTP = "SMTP"
DEFAULT_POLICY_NAME = "Default Policy"
DEFAULT_POLICY_FILTER = "(mailNickname=*)"


def now() -> str:
    """The current time as stored (``created``, ``modified``): ISO 8601 in UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


# The LDAP attributes a recipient carries besides mailNickname and objectClass, in the order the
# console shows them. Filters use these names verbatim.
ATTRIBUTE_NAMES: tuple[str, ...] = (
    "givenName",
    "initials",
    "sn",
    "displayName",
    "company",
    "department",
    "title",
    "physicalDeliveryOfficeName",
    "l",
    "st",
    "c",
    *(f"extensionAttribute{n}" for n in range(1, 16)),
)
_ATTRIBUTE_BY_LOWER = {name.lower(): name for name in ATTRIBUTE_NAMES}

_OBJECT_CLASSES: dict[str, list[str]] = {
    "user": ["top", "person", "organizationalPerson", "user"],
    "contact": ["top", "person", "organizationalPerson", "contact"],
    "group": ["top", "group"],
}


def canonical_attribute(name: str) -> str | None:
    """The attribute's canonical spelling (``givenname`` → ``givenName``), or None if unknown."""
    return _ATTRIBUTE_BY_LOWER.get(name.lower())


@dataclass(frozen=True)
class ProxyAddress:
    """One of a recipient's addresses, e.g. ``SMTP:jsmith@example.com`` (primary)."""

    type: str
    address: str
    primary: bool = False

    def __str__(self) -> str:
        prefix = self.type.upper() if self.primary else self.type.lower()
        return f"{prefix}:{self.address}"


@dataclass(frozen=True)
class Recipient:
    """A mail-enabled directory object: a user (mailbox), a contact or a distribution group."""

    alias: str
    kind: RecipientKind = "user"
    attributes: Mapping[str, str] = field(default_factory=dict)
    addresses: tuple[ProxyAddress, ...] = ()
    auto_update: bool = True
    target: str | None = None
    members: tuple[str, ...] = ()
    has_password: bool = False
    imap_enabled: bool = True
    """A user may read mail over IMAP4 (Exchange Features › Protocols)."""
    pop3_enabled: bool = True
    """A user may read mail over POP3."""
    quota_warn: int | None = None
    """Storage Limits › Issue warning at, in KiB; None: the Mailbox Store's default; 0: none."""
    quota_prohibit: int | None = None
    """Storage Limits › Prohibit send and receive at, in KiB; None: the store's default; 0: none."""
    id: int | None = None
    usn: int = 0
    stamped_usn: int | None = None
    created: str = ""
    modified: str = ""

    def attribute(self, name: str) -> str:
        """The value of an LDAP attribute, '' when unset."""
        return self.attributes.get(name, "")

    @property
    def display_name(self) -> str:
        return self.attribute("displayName") or self.alias

    def primary_address(self, type_: str = SMTP) -> str | None:
        for proxy in self.addresses:
            if proxy.primary and proxy.type.upper() == type_.upper():
                return proxy.address
        return None

    def ldap_attributes(self) -> dict[str, str | list[str]]:
        """The recipient as LDAP attributes, for evaluating recipient policy filters."""
        attrs: dict[str, str | list[str]] = {k: v for k, v in self.attributes.items() if v}
        attrs["mailNickname"] = self.alias
        attrs["objectClass"] = list(_OBJECT_CLASSES[self.kind])
        attrs["objectCategory"] = "group" if self.kind == "group" else "person"
        primary = self.primary_address()
        if primary:
            attrs["mail"] = primary
        if self.addresses:
            attrs["proxyAddresses"] = [str(proxy) for proxy in self.addresses]
        if self.target:
            attrs["targetAddress"] = f"SMTP:{self.target}"
        return attrs


@dataclass(frozen=True)
class AddressRule:
    """A generation rule of a recipient policy (an "e-mail address" on its E-Mail Addresses tab)."""

    type: str
    address: str
    enabled: bool = True
    primary: bool = False
    responsible: bool = True
    id: int | None = None

    @property
    def is_smtp(self) -> bool:
        return self.type.upper() == SMTP


@dataclass(frozen=True)
class RecipientPolicy:
    """A recipient policy: which recipients (filter), which addresses (rules), at what priority.

    ``priority`` is 1 (highest) … N for custom policies and None for the Default Policy ("Lowest").
    """

    name: str
    filter: str = ""
    priority: int | None = None
    is_default: bool = False
    rules: tuple[AddressRule, ...] = ()
    note: str = ""
    apply_pending: bool = False
    applied_usn: int | None = None
    created: str = ""
    modified: str = ""
    id: int | None = None

    @property
    def priority_text(self) -> str:
        return "Lowest" if self.priority is None else str(self.priority)

    def primary_rule(self, type_: str = SMTP) -> AddressRule | None:
        for rule in self.rules:
            if rule.primary and rule.type.upper() == type_.upper():
                return rule
        return None


@dataclass(frozen=True)
class Organization:
    name: str
    created: str


# -- SMTP connectors (Routing Groups > First Routing Group > Connectors) -------------------------

ConnectorTls = Literal["required", "opportunistic"]
CONNECTOR_TLS: tuple[ConnectorTls, ...] = ("required", "opportunistic")
#: The address-space pattern that matches every domain no other address space names.
ANY_DOMAIN = "*"


@dataclass(frozen=True)
class AddressSpace:
    """An entry of a connector's Address Space tab: the domains it carries mail for, at a cost.

    ``pattern`` is ``*``, a domain (``example.com``) or a wildcard over a domain's subdomains
    (``*.example.com``), in lower-case A-labels; ``cost`` 1 (preferred) to 100.
    """

    pattern: str
    cost: int = 1
    type: str = SMTP

    @property
    def is_wildcard(self) -> bool:
        return self.pattern.startswith("*")


@dataclass(frozen=True)
class SmartHost:
    """A host a connector forwards all its mail to: a host name (A-labels) or an IP literal in
    brackets (``[192.0.2.25]``, ``[2001:db8::25]``), and a port (None: the outbound port)."""

    host: str
    port: int | None = None

    @property
    def address(self) -> str:
        """The host without brackets, as a socket connects to it."""
        return self.host.removeprefix("[").removesuffix("]")

    def __str__(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class SmtpConnector:
    """An SMTP connector: which domains (address spaces) it carries, how (DNS or smart hosts),
    whether anyone may relay to them, and its outbound security.

    ``password`` is the basic-authentication secret the sender needs; it stays out of ``repr``
    and is never shown (``has_password`` says whether there is one).
    """

    name: str
    address_spaces: tuple[AddressSpace, ...] = ()
    relay: bool = False
    #: True: "Use DNS to route to each address space"; False: forward to ``smart_hosts``.
    use_dns: bool = True
    smart_hosts: tuple[SmartHost, ...] = ()
    tls: ConnectorTls = "opportunistic"
    #: Basic authentication's user name; "" for anonymous.
    auth_user: str = ""
    password: str = field(default="", repr=False)
    note: str = ""
    created: str = ""
    modified: str = ""
    id: int | None = None

    @property
    def has_password(self) -> bool:
        return bool(self.password)

    @property
    def auth(self) -> Literal["anonymous", "basic"]:
        return "basic" if self.auth_user else "anonymous"

    @property
    def route_text(self) -> str:
        """The General tab's choice in words: DNS, or the smart hosts."""
        if self.use_dns:
            return "DNS"
        return "smart hosts " + ", ".join(str(host) for host in self.smart_hosts)
