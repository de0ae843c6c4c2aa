"""Where mail for an address goes: the RCPT decisions, from an index of the directory in memory."""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from app import connectors as smtp_connectors
from app import policies
from app.directory import addressing, recipients
from app.dns.routes import NoRoute, Route, RouteState, find_route, is_relay_domain
from app.errors import PostroomError
from app.mailstore.usage import KIB, MailboxUsage, limits_of
from app.model import Recipient, RecipientKind, SmtpConnector
from app.settings import Settings, load_settings
from app.store import Store

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
#: How often the sizes of mailboxes with a limit are looked at (a recount only when one changed).
USAGE_SECONDS = 2.0
_LOOP_CACHE_SECONDS = 30.0

RELAY_DENIED = "550 5.7.1 Unable to relay"


@dataclass(frozen=True)
class MailboxTarget:
    """A copy for a Maildir: ``<data>/mailboxes/<alias>/``, with its Delivered-To address."""

    alias: str
    address: str


@dataclass(frozen=True)
class RemoteTarget:
    """A copy for the queue, to be sent to ``address`` elsewhere."""

    address: str
    why: Literal["contact", "shared", "relay"]


Target = MailboxTarget | RemoteTarget


@dataclass(frozen=True)
class Accept:
    """RCPT accepted: the copies it makes. ``route_domain`` is set when the mail goes onward."""

    targets: tuple[Target, ...]
    route_domain: str = ""


@dataclass(frozen=True)
class Refuse:
    """RCPT refused with this reply."""

    reply: str

    @property
    def code(self) -> int:
        return int(self.reply[:3])


Decision = Accept | Refuse


@dataclass(frozen=True)
class Entry:
    """A recipient as routing needs it."""

    alias: str
    kind: RecipientKind
    address: str
    target: str | None
    members: tuple[str, ...]


@lru_cache(maxsize=4096)
def normal_domain(domain: str) -> str:
    """A domain as the directory stores it (lower-case A-label); PostroomError if it is not one."""
    if domain.isascii():
        lowered = domain.lower()
        if lowered and all(c.isalnum() or c in "-." for c in lowered):
            return lowered
    return addressing.normalize_domain(domain)


def _is_tricky(local: str) -> bool:
    """A local part that could make another server relay: %-hack, !-path, quoted, with an @."""
    return any(c in local for c in '%!@"\\')


