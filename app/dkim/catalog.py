"""Which domains Postroom signs for, and their keys: made the first time a domain is seen."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from app.dkim.keys import DkimError, DkimKey, KeyRole, domain_keys, ensure_keys
from app.dns.lookup import ascii_domain
from app.policies import hosted_domains, list_policies
from app.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DomainKeys:
    """The DKIM keys of one hosted domain, or why they cannot be read."""

    #: The domain as lower-case A-labels.
    domain: str
    #: The signing key first, then a pending one; empty when ``problem`` says why.
    keys: tuple[DkimKey, ...]
    #: Why the domain's keys cannot be read at all (a damaged state file); "" normally.
    problem: str = ""

    @property
    def signing(self) -> DkimKey | None:
        """The key mail is signed with, if its file is sound."""
        return next((k for k in self.keys if k.role is KeyRole.SIGNING and k.usable), None)

    @property
    def pending(self) -> DkimKey | None:
        return next((k for k in self.keys if k.role is KeyRole.PENDING), None)

    @property
    def warning(self) -> str:
        """One line when mail for the domain goes out unsigned; "" when it is signed."""
        if self.problem:
            return f"DKIM: mail from {self.domain} goes out unsigned: {self.problem}"
        broken = next((k for k in self.keys if k.role is KeyRole.SIGNING and not k.usable), None)
        if broken is None:
            return ""
        return (
            f"DKIM: mail from {self.domain} goes out unsigned: {broken.problem}; make a new key "
            f"with postroom dkim rotate {self.domain} --force and publish its record."
        )


def dkim_domains(store: Store) -> list[str]:
    """The hosted domains Postroom signs for (A-labels, sorted): those it is responsible for."""
    policies = list_policies(store)
    return sorted({ascii_domain(d.domain) for d in hosted_domains(policies) if d.responsible})


def prepare_keys(store: Store, today: dt.date | None = None) -> list[DomainKeys]:
    """Every signed domain's keys, making a key for a domain that has none yet.

    Reads and may write ``<data>/dkim/`` (an RSA key takes a fraction of a second to make):
    call it off the GUI thread.
    """
    domains = dkim_domains(store)
    ensure_keys(store.paths, domains, today)
    return [read_keys(store, domain) for domain in domains]


def read_keys(store: Store, domain: str) -> DomainKeys:
    """The keys of one domain (A-label) as stored; a damaged state file becomes ``problem``."""
    try:
        return DomainKeys(domain, tuple(domain_keys(store.paths, domain)))
    except DkimError as error:
        return DomainKeys(domain, (), str(error))
