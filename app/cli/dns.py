"""``postroom dns check``: DNS health and routes onward of the hosted domains, and what to add."""

from __future__ import annotations

import argparse
import dataclasses
import textwrap
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app.cli.common import Context, add_json_flag, emit, fail, table
from app.connectors.catalog import list_connectors
from app.directory import addressing
from app.dkim.catalog import prepare_keys
from app.dkim.published import expectations
from app.dns.findings import CheckResult, Status
from app.dns.health import DnsReport, run_checks, summary_status
from app.dns.lookup import DnsConfig, parse_nameserver
from app.dns.routes import Route, RouteState, dns_config_from_settings, find_route
from app.model import SmtpConnector
from app.policies import hosted_domains, list_policies
from app.settings import Settings, format_host_port, load_settings

_INDENT = "    "
_MAX_WORKERS = 8
# A route onward as a check: none is an error, not confirmed is unknown, as for the records.
_ROUTE_STATUS = {
    RouteState.ROUTED: Status.OK,
    RouteState.NONE: Status.ERROR,
    RouteState.UNCONFIRMED: Status.UNKNOWN,
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("dns", help="DNS health of the hosted domains")
    commands = parser.add_subparsers(dest="dns_command", metavar="ACTION", required=True)
    p = commands.add_parser(
        "check",
        help="check MX, SPF, DMARC and DKIM of each domain, the route onward of each shared "
        "domain, and this server's name and reverse DNS",
        description="Check MX, SPF, DMARC and DKIM of each domain, the route onward of each "
        "shared-namespace domain (the check 'route'), and this server's addresses and reverse "
        "DNS; say what record to add or what to change for each problem. Exit status: 0 when no "
        "check is an error (warnings and checks DNS could not answer are listed but do not "
        "fail), 1 when any check is an error (a shared domain with no route onward is one), 2 "
        "for a usage error.",
    )
    p.add_argument(
        "domains",
        nargs="*",
        metavar="DOMAIN",
        help="domains to check (default: every domain an enabled SMTP address rule names)",
    )
    p.add_argument(
        "--nameserver",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="ask this nameserver; repeat for more (default: the nameservers setting, "
        "else the system resolver)",
    )
    add_json_flag(p)
    p.set_defaults(func=check_command)


def check_command(args: argparse.Namespace, context: Context) -> int:
    store = context.store()
    settings = load_settings(store)
    config = dns_config_from_settings(settings)
    if args.nameserver:
        given = tuple(parse_nameserver(text) for text in args.nameserver)
        config = dataclasses.replace(config, nameservers=given)
    hosted = hosted_domains(list_policies(store))
    domains = list(args.domains) or [domain.domain for domain in hosted]
    report = run_checks(domains, config, dkim=expectations(prepare_keys(store)))
    shared = {domain.domain for domain in hosted if not domain.responsible}
    connectors = list_connectors(store)
    routes = find_routes(
        [key for key in report.domains if key in shared], settings, connectors, config
    )
    report = with_routes(report, routes)
    text = report_text(report, config, defaulted=not args.domains)
    emit(args, text, report_json(report, config, routes))
    errors = sum(result.status is Status.ERROR for result in report.results)
    if errors:
        return fail(
            f"The DNS check found {_count(errors, 'error')}; the advice on stdout says what to "
            "add or change."
        )
    return 0


def find_routes(
    domains: list[str], settings: Settings, connectors: list[SmtpConnector], config: DnsConfig
) -> dict[str, Route]:
    """The route onward of each shared domain (A-labels), asked a few at a time."""
    if not domains:
        return {}
    with ThreadPoolExecutor(min(_MAX_WORKERS, len(domains)), "dns-route") as pool:
        found = pool.map(
            lambda domain: find_route(domain, settings, connectors=connectors, config=config),
            domains,
        )
        return dict(zip(domains, found, strict=True))


def with_routes(report: DnsReport, routes: dict[str, Route]) -> DnsReport:
    """``report`` with each shared domain's route onward as its last check, named 'route'."""
    domains = {
        key: (*results, route_result(key, routes[key])) if key in routes else results
        for key, results in report.domains.items()
    }
    return dataclasses.replace(report, domains=domains)


def route_result(domain: str, route: Route) -> CheckResult:
    """A route onward as a check of ``domain``: the console's text, split into finding and
    advice."""
    shown = addressing.display_domain(domain)
    return CheckResult(shown, "route", _ROUTE_STATUS[route.state], route.summary, route.advice)


# --- text ----------------------------------------------------------------------------------------


def report_text(report: DnsReport, config: DnsConfig, *, defaulted: bool = False) -> str:
    """The table of every result, then the advice and record for each one that is not OK."""
    lines = [f"Nameservers: {_nameservers_text(config)}"]
    if defaulted and not report.domains:
        lines.append("No hosted domains: no enabled SMTP address rule names one.")
    lines.append("")
    results = report.results
    lines.append(
        table(
            ["DOMAIN", "CHECK", "STATUS", "SUMMARY"],
            [[_who(r), r.check, r.status.name, r.summary] for r in results],
        )
    )
    attention = [result for result in results if result.status is not Status.OK]
    for result in attention:
        lines += ["", f"{_who(result)} {result.check}: {result.status.name}"]
        if result.advice:
            lines.append(textwrap.indent(result.advice, _INDENT))
        if result.record:
            lines.append(textwrap.indent(result.record, _INDENT * 2))
    lines += ["", _verdict(results)]
    return "\n".join(lines)


def _who(result: CheckResult) -> str:
    return result.domain or "(this server)"


def _nameservers_text(config: DnsConfig) -> str:
    if not config.nameservers:
        return f"the system resolver ({config.resolv_conf})"
    return ", ".join(format_host_port(host, port) for host, port in config.nameservers)


def _verdict(results: list[CheckResult]) -> str:
    counts = {status: sum(r.status is status for r in results) for status in Status}
    tally = (
        f"{counts[Status.OK]} OK, {_count(counts[Status.WARNING], 'warning')}, "
        f"{_count(counts[Status.ERROR], 'error')}, {counts[Status.UNKNOWN]} unknown."
    )
    if counts[Status.ERROR]:
        verdict = "Errors: mail may not arrive, or may be refused, until they are fixed."
    elif counts[Status.UNKNOWN]:
        verdict = (
            "No errors found, but DNS did not answer some checks (UNKNOWN), which says nothing "
            "about whether those records exist; check again."
        )
    elif counts[Status.WARNING]:
        verdict = "No errors; the warnings above are worth fixing."
    else:
        verdict = "Every check is OK."
    return f"{tally} {verdict}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


# --- JSON ----------------------------------------------------------------------------------------


def report_json(
    report: DnsReport, config: DnsConfig, routes: dict[str, Route] | None = None
) -> dict[str, Any]:
    """The report as plain data: overall status, counts, each domain's checks and route onward
    (null when it is not shared), this server's."""
    routes = routes or {}
    results = report.results
    return {
        "status": report.status.value,
        "checked_at": report.checked_at.isoformat(),
        "nameservers": [format_host_port(host, port) for host, port in config.nameservers],
        "counts": {status.value: sum(r.status is status for r in results) for status in Status},
        "domains": [
            {
                "domain": addressing.display_domain(key),
                "ascii": key,
                "status": summary_status(checks).value,
                "checks": [check_json(result) for result in checks],
                "route": route_json(routes[key]) if key in routes else None,
            }
            for key, checks in report.domains.items()
        ],
        "server": {
            "name": addressing.display_domain(config.server_name) if config.server_name else None,
            "addresses": list(config.server_addresses),
            "status": summary_status(report.server).value,
            "checks": [check_json(result) for result in report.server],
        },
    }


def check_json(result: CheckResult) -> dict[str, str]:
    return {
        "check": result.check,
        "status": result.status.value,
        "summary": result.summary,
        "advice": result.advice,
        "record": result.record,
    }


def route_json(route: Route) -> dict[str, str | None]:
    return {
        "state": route.state.value,
        "why": route.why.value if route.why is not None else None,
        "text": route.text,
    }
