"""Inbound mail scanned by rspamd run by the SMTP service: verdicts, headers, Junk, failures,
blocked senders and the filtering settings, over real SMTP, a real rspamd and loopback DNS."""

from __future__ import annotations

import mailbox
import os
import re
import signal
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import organization
from app.errors import PostroomError
from app.settings import load_settings, save_settings
from app.store import Store
from tests import rspamd_support as rs
from tests.dns_responder import serving
from tests.smtp_support import Smtp, organisation, start

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def key() -> rs.SenderKey:
    return rs.SenderKey()


@pytest.fixture(scope="module")
def filtered(tmp_path_factory: pytest.TempPathFactory, key: rs.SenderKey) -> Iterator[Smtp]:
    """One SMTP service with filtering on for the module: its rspamd starts once (the first
    start compiles rspamd's expressions), DNS from the loopback responder."""
    with serving(rs.zone(key)) as dns:
        opened = Store.open(tmp_path_factory.mktemp("filtering") / "data")
        organization.initialize(opened, "Test Organization", "example.com")
        organisation(opened)
        save_settings(
            opened,
            filtering=True,
            nameservers=[f"127.0.0.1:{dns.port}"],
            filter_timeout=30,
        )
        running = start(opened)
        rspamd = running.service.rspamd
        assert rspamd is not None
        assert rspamd.wait_ready(180), rspamd.error
        yield running
        running.service.stop()
        opened.close()


def _send(smtp: Smtp, sender: str, content: bytes, rcpt: str = "jsmith@example.com") -> tuple:
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=60) as client:
        client.ehlo("client.test")
        code, text = client.mail(sender)
        if code != 250:
            return code, text.decode()
        client.rcpt(rcpt)
        code, text = client.data(content)
        return code, text.decode()


def _junk(smtp: Smtp, alias: str) -> list[bytes]:
    folder = smtp.store.paths.mailbox(alias) / ".Junk"
    if not (folder / "new").is_dir():
        return []
    box = mailbox.Maildir(folder, create=False)
    return [box.get_bytes(k) for k in sorted(box.keys())]


def _all_files(smtp: Smtp) -> set[Path]:
    root = smtp.store.paths.mailboxes
    return {p for p in root.rglob("*") if p.is_file()} | {
        p for p in smtp.store.paths.queue.rglob("*") if p.is_file()
    }


def _find(messages: list[bytes], subject: str) -> bytes:
    found = [m for m in messages if f"Subject: {subject}".encode() in m]
    assert len(found) == 1, (subject, len(found))
    return found[0]


def test_gtube_is_refused_at_data_and_nothing_is_stored(filtered: Smtp) -> None:
    before = _all_files(filtered)
    code, text = _send(
        filtered, "someone@elsewhere.org", rs.message("x@elsewhere.org", "gtube", rs.GTUBE)
    )
    assert code == 550 and text.startswith("5.7.1"), (code, text)
    assert "Gtube" in text or "spam" in text.lower()
    assert _all_files(filtered) == before


def test_forged_sender_of_a_dmarc_reject_domain_is_refused(filtered: Smtp) -> None:
    before = _all_files(filtered)
    sender = f"ceo@{rs.FORGED}"
    code, text = _send(filtered, sender, rs.message(sender, "forged"))
    assert code == 550 and text.startswith("5.7.1"), (code, text)
    assert _all_files(filtered) == before


def test_dmarc_quarantine_goes_to_junk_with_its_headers(filtered: Smtp) -> None:
    sender = f"news@{rs.QUARANTINED}"
    code, text = _send(filtered, sender, rs.message(sender, "quarantined"))
    assert code == 250, (code, text)
    stored = _find(_junk(filtered, "jsmith"), "quarantined")
    assert re.search(rb"^X-Spam-Status: Yes, score=", stored, re.M)
    assert b"dmarc=fail" in stored
    assert b"Subject: quarantined" not in b"".join(filtered.maildir("jsmith"))
    marker = filtered.store.paths.mailbox("jsmith") / ".Junk" / "maildirfolder"
    assert marker.is_file()


