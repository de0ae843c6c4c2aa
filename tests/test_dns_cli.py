"""``postroom dns check`` against a real DNS responder on a loopback port."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.reversename
import pytest

from app import policies
from app.cli import main
from app.settings import format_host_port, load_settings, save_settings
from app.store import Store
from tests.conftest import ROOT
from tests.dkim_support import published_dkim
from tests.dns_responder import DnsResponder, Mode, serving


def _rev(address: str) -> str:
    return dns.reversename.from_address(address).to_text()


ZONE = f"""
$TTL 300
mail.example.org.           A     192.0.2.10
mail.example.org.           AAAA  2001:db8::10
{_rev("192.0.2.10")}        PTR   mail.example.org.
{_rev("2001:db8::10")}      PTR   mail.example.org.

; The organisation's own domain (the Default Policy's @example.com): all good.
example.com.                MX    10 mail.example.org.
example.com.                TXT   "v=spf1 mx -all"
_dmarc.example.com.         TXT   "v=DMARC1; p=none"

good.example.               MX    10 mail.example.org.
good.example.               TXT   "v=spf1 mx -all"
_dmarc.good.example.        TXT   "v=DMARC1; p=quarantine"

; No MX: an error.
nomx.example.               A     192.0.2.10
nomx.example.               TXT   "v=spf1 mx -all"
_dmarc.nomx.example.        TXT   "v=DMARC1; p=none"

; No DMARC: a warning only.
nodmarc.example.            MX    10 mail.example.org.
nodmarc.example.            TXT   "v=spf1 mx -all"

; shared.example: records right, and its MX is this server, so mail for its addresses that
; are not here has nowhere to go (a routing loop) unless a smart host is set.
shared.example.             MX    10 mail.example.org.
shared.example.             TXT   "v=spf1 mx -all"
_dmarc.shared.example.      TXT   "v=DMARC1; p=none"

; bücher.example: all good.
xn--bcher-kva.example.      MX    10 mail.example.org.
xn--bcher-kva.example.      TXT   "v=spf1 mx -all"
_dmarc.xn--bcher-kva.example. TXT "v=DMARC1; p=none"
"""

MISSING_WORDS = ("missing", "no mx", "no spf", "no dmarc", "does not exist", "nxdomain")


@pytest.fixture(scope="module")
def responder() -> Iterator[DnsResponder]:
    with serving(ZONE) as server:
        yield server


@pytest.fixture
def silent() -> Iterator[DnsResponder]:
    """A nameserver that receives every query and never answers."""
    with serving(ZONE, Mode.SILENT) as server:
        yield server


def nameserver(server: DnsResponder) -> str:
    return format_host_port(*server.address)


@pytest.fixture
def configured(store: Store, responder: DnsResponder) -> Store:
    """A store whose settings name this server and ask the test responder, 1 s per query."""
    save_settings(
        store,
        public_name="mail.example.org",
        public_addresses=["192.0.2.10", "2001:db8::10"],
        nameservers=[nameserver(responder)],
        dns_timeout=1,
    )
    return store


def run(capsys: pytest.CaptureFixture[str], data_dir: Path, *args: str) -> tuple[int, str, str]:
    status = main(["--data-dir", str(data_dir), "dns", "check", *args])
    out, err = capsys.readouterr()
    return status, out, err


def run_json(capsys: pytest.CaptureFixture[str], data_dir: Path, *args: str) -> dict[str, Any]:
    status, out, _ = run(capsys, data_dir, *args, "--json")
    report: dict[str, Any] = json.loads(out)
    report["exit"] = status
    return report


def rows(out: str) -> list[list[str]]:
    """The table's rows as [domain, check, status] (the summary is left out)."""
    lines = out.split("\n\n")[1].splitlines()
    assert lines[0].split() == ["DOMAIN", "CHECK", "STATUS", "SUMMARY"]
    return [re.split(r"\s{2,}", line)[:3] for line in lines[1:]]


