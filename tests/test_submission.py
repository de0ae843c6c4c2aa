"""Authenticated submission over real SMTP on loopback: STARTTLS and AUTH before MAIL, senders
limited to the user's own addresses, then local delivery or the outbound queue (issue 13).

Bob reading alice's mail over IMAP is the Dovecot half of issue 13's end-to-end test; until it
lands, bob's Maildir is asserted here instead.
"""

from __future__ import annotations

import mailbox
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app import policies, settings
from app.directory import recipients
from app.errors import PostroomError
from app.queue import spool
from app.smtp.events import SmtpEvent
from app.smtp.service import SmtpService
from app.store import Store
from tests.smtp_support import Serve, postroom

PASSWORD = "alice's long passphrase"
BOB_PASSWORD = "bob's other passphrase"
ALLOWED = "alice may send as alice@example.com, a.liddell@example.com"


@dataclass
class Running:
    """The service with an SMTP and a submission listener, and what it reported."""

    store: Store
    service: SmtpService
    smtp_port: int
    port: int  # submission
    events: list[SmtpEvent] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def plain(self, port: int | None = None) -> smtplib.SMTP:
        client = smtplib.SMTP("127.0.0.1", port or self.port, timeout=10)
        client.ehlo("client.test")
        return client

    def tls(self, port: int | None = None) -> smtplib.SMTP:
        client = self.plain(port)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        client.starttls(context=context)
        client.ehlo("client.test")
        return client

    def alice(self, login: str = "alice@example.com") -> smtplib.SMTP:
        client = self.tls()
        client.login(login, PASSWORD)
        return client

    def change_settings(self, **changes: object) -> None:
        """Save settings and wait until the service answers with them (it polls the store)."""
        settings.save_settings(self.store, **changes)
        self.index_follows()

    def index_follows(self) -> None:
        committed = self.store.change_counter()
        router = self.service._router  # the index the service answers from; no public handle
        assert router is not None
        deadline = time.monotonic() + 5
        while router.index.counter < committed:
            assert time.monotonic() < deadline, "the service never reloaded its index"
            time.sleep(0.01)

    def maildir(self, alias: str) -> list[bytes]:
        folder = self.store.paths.mailbox(alias)
        if not (folder / "new").is_dir():
            return []
        box = mailbox.Maildir(folder, create=False)
        return [box.get_bytes(key) for key in sorted(box.keys())]

    def queued(self) -> list[spool.QueuedMessage]:
        return spool.list_queue(self.store.paths.queue)

    def nothing_stored(self) -> bool:
        return not (self.maildir("alice") or self.maildir("bob") or self.queued())

    def refused_553(self) -> list[SmtpEvent]:
        """The 553 refusals recorded, once the events thread has passed the first on."""
        deadline = time.monotonic() + 5
        while True:
            with self.lock:
                found = [e for e in self.events if e.kind == "rejected" and e.code == 553]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.02)


def hosted(store: Store) -> None:
    """alice@example.com (and a.liddell@), bob@example.net, the group team@example.com."""
    policies.create_policy(store, "Net", "(company=Net)")
    policies.add_rule(store, "Net", "@example.net")
    recipients.create_recipient(store, "alice", password=PASSWORD)
    recipients.add_address(store, "alice", "alice@example.com")
    recipients.add_address(store, "alice", "a.liddell@example.com")
    recipients.create_recipient(store, "bob", password=BOB_PASSWORD, attributes={"company": "Net"})
    recipients.add_address(store, "bob", "bob@example.net")
    recipients.create_recipient(store, "team", "group", members=["alice", "bob"])
    recipients.add_address(store, "team", "team@example.com")
    # A route onward that needs no DNS: the queue only holds what goes out.
    settings.save_settings(store, fqdn="mx.example.test", smart_host="relay.partner.test:25")


def start(store: Store, **listeners: list[str]) -> SmtpService:
    service = SmtpService(store, **listeners)  # type: ignore[arg-type]
    service.start()
    return service


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


@pytest.fixture
def running(store: Store) -> Iterator[Running]:
    hosted(store)
    service = SmtpService(store, listen=["127.0.0.1:0"], submission_listen=["127.0.0.1:0"])
    found = Running(store, service, 0, 0)

    def record(event: SmtpEvent) -> None:
        with found.lock:
            found.events.append(event)

    service.add_event_callback(record)
    service.start()
    [found.smtp_port] = map(port_of, service.addresses)
    [found.port] = map(port_of, service.submission_addresses)
    yield found
    service.stop()


def letter(sender: str = "Alice <alice@example.com>", subject: str = "Hi") -> bytes:
    return (
        f"From: {sender}\r\nTo: Bob <bob@example.net>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@example.com>\r\n\r\nHello Bob.\r\n"
    ).encode()


