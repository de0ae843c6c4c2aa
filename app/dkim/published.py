"""Whether each DKIM key's record is in DNS, and the rotation step it allows: a pending key whose
record is seen becomes the signing key."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from app.dkim.catalog import DomainKeys, prepare_keys, read_keys
from app.dkim.keys import DkimKey, KeyRole, promote
from app.dns.dkim_records import DkimExpectation, Published, dkim_owner, find_published
from app.dns.lookup import DnsConfig, Lookup, domain_name
from app.dns.records import split_txt, zone_record
from app.store import Store

log = logging.getLogger(__name__)

_MAX_WORKERS = 8


@dataclass(frozen=True)
class KeyStatus:
    """One key and what DNS holds for it."""

    key: DkimKey
    published: Published


@dataclass(frozen=True)
class DomainStatus:
    """One signed domain's keys (signing first) and their records; ``problem`` when its keys
    cannot be read at all."""

    domain: str
    keys: tuple[KeyStatus, ...]
    problem: str = ""

    @property
    def signing(self) -> KeyStatus | None:
        return next((s for s in self.keys if s.key.role is KeyRole.SIGNING), None)

    @property
    def pending(self) -> KeyStatus | None:
        return next((s for s in self.keys if s.key.role is KeyRole.PENDING), None)


def zone_line(key: DkimKey) -> str:
    """The zone-file line publishing ``key``; "" when its record is unknown."""
    if not key.txt:
        return ""
    owner = dkim_owner(domain_name(key.domain), key.selector)
    return zone_record(owner, "TXT", split_txt(key.txt))


def as_keys(status: DomainStatus) -> DomainKeys:
    """The keys of a checked domain, without what DNS said."""
    return DomainKeys(status.domain, tuple(s.key for s in status.keys), status.problem)


def expectations(domains: list[DomainKeys]) -> dict[str, list[DkimExpectation]]:
    """What the DNS check should find for each domain (A-labels), for ``run_checks(dkim=...)``."""
    return {
        entry.domain: [
            DkimExpectation(
                key.selector, key.txt, key.role is KeyRole.SIGNING, key.problem or entry.problem
            )
            for key in entry.keys
        ]
        for entry in domains
    }


def check_published(
    store: Store, config: DnsConfig, domains: list[str] | None = None
) -> list[DomainStatus]:
    """Each key's published state (``domains``: A-labels, default every signed domain).

    A pending key whose record matches becomes the signing key first, so what is returned is the
    state after that step. Makes keys for new domains. Blocks on DNS: off the GUI thread.
    """
    entries = prepare_keys(store)
    if domains is not None:
        entries = [entry for entry in entries if entry.domain in domains]
    lookup = Lookup(config)
    moved = False
    for entry in entries:
        pending = entry.pending
        if pending is None or not pending.usable:
            continue
        if _published(pending, lookup) is Published.MATCHING:
            moved = promote(store.paths, entry.domain, pending.selector) or moved
    if moved:
        entries = [read_keys(store, entry.domain) for entry in entries]
    keys = [key for entry in entries for key in entry.keys]
    states: dict[tuple[str, str], Published] = {}
    if keys:
        with ThreadPoolExecutor(min(_MAX_WORKERS, len(keys)), "dkim-check") as pool:
            found = pool.map(lambda key: _published(key, Lookup(config)), keys)
            states = {(k.domain, k.selector): state for k, state in zip(keys, found, strict=True)}
    return [
        DomainStatus(
            entry.domain,
            tuple(KeyStatus(k, states[(k.domain, k.selector)]) for k in entry.keys),
            entry.problem,
        )
        for entry in entries
    ]


def _published(key: DkimKey, lookup: Lookup) -> Published:
    if not key.txt:
        return Published.UNKNOWN
    return find_published(domain_name(key.domain), key.txt, key.selector, lookup).published