def test_clean_signed_message_reaches_the_inbox_with_authentication_results(
    filtered: Smtp, key: rs.SenderKey
) -> None:
    sender = f"friend@{rs.GOOD}"
    plain = rs.message(sender, "clean")
    # Claims from outside under our authserv-id go; another server's stay.
    forged_ours = b"Authentication-Results: mx.example.test; spf=pass; dkim=pass; dmarc=pass\r\n"
    theirs = b"Authentication-Results: mx.elsewhere.org; spf=fail\r\n"
    code, text = _send(filtered, sender, key.sign(forged_ours + theirs + plain))
    assert code == 250, (code, text)
    stored = _find(filtered.maildir("jsmith"), "clean")
    ours = re.findall(rb"^Authentication-Results: mx\.example\.test;.*(?:\n\s.*)*", stored, re.M)
    assert len(ours) == 1, stored
    result = ours[0]
    assert b"spf=pass" in result and b"dkim=pass" in result and b"dmarc=pass" in result, result
    assert theirs.rstrip(b"\r\n") in stored
    assert re.search(rb"^X-Spam-Status: No, score=", stored, re.M)
    assert _find(filtered.maildir("jsmith"), "clean")  # and not in Junk
    assert not any(b"Subject: clean" in m for m in _junk(filtered, "jsmith"))


def test_malformed_mime_is_scanned_and_stored(filtered: Smtp) -> None:
    sender = f"friend@{rs.GOOD}"
    broken = (
        f"From: <{sender}>\r\nTo: jsmith@example.com\r\nSubject: broken mime\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="nope\r\n\r\n'
        "--elsewhere\r\nContent-Type: text/plain\r\n\r\nno closing boundary\r\n"
    ).encode()
    code, text = _send(filtered, sender, broken)
    assert code in (250, 550), (code, text)
    if code == 250:
        stored = _find(filtered.maildir("jsmith") + _junk(filtered, "jsmith"), "broken mime")
        assert re.search(rb"^X-Spam-Status: (Yes|No), score=", stored, re.M)


def test_oversized_message_is_delivered_unscanned_and_marked(filtered: Smtp) -> None:
    save_settings(filtered.store, filter_max_size=2048)
    filtered.index_follows()
    try:
        sender = f"friend@{rs.FORGED}"  # would be refused if scanned
        code, text = _send(filtered, sender, rs.message(sender, "big", ("x" * 70 + "\r\n") * 50))
        assert code == 250, (code, text)
        stored = _find(filtered.maildir("jsmith"), "big")
        assert b"X-Spam-Status: unscanned (larger than 2048 bytes)" in stored
    finally:
        save_settings(filtered.store, filter_max_size=20 * 1024 * 1024)
        filtered.index_follows()


def test_blocked_senders_are_refused_at_mail_from(filtered: Smtp) -> None:
    save_settings(filtered.store, blocked_senders="pest@annoying.org @spam-domain.org")
    filtered.index_follows()
    try:
        for sender in ("pest@annoying.org", "PEST@Annoying.org", "anyone@spam-domain.org"):
            code, text = _send(filtered, sender, rs.message(sender, "blocked"))
            assert (code, text[:5]) == (550, "5.7.1"), (sender, code, text)
        code, _ = _send(filtered, f"friend@{rs.GOOD}", rs.message(f"friend@{rs.GOOD}", "ok"))
        assert code == 250
    finally:
        save_settings(filtered.store, blocked_senders="")
        filtered.index_follows()


