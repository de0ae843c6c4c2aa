"""This server's DNS checks: its public name's A / AAAA, and reverse DNS that forward-confirms."""

from __future__ import annotations

import ipaddress
import logging

import dns.name
import dns.rdatatype
import dns.rdtypes.ANY.PTR
import dns.reversename

from app.dns.findings import PUBLIC_NAME_UNSET, CheckResult, Status, unknown_result
from app.dns.lookup import (
    DnsConfig,
    Lookup,
    Outcome,
    QueryResult,
    answer_addresses,
    domain_name,
    normal_ip,
    show_name,
)
from app.dns.records import address_records, zone_record

log = logging.getLogger(__name__)


def check_server(config: DnsConfig) -> list[CheckResult]:
    """Check this server's public name: A / AAAA, and reverse DNS that forward-confirms.

    Blocks on DNS: call it off the GUI thread.
    """
    return _ServerChecks(config, Lookup(config)).run()


def _ptr_names(result: QueryResult) -> list[dns.name.Name]:
    return sorted(
        (record.target for record in result.records if isinstance(record, dns.rdtypes.ANY.PTR.PTR)),
        key=lambda name: name.to_text(),
    )


class _ServerChecks:
    """The checks of this server's public name and addresses, in a fixed order."""

    def __init__(self, config: DnsConfig, lookup: Lookup) -> None:
        self.config = config
        self.lookup = lookup

    def run(self) -> list[CheckResult]:
        if self.config.server_name is None:
            return [
                CheckResult(
                    "",
                    "server-a",
                    Status.WARNING,
                    "This server's public host name is not set, so its addresses and reverse "
                    "DNS cannot be checked.",
                    PUBLIC_NAME_UNSET + ".",
                )
            ]
        name = domain_name(self.config.server_name)
        shown = show_name(name)
        a = self.lookup.query(name, dns.rdatatype.A)
        aaaa = self.lookup.query(name, dns.rdatatype.AAAA)
        configured = [normal_ip(address) for address in self.config.server_addresses]
        results = [
            self._family(name, shown, 4, a, aaaa, configured),
            self._family(name, shown, 6, aaaa, a, configured),
        ]
        for version, result in ((4, a), (6, aaaa)):
            if not result.outcome.is_definite:
                continue
            found = answer_addresses(result)
            extra = [
                ip
                for ip in configured
                if ipaddress.ip_address(ip).version == version and ip not in found
            ]
            for ip in found + extra:
                results.append(self._ptr(name, shown, version, ip, found))
        return results

    def _family(
        self,
        name: dns.name.Name,
        shown: str,
        version: int,
        result: QueryResult,
        other: QueryResult,
        configured: list[str],
    ) -> CheckResult:
        rdtype = "A" if version == 4 else "AAAA"
        check = "server-a" if version == 4 else "server-aaaa"
        if not result.outcome.is_definite:
            return unknown_result(shown, check, f"the {rdtype} record of {shown}", result)
        found = answer_addresses(result)
        wanted = [ip for ip in configured if ipaddress.ip_address(ip).version == version]
        absent = [ip for ip in wanted if ip not in found]
        if found and absent:
            return CheckResult(
                shown,
                check,
                Status.ERROR,
                f"{shown} has {rdtype} {', '.join(found)}, not this server's {', '.join(absent)}.",
                f"Add this server's address to {shown} (and delete {rdtype} records that are "
                "not this server's):",
                address_records(name, absent),
            )
        if found:
            return CheckResult(shown, check, Status.OK, f"{shown} has {rdtype} {', '.join(found)}.")
        record = address_records(name, wanted)
        family = f"IPv{version}"
        if record:
            advice = f"Add the {rdtype} record of this server's {family} address:"
        else:
            advice = (
                f"Add an {rdtype} record for {shown} with this server's public {family} address."
            )
        if result.outcome is Outcome.NXDOMAIN:
            return CheckResult(
                shown,
                check,
                Status.ERROR,
                f"{shown} does not exist in DNS (NXDOMAIN); nothing can reach this server by name.",
                advice,
                record,
            )
        if wanted:
            return CheckResult(
                shown,
                check,
                Status.ERROR,
                f"{shown} has no {rdtype} record, though this server has {family} "
                f"address {', '.join(wanted)}.",
                advice,
                record,
            )
        if answer_addresses(other):
            if version == 6:
                return CheckResult(
                    shown, check, Status.OK, f"{shown} has no AAAA record (no IPv6 published)."
                )
            return CheckResult(
                shown,
                check,
                Status.WARNING,
                f"{shown} has no A record, so senders with only IPv4 cannot reach it.",
                advice,
                record,
            )
        return CheckResult(
            shown,
            check,
            Status.ERROR,
            f"{shown} has neither an A nor an AAAA record; nothing can reach this server by name.",
            advice,
            record,
        )

    def _ptr(
        self, server: dns.name.Name, shown: str, version: int, ip: str, forward: list[str]
    ) -> CheckResult:
        check = f"ptr-v{version}"
        rdtype = dns.rdatatype.A if version == 4 else dns.rdatatype.AAAA
        reverse = dns.reversename.from_address(ip)
        ptr_record = zone_record(reverse, "PTR", server.to_text())
        set_ptr = (
            f"Ask whoever controls {ip} (usually the hosting provider, in its control panel) "
            f"to set its reverse DNS to {shown}:"
        )
        ptr = self.lookup.query(reverse, dns.rdatatype.PTR)
        if not ptr.outcome.is_definite:
            return unknown_result(shown, check, f"the reverse DNS (PTR) of {ip}", ptr)
        names = _ptr_names(ptr)
        if not names:
            return CheckResult(
                shown,
                check,
                Status.ERROR,
                f"{ip} has no reverse DNS (PTR) record; many receivers refuse or junk mail from "
                "such addresses.",
                set_ptr,
                ptr_record,
            )
        if server in names:
            if ip in forward:
                return CheckResult(
                    shown,
                    check,
                    Status.OK,
                    f"{ip} reverses to {shown}, which resolves back to {ip}.",
                )
            return CheckResult(
                shown,
                check,
                Status.ERROR,
                f"{ip} reverses to {shown}, but {shown} does not resolve back to {ip}.",
                f"Add {ip} to the addresses of {shown}:",
                address_records(server, [ip]),
            )
        unknown: QueryResult | None = None
        for name in names:
            back = self.lookup.query(name, rdtype)
            if ip in answer_addresses(back):
                return CheckResult(
                    shown,
                    check,
                    Status.WARNING,
                    f"{ip} reverses to {show_name(name)}, which resolves back but is not this "
                    f"server's public name {shown}; receivers that compare it with the "
                    "greeting name may distrust the mail.",
                    set_ptr,
                    ptr_record,
                )
            if not back.outcome.is_definite:
                unknown = back
        if unknown is not None:
            return unknown_result(
                shown, check, f"whether the reverse DNS of {ip} forward-confirms", unknown
            )
        reversed_to = ", ".join(show_name(name) for name in names)
        return CheckResult(
            shown,
            check,
            Status.ERROR,
            f"PTR mismatch: {ip} reverses to {reversed_to}, which does not resolve back to {ip}.",
            set_ptr,
            ptr_record,
        )