def one_line_refusal(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("postroom: "), err
    return lines[0]


# --- outcomes and exit status ------------------------------------------------------------------


def test_good_domain_exits_0_with_every_check_ok(
    capsys: pytest.CaptureFixture[str], configured: Store, data_dir: Path, responder: DnsResponder
) -> None:
    status, out, err = run(capsys, data_dir, "good.example")
    assert (status, err) == (0, "")
    assert out.splitlines()[0] == f"Nameservers: {nameserver(responder)}"
    assert rows(out) == [
        ["good.example", "mx", "OK"],
        ["good.example", "mx-target", "OK"],
        ["good.example", "spf", "OK"],
        ["good.example", "dmarc", "OK"],
        ["mail.example.org", "server-a", "OK"],
        ["mail.example.org", "server-aaaa", "OK"],
        ["mail.example.org", "ptr-v4", "OK"],
        ["mail.example.org", "ptr-v6", "OK"],
    ]
    assert out.rstrip().endswith("8 OK, 0 warnings, 0 errors, 0 unknown. Every check is OK.")


def test_error_exits_1_with_the_advice_and_the_record(
    capsys: pytest.CaptureFixture[str], configured: Store, data_dir: Path
) -> None:
    status, out, err = run(capsys, data_dir, "nomx.example", "good.example")
    assert status == 1
    assert "The DNS check found 1 error" in one_line_refusal(err)
    assert ["nomx.example", "mx", "ERROR"] in rows(out)
    assert ["good.example", "mx", "OK"] in rows(out)
    assert (
        "\n\nnomx.example mx: ERROR\n"
        "    Add an MX record naming this server (mail.example.org):\n"
        "        nomx.example. 3600 IN MX 10 mail.example.org.\n"
    ) in out
    assert "good.example mx:" not in out  # OK results get no advice section
    assert "1 error, 0 unknown. Errors: mail may not arrive" in out


def test_warnings_alone_exit_0_and_say_so(
    capsys: pytest.CaptureFixture[str], configured: Store, data_dir: Path
) -> None:
    status, out, err = run(capsys, data_dir, "nodmarc.example")
    assert (status, err) == (0, "")
    assert ["nodmarc.example", "dmarc", "WARNING"] in rows(out)
    assert '        _dmarc.nodmarc.example. 3600 IN TXT "v=DMARC1; p=none"\n' in out
    assert "1 warning, 0 errors, 0 unknown. No errors; the warnings above are worth fixing." in out


def test_json_output(capsys: pytest.CaptureFixture[str], configured: Store, data_dir: Path) -> None:
    report = run_json(capsys, data_dir, "nomx.example", "bücher.example")
    assert report["exit"] == 1
    assert report["status"] == "error"
    assert report["checked_at"].endswith("+00:00")
    assert report["nameservers"] == load_settings(configured).nameservers
    assert report["counts"] == {"ok": 10, "warning": 0, "error": 1, "unknown": 0}
    nomx, idn = report["domains"]
    assert (nomx["domain"], nomx["ascii"], nomx["status"]) == (
        "nomx.example",
        "nomx.example",
        "error",
    )
    assert nomx["checks"][0] == {
        "check": "mx",
        "status": "error",
        "summary": "nomx.example has no MX record; senders will not route its mail here.",
        "advice": "Add an MX record naming this server (mail.example.org):",
        "record": "nomx.example. 3600 IN MX 10 mail.example.org.",
    }
    assert (idn["domain"], idn["ascii"], idn["status"]) == (
        "bücher.example",
        "xn--bcher-kva.example",
        "ok",
    )
    assert [c["check"] for c in idn["checks"]] == ["mx", "mx-target", "spf", "dmarc"]
    assert nomx["route"] is None and idn["route"] is None  # no shared-namespace rule names them
    server = report["server"]
    assert server["name"] == "mail.example.org"
    assert server["addresses"] == ["192.0.2.10", "2001:db8::10"]
    assert server["status"] == "ok"
    assert [c["check"] for c in server["checks"]] == ["server-a", "server-aaaa", "ptr-v4", "ptr-v6"]


def test_idn_domain_is_shown_as_u_label(
    capsys: pytest.CaptureFixture[str], configured: Store, data_dir: Path
) -> None:
    for typed in ("xn--bcher-kva.example", "BÜCHER.example."):
        status, out, _ = run(capsys, data_dir, typed)
        assert status == 0
        assert ["bücher.example", "mx", "OK"] in rows(out)
        table = out.split("\n\n")[1]
        assert "xn--" not in table


# --- the route onward of a shared domain -------------------------------------------------------


def test_a_shared_domain_with_no_route_onward_is_an_error(
    capsys: pytest.CaptureFixture[str], configured: Store, data_dir: Path
) -> None:
    policies.add_rule(configured, "Default Policy", "@shared.example", responsible=False)
    status, out, err = run(capsys, data_dir, "shared.example")
    assert status == 1
    assert "The DNS check found 1 error" in one_line_refusal(err)
    assert rows(out)[:5] == [
        ["shared.example", "mx", "OK"],
        ["shared.example", "mx-target", "OK"],
        ["shared.example", "spf", "OK"],
        ["shared.example", "dmarc", "OK"],
        ["shared.example", "route", "ERROR"],
    ]
    assert (
        "DNS sends mail for shared.example to this server (mail.example.org), so mail for "
        "addresses that are not here would loop."
    ) in out
    assert (
        "\n\nshared.example route: ERROR\n"
        "    Set a smart host for the other mail system that shares the domain (Default SMTP "
        "Virtual Server > Properties > Delivery, or postroom smtp set smart_host HOST[:PORT]).\n"
    ) in out
    assert "1 error, 0 unknown. Errors: mail may not arrive" in out
    report = run_json(capsys, data_dir, "shared.example")
    assert report["exit"] == 1 and report["counts"]["error"] == 1
    [shared] = report["domains"]
    assert (shared["status"], shared["route"]["state"], shared["route"]["why"]) == (
        "error",
        "none",
        "loop",
    )
    assert shared["route"]["text"].startswith("DNS sends mail for shared.example to this server")


def test_a_smart_host_elsewhere_is_a_route_onward(
    capsys: pytest.CaptureFixture[str], configured: Store, data_dir: Path, responder: DnsResponder
) -> None:
    policies.add_rule(configured, "Default Policy", "@shared.example", responsible=False)
    save_settings(configured, smart_host="relay.partner.example:25")
    with published_dkim(responder, configured):
        report = run_json(capsys, data_dir)
    assert report["exit"] == 0 and report["status"] == "ok"
    example, shared = report["domains"]
    assert example["route"] is None  # authoritative: no route onward needed
    assert shared["route"] == {
        "state": "routed",
        "why": None,
        "text": "Onward through the smart host relay.partner.example:25.",
    }
    assert shared["checks"][-1] == {
        "check": "route",
        "status": "ok",
        "summary": "Onward through the smart host relay.partner.example:25.",
        "advice": "",
        "record": "",
    }


# --- which domains, which nameservers ---------------------------------------------------------


def test_without_domains_checks_every_hosted_domain(
    capsys: pytest.CaptureFixture[str], configured: Store, data_dir: Path, responder: DnsResponder
) -> None:
    policies.create_policy(configured, "Books", "(department=Books)")
    policies.add_rule(configured, "Books", "%g.%s@bücher.example")
    policies.add_rule(configured, "Default Policy", "@good.example")
    policies.add_rule(configured, "Default Policy", "@nomx.example", enabled=False)
    policies.add_rule(configured, "Books", "X400:c=DE;a= ;p=Books;", type_="X400")
    with published_dkim(responder, configured):
        report = run_json(capsys, data_dir)
        status, out, _ = run(capsys, data_dir)
    assert [d["domain"] for d in report["domains"]] == [
        "example.com",
        "good.example",
        "bücher.example",
    ]
    assert report["status"] == "ok" and report["exit"] == 0
    assert status == 0
    assert "No hosted domains" not in out


def test_nameserver_option_overrides_the_setting(
    capsys: pytest.CaptureFixture[str],
    configured: Store,
    data_dir: Path,
    responder: DnsResponder,
    silent: DnsResponder,
) -> None:
    save_settings(configured, nameservers=[nameserver(silent)])
    report = run_json(capsys, data_dir, "good.example", "--nameserver", nameserver(responder))
    assert report["nameservers"] == [nameserver(responder)]
    assert report["status"] == "ok" and report["exit"] == 0


def test_several_nameservers_are_tried_in_turn(
    capsys: pytest.CaptureFixture[str],
    configured: Store,
    data_dir: Path,
    responder: DnsResponder,
    silent: DnsResponder,
) -> None:
    given = ["--nameserver", nameserver(silent), "--nameserver", nameserver(responder)]
    report = run_json(capsys, data_dir, "good.example", *given)
    assert report["nameservers"] == [nameserver(silent), nameserver(responder)]
    assert report["status"] == "ok"


def test_nameserver_that_never_answers_is_unknown_not_missing(
    capsys: pytest.CaptureFixture[str], configured: Store, data_dir: Path, silent: DnsResponder
) -> None:
    status, out, err = run(capsys, data_dir, "good.example", "--nameserver", nameserver(silent))
    assert (status, err) == (0, "")
    assert rows(out) == [
        ["good.example", "mx", "UNKNOWN"],
        ["good.example", "spf", "UNKNOWN"],
        ["good.example", "dmarc", "UNKNOWN"],
        ["mail.example.org", "server-a", "UNKNOWN"],
        ["mail.example.org", "server-aaaa", "UNKNOWN"],
    ]
    assert not any(word in out.lower() for word in MISSING_WORDS)
    assert f"no answer from {nameserver(silent)} within 1 s" in out
    assert " IN " not in out  # no record to add: nothing is known to be missing
    assert "says nothing about whether the record exists" in out
    assert "--nameserver HOST[:PORT] for one check" in out
    assert "postroom smtp set nameservers IP[:PORT]" in out
    assert out.rstrip().endswith(
        "0 OK, 0 warnings, 0 errors, 5 unknown. No errors found, but DNS did not answer some "
        "checks (UNKNOWN), which says nothing about whether those records exist; check again."
    )


def test_server_name_not_set_is_a_warning_saying_how_to_set_it(
    capsys: pytest.CaptureFixture[str], store: Store, data_dir: Path, responder: DnsResponder
) -> None:
    save_settings(store, nameservers=[nameserver(responder)], dns_timeout=1)
    status, out, _ = run(capsys, data_dir, "good.example")
    assert status == 0
    assert ["good.example", "mx", "WARNING"] in rows(out)
    assert ["(this server)", "server-a", "WARNING"] in rows(out)
    assert "postroom smtp set public_name mail.example.org" in out
    report = run_json(capsys, data_dir, "good.example")
    assert report["server"]["name"] is None and report["server"]["status"] == "warning"


# --- refused and malformed requests -------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nameserver", "ns.example.net"], "Nameserver 'ns.example.net' is not an IP address"),
        (["--nameserver", "127.0.0.1:99999"], "is not a number from 1 to 65535"),
        (["--nameserver", "127.0.0.1:abc"], "is not a number from 1 to 65535"),
        (["--nameserver", "[::1"], "is not HOST[:PORT]"),
        (["--nameserver", ""], "is not an IP address"),
        (["good..example"], "is not a valid domain name"),
        (["-"], "is not a valid domain name"),
    ],
)
def test_refused_input_exits_1_with_one_line_and_asks_nothing(
    capsys: pytest.CaptureFixture[str],
    configured: Store,
    data_dir: Path,
    silent: DnsResponder,
    args: list[str],
    message: str,
) -> None:
    # The stored nameserver never answers: a refusal that asked DNS first would take seconds
    # and print a table.
    save_settings(configured, nameservers=[nameserver(silent)])
    status, out, err = run(capsys, data_dir, "good.example", *args)
    assert (status, out) == (1, "")
    assert message in one_line_refusal(err)
    assert "Traceback" not in err


def test_usage_errors_exit_2(data_dir: Path) -> None:
    env = {**os.environ, "POSTROOM_DATA_DIR": str(data_dir)}
    for args in (["dns"], ["dns", "check", "--nameserver"], ["dns", "check", "--bogus"]):
        result = subprocess.run(
            [sys.executable, "-m", "app", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, args
        assert result.stdout == ""
        assert result.stderr.startswith("usage: postroom")


def test_the_installed_command_runs_the_check(configured: Store, data_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "dns", "check", "bücher.example", "--json"],
        cwd=ROOT,
        env={**os.environ, "POSTROOM_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["domains"][0]["domain"] == "bücher.example"
