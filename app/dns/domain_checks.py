"""A hosted domain's DNS checks: its MX names this server, its SPF, DMARC and DKIM records."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import dns.name
import dns.rdatatype
import dns.rdtypes.ANY.TXT

from app.dns.dkim_records import DkimExpectation, dkim_result
from app.dns.findings import PUBLIC_NAME_UNSET, CheckResult, Status, unknown_result
from app.dns.lookup import (
    DnsConfig,
    Lookup,
    Outcome,
    QueryResult,
    answer_addresses,
    domain_name,
    show_name,
)
from app.dns.mx import mx_records
from app.dns.records import (
    SUGGESTED_DMARC,
    SUGGESTED_SPF,
    address_records,
    dmarc_problem,
    is_spf,
    quoted_txt,
    spf_problems,
    zone_record,
)

log = logging.getLogger(__name__)


def check_domain(
    domain: str, config: DnsConfig, dkim: Sequence[DkimExpectation] = ()
) -> list[CheckResult]:
    """Check that mail for a hosted domain reaches this server and is protected by SPF and DMARC,
    and that each of its DKIM keys (``dkim``: none for a domain Postroom does not sign) is
    published.

    Blocks on DNS (up to ``config.lifetime`` per query): call it off the GUI thread.
    """
    checks = _DomainChecks(domain_name(domain), config, Lookup(config))
    return [*checks.run(), *(dkim_result(checks.name, key, checks.lookup) for key in dkim)]


def _texts(result: QueryResult) -> list[str]:
    # RFC 7208 §3.3: the strings of one TXT record are joined without separators.
    return [
        b"".join(record.strings).decode("utf-8", errors="replace")
        for record in result.records
        if isinstance(record, dns.rdtypes.ANY.TXT.TXT)
    ]


class _DomainChecks:
    """The checks of one hosted domain, in a fixed order."""

    def __init__(self, name: dns.name.Name, config: DnsConfig, lookup: Lookup) -> None:
        self.name = name
        self.shown = show_name(name)
        self.config = config
        self.lookup = lookup
        self.server = domain_name(config.server_name) if config.server_name else None

    def run(self) -> list[CheckResult]:
        return [*self._mx(), self._spf(), self._dmarc()]

    def _result(
        self, check: str, status: Status, summary: str, advice: str = "", record: str = ""
    ) -> CheckResult:
        return CheckResult(self.shown, check, status, summary, advice, record)

    def _mx_record(self) -> str:
        if self.server is None:
            return ""
        return zone_record(self.name, "MX", f"10 {self.server.to_text()}")

    def _add_mx_advice(self, first: str = "") -> str:
        if self.server is None:
            advice = f"{PUBLIC_NAME_UNSET}, then add an MX record naming it."
        else:
            advice = f"Add an MX record naming this server ({show_name(self.server)}):"
        return f"{first} {advice}" if first else advice

    # MX ---------------------------------------------------------------------------------------

    def _mx(self) -> list[CheckResult]:
        mx = self.lookup.query(self.name, dns.rdatatype.MX)
        if not mx.outcome.is_definite:
            return [unknown_result(self.shown, "mx", f"the MX records of {self.shown}", mx)]
        if mx.outcome is Outcome.NXDOMAIN:
            return [
                self._result(
                    "mx",
                    Status.ERROR,
                    f"{self.shown} does not exist in DNS (NXDOMAIN); no mail can reach it.",
                    self._add_mx_advice(
                        "Register or delegate the domain so that its nameservers answer for it."
                    ),
                    self._mx_record(),
                )
            ]
        records = mx_records(mx)
        if not records:
            return [
                self._result(
                    "mx",
                    Status.ERROR,
                    f"{self.shown} has no MX record; senders will not route its mail here.",
                    self._add_mx_advice(),
                    self._mx_record(),
                )
            ]
        null = [r for r in records if r[1] == dns.name.root]
        real = sorted((r for r in records if r[1] != dns.name.root), key=lambda r: r[0])
        null_record = f"{self.name.to_text()} IN MX 0 ."
        if not real:
            return [
                self._result(
                    "null-mx",
                    Status.ERROR,
                    f"{self.shown} publishes a null MX (RFC 7505): it declares that it takes no "
                    "mail, so senders refuse mail to it without trying.",
                    self._add_mx_advice(f"Delete the null MX record ({null_record})."),
                    self._mx_record(),
                )
            ]
        results: list[CheckResult] = []
        if null:
            results.append(
                self._result(
                    "null-mx",
                    Status.ERROR,
                    f"{self.shown} mixes a null MX ('0 .') with other MX records, which RFC 7505 "
                    "forbids; senders may treat the domain as taking no mail.",
                    f"Delete the null MX record ({null_record}) and keep the other MX records.",
                )
            )
        targets: list[CheckResult] = []
        aliases: dict[dns.name.Name, dns.name.Name] = {}
        for preference, target in real:
            if target not in aliases:
                result, aliases[target] = self._mx_target(preference, target)
                targets.append(result)
        return [*results, self._mx_points_here(real, aliases), *targets]

    def _mx_points_here(
        self, records: list[tuple[int, dns.name.Name]], aliases: dict[dns.name.Name, dns.name.Name]
    ) -> CheckResult:
        listed = ", ".join(f"{show_name(target)} ({preference})" for preference, target in records)
        if self.server is None:
            return self._result(
                "mx",
                Status.WARNING,
                f"MX of {self.shown} names {listed}; cannot tell whether that is this server.",
                PUBLIC_NAME_UNSET + ".",
            )
        server = show_name(self.server)
        here = [preference for preference, target in records if target == self.server]
        via_alias = [show_name(target) for _, target in records if aliases[target] == self.server]
        if not here and via_alias:
            return self._result(
                "mx",
                Status.ERROR,
                f"MX of {self.shown} names {', '.join(via_alias)}, an alias (CNAME) of this "
                f"server ({server}) rather than its own name.",
                f"Replace the MX records of {self.shown} with one naming this server itself:",
                self._mx_record(),
            )
        if not here:
            return self._result(
                "mx",
                Status.ERROR,
                f"MX of {self.shown} names {listed}, not this server ({server}); "
                "its mail goes elsewhere.",
                f"Replace the MX records of {self.shown} with one naming this server:",
                self._mx_record(),
            )
        best = records[0][0]
        if min(here) > best:
            others = ", ".join(show_name(t) for p, t in records if p < min(here))
            return self._result(
                "mx",
                Status.WARNING,
                f"MX of {self.shown} prefers {others} over this server ({server}); mail comes "
                "here only when that host is down.",
                "Unless that host is a backup that passes mail on here, give this server the "
                "lowest preference number or delete the other MX records:",
                self._mx_record(),
            )
        return self._result("mx", Status.OK, f"MX of {self.shown} names this server ({server}).")

    def _mx_target(
        self, preference: int, target: dns.name.Name
    ) -> tuple[CheckResult, dns.name.Name]:
        """The check of one MX target, and the name it is an alias for (itself if none)."""
        a = self.lookup.query(target, dns.rdatatype.A)
        aaaa = self.lookup.query(target, dns.rdatatype.AAAA)
        alias = next((r.canonical_name for r in (a, aaaa) if r.is_alias), None)
        return self._mx_target_result(preference, target, a, aaaa, alias), alias or target

    def _mx_target_result(
        self,
        preference: int,
        target: dns.name.Name,
        a: QueryResult,
        aaaa: QueryResult,
        alias: dns.name.Name | None,
    ) -> CheckResult:
        shown = show_name(target)
        if alias is not None:
            return self._result(
                "mx-target",
                Status.ERROR,
                f"MX target {shown} is an alias (CNAME) for {show_name(alias)}; an MX must name a "
                "host with its own A/AAAA records (RFC 2181 §10.3), and some senders refuse it.",
                f"Point the MX record at {show_name(alias)} itself (or replace the CNAME at "
                f"{shown} with A/AAAA records):",
                zone_record(self.name, "MX", f"{preference} {alias.to_text()}"),
            )
        addresses = answer_addresses(a) + answer_addresses(aaaa)
        if addresses:
            return self._result(
                "mx-target",
                Status.OK,
                f"MX target {shown} has address {', '.join(addresses)}.",
            )
        for result in (a, aaaa):
            if not result.outcome.is_definite:
                return unknown_result(
                    self.shown, "mx-target", f"the addresses of MX target {shown}", result
                )
        if a.outcome is Outcome.NXDOMAIN:
            found = f"MX target {shown} does not exist (NXDOMAIN)"
        else:
            found = f"MX target {shown} has no A or AAAA record"
        summary = f"{found}; senders cannot deliver mail for {self.shown} to it."
        if target == self.server and self.config.server_addresses:
            return self._result(
                "mx-target",
                Status.ERROR,
                summary,
                f"Add the address records of {shown}:",
                address_records(target, self.config.server_addresses),
            )
        return self._result(
            "mx-target",
            Status.ERROR,
            summary,
            f"Add an A record (IPv4) and/or an AAAA record (IPv6) for {shown} giving the mail "
            "server's public address, or point the MX at a host that has them.",
        )

    # SPF --------------------------------------------------------------------------------------

    def _spf(self) -> CheckResult:
        txt = self.lookup.query(self.name, dns.rdatatype.TXT)
        if not txt.outcome.is_definite:
            return unknown_result(self.shown, "spf", f"the SPF record of {self.shown}", txt)
        suggested = zone_record(self.name, "TXT", quoted_txt(SUGGESTED_SPF))
        spf = [text for text in _texts(txt) if is_spf(text)]
        if not spf:
            return self._result(
                "spf",
                Status.ERROR,
                f"{self.shown} has no SPF record (TXT v=spf1); receivers cannot tell which hosts "
                "may send its mail, and many junk or refuse it.",
                "Add an SPF record; this one lets the domain's MX hosts send:",
                suggested,
            )
        if len(spf) > 1:
            return self._result(
                "spf",
                Status.ERROR,
                f"{self.shown} has {len(spf)} SPF records; receivers treat that as a permanent "
                "error (RFC 7208 §4.5) and SPF fails for all its mail.",
                "Merge them into one TXT record and delete the others, e.g.:",
                suggested,
            )
        errors, warnings = spf_problems(spf[0])
        if errors:
            return self._result(
                "spf",
                Status.ERROR,
                f"SPF record of {self.shown} is malformed: {'; '.join(errors + warnings)}.",
                f"Fix the record {quoted_txt(spf[0])}; if unsure, replace it with:",
                suggested,
            )
        if warnings:
            return self._result(
                "spf",
                Status.WARNING,
                f"SPF record of {self.shown} works but: {'; '.join(warnings)}.",
                f"Consider fixing the record {quoted_txt(spf[0])}, e.g.:",
                suggested,
            )
        return self._result("spf", Status.OK, f"SPF record of {self.shown}: {spf[0]}")

    # DMARC ------------------------------------------------------------------------------------

    def _dmarc(self) -> CheckResult:
        owner = dns.name.from_text("_dmarc", origin=self.name)
        shown_owner = f"_dmarc.{self.shown}"
        txt = self.lookup.query(owner, dns.rdatatype.TXT)
        if not txt.outcome.is_definite:
            return unknown_result(self.shown, "dmarc", f"the DMARC record at {shown_owner}", txt)
        suggested = zone_record(owner, "TXT", quoted_txt(SUGGESTED_DMARC))
        dmarc = [text for text in _texts(txt) if text.lstrip().lower().startswith("v=dmarc1")]
        if not dmarc:
            return self._result(
                "dmarc",
                Status.WARNING,
                f"{self.shown} has no DMARC record (TXT v=DMARC1 at {shown_owner}); receivers "
                "get no policy for mail that fails SPF.",
                "Add a DMARC record; p=none only reports, move to p=quarantine once mail passes:",
                suggested,
            )
        if len(dmarc) > 1:
            return self._result(
                "dmarc",
                Status.ERROR,
                f"{shown_owner} has {len(dmarc)} DMARC records; receivers ignore them all "
                "(RFC 7489 §6.6.3).",
                "Keep one DMARC record and delete the others, e.g.:",
                suggested,
            )
        problem = dmarc_problem(dmarc[0])
        if problem:
            return self._result(
                "dmarc",
                Status.ERROR,
                f"DMARC record of {self.shown} is malformed: {problem}; receivers ignore it.",
                f"Fix the record {quoted_txt(dmarc[0])}, e.g.:",
                suggested,
            )
        return self._result("dmarc", Status.OK, f"DMARC record of {self.shown}: {dmarc[0]}")
