"""DKIM (issue 18): keys, records, rotation, damaged keys, ``postroom dkim``, the DNS check over a
loopback responder, and rspamd signing with the keys, verified by dkimpy against the zone."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import logging
import shutil
import smtplib
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dkim
import dns.name
import dns.resolver
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app import policies
from app.cli import main
from app.dkim.catalog import prepare_keys, read_keys
from app.dkim.keys import DkimError, KeyRole, new_selector, rotate
from app.dkim.published import check_published, expectations
from app.dkim.signing import rspamd_dkim_signing_conf
from app.dns.dkim_records import Published, record_key
from app.dns.findings import Status
from app.dns.health import run_checks
from app.dns.lookup import DnsConfig
from app.dns.routes import dns_config_from_settings
from app.settings import format_host_port, load_settings, save_settings
from app.store import Store
from tests.dkim_support import owner, publish, published_dkim, withdraw
from tests.dns_responder import DnsResponder, Mode, serving
from tests.smtp_receivers import Receiver

ZONE = """
$TTL 300
mail.example.org.     A     192.0.2.10
example.com.          MX    10 mail.example.org.
example.com.          TXT   "v=spf1 mx -all"
_dmarc.example.com.   TXT   "v=DMARC1; p=none"
"""

DECEMBER = dt.date(2026, 12, 5)


@pytest.fixture(scope="module")
def responder() -> Iterator[DnsResponder]:
    with serving(ZONE) as server:
        yield server


@pytest.fixture
def configured(store: Store, responder: DnsResponder) -> Store:
    """The test store (Default Policy @example.com) asking the loopback responder, 1 s a query."""
    save_settings(
        store,
        public_name="mail.example.org",
        nameservers=[format_host_port(*responder.address)],
        dns_timeout=1,
    )
    return store


def dns_config(store: Store) -> DnsConfig:
    return dns_config_from_settings(load_settings(store))


def cli(capsys: pytest.CaptureFixture[str], store: Store, *args: str) -> tuple[int, str, str]:
    status = main(["--data-dir", str(store.paths.root), "dkim", *args])
    out, err = capsys.readouterr()
    return status, out, err


def cli_json(capsys: pytest.CaptureFixture[str], store: Store, *args: str) -> Any:
    status, out, err = cli(capsys, store, *args, "--json")
    assert (status, err) == (0, "")
    return json.loads(out)


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("postroom: "), err
    return lines[0]


def folder_listing(store: Store) -> dict[str, bytes]:
    root = store.paths.dkim
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != ".lock"
    }


# --- keys ----------------------------------------------------------------------------------------


def test_a_responsible_domain_gets_an_rsa_2048_key_stored_private(store: Store) -> None:
    [entry] = prepare_keys(store, DECEMBER)
    assert entry.domain == "example.com" and entry.problem == "" and entry.pending is None
    key = entry.signing
    assert key is not None
    assert (key.selector, key.algorithm, key.role) == ("pr202612", "rsa", KeyRole.SIGNING)
    assert key.record_name == "pr202612._domainkey.example.com"
    assert stat.S_IMODE(key.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.path.parent.stat().st_mode) == 0o700
    private = serialization.load_pem_private_key(key.path.read_bytes(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key.txt == f"v=DKIM1; k=rsa; p={base64.b64encode(spki).decode()}"
    before = folder_listing(store)
    assert [e.signing for e in prepare_keys(store, DECEMBER)] == [key]  # made once only
    assert folder_listing(store) == before


def test_only_domains_postroom_is_responsible_for_get_keys(store: Store) -> None:
    policies.add_rule(store, "Default Policy", "@shared.example", responsible=False)
    policies.add_rule(store, "Default Policy", "@off.example", enabled=False)
    policies.create_policy(store, "Books", "(department=Books)")
    policies.add_rule(store, "Books", "%g.%s@bücher.example")
    domains = [entry.domain for entry in prepare_keys(store, DECEMBER)]
    assert domains == ["example.com", "xn--bcher-kva.example"]
    assert sorted(p.name for p in store.paths.dkim.iterdir() if p.is_dir()) == domains


def test_selectors_carry_the_month_and_a_letter_when_taken() -> None:
    assert new_selector([], DECEMBER) == "pr202612"
    assert new_selector(["pr202612"], DECEMBER) == "pr202612b"
    assert new_selector(["pr202612", "pr202612b"], DECEMBER) == "pr202612c"
    taken = ["pr202612"] + [f"pr202612{c}" for c in "bcdefghijklmnopqrstuvwxyz"]
    with pytest.raises(DkimError, match="Every selector for December 2026"):
        new_selector(taken, DECEMBER)


# --- rspamd's configuration ---------------------------------------------------------------------


def test_signing_conf_names_each_domain_with_its_key(store: Store) -> None:
    policies.add_rule(store, "Default Policy", "@second.example")
    save_settings(store, relay_ips=["192.0.2.0/24"])
    conf = rspamd_dkim_signing_conf(store)
    keys = {entry.domain: entry.signing for entry in prepare_keys(store)}
    for domain, key in keys.items():
        assert key is not None
        assert (
            f'  "{domain}" {{\n    selectors [\n      {{ path = "{key.path}"; '
            f'selector = "{key.selector}"; }}\n    ]\n  }}'
        ) in conf
    for setting in (
        "sign_authenticated = true;",
        "sign_local = false;",
        "sign_inbound = false;",
        "use_esld = false;",
        "try_fallback = false;",
        "use_milter_headers = true;",
        'sign_networks = ["192.0.2.0/24"];',
    ):
        assert setting in conf.splitlines()


@pytest.mark.parametrize("damage", ["deleted", "garbage", "other key"])
def test_a_damaged_or_deleted_key_leaves_its_domain_unsigned_with_one_warning(
    configured: Store, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    policies.add_rule(configured, "Default Policy", "@second.example")
    entries = {entry.domain: entry for entry in prepare_keys(configured)}
    key = entries["example.com"].signing
    assert key is not None
    if damage == "deleted":
        key.path.unlink()
    elif damage == "garbage":
        key.path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nbroken\n")
    else:
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key.path.write_bytes(
            other.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    before = folder_listing(configured)
    with caplog.at_level(logging.WARNING, logger="app.dkim"):
        conf = rspamd_dkim_signing_conf(configured)
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.startswith("DKIM: mail from example.com goes out unsigned: the key file ")
    assert "postroom dkim rotate example.com --force" in warning
    assert '"example.com"' not in conf and '"second.example"' in conf
    assert folder_listing(configured) == before  # never silently replaced
    # The DNS check says the same, with what to do; the record stays known for the view.
    entry = read_keys(configured, "example.com")
    assert entry.keys[0].txt == key.txt and not entry.keys[0].usable
    report = run_checks(
        ["example.com"], dns_config(configured), server=False, dkim=expectations([entry])
    )
    [check] = [r for r in report.results if r.check == "dkim"]
    assert check.status is Status.ERROR
    assert check.summary.startswith("Mail from example.com goes out unsigned: the key file")
    assert check.advice.startswith("Make a new key with postroom dkim rotate example.com --force")
    # rotate --force is the way out: a sound key signs again.
    rotate(configured.paths, "example.com", force=True)
    assert '"example.com"' in rspamd_dkim_signing_conf(configured)


def test_a_damaged_state_file_is_reported_and_forced_rotation_recovers(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    [entry] = prepare_keys(store)
    state = store.paths.dkim / "example.com" / "state.json"
    state.write_text("{not json")
    broken = read_keys(store, "example.com")
    assert broken.keys == () and broken.signing is None
    assert broken.problem.startswith(f"The DKIM state file {state} cannot be read")
    assert "postroom dkim rotate example.com --force" in broken.problem
    assert '"example.com"' not in rspamd_dkim_signing_conf(store)
    status, _, err = cli(capsys, store, "rotate", "example.com", "--nameserver", "127.0.0.1:9")
    assert status == 1 and "cannot be read" in one_line(err)
    assert state.read_text() == "{not json"
    state.write_text('{"signing": "../../etc/passwd", "pending": null}')
    assert "does not name a signing selector" in read_keys(store, "example.com").problem
    rotate(store.paths, "example.com", force=True)
    fixed = read_keys(store, "example.com")
    assert fixed.signing is not None and fixed.signing.selector != entry.keys[0].selector


# --- the DNS check ------------------------------------------------------------------------------


def test_record_key_reads_dkim_records_as_rfc_6376_says() -> None:
    assert record_key("v=DKIM1; k=rsa; p=AB CD\tEF") == ("rsa", "ABCDEF")
    assert record_key("p=ABCD") == ("rsa", "ABCD")  # v= is optional, k= defaults to rsa
    assert record_key("v=DKIM1; k=ed25519; p=XY") == ("ed25519", "XY")
    assert record_key("v=DKIM1; p=") == ("rsa", "")  # a revoked key
    assert record_key("v=spf1 mx -all") is None
    assert record_key("v=DKIM2; p=ABCD") is None
    assert record_key("v=DKIM1; k=rsa") is None


def _dkim_check(store: Store) -> Any:
    entries = prepare_keys(store)
    report = run_checks(
        ["example.com"], dns_config(store), server=False, dkim=expectations(entries)
    )
    return [r for r in report.results if r.check.startswith("dkim")]


def test_dns_check_tells_missing_matching_and_mismatched(
    configured: Store, responder: DnsResponder
) -> None:
    [missing] = _dkim_check(configured)
    assert missing.status is Status.ERROR
    assert missing.summary.startswith("pr")
    assert "._domainkey.example.com does not exist: mail from example.com is signed" in (
        missing.summary
    )
    assert missing.advice == "Add this TXT record:"
    key = prepare_keys(configured)[0].keys[0]
    assert missing.record.startswith(f'{key.record_name}. 3600 IN TXT "v=DKIM1; k=rsa; p=')
    # A 2048-bit key is longer than one TXT string: the line splits it into strings of 255.
    assert missing.record.count('" "') == 1

    with published_dkim(responder, configured):
        [matching] = _dkim_check(configured)
    assert matching.status is Status.OK
    assert matching.summary == (
        f"DKIM record {key.record_name} matches the key mail from example.com is signed with."
    )

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    spki = other.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    publish(responder, owner(key), f"v=DKIM1; k=rsa; p={base64.b64encode(spki).decode()}")
    try:
        [mismatched] = _dkim_check(configured)
        statuses = check_published(configured, dns_config(configured))
    finally:
        withdraw(responder, owner(key))
    assert mismatched.status is Status.ERROR
    assert mismatched.summary.startswith(f"{key.record_name} holds a DKIM record that do")
    assert mismatched.record == missing.record
    assert [s.published for d in statuses for s in d.keys] == [Published.MISMATCHED]


def test_dns_check_that_gets_no_answer_is_unknown_never_missing(store: Store) -> None:
    with serving(ZONE, Mode.SILENT) as silent:
        save_settings(store, nameservers=[format_host_port(*silent.address)], dns_timeout=1)
        [unknown] = _dkim_check(store)
        statuses = check_published(store, dns_config(store))
    assert unknown.status is Status.UNKNOWN
    assert unknown.summary.startswith("Could not check the DKIM record at pr")
    assert "says nothing about whether the record exists" in unknown.advice
    assert [s.published for d in statuses for s in d.keys] == [Published.UNKNOWN]


# --- rotation -----------------------------------------------------------------------------------


def test_rotation_signs_with_the_new_key_only_once_its_record_is_seen(
    configured: Store, responder: DnsResponder
) -> None:
    [entry] = prepare_keys(configured, DECEMBER)
    old = entry.keys[0]
    keys = rotate(configured.paths, "example.com", today=DECEMBER)
    assert [(k.selector, k.role) for k in keys] == [
        ("pr202612", KeyRole.SIGNING),
        ("pr202612b", KeyRole.PENDING),
    ]
    new = keys[1]
    # Not in DNS yet: the old key keeps signing; the check warns with the record to add.
    [state] = check_published(configured, dns_config(configured))
    assert [(s.key.selector, s.published) for s in state.keys] == [
        ("pr202612", Published.MISSING),
        ("pr202612b", Published.MISSING),
    ]
    assert 'selector = "pr202612";' in rspamd_dkim_signing_conf(configured)
    checks = _dkim_check(configured)
    assert [(c.check, c.status) for c in checks] == [
        ("dkim", Status.ERROR),
        ("dkim-pending", Status.WARNING),
    ]
    assert checks[1].record.startswith(f"{new.record_name}. 3600 IN TXT")
    # The record appears: the next check moves signing to it.
    publish(responder, owner(new), new.txt)
    try:
        [state] = check_published(configured, dns_config(configured))
    finally:
        withdraw(responder, owner(new))
    assert [(s.key.selector, s.key.role, s.published) for s in state.keys] == [
        ("pr202612b", KeyRole.SIGNING, Published.MATCHING)
    ]
    conf = rspamd_dkim_signing_conf(configured)
    assert 'selector = "pr202612b";' in conf and 'selector = "pr202612";' not in conf
    assert old.path.exists()  # mail signed before the switch still verifies meanwhile


def test_a_second_rotation_while_one_waits_is_refused_and_force_switches_at_once(
    store: Store,
) -> None:
    prepare_keys(store, DECEMBER)
    rotate(store.paths, "example.com", today=DECEMBER)
    before = folder_listing(store)
    with pytest.raises(DkimError) as refused:
        rotate(store.paths, "example.com", today=DECEMBER)
    assert str(refused.value) == (
        "A new key (pr202612b) for example.com is already waiting for its DNS record "
        "pr202612b._domainkey.example.com; publish it (postroom dkim show example.com), or sign "
        "with it now with postroom dkim rotate example.com --force."
    )
    assert folder_listing(store) == before
    # --force signs with the waiting key (no third key is made) ...
    keys = rotate(store.paths, "example.com", force=True, today=DECEMBER)
    assert [(k.selector, k.role) for k in keys] == [("pr202612b", KeyRole.SIGNING)]
    # ... and with no rotation waiting, makes a new key and signs with it.
    keys = rotate(store.paths, "example.com", force=True, today=DECEMBER)
    assert [(k.selector, k.role) for k in keys] == [("pr202612c", KeyRole.SIGNING)]


# --- postroom dkim ------------------------------------------------------------------------------


def test_cli_lists_and_shows_keys_with_their_published_state(
    capsys: pytest.CaptureFixture[str], configured: Store, responder: DnsResponder
) -> None:
    policies.add_rule(configured, "Default Policy", "@shared.example", responsible=False)
    listed = cli_json(capsys, configured, "list")
    assert [(d["domain"], d["algorithm"], d["published"], d["pending"]) for d in listed] == [
        ("example.com", "rsa", "missing", None)
    ]
    [first] = listed
    assert set(first) == {
        "domain",
        "selector",
        "algorithm",
        "txt",
        "published",
        "record",
        "problem",
        "pending",
    }
    key = prepare_keys(configured)[0].keys[0]
    assert (first["selector"], first["txt"]) == (key.selector, key.txt)
    status, out, _ = cli(capsys, configured, "show", "example.com")
    assert status == 0
    assert f"record {key.record_name}: missing" in out
    assert f"    {key.record_name}. 3600 IN TXT" in out
    with published_dkim(responder, configured):
        shown = cli_json(capsys, configured, "show", "EXAMPLE.com.")
        status, out, _ = cli(capsys, configured, "list")
    assert shown["published"] == "matching"
    assert status == 0 and out.splitlines()[1].split() == [
        "example.com",
        key.selector,
        "signing",
        "rsa",
        "matching",
    ]


def test_cli_rotate_shows_the_record_to_publish(
    capsys: pytest.CaptureFixture[str], configured: Store
) -> None:
    first = cli_json(capsys, configured, "show", "example.com")
    status, out, err = cli(capsys, configured, "rotate", "example.com")
    assert (status, err) == (0, "")
    after = cli_json(capsys, configured, "show", "example.com")
    pending = after["pending"]
    assert after["selector"] == first["selector"] and pending["published"] == "missing"
    assert out.startswith(
        f"New key {pending['selector']} for example.com: mail stays signed with "
        f"{first['selector']} until DNS publishes the new record."
    )
    assert pending["record"] in out
    status, out, _ = cli(capsys, configured, "rotate", "example.com", "--force")
    assert status == 0
    assert out.startswith(f"example.com signs with the new key {pending['selector']} from now on.")
    assert cli_json(capsys, configured, "show", "example.com")["pending"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "elsewhere.example"), "elsewhere.example is not a domain Postroom signs for"),
        (("rotate", "shared.example"), "shared.example is not a domain Postroom signs for"),
        (("show", "bad..name"), "'bad..name' is not a valid domain name"),
    ],
)
def test_cli_refuses_domains_it_does_not_sign_for_in_one_line(
    capsys: pytest.CaptureFixture[str], configured: Store, args: tuple[str, ...], message: str
) -> None:
    policies.add_rule(configured, "Default Policy", "@shared.example", responsible=False)
    cli_json(capsys, configured, "list")
    before = folder_listing(configured)
    status, out, err = cli(capsys, configured, *args)
    assert (status, out) == (1, "")
    assert message in one_line(err)
    assert folder_listing(configured) == before


def test_cli_second_rotation_and_usage_errors(
    capsys: pytest.CaptureFixture[str], configured: Store
) -> None:
    cli_json(capsys, configured, "list")  # makes the first key
    assert cli(capsys, configured, "rotate", "example.com")[0] == 0
    before = folder_listing(configured)
    status, _, err = cli(capsys, configured, "rotate", "example.com")
    assert status == 1 and "is already waiting for its DNS record" in one_line(err)
    assert folder_listing(configured) == before
    with pytest.raises(SystemExit) as usage:
        main(["--data-dir", str(configured.paths.root), "dkim", "rotate"])
    assert usage.value.code == 2
    assert "the following arguments are required: DOMAIN" in capsys.readouterr().err
    status, _, err = cli(capsys, configured, "show", "example.com", "--nameserver", "ns.example")
    assert status == 1 and "Nameserver 'ns.example' is not an IP address" in one_line(err)
    with pytest.raises(SystemExit) as usage:
        main(["--data-dir", str(configured.paths.root), "dkim", "rotate", "example.com", "--now"])
    assert usage.value.code == 2
    assert "unrecognized arguments: --now" in capsys.readouterr().err
    assert folder_listing(configured) == before


# --- signing through rspamd, verified with dkimpy -----------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_rspamd(folder: Path, signing_conf: str, nameserver: tuple[str, int]) -> Iterator[str]:
    """rspamd with only DKIM signing, configured with ``signing_conf``; yields its base URL."""
    binary = shutil.which("rspamd")
    if binary is None:
        pytest.fail("rspamd is not installed: apt-get install rspamd")
    folder.mkdir(parents=True)
    (folder / "db").mkdir()
    (folder / "dkim_signing.conf").write_text(signing_conf)
    port = _free_port()
    conf = folder / "rspamd.conf"
    conf.write_text(
        f"""
