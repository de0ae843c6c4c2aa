"""A hosted domain's DKIM records: is the key Postroom signs with published, and does it match."""

from __future__ import annotations

import enum
import logging
import re
from dataclasses import dataclass

import dns.name
import dns.rdatatype
import dns.rdtypes.ANY.TXT

from app.dns.findings import CheckResult, Status, unknown_result
from app.dns.lookup import Lookup, Outcome, QueryResult, show_name
from app.dns.records import split_txt, zone_record

log = logging.getLogger(__name__)

_WHITESPACE = re.compile(r"\s+")


class Published(enum.Enum):
    """What DNS holds at ``SELECTOR._domainkey.DOMAIN`` compared with the key Postroom has."""

    MISSING = "missing"
    MATCHING = "matching"
    MISMATCHED = "mismatched"
    #: DNS did not answer: says nothing about whether the record exists.
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class DkimExpectation:
    """One DKIM key of a domain, as the DNS check needs it: where and what to publish."""

    selector: str
    #: The TXT record's value; "" when it cannot be known (its key file is gone).
    txt: str
    #: True for the key mail is signed with; False for a new key waiting for its record.
    signing: bool
    #: Why the key cannot sign, in one line; "" when it can.
    problem: str = ""


@dataclass(frozen=True)
class PublishedRecord:
    """What the look-up of one DKIM record found."""

    published: Published
    #: The DKIM records found at the name (their strings joined), in DNS order.
    found: tuple[str, ...]
    result: QueryResult


def dkim_owner(domain: dns.name.Name, selector: str) -> dns.name.Name:
    """``SELECTOR._domainkey.DOMAIN`` as an absolute name."""
    return dns.name.from_text(f"{selector}._domainkey", origin=domain)


def record_key(text: str) -> tuple[str, str] | None:
    """The key type and public key (``k``, ``p``) of a DKIM record; None if it is not one.

    RFC 6376 §3.6.1: tags split on ``;``, ``v`` optional but first and ``DKIM1`` when present,
    ``k`` defaults to ``rsa``, whitespace inside ``p`` does not count.
    """
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, equals, value = part.partition("=")
        if equals:
            tags.setdefault(name.strip().lower(), value.strip())
    if "v" in tags and tags["v"] != "DKIM1":
        return None
    if "p" not in tags:
        return None
    return tags.get("k", "rsa").lower(), _WHITESPACE.sub("", tags["p"])


def find_published(
    domain: dns.name.Name, txt: str, selector: str, lookup: Lookup
) -> PublishedRecord:
    """Look up the record of ``selector`` and compare it with ``txt``, the one to publish.

    Blocks on DNS: call it off the GUI thread.
    """
    result = lookup.query(dkim_owner(domain, selector), dns.rdatatype.TXT)
    if not result.outcome.is_definite:
        return PublishedRecord(Published.UNKNOWN, (), result)
    texts = [
        b"".join(record.strings).decode("utf-8", errors="replace")
        for record in result.records
        if isinstance(record, dns.rdtypes.ANY.TXT.TXT)
    ]
    found = tuple(text for text in texts if record_key(text) is not None)
    if not found:
        return PublishedRecord(Published.MISSING, found, result)
    wanted = record_key(txt)
    matching = len(found) == 1 and wanted is not None and record_key(found[0]) == wanted
    return PublishedRecord(Published.MATCHING if matching else Published.MISMATCHED, found, result)


def dkim_result(domain: dns.name.Name, key: DkimExpectation, lookup: Lookup) -> CheckResult:
    """The check of one DKIM key: 'dkim' for the signing key, 'dkim-pending' for a new one."""
    shown = show_name(domain)
    check = "dkim" if key.signing else "dkim-pending"
    owner = dkim_owner(domain, key.selector)
    where = show_name(owner)
    if key.problem or not key.txt:
        problem = key.problem or f"the record of key {key.selector} is lost"
        if key.signing:
            summary = f"Mail from {shown} goes out unsigned: {problem}."
        else:
            summary = f"The new DKIM key {key.selector} of {shown} cannot be used: {problem}."
        return CheckResult(
            shown,
            check,
            Status.ERROR,
            summary,
            f"Make a new key with postroom dkim rotate {shown} --force, then publish the record "
            "it shows (the Domains view's Copy DNS record copies it).",
        )
    record = zone_record(owner, "TXT", split_txt(key.txt))
    found = find_published(domain, key.txt, key.selector, lookup)
    if found.published is Published.UNKNOWN:
        return unknown_result(shown, check, f"the DKIM record at {where}", found.result)
    if found.published is Published.MATCHING:
        if key.signing:
            summary = f"DKIM record {where} matches the key mail from {shown} is signed with."
        else:
            summary = (
                f"DKIM record {where} of the new key is published; Postroom signs with it "
                "from the next DKIM check on (postroom dkim list, or the Domains view)."
            )
        return CheckResult(shown, check, Status.OK, summary)
    if found.published is Published.MISSING:
        absent = (
            "does not exist"
            if found.result.outcome in (Outcome.NXDOMAIN, Outcome.NO_ANSWER)
            else "holds no DKIM record"
        )
        if key.signing:
            return CheckResult(
                shown,
                check,
                Status.ERROR,
                f"{where} {absent}: mail from {shown} is signed with key {key.selector}, but "
                "receivers cannot verify it, so DKIM and DMARC fail.",
                "Add this TXT record:",
                record,
            )
        return CheckResult(
            shown,
            check,
            Status.WARNING,
            f"{where} {absent}: the new key {key.selector} waits for its record; mail is "
            "signed with the old key until it appears.",
            "Add this TXT record; Postroom signs with the new key once it sees it:",
            record,
        )
    several = f"{len(found.found)} DKIM records" if len(found.found) > 1 else "a DKIM record"
    summary = f"{where} holds {several} that do not match key {key.selector} of {shown}"
    if key.signing:
        return CheckResult(
            shown,
            check,
            Status.ERROR,
            f"{summary}; receivers fail the signature of its mail, and DMARC with it.",
            "Replace what is published there with this one TXT record:",
            record,
        )
    return CheckResult(
        shown,
        check,
        Status.WARNING,
        f"{summary}; signing stays with the old key.",
        "Replace what is published there with this one TXT record:",
        record,
    )
