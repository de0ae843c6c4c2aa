"""The SMTP service over real SMTP on loopback: who gets mail, who is refused, what is stored."""

from __future__ import annotations

import base64
import mailbox
import smtplib
import socket
import ssl
import subprocess
import sys
import time

import pytest

from app import settings
from app.directory import recipients
from app.queue import spool
from app.store import tracking
from tests.smtp_support import PASSWORD, ROOT, Smtp, message, rcpt, tls_client

# -- acceptance and delivery --------------------------------------------------------------------


def test_mail_for_two_domains_lands_in_the_right_maildirs(smtp: Smtp) -> None:
    with smtp.client() as client:
        client.sendmail("sender@outside.test", ["jsmith@example.com"], message("For John"))
        client.sendmail("sender@outside.test", ["ANN.other@Example.NET"], message("For Ann"))

    [john] = smtp.maildir("jsmith")
    [ann] = smtp.maildir("ann")
    assert b"Subject: For John" in john and b"Subject: For Ann" not in john
    assert b"Subject: For Ann" in ann
    parsed = mailbox.MaildirMessage(ann)
    assert parsed["Return-Path"] == "<sender@outside.test>"
    assert parsed["Delivered-To"] == "ANN.other@Example.NET"
    received = parsed.get_all("Received")
    assert len(received) == 1 and "by mx.example.test (Postroom) with ESMTP" in received[0]
    assert "for <ANN.other@Example.NET>" in received[0]
    assert parsed.get_payload() == "Hello there.\n"
    assert b"\r\n" not in ann  # Maildir files use LF line endings


def test_each_copy_names_only_its_own_recipient(smtp: Smtp) -> None:
    with smtp.client() as client:
        client.sendmail(
            "sender@outside.test", ["jsmith@example.com", "ann@example.net"], message("Both")
        )
    [john], [ann] = smtp.maildir("jsmith"), smtp.maildir("ann")
    assert b"ann@example.net" not in john  # no all-recipients header: Bcc stays blind
    assert b"jsmith@example.com" not in ann


def test_unknown_user_of_a_hosted_domain_is_refused_at_rcpt(smtp: Smtp) -> None:
    with smtp.client() as client:
        client.mail("sender@outside.test")
        code, text = rcpt(client, "<nobody@example.com>")
        assert code == 550 and text.startswith("5.1.1")
        code, text = rcpt(client, "<nobody@example.net>")
        assert code == 550 and text.startswith("5.1.1")
    assert smtp.maildir("jsmith") == [] and smtp.queued() == []


def test_foreign_domain_is_not_relayed(smtp: Smtp) -> None:
    with smtp.client() as client:
        client.mail("sender@outside.test")
        assert rcpt(client, "<someone@foreign.test>") == (550, "5.7.1 Unable to relay")
    assert smtp.queued() == []


def test_authenticated_client_may_relay_over_tls(smtp: Smtp) -> None:
    with tls_client(smtp) as client:
        client.login("jsmith@example.com", PASSWORD)
        client.sendmail("jsmith@example.com", ["friend@foreign.test"], message("Onward"))
    [entry] = smtp.queued()
    assert entry.recipients == ("friend@foreign.test",) and entry.sender == "jsmith@example.com"
    assert entry.reason == "relay"
    data = spool.read(entry.path)[1]
    assert data.startswith(b"Received: from client.test ([127.0.0.1])\r\n")
    assert b"with ESMTPSA" in data and b"Return-Path" not in data


def test_auth_login_with_the_alias_and_a_wrong_password(smtp: Smtp) -> None:
    with tls_client(smtp) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login("jsmith", "wrong")
        assert refused.value.smtp_code == 535
        client.user, client.password = "jsmith", PASSWORD
        code, _ = client.auth("LOGIN", client.auth_login, initial_response_ok=False)
        assert code == 235


def test_auth_is_refused_before_tls(smtp: Smtp) -> None:
    with smtp.client() as client:
        assert "auth" not in client.esmtp_features
        assert "starttls" in client.esmtp_features
        token = base64.b64encode(f"\0jsmith\0{PASSWORD}".encode()).decode()
        code, text = client.docmd("AUTH", f"PLAIN {token}")
        assert code == 538 and b"Encryption required" in text
        client.mail("jsmith@example.com")
        assert rcpt(client, "<friend@foreign.test>")[0] == 550  # still not authenticated


