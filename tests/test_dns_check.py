"""DNS checks and MX routing against a real DNS responder on a loopback port."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.reversename
import pytest

from app.dns.domain_checks import check_domain
from app.dns.findings import CheckResult, Status
from app.dns.health import run_checks
from app.dns.lookup import DnsConfig, DnsTemporaryError, Outcome, parse_nameserver, query_dns
from app.dns.mx import MailExchanger, UndeliverableError, mail_exchangers
from app.dns.server_checks import check_server
from app.errors import PostroomError
from tests.dns_responder import DnsResponder, Mode, serving


def _rev(address: str) -> str:
    return dns.reversename.from_address(address).to_text()


ZONE = f"""
$TTL 300
; The server: mail.example.org, forward-confirmed on IPv4 and IPv6.
mail.example.org.           A     192.0.2.10
mail.example.org.           AAAA  2001:db8::10
{_rev("192.0.2.10")}        PTR   mail.example.org.
{_rev("2001:db8::10")}      PTR   mail.example.org.

; A server whose address reverses to a name that does not point back.
mismatch.example.org.       A     192.0.2.20
{_rev("192.0.2.20")}        PTR   other.example.org.
other.example.org.          A     192.0.2.99

; A server whose address has no PTR at all.
noptr.example.org.          A     192.0.2.40

; good.example: everything right.
good.example.               MX    10 mail.example.org.
good.example.               TXT   "google-site-verification=abc123"
good.example.               TXT   "v=spf1 mx ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"
_dmarc.good.example.        TXT   "v=DMARC1; p=quarantine; rua=mailto:dmarc@good.example"

; nomx.example: the name exists (TXT, A) but has no MX.
nomx.example.               A     192.0.2.10
nomx.example.               TXT   "v=spf1 mx -all"
_dmarc.nomx.example.        TXT   "v=DMARC1; p=none"

; elsewhere.example: MX names another provider.
elsewhere.example.          MX    10 mx.provider.example.
elsewhere.example.          TXT   "v=spf1 mx -all"
_dmarc.elsewhere.example.   TXT   "v=DMARC1; p=none"
mx.provider.example.        A     198.51.100.5

; noaddr.example: the MX target exists but has no A/AAAA.
noaddr.example.             MX    10 mx.noaddr.example.
noaddr.example.             TXT   "v=spf1 mx -all"
_dmarc.noaddr.example.      TXT   "v=DMARC1; p=none"
mx.noaddr.example.          TXT   "a name without addresses"

; cname.example: the MX target is an alias.
cname.example.              MX    10 alias.cname.example.
cname.example.              TXT   "v=spf1 mx -all"
_dmarc.cname.example.       TXT   "v=DMARC1; p=none"
alias.cname.example.        CNAME mail.example.org.

; nullmx.example: declares it takes no mail (RFC 7505).
nullmx.example.             MX    0 .
nullmx.example.             TXT   "v=spf1 -all"
_dmarc.nullmx.example.      TXT   "v=DMARC1; p=reject"

; nospf.example: TXT records, but none of them SPF.
nospf.example.              MX    10 mail.example.org.
nospf.example.              TXT   "google-site-verification=xyz"
_dmarc.nospf.example.       TXT   "v=DMARC1; p=none"

; badspf.example: an SPF record with a made-up mechanism, a bad address and two 'all'.
badspf.example.             MX    10 mail.example.org.
badspf.example.             TXT   "v=spf1 mx foo:bar ip4:300.1.2.3 -all ~all"
_dmarc.badspf.example.      TXT   "v=DMARC1; p=none"

; twospf.example: two SPF records.
twospf.example.             MX    10 mail.example.org.
twospf.example.             TXT   "v=spf1 mx -all"
twospf.example.             TXT   "v=spf1 include:spf.provider.example -all"
_dmarc.twospf.example.      TXT   "v=DMARC1; p=none"

; nodmarc.example: MX and SPF but no DMARC.
nodmarc.example.            MX    10 mail.example.org.
nodmarc.example.            TXT   "v=spf1 mx -all"

