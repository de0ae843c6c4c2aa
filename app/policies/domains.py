"""The mail domains the policies' rules host, and whether this organisation is responsible."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from app.directory import addressing
from app.model import RecipientPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostedDomain:
    """A domain that some enabled SMTP rule names, and how Postroom treats it."""

    domain: str
    responsible: bool
    policies: tuple[str, ...]

    @property
    def kind(self) -> Literal["authoritative", "shared"]:
        return "authoritative" if self.responsible else "shared"


def hosted_domains(policies: Iterable[RecipientPolicy]) -> list[HostedDomain]:
    """Every domain on an enabled SMTP rule, sorted; responsible if any rule for it says so."""
    responsible: dict[str, bool] = {}
    used_by: dict[str, list[str]] = {}
    for policy in policies:
        for rule in policy.rules:
            if not (rule.enabled and rule.is_smtp):
                continue
            domain = addressing.split_address(rule.address)[1].lower()
            responsible[domain] = responsible.get(domain, False) or rule.responsible
            names = used_by.setdefault(domain, [])
            if policy.name not in names:
                names.append(policy.name)
    return [
        HostedDomain(domain, responsible[domain], tuple(used_by[domain]))
        for domain in sorted(responsible)
    ]
