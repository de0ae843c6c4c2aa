"""DNS health: all checks in one run, the worst-of status, and the results cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dns.reversename
import pytest

from app.dns.findings import CheckResult, Status
from app.dns.health import (
    CheckedResults,
    DnsHealthCache,
    DnsReport,
    run_checks,
    summary_status,
)
from app.dns.lookup import DnsConfig
from app.errors import PostroomError
from tests.dns_responder import DnsResponder, Mode, serving

ZONE = f"""
$TTL 300
mail.example.org.           A     192.0.2.10
{dns.reversename.from_address("192.0.2.10").to_text()} PTR mail.example.org.

good.example.               MX    10 mail.example.org.
good.example.               TXT   "v=spf1 mx -all"
_dmarc.good.example.        TXT   "v=DMARC1; p=none"

nomx.example.               TXT   "v=spf1 mx -all"
_dmarc.nomx.example.        TXT   "v=DMARC1; p=none"

xn--bcher-kva.example.      MX    10 mail.example.org.
xn--bcher-kva.example.      TXT   "v=spf1 mx -all"
"""


@pytest.fixture(scope="module")
def responder() -> Iterator[DnsResponder]:
    with serving(ZONE) as server:
        yield server


@pytest.fixture
def silent() -> Iterator[DnsResponder]:
    with serving(ZONE, Mode.SILENT) as server:
        yield server


def make_config(server: DnsResponder, lifetime: float = 1.0) -> DnsConfig:
    return DnsConfig(
        nameservers=(server.address,),
        timeout=lifetime / 2,
        lifetime=lifetime,
        server_name="mail.example.org",
        server_addresses=("192.0.2.10",),
    )


@pytest.fixture
def config(responder: DnsResponder) -> DnsConfig:
    return make_config(responder)


def result(status: Status, check: str = "mx") -> CheckResult:
    return CheckResult("good.example", check, status, f"{check} is {status.value}")


# --- the worst status ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "worst"),
    [
        ([Status.OK, Status.OK], Status.OK),
        ([Status.OK, Status.WARNING], Status.WARNING),
        ([Status.WARNING, Status.UNKNOWN, Status.OK], Status.UNKNOWN),
        ([Status.UNKNOWN, Status.ERROR, Status.WARNING], Status.ERROR),
        ([Status.ERROR], Status.ERROR),
        ([], Status.UNKNOWN),
    ],
)
def test_summary_status_is_the_worst(statuses: list[Status], worst: Status) -> None:
    assert summary_status(result(status) for status in statuses) is worst


# --- running the checks --------------------------------------------------------------------------


def test_run_checks_groups_results_by_domain_then_the_server(config: DnsConfig) -> None:
    report = run_checks(["nomx.example", "bücher.example", "xn--bcher-kva.example"], config)
    assert list(report.domains) == ["nomx.example", "xn--bcher-kva.example"]
    assert [r.check for r in report.domains["nomx.example"]] == ["mx", "spf", "dmarc"]
    assert {r.domain for r in report.domains["xn--bcher-kva.example"]} == {"bücher.example"}
    assert [r.check for r in report.server] == ["server-a", "server-aaaa", "ptr-v4"]
    assert report.results == [
        *report.domains["nomx.example"],
        *report.domains["xn--bcher-kva.example"],
        *report.server,
    ]
    assert report.status is Status.ERROR
    assert report.checked_at.tzinfo is UTC


def test_run_checks_refuses_a_bad_name_before_asking_dns(silent: DnsResponder) -> None:
    started = time.monotonic()
    with pytest.raises(PostroomError, match="'bad..example' is not a valid domain name"):
        run_checks(["good.example", "bad..example"], make_config(silent))
    assert time.monotonic() - started < 0.5


# --- the cache -----------------------------------------------------------------------------------


def test_check_caches_each_domain_with_its_time(config: DnsConfig) -> None:
    cache = DnsHealthCache()
    assert cache.cached("good.example") is None and cache.cached_server() is None
    before = datetime.now(UTC)
    checked = cache.check(["good.example", "bücher.example", "nomx.example"], config)
    after = datetime.now(UTC)
    assert list(checked) == ["good.example", "bücher.example", "nomx.example"]
    assert all(isinstance(results, list) for results in checked.values())
    assert summary_status(checked["good.example"]) is Status.OK
    assert summary_status(checked["bücher.example"]) is Status.WARNING  # no DMARC
    assert summary_status(checked["nomx.example"]) is Status.ERROR

    good = cache.cached("good.example")
    assert good is not None
    checked_at, results = good  # unpacks as (time, results)
    assert before <= checked_at <= after
    assert list(results) == checked["good.example"]
    assert good.status is Status.OK
    for typed in ("bücher.example", "xn--bcher-kva.example", "BÜCHER.example."):
        idn = cache.cached(typed)
        assert idn is not None and idn.status is Status.WARNING
    server = cache.cached_server()
    assert server is not None and server.checked_at == checked_at
    assert [r.check for r in server.results] == ["server-a", "server-aaaa", "ptr-v4"]
    assert cache.cached("never.example") is None
    assert cache.cached("not a domain!") is None


def test_check_without_the_server_keeps_the_server_results(config: DnsConfig) -> None:
    cache = DnsHealthCache()
    cache.check(["good.example"], config)
    server = cache.cached_server()
    cache.check(["nomx.example"], config, server=False)
    assert cache.cached_server() == server
    assert cache.cached("good.example") is not None and cache.cached("nomx.example") is not None


def test_a_refused_check_changes_nothing(config: DnsConfig) -> None:
    cache = DnsHealthCache()
    cache.check(["good.example"], config)
    kept = cache.cached("good.example")
    with pytest.raises(PostroomError, match="not a valid domain name"):
        cache.check(["good.example", "nomx.example", "-bad-.example"], config)
    assert cache.cached("good.example") == kept
    assert cache.cached("nomx.example") is None


def test_a_recheck_replaces_the_results_but_an_older_report_does_not(
    config: DnsConfig, responder: DnsResponder
) -> None:
    cache = DnsHealthCache()
    cache.check(["good.example"], config)
    first = cache.cached("good.example")
    assert first is not None and first.status is Status.OK
    responder.mode = Mode.REFUSED
    try:
        cache.check(["good.example"], config)
    finally:
        responder.mode = Mode.ANSWER
    second = cache.cached("good.example")
    assert second is not None and second.status is Status.UNKNOWN
    assert second.checked_at > first.checked_at

    stale = DnsReport(
        first.checked_at - timedelta(minutes=5),
        {"good.example": first.results},
        first.results,
    )
    cache.remember(stale)
    assert cache.cached("good.example") == second
    server = cache.cached_server()
    assert server is not None and server.checked_at == second.checked_at


def test_forget_and_clear(config: DnsConfig) -> None:
    cache = DnsHealthCache()
    cache.check(["good.example", "bücher.example"], config)
    cache.forget("xn--bcher-kva.example")
    cache.forget("not a domain!")
    assert cache.cached("bücher.example") is None
    assert cache.cached("good.example") is not None
    cache.clear()
    assert cache.cached("good.example") is None and cache.cached_server() is None


def test_reading_the_cache_never_waits_for_a_running_check(
    config: DnsConfig, silent: DnsResponder, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = DnsHealthCache()
    cache.check(["good.example"], config)
    kept = cache.cached("good.example")
    asked = threading.Event()  # the check has sent its query and waits for DNS
    reply = silent.reply

    def noting_the_query(wire: bytes, max_size: int) -> bytes | None:
        asked.set()
        return reply(wire, max_size)

    monkeypatch.setattr(silent, "reply", noting_the_query)
    errors: list[BaseException] = []

    def slow_check() -> None:
        try:
            cache.check(["good.example"], make_config(silent, lifetime=0.5))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    worker = threading.Thread(target=slow_check)
    worker.start()
    try:
        assert asked.wait(5), "the check never asked the nameserver"
        started = time.monotonic()
        assert cache.cached("good.example") == kept
        assert cache.cached_server() is not None
        assert time.monotonic() - started < 0.5
        assert worker.is_alive()  # the check was still waiting for DNS
    finally:
        worker.join()
    assert errors == []
    after = cache.cached("good.example")
    assert after is not None and after.status is Status.UNKNOWN


def test_checks_from_several_threads_at_once(config: DnsConfig) -> None:
    cache = DnsHealthCache()
    domains = ["good.example", "nomx.example", "bücher.example"]
    outcomes: list[dict[str, list[CheckResult]]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def check() -> None:
        try:
            checked = cache.check(domains, config)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
            return
        with lock:
            outcomes.append(checked)

    workers = [threading.Thread(target=check) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert len(outcomes) == 4
    assert all(outcome == outcomes[0] for outcome in outcomes)
    kept = {domain: cache.cached(domain) for domain in domains}
    assert all(isinstance(entry, CheckedResults) for entry in kept.values())
    assert {d: list(entry.results) for d, entry in kept.items() if entry} == outcomes[0]