; bücher.example (IDN): MX and SPF right, no DMARC.
xn--bcher-kva.example.      MX    10 mail.example.org.
xn--bcher-kva.example.      TXT   "v=spf1 mx -all"

; deadmx.example: the MX target does not exist.
deadmx.example.             MX    10 mx.gone.example.
deadmx.example.             TXT   "v=spf1 mx -all"

; mixednull.example: a null MX next to a real one (RFC 7505 forbids it).
mixednull.example.          MX    0 .
mixednull.example.          MX    10 mail.example.org.

; SPF and DMARC records that are present but not right.
nominusall.example.         TXT   "v=spf1 mx"
plusall.example.            TXT   "v=spf1 +all"
_dmarc.plusall.example.     TXT   "v=DMARC1; rua=mailto:dmarc@plusall.example"
typo.example.               TXT   "v=spf1 mx redirect=_spf.typo.example -all a exp=x exp=y"
_dmarc.typo.example.        TXT   "v=DMARC1; p=monitor"

; Outbound routing.
routing.example.            MX    20 mx2.routing.example.
routing.example.            MX    10 mx1.routing.example.
routing.example.            MX    20 mx0.routing.example.
implicit.example.           A     192.0.2.30
implicit.example.           AAAA  2001:db8::30
nohost.example.             TXT   "v=spf1 -all"
"""


@pytest.fixture(scope="module")
def responder() -> Iterator[DnsResponder]:
    with serving(ZONE) as server:
        yield server


@pytest.fixture
def dns_server(responder: DnsResponder) -> Iterator[DnsResponder]:
    responder.mode = Mode.ANSWER
    yield responder
    responder.mode = Mode.ANSWER


@pytest.fixture
def config(dns_server: DnsResponder) -> DnsConfig:
    return DnsConfig(
        nameservers=(dns_server.address,),
        timeout=0.3,
        lifetime=0.6,
        server_name="mail.example.org",
        server_addresses=("192.0.2.10", "2001:db8::10"),
    )


def by_check(results: list[CheckResult]) -> dict[str, CheckResult]:
    checks = [result.check for result in results]
    assert len(checks) == len(set(checks)), checks
    return {result.check: result for result in results}


def assert_says_what_to_do(result: CheckResult) -> None:
    assert result.status is not Status.OK
    assert result.advice
    assert "\n" not in result.summary


# --- the responder itself ----------------------------------------------------------------------


def test_responder_answers_nodata_nxdomain_and_over_tcp(dns_server: DnsResponder) -> None:
    host, port = dns_server.address
    nodata = dns.query.udp(
        dns.message.make_query("nomx.example.", "MX"), host, port=port, timeout=2
    )
    assert nodata.rcode() == dns.rcode.NOERROR and nodata.answer == []
    missing = dns.query.udp(dns.message.make_query("nx.example.", "A"), host, port=port, timeout=2)
    assert missing.rcode() == dns.rcode.NXDOMAIN
    over_tcp = dns.query.tcp(
        dns.message.make_query("good.example.", "MX"), host, port=port, timeout=2
    )
    assert [r.to_text() for r in over_tcp.answer[0]] == ["10 mail.example.org."]


def test_query_outcomes_are_told_apart(config: DnsConfig, dns_server: DnsResponder) -> None:
    assert query_dns("good.example", "MX", config).outcome is Outcome.ANSWER
    assert query_dns("nomx.example", "MX", config).outcome is Outcome.NO_ANSWER
    assert query_dns("nx.example", "MX", config).outcome is Outcome.NXDOMAIN
    alias = query_dns("alias.cname.example", "A", config)
    assert alias.is_alias and alias.canonical_name is not None
    assert alias.canonical_name.to_text() == "mail.example.org."
    dns_server.mode = Mode.REFUSED
    refused = query_dns("good.example", "MX", config)
    assert refused.outcome is Outcome.FAILED
    assert refused.detail == f"127.0.0.1:{dns_server.port} answered REFUSED"
    dns_server.mode = Mode.SERVFAIL
    servfail = query_dns("good.example", "MX", config)
    assert servfail.outcome is Outcome.FAILED and "SERVFAIL" in servfail.detail
    dns_server.mode = Mode.SILENT
    timeout = query_dns("good.example", "MX", config)
    assert timeout.outcome is Outcome.TIMEOUT and "0.6 s" in timeout.detail


# --- per-domain checks ---------------------------------------------------------------------------


def test_good_domain_is_all_ok(config: DnsConfig) -> None:
    results = check_domain("good.example", config)
    assert [(r.check, r.status) for r in results] == [
        ("mx", Status.OK),
        ("mx-target", Status.OK),
        ("spf", Status.OK),
        ("dmarc", Status.OK),
    ]
    assert all(r.domain == "good.example" and r.advice == "" and r.record == "" for r in results)
    assert "192.0.2.10" in results[1].summary and "2001:db8::10" in results[1].summary


def test_no_mx_is_an_error_that_gives_the_mx_record(config: DnsConfig) -> None:
    results = by_check(check_domain("nomx.example", config))
    mx = results["mx"]
    assert mx.status is Status.ERROR
    assert "no MX record" in mx.summary
    assert_says_what_to_do(mx)
    assert mx.record == "nomx.example. 3600 IN MX 10 mail.example.org."
    assert "mx-target" not in results
    assert results["spf"].status is Status.OK and results["dmarc"].status is Status.OK


def test_nonexistent_domain_is_an_error(config: DnsConfig) -> None:
    results = by_check(check_domain("nx.example", config))
    assert results["mx"].status is Status.ERROR and "NXDOMAIN" in results["mx"].summary
    assert results["mx"].record == "nx.example. 3600 IN MX 10 mail.example.org."
    assert results["spf"].status is Status.ERROR
    assert results["dmarc"].status is Status.WARNING


def test_mx_pointing_elsewhere_is_an_error(config: DnsConfig) -> None:
    results = by_check(check_domain("elsewhere.example", config))
    mx = results["mx"]
    assert mx.status is Status.ERROR
    assert "mx.provider.example" in mx.summary and "mail.example.org" in mx.summary
    assert_says_what_to_do(mx)
    assert mx.record == "elsewhere.example. 3600 IN MX 10 mail.example.org."
    # The other provider's host itself is fine.
    assert results["mx-target"].status is Status.OK


def test_mx_when_the_public_name_is_not_set_says_how_to_set_it(dns_server: DnsResponder) -> None:
    config = DnsConfig(nameservers=(dns_server.address,), timeout=0.3, lifetime=0.6)
    results = by_check(check_domain("good.example", config))
    mx = results["mx"]
    assert mx.status is Status.WARNING
    assert "mail.example.org" in mx.summary
    assert "public host name is not set" in mx.advice
    assert "postroom smtp set public_name mail.example.org" in mx.advice
    no_mx = by_check(check_domain("nomx.example", config))["mx"]
    assert no_mx.status is Status.ERROR and no_mx.record == ""
    assert "postroom smtp set public_name" in no_mx.advice


def test_backup_preferred_over_this_server_is_a_warning(config: DnsConfig) -> None:
    backup = dataclasses.replace(config, server_name="mx0.routing.example")
    mx = check_domain("routing.example", backup)[0]
    assert mx.check == "mx"
    assert mx.status is Status.WARNING
    assert "prefers mx1.routing.example" in mx.summary
    assert mx.record == "routing.example. 3600 IN MX 10 mx0.routing.example."


def test_mx_target_without_address_is_an_error(config: DnsConfig) -> None:
    results = by_check(check_domain("noaddr.example", config))
    target = results["mx-target"]
    assert target.status is Status.ERROR
    assert "mx.noaddr.example has no A or AAAA record" in target.summary
    assert_says_what_to_do(target)
    assert "Add an A record" in target.advice and "mx.noaddr.example" in target.advice


def test_mx_target_that_does_not_exist_is_an_error(config: DnsConfig) -> None:
    target = by_check(check_domain("deadmx.example", config))["mx-target"]
    assert target.status is Status.ERROR
    assert "mx.gone.example does not exist (NXDOMAIN)" in target.summary
    assert_says_what_to_do(target)
    assert "Add an A record" in target.advice


def test_this_servers_name_without_address_gives_its_address_records(config: DnsConfig) -> None:
    here = dataclasses.replace(config, server_name="mx.noaddr.example")
    results = by_check(check_domain("noaddr.example", here))
    assert results["mx"].status is Status.OK
    target = results["mx-target"]
    assert target.status is Status.ERROR
    assert target.record == (
        "mx.noaddr.example. 3600 IN A 192.0.2.10\nmx.noaddr.example. 3600 IN AAAA 2001:db8::10"
    )


def test_cname_mx_target_is_an_error_naming_the_real_host(config: DnsConfig) -> None:
    target = by_check(check_domain("cname.example", config))["mx-target"]
    assert target.status is Status.ERROR
    assert "alias (CNAME)" in target.summary and "mail.example.org" in target.summary
    assert_says_what_to_do(target)
    assert target.record == "cname.example. 3600 IN MX 10 mail.example.org."
    mx = by_check(check_domain("cname.example", config))["mx"]
    assert mx.status is Status.ERROR
    assert "alias (CNAME) of this server (mail.example.org)" in mx.summary
    assert mx.record == "cname.example. 3600 IN MX 10 mail.example.org."


def test_null_mx_is_an_error_for_a_hosted_domain(config: DnsConfig) -> None:
    results = by_check(check_domain("nullmx.example", config))
    null = results["null-mx"]
    assert null.status is Status.ERROR
    assert "null MX" in null.summary and "RFC 7505" in null.summary
    assert_says_what_to_do(null)
    assert "Delete the null MX record (nullmx.example. IN MX 0 .)" in null.advice
    assert null.record == "nullmx.example. 3600 IN MX 10 mail.example.org."
    assert "mx" not in results and "mx-target" not in results


def test_missing_spf_is_an_error_with_a_record(config: DnsConfig) -> None:
    spf = by_check(check_domain("nospf.example", config))["spf"]
    assert spf.status is Status.ERROR
    assert "no SPF record" in spf.summary
    assert_says_what_to_do(spf)
    assert spf.record == 'nospf.example. 3600 IN TXT "v=spf1 mx -all"'


def test_malformed_spf_names_each_problem(config: DnsConfig) -> None:
    spf = by_check(check_domain("badspf.example", config))["spf"]
    assert spf.status is Status.ERROR
    assert "malformed" in spf.summary
    assert "unknown mechanism 'foo:bar'" in spf.summary
    assert "'ip4:300.1.2.3' has a malformed address" in spf.summary
    assert "2 'all' terms" in spf.summary
    assert_says_what_to_do(spf)
    assert spf.record == 'badspf.example. 3600 IN TXT "v=spf1 mx -all"'


def test_two_spf_records_are_an_error(config: DnsConfig) -> None:
    spf = by_check(check_domain("twospf.example", config))["spf"]
    assert spf.status is Status.ERROR
    assert "2 SPF records" in spf.summary
    assert "Merge" in spf.advice
    assert spf.record == 'twospf.example. 3600 IN TXT "v=spf1 mx -all"'


def test_missing_dmarc_is_a_warning_with_a_record(config: DnsConfig) -> None:
    dmarc = by_check(check_domain("nodmarc.example", config))["dmarc"]
    assert dmarc.status is Status.WARNING
    assert "no DMARC record" in dmarc.summary and "_dmarc.nodmarc.example" in dmarc.summary
    assert_says_what_to_do(dmarc)
    assert dmarc.record == '_dmarc.nodmarc.example. 3600 IN TXT "v=DMARC1; p=none"'


def test_null_mx_beside_other_mx_records_is_an_error(config: DnsConfig) -> None:
    results = check_domain("mixednull.example", config)
    assert [(r.check, r.status) for r in results[:3]] == [
        ("null-mx", Status.ERROR),
        ("mx", Status.OK),
        ("mx-target", Status.OK),
    ]
    assert "mixes a null MX" in results[0].summary
    assert "Delete the null MX record (mixednull.example. IN MX 0 .)" in results[0].advice


@pytest.mark.parametrize(
    ("domain", "status", "words"),
    [
        ("nominusall.example", Status.WARNING, ["does not end in '-all' or '~all'"]),
        ("plusall.example", Status.ERROR, ["'+all' lets every host on the internet send"]),
        (
            "typo.example",
            Status.ERROR,
            [
                "'exp=' appears 2 times",
                "terms after 'all' are never used: a",
                "'redirect=' is ignored because the record has 'all'",
            ],
        ),
    ],
)
def test_spf_that_works_badly_or_not_at_all(
    config: DnsConfig, domain: str, status: Status, words: list[str]
) -> None:
    spf = by_check(check_domain(domain, config))["spf"]
    assert spf.status is status
    for word in words:
        assert word in spf.summary
    assert_says_what_to_do(spf)
    assert spf.record == f'{domain}. 3600 IN TXT "v=spf1 mx -all"'


@pytest.mark.parametrize(
    ("domain", "problem"),
    [
        ("plusall.example", "it has no p= tag"),
        ("typo.example", "p=monitor is not none, quarantine or reject"),
    ],
)
def test_dmarc_without_a_valid_policy_is_an_error(
    config: DnsConfig, domain: str, problem: str
) -> None:
    dmarc = by_check(check_domain(domain, config))["dmarc"]
    assert dmarc.status is Status.ERROR
    assert problem in dmarc.summary
    assert_says_what_to_do(dmarc)
    assert dmarc.record == f'_dmarc.{domain}. 3600 IN TXT "v=DMARC1; p=none"'


@pytest.mark.parametrize("typed", ["bücher.example", "xn--bcher-kva.example", "BÜCHER.example."])
def test_idn_domain_queries_the_a_label_and_shows_the_u_label(
    config: DnsConfig, typed: str
) -> None:
    results = by_check(check_domain(typed, config))
    assert {r.domain for r in results.values()} == {"bücher.example"}
    assert results["mx"].status is Status.OK and "bücher.example" in results["mx"].summary
    assert results["spf"].status is Status.OK
    dmarc = results["dmarc"]
    assert dmarc.status is Status.WARNING and "_dmarc.bücher.example" in dmarc.summary
    assert dmarc.record == '_dmarc.xn--bcher-kva.example. 3600 IN TXT "v=DMARC1; p=none"'


@pytest.mark.parametrize("bad", ["", "  ", "exa mple.com", "a..b", "x" * 64 + ".example"])
def test_invalid_domain_is_refused_with_a_message(config: DnsConfig, bad: str) -> None:
    with pytest.raises(PostroomError) as refused:
        check_domain(bad, config)
    assert "domain name" in str(refused.value)


# --- when DNS does not answer ------------------------------------------------------------------

MISSING_WORDS = ("missing", "no mx", "no spf", "no dmarc", "does not exist", "nxdomain")


def assert_unknown_not_missing(result: CheckResult) -> None:
    assert result.status is Status.UNKNOWN
    text = result.summary.lower()
    assert not any(word in text for word in MISSING_WORDS), result.summary
    assert result.summary.startswith("Could not check")
    assert "says nothing about whether the record exists" in result.advice
    assert result.record == ""


def test_nameserver_that_never_answers_is_unknown_not_missing(
    dns_server: DnsResponder, config: DnsConfig
) -> None:
    dns_server.mode = Mode.SILENT
    started = time.monotonic()
    results = check_domain("good.example", config)
    assert time.monotonic() - started < 3 * config.lifetime + 1.5
    assert [r.check for r in results] == ["mx", "spf", "dmarc"]
    for result in results:
        assert_unknown_not_missing(result)
        assert "no answer from 127.0.0.1:" in result.summary and "within 0.6 s" in result.summary


@pytest.mark.parametrize("mode", [Mode.REFUSED, Mode.SERVFAIL])
def test_refused_or_servfail_is_unknown_not_missing(
    dns_server: DnsResponder, config: DnsConfig, mode: Mode
) -> None:
    dns_server.mode = mode
    for result in check_domain("nomx.example", config) + check_server(config):
        assert_unknown_not_missing(result)
        assert mode.value.upper() in result.summary


def test_no_system_resolver_says_to_set_a_nameserver(tmp_path: Path) -> None:
    config = DnsConfig(resolv_conf=str(tmp_path / "resolv.conf"), server_name="mail.example.org")
    results = check_domain("good.example", config) + check_server(config)
    assert results
    for result in results:
        assert result.status is Status.UNKNOWN
        assert "no nameserver is set" in result.summary
        assert "--nameserver HOST[:PORT]" in result.advice
    with pytest.raises(DnsTemporaryError, match="no nameserver is set"):
        mail_exchangers("good.example", config)


# --- this server ---------------------------------------------------------------------------------


def test_server_with_forward_confirmed_ptr_on_v4_and_v6(config: DnsConfig) -> None:
    results = check_server(config)
    assert [(r.check, r.status) for r in results] == [
        ("server-a", Status.OK),
        ("server-aaaa", Status.OK),
        ("ptr-v4", Status.OK),
        ("ptr-v6", Status.OK),
    ]
    assert "192.0.2.10 reverses to mail.example.org" in results[2].summary
    assert "2001:db8::10 reverses to mail.example.org" in results[3].summary


def test_ptr_mismatch_is_an_error_with_the_ptr_record(config: DnsConfig) -> None:
    mismatch = dataclasses.replace(config, server_name="mismatch.example.org", server_addresses=())
    results = by_check(check_server(mismatch))
    assert results["server-a"].status is Status.OK
    assert results["server-aaaa"].status is Status.OK  # no IPv6 anywhere: nothing to publish
    ptr = results["ptr-v4"]
    assert ptr.status is Status.ERROR
    assert "PTR mismatch" in ptr.summary and "other.example.org" in ptr.summary
    assert_says_what_to_do(ptr)
    assert ptr.record == "20.2.0.192.in-addr.arpa. 3600 IN PTR mismatch.example.org."
    assert "ptr-v6" not in results


def test_missing_ptr_is_an_error_with_the_ptr_record(config: DnsConfig) -> None:
    noptr = dataclasses.replace(config, server_name="noptr.example.org", server_addresses=())
    ptr = by_check(check_server(noptr))["ptr-v4"]
    assert ptr.status is Status.ERROR and "no reverse DNS" in ptr.summary
    assert "hosting provider" in ptr.advice
    assert ptr.record == "40.2.0.192.in-addr.arpa. 3600 IN PTR noptr.example.org."


def test_server_addresses_not_in_dns_are_errors_with_address_records(config: DnsConfig) -> None:
    moved = dataclasses.replace(config, server_addresses=("192.0.2.11", "2001:db8::10"))
    results = check_server(moved)
    a = results[0]
    assert (a.check, a.status) == ("server-a", Status.ERROR)
    assert "192.0.2.11" in a.summary
    assert a.record == "mail.example.org. 3600 IN A 192.0.2.11"
    assert results[1].status is Status.OK
    ptrs = [r for r in results if r.check == "ptr-v4"]
    assert [r.status for r in ptrs] == [Status.OK, Status.ERROR]
    assert "192.0.2.11" in ptrs[1].summary and "no reverse DNS" in ptrs[1].summary


def test_server_name_without_addresses(config: DnsConfig) -> None:
    missing = dataclasses.replace(config, server_name="gone.example.org")
    results = by_check(check_server(missing))
    a, aaaa = results["server-a"], results["server-aaaa"]
    assert a.status is Status.ERROR and "NXDOMAIN" in a.summary
    assert a.record == "gone.example.org. 3600 IN A 192.0.2.10"
    assert aaaa.status is Status.ERROR
    assert aaaa.record == "gone.example.org. 3600 IN AAAA 2001:db8::10"


def test_server_name_not_set_says_how_to_set_it(dns_server: DnsResponder) -> None:
    results = check_server(DnsConfig(nameservers=(dns_server.address,)))
    assert len(results) == 1
    assert results[0].status is Status.WARNING
    assert "postroom smtp set public_name mail.example.org" in results[0].advice


def test_run_checks_keeps_order_and_checks_the_server_once(config: DnsConfig) -> None:
    results = run_checks(["nomx.example", "good.example", "GOOD.example."], config).results
    expected = (
        check_domain("nomx.example", config)
        + check_domain("good.example", config)
        + check_server(config)
    )
    assert results == expected
    assert [r.domain for r in results].count("good.example") == 4


# --- outbound routing ----------------------------------------------------------------------------


def test_mail_exchangers_in_preference_order(config: DnsConfig) -> None:
    assert mail_exchangers("routing.example", config) == [
        MailExchanger(10, "mx1.routing.example"),
        MailExchanger(20, "mx0.routing.example"),
        MailExchanger(20, "mx2.routing.example"),
    ]
    assert mail_exchangers("bücher.example", config) == [MailExchanger(10, "mail.example.org")]


def test_mail_exchangers_fall_back_to_the_domains_own_address(config: DnsConfig) -> None:
    assert mail_exchangers("implicit.example", config) == [MailExchanger(0, "implicit.example")]


def test_mail_exchangers_refuse_null_mx_nxdomain_and_hostless(config: DnsConfig) -> None:
    with pytest.raises(UndeliverableError, match="null MX"):
        mail_exchangers("nullmx.example", config)
    with pytest.raises(UndeliverableError, match="does not exist"):
        mail_exchangers("nx.example", config)
    with pytest.raises(UndeliverableError, match="no MX record and no A or AAAA"):
        mail_exchangers("nohost.example", config)


@pytest.mark.parametrize("mode", [Mode.SILENT, Mode.SERVFAIL])
def test_mail_exchangers_temporary_failure(
    dns_server: DnsResponder, config: DnsConfig, mode: Mode
) -> None:
    dns_server.mode = mode
    with pytest.raises(DnsTemporaryError, match="Could not look up the MX records of good.example"):
        mail_exchangers("good.example", config)


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("192.0.2.53", ("192.0.2.53", 53)),
        ("192.0.2.53:5353", ("192.0.2.53", 5353)),
        ("2001:db8::53", ("2001:db8::53", 53)),
        ("[2001:db8::53]:5353", ("2001:db8::53", 5353)),
    ],
)
def test_parse_nameserver(text: str, parsed: tuple[str, int]) -> None:
    assert parse_nameserver(text) == parsed


@pytest.mark.parametrize("text", ["ns.example", "192.0.2.53:0", "192.0.2.53:x", "[::1", ""])
def test_parse_nameserver_refuses_bad_input(text: str) -> None:
    with pytest.raises(PostroomError, match="HOST\\[:PORT\\]|port"):
        parse_nameserver(text)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nameservers": (("ns.example", 53),)}, "not an IP address"),
        ({"nameservers": (("192.0.2.53", 70000),)}, "between 1 and 65535"),
        ({"server_addresses": ("192.0.2.300",)}, "not an IPv4 or IPv6 address"),
        ({"server_name": "bad name"}, "not a valid domain name"),
        ({"timeout": 0}, "more than 0 seconds"),
    ],
)
def test_dns_config_refuses_bad_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(PostroomError, match=message):
        DnsConfig(**kwargs)  # type: ignore[arg-type]