def test_plaintext_pipelined_after_starttls_is_discarded(smtp: Smtp) -> None:
    with socket.create_connection(("127.0.0.1", smtp.port), timeout=10) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        sock.sendall(b"EHLO client.test\r\n")
        while not reader.readline().startswith(b"250 "):
            pass
        # The injected MAIL must not survive into the encrypted session.
        sock.sendall(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")
        assert reader.readline().startswith(b"220")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with context.wrap_socket(sock) as secure:
            secure_reader = secure.makefile("rb")
            secure.sendall(b"EHLO client.test\r\n")
            while not secure_reader.readline().startswith(b"250 "):
                pass
            secure.sendall(b"RCPT TO:<jsmith@example.com>\r\n")
            assert secure_reader.readline().startswith(b"503")  # no MAIL was given


def test_relay_allowed_computers_may_relay(smtp: Smtp) -> None:
    settings.save_settings(smtp.store, relay_ips="127.0.0.0/8")
    smtp.index_follows()
    with smtp.client() as client:
        client.sendmail("app@inside.test", ["customer@foreign.test"], message("Invoice"))
    assert [e.recipients for e in smtp.queued()] == [("customer@foreign.test",)]


def test_shared_namespace_routes_unknown_users_onward(smtp: Smtp) -> None:
    with smtp.client() as client:
        client.sendmail(
            "sender@outside.test", ["bob@shared.test", "elsewhere@shared.test"], message("Sh")
        )
    assert len(smtp.maildir("bob")) == 1  # a known address is delivered here
    [entry] = smtp.queued()
    assert entry.recipients == ("elsewhere@shared.test",) and entry.reason == "shared"


def test_recipient_added_by_another_process_is_accepted_within_a_second(smtp: Smtp) -> None:
    with smtp.client() as client:
        client.mail("sender@outside.test")
        assert rcpt(client, "<newcomer@example.com>")[0] == 550
        script = (
            "import sys; from pathlib import Path; from app.directory import recipients;"
            "from app.store import Store; s = Store.open(Path(sys.argv[1]));"
            "recipients.create_recipient(s, 'newcomer');"
            "recipients.add_address(s, 'newcomer', 'newcomer@example.com'); s.close()"
        )
        subprocess.run(
            [sys.executable, "-c", script, str(smtp.store.paths.root)], check=True, cwd=ROOT
        )
        committed = time.monotonic()
        while rcpt(client, "<newcomer@example.com>")[0] != 250:
            assert time.monotonic() - committed < 1.5, "the new address is still refused"
            time.sleep(0.05)
        client.data(message("Welcome"))
    assert len(smtp.maildir("newcomer")) == 1


def test_groups_expand_nested_and_loop_safe_each_mailbox_once(smtp: Smtp) -> None:
    recipients.create_recipient(smtp.store, "all", "group", members=["jsmith"])
    recipients.create_recipient(smtp.store, "net", "group", members=["ann", "jsmith", "all"])
    recipients.edit_recipient(smtp.store, "all", members=["jsmith", "net"])  # a cycle
    recipients.add_address(smtp.store, "all", "all@example.com")
    smtp.index_follows()
    with smtp.client() as client:
        client.sendmail(
            "sender@outside.test", ["all@example.com", "jsmith@example.com"], message("Team")
        )
    assert len(smtp.maildir("jsmith")) == 1 and len(smtp.maildir("ann")) == 1
    delivered = smtp.wait_events("delivered", 2)
    copies = sorted(e.recipients for e in delivered)
    assert copies == [("ann@example.net",), ("jsmith@example.com",)]


def test_a_group_with_nobody_to_deliver_to_is_refused(smtp: Smtp) -> None:
    recipients.create_recipient(smtp.store, "empty", "group")
    recipients.add_address(smtp.store, "empty", "empty@example.com")
    smtp.index_follows()
    with smtp.client() as client:
        client.mail("sender@outside.test")
        code, text = rcpt(client, "<empty@example.com>")
    assert code == 550 and text.startswith("5.1.1")


def test_contacts_forward_through_the_queue(smtp: Smtp) -> None:
    recipients.create_recipient(smtp.store, "partner", "contact", target="ann@partner.test")
    recipients.add_address(smtp.store, "partner", "partner@example.com")
    smtp.index_follows()
    with smtp.client() as client:
        client.sendmail("sender@outside.test", ["partner@example.com"], message("Fwd"))
    [entry] = smtp.queued()
    assert entry.recipients == ("ann@partner.test",) and entry.reason == "contact"


@pytest.mark.parametrize("address", ["<postmaster>", "<PostMaster@example.net>"])
def test_postmaster_reaches_the_configured_recipient(smtp: Smtp, address: str) -> None:
    settings.save_settings(smtp.store, postmaster="ann")
    smtp.index_follows()
    with smtp.client() as client:
        client.mail("<>")
        assert rcpt(client, address)[0] == 250
        client.data(message("Bounce"))
    [copy] = smtp.maildir("ann")
    assert copy.startswith(b"Return-Path: <>\n")


def test_postmaster_without_a_setting_goes_to_the_postmaster_maildir(smtp: Smtp) -> None:
    with smtp.client() as client:
        client.sendmail("sender@outside.test", ["postmaster@shared.test"], message("Abuse"))
    assert len(smtp.maildir("postmaster")) == 1


# Relay tricks: each is a local part of a hosted domain (refused as unknown) or refused.
RELAY_TRICKS = [
    "<user%foreign.test@example.com>",  # % hack
    "<foreign.test!user@example.com>",  # ! path
    '<"user@foreign.test"@example.com>',  # quoted local part with @
    "<@example.com:user@foreign.test>",  # source route
    "<@example.com,@example.net:user@foreign.test>",  # source route, two hops
    "<user@foreign.test@example.com>",  # double @
    "<user@[192.0.2.1]>",  # IP literal
    "<user@[127.0.0.1]>",  # our own IP literal
    "<foreign.test!user>",  # bang path without a domain
    "<user%foreign.test@shared.test>",  # % hack in a shared namespace
    '<"user@foreign.test"@shared.test>',
    "<foreign.test!user@shared.test>",
    "<user@foreign.test%example.com>",
    "<postmaster@foreign.test>",
    "<postmaster%foreign.test@example.com>",
    "<postmaster@[192.0.2.1]>",
    "<user@foreign.test.>",
]


@pytest.mark.parametrize("address", RELAY_TRICKS)
def test_relay_tricks_never_relay(smtp: Smtp, address: str) -> None:
    with smtp.client() as client:
        client.mail("sender@outside.test")
        code, text = rcpt(client, address)
        assert code >= 500, f"{address} was accepted: {code} {text}"
        code, _ = client.docmd("DATA")
        assert code == 503  # no recipient was accepted
    assert smtp.queued() == []


# -- the tracking log and the event callback -----------------------------------------------------


def test_tracking_log_and_events(smtp: Smtp) -> None:
    with smtp.client() as client:
        client.sendmail("sender@outside.test", ["jsmith@example.com"], message("Tracked"))
        client.mail("sender@outside.test")
        rcpt(client, "<ghost@example.com>")
    smtp.wait_events("session-closed")
    smtp.service.stop()  # writes everything pending
    with smtp.store.read() as conn:
        rows = tracking.search(conn, limit=50)
    kinds = [row.event for row in reversed(rows)]
    assert kinds == ["session-opened", "received", "delivered", "rejected", "session-closed"]
    received = next(row for row in rows if row.event == "received")
    assert received.message_id == "<Tracked@outside.test>"
    assert received.sender == "sender@outside.test" and received.client == "127.0.0.1"
    assert received.recipients == ("jsmith@example.com",) and received.code == 250
    rejected = next(row for row in rows if row.event == "rejected")
    assert rejected.code == 550 and rejected.recipients == ("ghost@example.com",)
    assert "5.1.1" in rejected.reason and rejected.time
    assert smtp.event_threads == {"postroom-smtp-events"}
    assert [e.kind for e in smtp.events] == kinds


def test_the_service_reports_its_sessions(smtp: Smtp) -> None:
    with smtp.client():
        deadline = time.monotonic() + 2
        while not smtp.service.sessions():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        [session] = smtp.service.sessions()
        assert session.client == "127.0.0.1" and session.listener == smtp.service.addresses[0]
    assert smtp.service.is_running
    smtp.service.stop()
    assert not smtp.service.is_running and smtp.service.addresses == []