options {{
  pidfile = "{folder}/rspamd.pid";
  dbdir = "{folder}/db";
  filters = "dkim";
  dns {{ nameserver = ["{format_host_port(*nameserver)}"]; timeout = 1s; retransmits = 1; }}
}}
logging {{ type = "file"; filename = "{folder}/rspamd.log"; level = "info"; }}
worker "normal" {{ bind_socket = "127.0.0.1:{port}"; count = 1; }}
modules {{ path = "${{PLUGINSDIR}}/dkim_signing.lua"; }}
dkim {{ }}
dkim_signing {{ .include "{folder}/dkim_signing.conf" }}
"""
    )
    url = f"http://127.0.0.1:{port}"
    with (folder / "stderr").open("wb") as err:
        process = subprocess.Popen([binary, "-f", "-i", "-c", str(conf)], stdout=err, stderr=err)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=1) as reply:
                    if reply.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log = (
                    (folder / "rspamd.log").read_text() if (folder / "rspamd.log").exists() else ""
                )
                pytest.fail(f"rspamd did not start: {(folder / 'stderr').read_text()}{log[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def checkv2(url: str, message: bytes, headers: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(f"{url}/checkv2", data=message, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as reply:
        result: dict[str, Any] = json.loads(reply.read())
    return result


def signed(url: str, message: bytes, **headers: str) -> bytes:
    """``message`` with the headers rspamd asks to add, as the SMTP service applies them."""
    result = checkv2(url, message, headers)
    added = result.get("milter", {}).get("add_headers", {})
    lines = b""
    for name, value in added.items():
        for one in value if isinstance(value, list) else [value]:
            lines += f"{name}: {one['value']}\r\n".encode()
    return lines + message


def zone_txt(responder: DnsResponder) -> Callable[..., bytes | None]:
    """dkimpy's DNS function, asking the loopback responder."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [responder.address[0]]
    resolver.port = responder.address[1]

    def get_txt(name: bytes, timeout: float = 5) -> bytes | None:
        try:
            answer = resolver.resolve(name.decode(), "TXT", lifetime=timeout)
        except dns.exception.DNSException:
            return None
        return b"".join(answer[0].strings)

    return get_txt