# -- the happy path -----------------------------------------------------------------------------


def test_alice_submits_to_another_hosted_domain_and_outside(running: Running) -> None:
    with running.alice() as client:
        assert client.mail("alice@example.com") == (250, b"2.1.0 Ok")
        assert client.rcpt("bob@example.net")[0] == 250
        assert client.rcpt("carol@outside.test")[0] == 250
        code, text = client.data(letter())
        assert code == 250 and text.startswith(b"2.0.0 Ok: queued as ")

    [copy] = running.maildir("bob")
    parsed = mailbox.MaildirMessage(copy)
    assert parsed["Subject"] == "Hi"
    assert parsed["Return-Path"] == "<alice@example.com>"
    assert parsed["Delivered-To"] == "bob@example.net"
    assert "with ESMTPSA" in parsed["Received"]  # TLS and AUTH, as RFC 3848 writes it
    [queued] = running.queued()
    assert queued.path.parent == running.store.paths.queue / "active"
    assert queued.sender == "alice@example.com"
    assert queued.recipients == ("carol@outside.test",)
    assert running.maildir("alice") == []


def test_alice_may_send_as_any_of_her_addresses_in_any_case(running: Running) -> None:
    with running.alice(login="alice") as client:  # her alias is a login too
        client.sendmail(
            "A.Liddell@Example.COM",
            ["bob@example.net"],
            letter('"Alice L." <a.liddell@EXAMPLE.com>', "Second"),
        )
        client.sendmail("alice@example.com", ["alice@example.com"], letter(subject="Self"))
    assert b"Subject: Second" in running.maildir("bob")[0]
    assert b"Subject: Self" in running.maildir("alice")[0]


def test_authenticated_submission_relays_even_when_port_25_would_not(running: Running) -> None:
    running.change_settings(auth_relay=False)
    with running.tls(running.smtp_port) as client:  # port 25 with AUTH: no relay now
        client.login("alice", PASSWORD)
        client.mail("alice@example.com")
        assert client.rcpt("carol@outside.test") == (550, b"5.7.1 Unable to relay")
    with running.alice() as client:
        client.sendmail("alice@example.com", ["carol@outside.test"], letter())
    [queued] = running.queued()
    assert queued.recipients == ("carol@outside.test",)


# -- refused: who may submit --------------------------------------------------------------------


def test_mail_before_starttls_is_refused(running: Running) -> None:
    with running.plain() as client:
        assert "starttls" in client.esmtp_features
        assert "auth" not in client.esmtp_features  # no password before TLS
        assert client.mail("alice@example.com") == (
            530,
            b"5.7.0 Must issue a STARTTLS command first",
        )
        code, _ = client.docmd("AUTH", "PLAIN AGFsaWNlAGFsaWNlJ3MgbG9uZyBwYXNzcGhyYXNl")
        assert code == 538
        assert client.rcpt("bob@example.net")[0] == 503
    assert running.nothing_stored()


def test_mail_before_auth_is_refused(running: Running) -> None:
    with running.tls() as client:
        assert "auth" in client.esmtp_features
        assert client.mail("alice@example.com") == (530, b"5.7.0 Authentication required")
        assert client.rcpt("bob@example.net")[0] == 503
    assert running.nothing_stored()


@pytest.mark.parametrize(
    ("login", "password"),
    [("alice@example.com", "wrong"), ("nobody@example.com", PASSWORD), ("team", PASSWORD)],
)
def test_a_wrong_password_or_unknown_login_cannot_submit(
    running: Running, login: str, password: str
) -> None:
    with running.tls() as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login(login, password)
        assert refused.value.smtp_code == 535
        assert refused.value.smtp_error == b"5.7.8 Authentication credentials invalid"
        assert client.mail("alice@example.com") == (530, b"5.7.0 Authentication required")
    assert running.nothing_stored()


# -- refused: whom alice may send as ------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "reply"),
    [
        ("<bob@example.net>", f"5.7.1 <bob@example.net> is not your address; {ALLOWED}"),
        ("<team@example.com>", f"5.7.1 <team@example.com> is not your address; {ALLOWED}"),
        ("<alice@outside.test>", f"5.7.1 <alice@outside.test> is not your address; {ALLOWED}"),
        ("<>", f"5.7.1 The null sender <> is for delivery reports; {ALLOWED}"),
    ],
)
def test_an_envelope_sender_not_hers_is_refused(running: Running, sender: str, reply: str) -> None:
    with running.alice() as client:
        assert client.docmd("MAIL", f"FROM:{sender}") == (553, reply.encode())
        assert client.rcpt("bob@example.net")[0] == 503  # no MAIL was taken
        # The session goes on: her own address is still taken.
        client.sendmail("alice@example.com", ["bob@example.net"], letter())
    assert len(running.maildir("bob")) == 1 and running.queued() == []
    [event] = running.refused_553()
    assert event.code == 553 and event.reason == reply
    assert event.sender == sender.strip("<>")


