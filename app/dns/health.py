"""DNS health of the hosted domains and this server: all checks in one run, kept with their time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from app.dns.dkim_records import DkimExpectation
from app.dns.domain_checks import check_domain
from app.dns.findings import CheckResult, Status
from app.dns.lookup import DnsConfig, ascii_domain
from app.dns.server_checks import check_server
from app.errors import PostroomError

log = logging.getLogger(__name__)

_MAX_WORKERS = 8

# Worst last. An unknown check may hide an error, so it outranks a warning in a summary.
_SEVERITY = {Status.OK: 0, Status.WARNING: 1, Status.UNKNOWN: 2, Status.ERROR: 3}


def summary_status(results: Iterable[CheckResult]) -> Status:
    """The worst status of ``results``: error, then unknown, then warning, then OK.

    No results at all is unknown: nothing was checked.
    """
    statuses = [result.status for result in results]
    if not statuses:
        return Status.UNKNOWN
    return max(statuses, key=_SEVERITY.__getitem__)


class CheckedResults(NamedTuple):
    """The results of one domain (or of this server) and when they came back."""

    checked_at: datetime
    results: tuple[CheckResult, ...]

    @property
    def status(self) -> Status:
        """The worst status of the results (see ``summary_status``)."""
        return summary_status(self.results)


@dataclass(frozen=True)
class DnsReport:
    """One run of checks: each domain's results, this server's, and when the run ended."""

    #: When the last answer came back (UTC).
    checked_at: datetime
    #: Results per domain, keyed by A-label (see ``ascii_domain``), in the order asked.
    domains: dict[str, tuple[CheckResult, ...]]
    #: This server's results; empty when the server was not checked.
    server: tuple[CheckResult, ...]

    @property
    def results(self) -> list[CheckResult]:
        """Every result: the domains in order, then this server."""
        return [result for results in self.domains.values() for result in results] + list(
            self.server
        )

    @property
    def status(self) -> Status:
        """The worst status of every result (see ``summary_status``)."""
        return summary_status(self.results)


def run_checks(
    domains: Iterable[str],
    config: DnsConfig,
    *,
    server: bool = True,
    dkim: Mapping[str, Sequence[DkimExpectation]] | None = None,
) -> DnsReport:
    """Check each domain (duplicates once) and, with ``server``, this server, a few at a time.

    ``dkim`` gives the DKIM keys to check per domain (A-labels); a domain not in it has none.

    Refuses a name that is not a domain (``PostroomError``) before asking DNS anything.
    Blocks on DNS from the calling thread and a small pool of its own: never call it on the GUI
    thread.
    """
    keys = list(dict.fromkeys(ascii_domain(domain) for domain in domains))
    with ThreadPoolExecutor(
        max_workers=min(_MAX_WORKERS, len(keys) + 1), thread_name_prefix="dns-check"
    ) as pool:
        futures = {
            key: pool.submit(check_domain, key, config, (dkim or {}).get(key, ())) for key in keys
        }
        server_future = pool.submit(check_server, config) if server else None
        results = {key: tuple(future.result()) for key, future in futures.items()}
        server_results = tuple(server_future.result()) if server_future is not None else ()
    return DnsReport(datetime.now(UTC), results, server_results)


class DnsHealthCache:
    """The latest DNS results per domain and for this server, each with the time it was checked.

    Threads: ``check`` blocks on DNS and must run on a worker thread. ``cached``,
    ``cached_server``, ``remember``, ``forget`` and ``clear`` never touch the network, hold a lock
    only for a moment, and may be called from any thread, the GUI thread included, also while a
    ``check`` is running.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._domains: dict[str, CheckedResults] = {}
        self._server: CheckedResults | None = None

    def check(
        self,
        domains: Iterable[str],
        config: DnsConfig,
        *,
        server: bool = True,
        dkim: Mapping[str, Sequence[DkimExpectation]] | None = None,
    ) -> dict[str, list[CheckResult]]:
        """Check ``domains`` (and, with ``server``, this server) now and cache the results.

        Returns each domain's results keyed by the domain as given (U-label or A-label).
        Raises ``PostroomError`` for a name that is not a domain, before asking DNS anything.
        Worker thread only: blocks for up to a few DNS lifetimes.
        """
        given = list(domains)
        report = run_checks(given, config, server=server, dkim=dkim)
        self.remember(report)
        return {domain: list(report.domains[ascii_domain(domain)]) for domain in given}

    def remember(self, report: DnsReport) -> None:
        """Keep the results of ``report``, unless newer results are already kept. Any thread."""
        with self._lock:
            for key, results in report.domains.items():
                known = self._domains.get(key)
                if known is None or known.checked_at <= report.checked_at:
                    self._domains[key] = CheckedResults(report.checked_at, results)
            if report.server and (
                self._server is None or self._server.checked_at <= report.checked_at
            ):
                self._server = CheckedResults(report.checked_at, report.server)

    def cached(self, domain: str) -> CheckedResults | None:
        """The last results for ``domain`` (U-label or A-label) with their time; None if never
        checked (or not a domain name). Any thread; never blocks on DNS."""
        try:
            key = ascii_domain(domain)
        except PostroomError:
            return None
        with self._lock:
            return self._domains.get(key)

    def cached_server(self) -> CheckedResults | None:
        """The last results for this server with their time; None if never checked. Any thread."""
        with self._lock:
            return self._server

    def forget(self, domain: str) -> None:
        """Drop what is kept for ``domain`` (e.g. it is no longer hosted). Any thread."""
        try:
            key = ascii_domain(domain)
        except PostroomError:
            return
        with self._lock:
            self._domains.pop(key, None)

    def clear(self) -> None:
        """Drop everything kept (e.g. the DNS settings changed). Any thread."""
        with self._lock:
            self._domains.clear()
            self._server = None