MESSAGE = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: Bob <bob@elsewhere.example>\r\n"
    b"Subject: signed on the way out\r\n"
    b"Date: Sat, 05 Dec 2026 19:00:00 +0000\r\n"
    b"Message-ID: <dkim-test@example.com>\r\n"
    b"\r\n"
    b"Hello Bob,\r\nthis left through Postroom.\r\n"
)
SUBMITTED = {"User": "alice", "From": "alice@example.com", "Rcpt": "bob@elsewhere.example"}


def deliver(receiver: Receiver, message: bytes) -> bytes:
    with smtplib.SMTP(*receiver.address, timeout=10) as client:
        client.sendmail("alice@example.com", ["bob@elsewhere.example"], message)
    return receiver.received[-1].content


def test_outgoing_mail_signed_by_rspamd_verifies_against_the_published_record(
    configured: Store,
    responder: DnsResponder,
    smtp_receiver: Callable[..., Receiver],
    tmp_path: Path,
) -> None:
    receiver = smtp_receiver()
    get_txt = zone_txt(responder)
    with running_rspamd(
        tmp_path / "rspamd", rspamd_dkim_signing_conf(configured), responder.address
    ) as url:
        message = signed(url, MESSAGE, IP="192.0.2.55", **SUBMITTED)
        unauthenticated = signed(url, MESSAGE, IP="127.0.0.1", **{"From": "alice@example.com"})
        inbound = signed(url, MESSAGE, IP="203.0.113.7", **{"From": "alice@example.com"})
    key = prepare_keys(configured)[0].keys[0]
    assert message.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")
    assert f"d=example.com; s={key.selector};".encode() in message.split(b"\r\n\r\n")[0]
    received = deliver(receiver, message)
    assert not dkim.verify(received, dnsfunc=get_txt)  # not published yet: fails
    with published_dkim(responder, configured):
        assert dkim.verify(received, dnsfunc=get_txt)
        tampered = received.replace(b"through Postroom", b"through a forger")
        assert not dkim.verify(tampered, dnsfunc=get_txt)
    # Mail that is not submitted (or from a relay IP) is not signed: inbound is never re-signed.
    assert unauthenticated == MESSAGE and inbound == MESSAGE