@pytest.mark.parametrize(
    ("from_header", "named"),
    [
        ("Bob <bob@example.net>", "bob@example.net"),
        ("alice@example.com, bob@example.net", "bob@example.net"),
        ("Team <team@example.com>, Alice <alice@example.com>", "team@example.com"),
        ('"bob@example.net" <alice@example.com>', "bob@example.net"),
        ("alice@example.com (really bob@example.net)", "bob@example.net"),
        ("Alice <alice@example.com>\r\nFrom: bob@example.net", "bob@example.net"),
        ("Alice\r\n <bob@example.net>", "bob@example.net"),
    ],
)
def test_a_from_header_not_hers_is_refused_and_nothing_stored(
    running: Running, from_header: str, named: str
) -> None:
    with running.alice() as client:
        client.mail("alice@example.com")
        client.rcpt("bob@example.net")
        client.rcpt("carol@outside.test")
        code, text = client.data(letter(from_header))
        assert (code, text.decode()) == (
            553,
            f"5.7.1 From: <{named}> is not your address; {ALLOWED}",
        )
    assert running.nothing_stored()
    [event] = running.refused_553()
    assert event.code == 553 and event.recipients == ("bob@example.net", "carol@outside.test")


def test_a_message_without_a_from_address_is_refused(running: Running) -> None:
    with running.alice() as client:
        client.mail("alice@example.com")
        client.rcpt("bob@example.net")
        code, text = client.data(b"To: bob@example.net\r\nSubject: anonymous\r\n\r\nHi\r\n")
        assert (code, text.decode()) == (553, f"5.7.1 The message has no From: address; {ALLOWED}")
        client.mail("alice@example.com")
        client.rcpt("bob@example.net")
        code, text = client.data(b"")  # not even a header
        assert (code, text.decode()) == (553, f"5.7.1 The message has no From: address; {ALLOWED}")
    assert running.nothing_stored()


def test_a_user_without_addresses_is_told_so(running: Running) -> None:
    recipients.create_recipient(running.store, "carol", password=PASSWORD)
    running.index_follows()
    with running.tls() as client:
        client.login("carol", PASSWORD)
        assert client.mail("carol@example.com") == (
            553,
            b"5.7.1 <carol@example.com> is not your address; carol has no address to send as;"
            b" ask the administrator for one",
        )


def test_a_limit_is_refused_as_a_limit_before_the_from_check(running: Running) -> None:
    running.change_settings(max_line_length=100)
    with running.alice() as client:
        client.mail("alice@example.com")
        client.rcpt("bob@example.net")
        code, text = client.data(letter() + b"x" * 200 + b"\r\n")
        assert (code, text) == (500, b"5.5.2 Line too long (the limit is 100 octets)")
    assert running.nothing_stored()


# -- port 25 is unchanged -----------------------------------------------------------------------


def test_port_25_still_takes_mail_for_hosted_users_without_tls_or_auth(running: Running) -> None:
    with running.plain(running.smtp_port) as client:
        # Inbound mail from anyone, claiming anything in From:, as before.
        client.sendmail("bob@example.net", ["alice@example.com"], letter("bob@example.net"))
    assert len(running.maildir("alice")) == 1


def test_port_25_still_refuses_to_relay_for_strangers(running: Running) -> None:
    with running.plain(running.smtp_port) as client:
        client.mail("alice@example.com")
        assert client.rcpt("carol@outside.test") == (550, b"5.7.1 Unable to relay")
    assert running.nothing_stored()


# -- listeners ------------------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_the_submission_listener_follows_the_settings(store: Store) -> None:
    hosted(store)
    assert settings.load_settings(store).submission_listen == ["127.0.0.1:2587"]
    smtp_port, port = free_ports(2)
    settings.save_settings(
        store, listen=f"127.0.0.1:{smtp_port}", submission_listen=f"127.0.0.1:{port}"
    )
    service = start(store)
    try:
        assert service.submission_addresses == [f"127.0.0.1:{port}"]
    finally:
        service.stop()
    service = start(store, submission_listen=[])  # given empty: off, whatever the setting
    try:
        assert service.submission_addresses == [] and len(service.addresses) == 1
    finally:
        service.stop()
    settings.save_settings(store, submission_listen="")
    service = start(store)
    try:
        assert service.submission_addresses == [] and len(service.addresses) == 1
    finally:
        service.stop()