class DirectoryIndex:
    """An immutable snapshot of the directory, the hosted domains, the SMTP connectors and the
    settings."""

    def __init__(
        self,
        counter: int,
        settings: Settings,
        people: Iterable[Recipient],
        domains: dict[str, bool],
        connectors: Iterable[SmtpConnector] = (),
    ) -> None:
        self.counter = counter
        self.settings = settings
        self.host_name = settings.host_name
        self.domains = domains
        self.connectors = tuple(connectors)
        # Only these connectors can make a domain a relay domain; most directories have none.
        self._relaying = any(connector.relay for connector in self.connectors)
        self.entries: dict[str, Entry] = {}
        self.addresses: dict[str, str] = {}
        #: Each user's "prohibit send and receive" limit in KiB, only for users that have one.
        self.limits: dict[str, int] = {}
        for person in people:
            key = person.alias.lower()
            self.entries[key] = Entry(
                alias=person.alias,
                kind=person.kind,
                address=person.primary_address() or "",
                target=person.target,
                members=tuple(m.lower() for m in person.members),
            )
            for proxy in person.addresses:
                if proxy.type.upper() == "SMTP":
                    self.addresses[proxy.address.lower()] = key
            limit = limits_of(person, settings).prohibit if person.kind == "user" else 0
            if limit:
                self.limits[key] = limit
        self.relay_networks = tuple(ipaddress.ip_network(n) for n in settings.relay_ips)
        self.postmaster_alias = self._postmaster_alias()

    @classmethod
    def load(cls, store: Store) -> DirectoryIndex:
        """Read the directory; the change counter is read first, so no change can be missed."""
        counter = store.change_counter()
        with store.read():
            settings = load_settings(store)
            people = recipients.list_recipients(store)
            hosted = policies.hosted_domains(policies.list_policies(store))
            connectors = smtp_connectors.list_connectors(store)
        return cls(counter, settings, people, {d.domain: d.responsible for d in hosted}, connectors)

    def _postmaster_alias(self) -> str:
        wanted = self.settings.postmaster.strip().lower()
        if wanted in self.entries:
            return wanted
        if wanted:
            log.warning("the postmaster setting names no recipient: %s", self.settings.postmaster)
        return "postmaster"

    # -- decisions -------------------------------------------------------------------------

    def may_relay(self, client_ip: str, authenticated: bool) -> bool:
        """Rule 4: authenticated clients (when allowed) and the relay-allowed computers."""
        if authenticated and self.settings.auth_relay:
            return True
        if not self.relay_networks:
            return False
        try:
            ip = ipaddress.ip_address(client_ip)
        except ValueError:
            return False
        return any(ip in network for network in self.relay_networks)

    def decide(self, address: str, *, may_relay: bool) -> Decision:
        """The RCPT decision of DESIGN §6 for one address (as aiosmtpd parsed it)."""
        local, at, raw_domain = address.rpartition("@")
        if not at:
            if address.lower() == "postmaster":
                return Accept(self.postmaster_targets(address))
            return Refuse(f"553 5.1.3 <{address}>: Give a full address, such as user@domain")
        if not local:
            return Refuse(f"553 5.1.3 <{address}>: The address has no local part")
        if raw_domain.startswith("["):
            # IP literals are never a hosted domain, and relaying to one is never wanted.
            return Refuse(RELAY_DENIED)
        try:
            domain = normal_domain(raw_domain)
        except PostroomError:
            return Refuse(f"553 5.1.2 <{address}>: The domain is not a valid host name")
        owner = self.addresses.get(f"{local.lower()}@{domain}")
        if owner is not None:
            targets = self.expand(owner, address)
            if not targets:
                return Refuse(f"550 5.1.1 <{address}>: The group has no members to deliver to")
            return Accept(targets)
        responsible = self.domains.get(domain)
        if responsible is not None:
            if local.lower() == "postmaster":
                return Accept(self.postmaster_targets(address))
            if responsible:
                return Refuse(f"550 5.1.1 <{address}>: Recipient address rejected: User unknown")
            if _is_tricky(local):
                return Refuse(RELAY_DENIED)
            return Accept((RemoteTarget(address, "shared"),), route_domain=domain)
        if _is_tricky(local) or not (may_relay or self.is_relay_domain(domain)):
            return Refuse(RELAY_DENIED)
        return Accept((RemoteTarget(address, "relay"),), route_domain=domain)

    def is_relay_domain(self, domain: str) -> bool:
        """Rule 4's exception: a connector that allows relaying carries mail for ``domain``."""
        return self._relaying and is_relay_domain(domain, self.connectors)

    def postmaster_targets(self, address: str) -> tuple[Target, ...]:
        """Where postmaster mail goes: the ``postmaster`` setting's recipient, else the recipient
        with the alias ``postmaster``, else the Maildir ``<data>/mailboxes/postmaster/``."""
        if self.postmaster_alias in self.entries:
            targets = self.expand(self.postmaster_alias, address)
            if targets:
                return targets
        return (MailboxTarget("postmaster", address),)

    def expand(self, alias: str, address: str) -> tuple[Target, ...]:
        """The copies mail to a recipient makes: groups expand (nested, each member once),
        contacts forward (locally when their target is ours)."""
        targets: list[Target] = []
        visited: set[str] = set()
        stack: list[tuple[str, str]] = [(alias.lower(), address)]
        while stack:
            key, delivered_to = stack.pop()
            entry = self.entries.get(key)
            if entry is None or key in visited:
                continue
            visited.add(key)
            if entry.kind == "user":
                targets.append(MailboxTarget(entry.alias, delivered_to or entry.address))
            elif entry.kind == "contact" and entry.target:
                owner = self.addresses.get(entry.target.lower())
                if owner is not None:
                    stack.append((owner, ""))
                else:
                    targets.append(RemoteTarget(entry.target, "contact"))
            else:
                # Reversed so that members come out in the stored (alphabetical) order.
                stack.extend((member, "") for member in reversed(entry.members))
        return tuple(targets)