def test_nothing_outside_loopback_is_contacted(filtered: Smtp) -> None:
    rspamd = filtered.service.rspamd
    assert rspamd is not None
    log = rspamd.folders.log_file.read_text(errors="replace")
    assert "rspamd 3." in log
    assert not re.search(r"https?://(?!127\.0\.0\.1)", log), re.findall(r"https?://\S+", log)
    addresses = set(re.findall(r"\b(\d{1,3}(?:\.\d{1,3}){3}):\d+", log))
    assert all(a.startswith("127.") for a in addresses), addresses
    for module in ("fuzzy_check", "rbl", "phishing", "asn"):
        conf = rspamd.folders.local_d / f"{module}.conf"
        assert conf.read_text() == "enabled = false;\n"


def test_rspamd_killed_means_451_then_it_is_restarted_and_filters_again(filtered: Smtp) -> None:
    rspamd = filtered.service.rspamd
    assert rspamd is not None and rspamd.pid is not None
    old_pid = rspamd.pid
    os.killpg(old_pid, signal.SIGKILL)  # the main process and its workers
    before = _all_files(filtered)
    sender = f"friend@{rs.GOOD}"
    code, text = _send(filtered, sender, rs.message(sender, "while down"))
    assert (code, text[:5]) == (451, "4.7.1"), (code, text)
    assert _all_files(filtered) == before
    assert rspamd.wait_ready(60), rspamd.error
    assert rspamd.pid not in (None, old_pid)
    code, text = _send(filtered, "x@elsewhere.org", rs.message("x@elsewhere.org", "g2", rs.GTUBE))
    assert code == 550, (code, text)


def test_accept_failure_action_delivers_marked_unscanned(filtered: Smtp) -> None:
    rspamd = filtered.service.rspamd
    assert rspamd is not None and rspamd.wait_ready(60)
    save_settings(filtered.store, filter_failure_action="accept")
    filtered.index_follows()
    try:
        pid = rspamd.pid
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        sender = f"friend@{rs.FORGED}"
        code, text = _send(filtered, sender, rs.message(sender, "accepted unscanned"))
        assert code == 250, (code, text)
        stored = _find(filtered.maildir("jsmith"), "accepted unscanned")
        assert b"X-Spam-Status: unscanned (the filter did not answer)" in stored
    finally:
        save_settings(filtered.store, filter_failure_action="tempfail")
        filtered.index_follows()
        assert rspamd.wait_ready(60), rspamd.error


# -- settings and a missing rspamd (no rspamd needed) -------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"blocked_senders": "good@x.org, not an address"}, "is not an address or a domain"),
        ({"blocked_senders": "@"}, "is not an address or a domain"),
        ({"filter_junk_score": "lots"}, "is not a number"),
        ({"filter_reject_score": "nan"}, "out of range"),
        ({"filter_reject_score": "5"}, "may not be below the Junk score"),
        ({"filter_junk_score": "20"}, "may not be below the Junk score"),
        ({"filter_failure_action": "drop"}, "is not a failure action"),
        ({"filter_dnsbl": "not a zone!"}, "is not a DNS block list"),
    ],
)
def test_bad_filter_settings_are_refused_and_nothing_changes(
    store: Store, changes: dict[str, str], message: str
) -> None:
    before = load_settings(store)
    with pytest.raises(PostroomError, match=message):
        save_settings(store, **changes)
    assert load_settings(store) == before


def test_rspamd_missing_is_one_line_and_smtp_still_delivers(store: Store) -> None:
    organisation(store)
    save_settings(store, filtering=True, rspamd_binary="/nonexistent/rspamd")
    running = start(store)
    try:
        rspamd = running.service.rspamd
        assert rspamd is not None
        assert rspamd.error.startswith("rspamd is not installed at /nonexistent/rspamd: apt")
        assert "\n" not in rspamd.error
        code, text = _send(running, "x@elsewhere.org", rs.message("x@elsewhere.org", "no rspamd"))
        assert code == 250, (code, text)
        stored = _find(running.maildir("jsmith"), "no rspamd")
        assert b"X-Spam-Status: unscanned (rspamd is not installed)" in stored
    finally:
        running.service.stop()
