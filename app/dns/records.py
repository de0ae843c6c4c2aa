"""The records Postroom suggests (zone-file lines) and the syntax of SPF and DMARC records."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

import dns.name

#: The TTL written into suggested zone-file records.
RECORD_TTL = 3600
#: The SPF record suggested when one is missing or broken: the domain's MX hosts may send.
SUGGESTED_SPF = "v=spf1 mx -all"
#: The DMARC record suggested when one is missing or broken: report, do not reject yet.
SUGGESTED_DMARC = "v=DMARC1; p=none"

# RFC 7208 §4.6.4: more than ten DNS-querying terms is a permanent error.
_SPF_MAX_DNS_TERMS = 10
_SPF_MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
_SPF_DNS_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
_SPF_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*)=(.*)")
_SPF_MECHANISM = re.compile(r"([+?~-]?)([A-Za-z0-9]+)(.*)")
_SPF_CIDR = re.compile(r"(?:/(\d+))?(?://(\d+))?")
_DOMAIN_SPEC = re.compile(r"[\x21-\x7e]+")
_DMARC_POLICIES = frozenset({"none", "quarantine", "reject"})


def zone_record(owner: dns.name.Name, rdtype: str, data: str) -> str:
    """One zone-file line: ``owner TTL IN TYPE data``."""
    return f"{owner.to_text()} {RECORD_TTL} IN {rdtype} {data}"


def quoted_txt(text: str) -> str:
    """``text`` as the quoted character-string of a TXT record."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split_txt(text: str, size: int = 255) -> str:
    """``text`` as quoted character-strings of at most ``size`` bytes each (RFC 1035 §3.3.14),
    for a record too long for one, such as a DKIM key; receivers join them (RFC 6376 §3.6.2.2)."""
    chunks = [text[start : start + size] for start in range(0, len(text), size)] or [""]
    return " ".join(quoted_txt(chunk) for chunk in chunks)


def address_records(owner: dns.name.Name, addresses: Iterable[str]) -> str:
    """The A and AAAA zone-file lines giving ``owner`` these addresses, one per line."""
    lines = []
    for address in addresses:
        ip = ipaddress.ip_address(address)
        lines.append(zone_record(owner, "A" if ip.version == 4 else "AAAA", str(ip)))
    return "\n".join(lines)


def is_spf(text: str) -> bool:
    """True when a TXT string is an SPF record (``v=spf1``, alone or before a space)."""
    lowered = text.lower()
    return lowered == "v=spf1" or lowered.startswith("v=spf1 ")


def spf_problems(text: str) -> tuple[list[str], list[str]]:
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


def dmarc_problem(text: str) -> str:
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