class Router:
    """The current ``DirectoryIndex``, reloaded within a second of a change in any process.

    A background thread polls ``Store.change_counter()``; ``index`` is swapped whole, so the
    event loop reads it without locks or I/O.
    """

    def __init__(
        self, store: Store, listeners: Iterable[tuple[str, int]] = (), poll: float = POLL_SECONDS
    ) -> None:
        self._store = store
        self._poll = poll
        self.listeners = list(listeners)
        self.index = DirectoryIndex.load(store)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop_cache: dict[str, tuple[float, Route]] = {}
        self._loop_lock = threading.Lock()
        self.usage = MailboxUsage(store.paths)
        self._usage_due = 0.0

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="postroom-smtp-index", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def refresh(self) -> bool:
        """Reload the index if anything was committed since it was read; True if it was."""
        if self._store.change_counter() == self.index.counter:
            return False
        self.index = DirectoryIndex.load(self._store)
        with self._loop_lock:
            self._loop_cache.clear()
        self._usage_due = 0.0  # a new or changed limit is looked at now, not in 2 s
        log.info("directory index reloaded (change %d)", self.index.counter)
        return True

    def refresh_usage(self) -> None:
        """Recount the mailboxes that have a limit and changed (only those). Worker thread."""
        self.usage.refresh(self.index.limits)
        self._usage_due = time.monotonic() + USAGE_SECONDS

    def _watch(self) -> None:
        self._refresh_usage_safely()
        while not self._stop.wait(self._poll):
            try:
                self.refresh()
            except Exception:
                log.exception("could not reload the directory index; keeping the previous one")
            if time.monotonic() >= self._usage_due:
                self._refresh_usage_safely()

    def _refresh_usage_safely(self) -> None:
        try:
            self.refresh_usage()
        except Exception:
            log.exception("could not count the mailboxes' sizes; keeping the previous counts")
            self._usage_due = time.monotonic() + USAGE_SECONDS

    def limit_refusal(self, decision: Accept, address: str) -> str:
        """'' when ``decision``'s mailboxes may take more mail, else the RCPT refusal: every
        mailbox it delivers to is at its "prohibit send and receive" limit (a group's full
        member does not hold up the others). No I/O: the sizes are the last counted."""
        index = self.index
        if not index.limits:
            return ""
        full = 0
        limit = 0
        for target in decision.targets:
            if not isinstance(target, MailboxTarget):
                return ""
            limit = index.limits.get(target.alias.lower(), 0)
            size = self.usage.size(target.alias) if limit else None
            if size is None or size < limit * KIB:
                return ""
            full += 1
        if not full:
            return ""
        code = "552 5.2.2" if index.settings.mailbox_full_permanent else "452 4.2.2"
        what = "Mailbox full" if full == 1 else "Every mailbox it reaches is full"
        return f"{code} <{address}>: {what}: over its limit of {limit:,} KB"

    def loop_check(self, domain: str, address: str) -> str:
        """'' when mail for ``address`` in the shared ``domain`` may be accepted to go onward,
        else the RCPT refusal. Blocks on DNS (at most once per domain in 30 s): a worker
        thread, off the event loop."""
        return rcpt_refusal(self.route(domain), address)

    def route(self, domain: str) -> Route:
        """The route onward of ``domain`` (``app.dns.routes``, with the connectors), remembered
        for 30 s. Blocks on DNS: worker threads only."""
        with self._loop_lock:
            cached = self._loop_cache.get(domain)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        index = self.index
        route = find_route(
            domain, index.settings, connectors=index.connectors, listeners=self.listeners
        )
        with self._loop_lock:
            self._loop_cache[domain] = (time.monotonic() + _LOOP_CACHE_SECONDS, route)
        return route


# What the SMTP service answers at RCPT when a shared domain has no route onward. No route
# confirmed (DNS not answering) is accepted: the queue tries again later.
_NO_ROUTE_REPLIES = {
    NoRoute.LOOP: "554 5.4.6",
    NoRoute.UNDELIVERABLE: "550 5.1.2",
    # The administrator's mistake, not the sender's: a temporary refusal, sent again once fixed.
    NoRoute.BAD_SMART_HOST: "451 4.3.5",
}


def rcpt_refusal(route: Route, address: str) -> str:
    """The RCPT refusal that ``route`` means for ``address``; "" when it is accepted."""
    if route.state is not RouteState.NONE or route.why is None:
        return ""
    return f"{_NO_ROUTE_REPLIES[route.why]} <{address}>: {route.detail}"