def test_listen_given_alone_means_no_submission(store: Store) -> None:
    service = start(store, listen=["127.0.0.1:0"])
    try:
        assert service.submission_addresses == [] and service.submission_errors == []
    finally:
        service.stop()


def test_a_taken_submission_port_leaves_smtp_running(store: Store) -> None:
    hosted(store)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = start(store, listen=["127.0.0.1:0"], submission_listen=[f"127.0.0.1:{port}"])
        try:
            assert service.submission_addresses == []
            [error] = service.submission_errors
            assert error.startswith(f"Cannot listen on 127.0.0.1:{port}: the address is already")
            assert "--submission-listen HOST:PORT" in error
            with smtplib.SMTP("127.0.0.1", port_of(service.addresses[0]), timeout=10) as client:
                assert client.ehlo()[0] == 250
        finally:
            service.stop()


def test_submission_may_not_share_an_smtp_address(store: Store, free_port: int) -> None:
    where = f"127.0.0.1:{free_port}"
    service = start(store, listen=[where], submission_listen=[where])
    try:
        assert service.addresses == [where] and service.submission_addresses == []
        assert service.submission_errors == [
            f"Cannot listen on {where} for submission: SMTP listens there. "
            "Choose another port for submission_listen, such as 2587."
        ]
    finally:
        service.stop()


@pytest.mark.parametrize("value", ["127.0.0.1:0", "127.0.0.1:99999", "[::1]:x", "host:port"])
def test_a_bad_submission_address_is_refused_in_one_line(store: Store, value: str) -> None:
    with pytest.raises(PostroomError) as refused:
        settings.save_settings(store, submission_listen=value)
    assert str(refused.value) == (
        f"submission_listen: '{value}' is not a listen address. Write HOST:PORT, e.g. "
        "127.0.0.1:2587, or off to turn submission off."
    )
    assert settings.load_settings(store).submission_listen == ["127.0.0.1:2587"]


def test_serve_says_where_submission_listens(store: Store, data_dir: Path) -> None:
    hosted(store)
    serve = Serve(data_dir, "--listen", "127.0.0.1:0", "--submission-listen", "127.0.0.1:0")
    serve.wait_listening()  # the first line stays the SMTP address
    assert serve.process.stdout is not None
    line = serve.process.stdout.readline()
    assert line.startswith("listening on 127.0.0.1:") and line.endswith(" (submission)\n")
    port = int(line.split()[2].rsplit(":", 1)[1])
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.test")
        assert client.mail("alice@example.com")[0] == 530
    code, _, err = serve.finish()
    assert code == 0 and err == ""


def test_serve_refuses_a_bad_submission_address(store: Store, data_dir: Path) -> None:
    result = postroom(data_dir, "serve", "--submission-listen", "127.0.0.1:99999")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (
        "postroom: '127.0.0.1:99999' is not a listen address. Write HOST:PORT, e.g. "
        "127.0.0.1:2525 or [::1]:2525.\n"
    )


def test_serve_with_a_taken_submission_port_says_so_and_serves_smtp(
    store: Store, data_dir: Path
) -> None:
    hosted(store)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        serve = Serve(
            data_dir, "--listen", "127.0.0.1:0", "--submission-listen", f"127.0.0.1:{port}"
        ).wait_listening()
        with smtplib.SMTP("127.0.0.1", serve.port, timeout=10) as client:
            assert client.ehlo("client.test")[0] == 250
        code, out, err = serve.finish()
    assert code == 0 and "(submission)" not in out
    [line] = err.splitlines()
    assert line.endswith(
        f"Cannot listen on 127.0.0.1:{port}: the address is already in use (another postroom "
        "serve, the console, or another mail server listens there). Stop that program or choose "
        "another address with --submission-listen HOST:PORT. SMTP runs on without submission "
        "there."
    )


def test_a_long_foreign_address_and_many_own_ones_keep_the_reply_one_short_line(
    running: Running,
) -> None:
    for number in range(7):
        recipients.add_address(running.store, "alice", f"alice{number}@example.com")
    running.index_follows()
    long_sender = "x" * 150 + "@example.com"
    with running.alice() as client:
        code, text = client.docmd("MAIL", f"FROM:<{long_sender}>")
        assert code == 553
        assert text.decode() == (
            f"5.7.1 <{'x' * 97}...> is not your address; alice may send as alice@example.com, "
            "a.liddell@example.com, alice0@example.com, alice1@example.com, alice2@example.com"
            " (and 4 more)"
        )
        client.mail("alice5@example.com")
        client.rcpt("bob@example.net")
        code, text = client.data(letter(f"Alice <alice6@example.com>, {long_sender}"))
        assert code == 553 and text.startswith(f"5.7.1 From: <{'x' * 97}...> is not".encode())
    assert running.nothing_stored()
