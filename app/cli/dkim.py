"""``postroom dkim …``: each hosted domain's DKIM key, the record to publish, and rotation."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from app.cli.common import Context, add_json_flag, emit, table
from app.directory import addressing
from app.dkim.catalog import dkim_domains
from app.dkim.keys import ALGORITHM, KeyRole, rotate
from app.dkim.published import DomainStatus, KeyStatus, check_published, zone_line
from app.dns.dkim_records import Published
from app.dns.lookup import DnsConfig, ascii_domain, parse_nameserver
from app.dns.routes import dns_config_from_settings
from app.errors import NotFoundError
from app.settings import load_settings
from app.store import Store


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("dkim", help="DKIM keys of the hosted domains")
    commands = parser.add_subparsers(dest="dkim_command", metavar="ACTION", required=True)

    p = commands.add_parser(
        "list",
        help="each signed domain's key and whether its record is in DNS",
        description="List the DKIM key of each hosted domain Postroom is responsible for "
        "(making keys for new ones) and whether DNS publishes its record: missing, matching, "
        "mismatched, or unknown when DNS did not answer. A new key from a rotation whose "
        "record is seen becomes the signing key.",
    )
    _add_nameserver(p)
    add_json_flag(p)
    p.set_defaults(func=list_command)

    p = commands.add_parser("show", help="one domain's key and the TXT record to publish")
    p.add_argument("domain", metavar="DOMAIN")
    _add_nameserver(p)
    add_json_flag(p)
    p.set_defaults(func=show_command)

    p = commands.add_parser(
        "rotate",
        help="make a new key, signed with once its record is in DNS",
        description="Make a new key for DOMAIN and show its record. Postroom keeps signing "
        "with the old key until the new record is seen in DNS (by postroom dkim list or show, "
        "or the console's Domains view). --force signs with the new key at once: the way out "
        "when the key file was damaged or deleted.",
    )
    p.add_argument("domain", metavar="DOMAIN")
    p.add_argument(
        "--force",
        action="store_true",
        help="sign with the new key now, without waiting for its record",
    )
    _add_nameserver(p)
    add_json_flag(p)
    p.set_defaults(func=rotate_command)


def _add_nameserver(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--nameserver",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="ask this nameserver; repeat for more (default: the nameservers setting, "
        "else the system resolver)",
    )


def list_command(args: argparse.Namespace, context: Context) -> int:
    store = context.store()
    domains = check_published(store, _dns_config(store, args))
    rows = [
        [
            _shown(s.key.domain),
            s.key.selector,
            s.key.role.value,
            s.key.algorithm,
            s.published.value,
            s.key.problem,
        ]
        for entry in domains
        for s in entry.keys
    ]
    rows += [[_shown(e.domain), "-", "-", "-", "-", e.problem] for e in domains if e.problem]
    if domains:
        text = table(["DOMAIN", "SELECTOR", "ROLE", "ALGORITHM", "PUBLISHED", "PROBLEM"], rows)
    else:
        text = (
            "No domains to sign for: no enabled SMTP address rule names a domain Postroom is "
            "responsible for."
        )
    return emit(args, text, [domain_json(entry) for entry in domains])


def show_command(args: argparse.Namespace, context: Context) -> int:
    store = context.store()
    domain = _signed_domain(store, args.domain)
    [entry] = check_published(store, _dns_config(store, args), [domain])
    return emit(args, domain_text(entry), domain_json(entry))


def rotate_command(args: argparse.Namespace, context: Context) -> int:
    store = context.store()
    domain = _signed_domain(store, args.domain)
    keys = rotate(store.paths, domain, force=args.force)
    [entry] = check_published(store, _dns_config(store, args), [domain])
    newest = keys[-1]
    if newest.role is KeyRole.SIGNING:
        lead = f"{_shown(domain)} signs with the new key {newest.selector} from now on."
    else:
        lead = (
            f"New key {newest.selector} for {_shown(domain)}: mail stays signed with "
            f"{keys[0].selector} until DNS publishes the new record."
        )
    return emit(args, f"{lead}\n\n{domain_text(entry)}", domain_json(entry))


# --- text and JSON -------------------------------------------------------------------------------


def domain_text(entry: DomainStatus) -> str:
    """What one domain signs with, each key's record state, and the records still to publish."""
    if entry.problem:
        return f"{_shown(entry.domain)}: mail goes out unsigned: {entry.problem}"
    lines: list[str] = []
    for status in entry.keys:
        key = status.key
        role = "Signing key" if key.role is KeyRole.SIGNING else "New key (waits for its record)"
        lines += [
            f"{role}: {key.selector} ({key.algorithm}) of {_shown(key.domain)}",
            f"  record {key.record_name}: {status.published.value}",
        ]
        if key.problem:
            lines.append(
                f"  problem: {key.problem}; mail goes out unsigned until postroom dkim rotate "
                f"{_shown(key.domain)} --force"
                if key.role is KeyRole.SIGNING
                else f"  problem: {key.problem}"
            )
        if key.txt and status.published is not Published.MATCHING:
            lines += ["  publish:", f"    {zone_line(key)}"]
    return "\n".join(lines)


def key_json(status: KeyStatus) -> dict[str, Any]:
    key = status.key
    return {
        "domain": _shown(key.domain),
        "selector": key.selector,
        "algorithm": key.algorithm,
        "txt": key.txt,
        "published": status.published.value,
        "record": zone_line(key),
        "problem": key.problem,
    }


def domain_json(entry: DomainStatus) -> dict[str, Any]:
    """The signing key's fields, with a waiting rotation's key as ``pending`` (or null)."""
    signing, pending = entry.signing, entry.pending
    if signing is None:
        return {
            "domain": _shown(entry.domain),
            "selector": "",
            "algorithm": ALGORITHM,
            "txt": "",
            "published": Published.UNKNOWN.value,
            "record": "",
            "problem": entry.problem,
            "pending": None,
        }
    return {**key_json(signing), "pending": key_json(pending) if pending else None}


def _signed_domain(store: Store, given: str) -> str:
    domain = ascii_domain(given)
    if domain not in dkim_domains(store):
        raise NotFoundError(
            f"{given} is not a domain Postroom signs for: DKIM keys are made for the domains of "
            "enabled SMTP address rules that are responsible for their mail (postroom policy "
            "list shows them)."
        )
    return domain


def _dns_config(store: Store, args: argparse.Namespace) -> DnsConfig:
    config = dns_config_from_settings(load_settings(store))
    if args.nameserver:
        given = tuple(parse_nameserver(text) for text in args.nameserver)
        config = dataclasses.replace(config, nameservers=given)
    return config


def _shown(domain: str) -> str:
    return addressing.display_domain(domain)