def test_after_rotation_rspamd_signs_with_the_new_key_once_it_is_published(
    configured: Store,
    responder: DnsResponder,
    smtp_receiver: Callable[..., Receiver],
    tmp_path: Path,
) -> None:
    receiver = smtp_receiver()
    get_txt = zone_txt(responder)
    [entry] = prepare_keys(configured)
    old = entry.keys[0]
    new = rotate(configured.paths, "example.com")[1]
    publish(responder, owner(new), new.txt)
    try:
        check_published(configured, dns_config(configured))  # sees the record: switches
        with running_rspamd(
            tmp_path / "rspamd", rspamd_dkim_signing_conf(configured), responder.address
        ) as url:
            received = deliver(receiver, signed(url, MESSAGE, IP="192.0.2.55", **SUBMITTED))
        assert f"s={new.selector};".encode() in received
        assert f"s={old.selector};".encode() not in received
        assert dkim.verify(received, dnsfunc=get_txt)  # only the new record is published
    finally:
        withdraw(responder, owner(new))
    assert not dkim.verify(received, dnsfunc=get_txt)
    assert dns.name.from_text(new.record_name) != dns.name.from_text(old.record_name)


def test_keys_that_cannot_be_written_leave_mail_unsigned_and_rspamd_configured(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    store.paths.dkim.write_text("a file where the key folder belongs")
    with pytest.raises(DkimError) as refused:
        prepare_keys(store)
    assert str(refused.value).startswith(f"Cannot write DKIM keys under {store.paths.dkim}: ")
    assert "fix the folder's permissions" in str(refused.value)
    with caplog.at_level(logging.WARNING, logger="app.dkim"):
        conf = rspamd_dkim_signing_conf(store)
    assert conf.endswith("domain {\n}\n")
    cause, unsigned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert cause.startswith("DKIM: Cannot write DKIM keys under ")
    assert unsigned.startswith("DKIM: mail from example.com goes out unsigned: ")
    assert store.paths.dkim.read_text() == "a file where the key folder belongs"
