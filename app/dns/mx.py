"""Where mail for a domain goes by DNS: its mail exchangers (MX, else its own A / AAAA)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import dns.name
import dns.rdatatype
import dns.rdtypes.ANY.MX

from app.dns.lookup import (
    DnsConfig,
    DnsTemporaryError,
    Lookup,
    Outcome,
    QueryResult,
    answer_addresses,
    domain_name,
    show_name,
)
from app.errors import PostroomError

log = logging.getLogger(__name__)


class UndeliverableError(PostroomError):
    """DNS says the domain takes no mail: null MX, no such domain, or no host to deliver to."""


@dataclass(frozen=True)
class MailExchanger:
    """A host that takes mail for a domain; lower preference is tried first."""

    preference: int
    #: Host name as ASCII (A-label), without the final dot.
    host: str


def mail_exchangers(domain: str, config: DnsConfig) -> list[MailExchanger]:
    """The hosts to deliver mail for ``domain`` to, most preferred first (MX, else A / AAAA).

    Raises ``UndeliverableError`` for a null MX, a domain that does not exist or has no host,
    and ``DnsTemporaryError`` when DNS could not answer. Blocks on DNS for up to three
    lifetimes: call it off the GUI thread and the event loop.
    """
    name = domain_name(domain)
    shown = show_name(name)
    lookup = Lookup(config)
    mx = lookup.query(name, dns.rdatatype.MX)
    if mx.outcome is Outcome.NXDOMAIN:
        raise UndeliverableError(f"The domain {shown} does not exist (NXDOMAIN).")
    if not mx.outcome.is_definite:
        raise DnsTemporaryError(f"Could not look up the MX records of {shown}: {mx.detail}.")
    if mx.outcome is Outcome.ANSWER:
        records = mx_records(mx)
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
    if answer_addresses(a) or answer_addresses(aaaa):
        return [MailExchanger(0, target.to_text(omit_final_dot=True))]
    for result in (a, aaaa):
        if not result.outcome.is_definite:
            raise DnsTemporaryError(
                f"Could not look up the addresses of {shown} (it has no MX): {result.detail}."
            )
    raise UndeliverableError(f"The domain {shown} has no MX record and no A or AAAA record.")


def mx_records(result: QueryResult) -> list[tuple[int, dns.name.Name]]:
    """The (preference, exchange) pairs of an MX answer, as published."""
    return [
        (record.preference, record.exchange)
        for record in result.records
        if isinstance(record, dns.rdtypes.ANY.MX.MX)
    ]


def _is_null_mx(records: Sequence[tuple[int, dns.name.Name]]) -> bool:
    return len(records) == 1 and records[0][1] == dns.name.root
