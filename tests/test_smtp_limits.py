"""SMTP limits, line endings and caps, spoken over smtplib and raw sockets."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from app import settings
from app.store import Store
from tests.smtp_support import Smtp, message, organisation, rcpt, start


@pytest.fixture
def smtp(store: Store) -> Iterator[Smtp]:
    organisation(store)
    settings.save_settings(
        store,
        max_recipients=100,
        max_message_size=4096,
        max_received=30,
        max_bad_commands=10,
        max_bad_recipients=20,
        max_connections=3,
    )
    running = start(store)
    yield running
    running.service.stop()


class Raw:
    """A line-level SMTP client: sends exactly the bytes given."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.reader = self.sock.makefile("rb")
        self.greeting = self.reply()

    def reply(self) -> bytes:
        """One whole reply (the last line of a multi-line one)."""
        while True:
            line = self.reader.readline()
            if not line:
                raise ConnectionError("the server closed the connection")
            if line[3:4] != b"-":
                return line

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, line: str) -> bytes:
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


@pytest.fixture
def raw(smtp: Smtp) -> Iterator[Raw]:
    client = Raw(smtp.port)
    assert client.command("EHLO client.test").startswith(b"250")
    yield client
    client.close()


def test_the_recipient_after_the_cap_waits(smtp: Smtp) -> None:
    with smtp.client() as client:
        client.mail("sender@outside.test")
        for _ in range(100):
            assert rcpt(client, "<jsmith@example.com>")[0] == 250
        assert rcpt(client, "<ann@example.net>") == (452, "4.5.3 Too many recipients")
        assert client.data(message("Many"))[0] == 250
    assert len(smtp.maildir("jsmith")) == 1 and smtp.maildir("ann") == []


def test_size_is_advertised_and_a_declared_oversize_is_refused(raw: Raw, smtp: Smtp) -> None:
    with smtp.client() as client:
        assert client.esmtp_features["size"] == "4096"
    reply = raw.command("MAIL FROM:<sender@outside.test> SIZE=4097")
    assert reply.startswith(b"552 5.3.4")
    assert raw.command("MAIL FROM:<sender@outside.test> SIZE=4000").startswith(b"250")


def test_an_oversize_message_is_refused_after_data(smtp: Smtp) -> None:
    body = "\r\n".join(["x" * 70] * 80)  # 5.7 kB in lines of a legal length
    with smtp.client() as client:
        client.mail("a@outside.test")  # declares no SIZE
        rcpt(client, "<jsmith@example.com>")
        code, text = client.data(message(body=body))
        assert code == 552 and text.startswith(b"5.3.4")
        assert client.noop()[0] == 250  # the session goes on
    assert smtp.maildir("jsmith") == []


@pytest.mark.parametrize(("hops", "accepted"), [(30, True), (31, False)])
def test_too_many_received_headers_is_a_loop(smtp: Smtp, hops: int, accepted: bool) -> None:
    trace = "".join(f"Received: from hop{n}.test by hop{n + 1}.test\r\n" for n in range(hops))
    with smtp.client() as client:
        client.mail("a@outside.test")
        rcpt(client, "<jsmith@example.com>")
        code, text = client.data(trace.encode() + message("Looping"))
    if accepted:
        assert code == 250 and len(smtp.maildir("jsmith")) == 1
    else:
        assert code == 554 and text.startswith(b"5.4.6")
        assert smtp.maildir("jsmith") == []


@pytest.mark.parametrize(("length", "accepted"), [(998, True), (999, False), (3000, False)])
def test_line_length(smtp: Smtp, length: int, accepted: bool) -> None:
    settings.save_settings(smtp.store, max_message_size=1 << 20)
    smtp.index_follows()
    with smtp.client() as client:
        client.mail("a@outside.test")
        rcpt(client, "<jsmith@example.com>")
        code, text = client.data(message(body="y" * length))
    if accepted:
        assert code == 250
    else:
        assert code == 500 and text.startswith(b"5.5.2 Line too long")
        assert smtp.maildir("jsmith") == []


def data_session(raw: Raw) -> None:
    assert raw.command("MAIL FROM:<sender@outside.test>").startswith(b"250")
    assert raw.command("RCPT TO:<jsmith@example.com>").startswith(b"250")
    assert raw.command("DATA").startswith(b"354")


def test_a_bare_lf_is_refused(raw: Raw, smtp: Smtp) -> None:
    data_session(raw)
    raw.send(b"Subject: bare\r\n\r\nline one\nline two\r\n.\r\n")
    assert raw.reply().startswith(b"554 5.6.0")
    assert smtp.maildir("jsmith") == []


SMUGGLED = (
    b"MAIL FROM:<smuggler@evil.test>\r\nRCPT TO:<ann@example.net>\r\nDATA\r\n"
    b"Subject: smuggled\r\n\r\nsmuggled\r\n"
)


@pytest.mark.parametrize("ending", [b"\n.\r\n", b"\r\n.\n", b"\n.\n", b"\r.\r"])
def test_smuggling_endings_never_end_data(raw: Raw, smtp: Smtp, ending: bytes) -> None:
    data_session(raw)
    raw.send(b"Subject: carrier\r\n\r\ncarrier" + ending + SMUGGLED + b".\r\n")
    # One reply for the whole of it: the smuggled commands were message text, not commands.
    assert raw.reply().startswith(b"554 5.6.0")
    assert raw.command("NOOP").startswith(b"250")
    assert smtp.maildir("jsmith") == [] and smtp.maildir("ann") == []


def test_a_lone_dot_line_after_crlf_ends_data(raw: Raw, smtp: Smtp) -> None:
    data_session(raw)
    raw.send(b"Subject: dots\r\n\r\n..leading dot\r\n.\r\n")
    assert raw.reply().startswith(b"250")
    [copy] = smtp.maildir("jsmith")
    assert copy.endswith(b"\n.leading dot\n")


def test_too_many_bad_commands_end_the_session(raw: Raw) -> None:
    replies = [raw.command("RCPT TO:<jsmith@example.com>") for _ in range(10)]
    assert all(r.startswith(b"503") for r in replies[:9])
    assert raw.reply().startswith(b"421")
    with pytest.raises(ConnectionError):
        raw.command("NOOP")


def test_too_many_refused_recipients_end_the_session(raw: Raw) -> None:
    raw.command("MAIL FROM:<sender@outside.test>")
    replies = [raw.command(f"RCPT TO:<nobody{n}@example.com>") for n in range(21)]
    assert all(r.startswith(b"550") for r in replies[:20])
    assert replies[20].startswith(b"421")
    with pytest.raises(ConnectionError):
        raw.command("NOOP")


def test_connections_over_the_cap_are_told_to_come_back(smtp: Smtp) -> None:
    clients = [Raw(smtp.port) for _ in range(3)]
    try:
        extra = Raw(smtp.port)
        assert extra.greeting.startswith(b"421 4.7.0")
        extra.close()
    finally:
        for client in clients:
            client.close()


def test_an_idle_session_is_closed(smtp: Smtp) -> None:
    settings.save_settings(smtp.store, idle_timeout=5)
    smtp.index_follows()
    client = Raw(smtp.port)
    started = time.monotonic()
    with pytest.raises(ConnectionError):
        client.reply()
    assert 4 <= time.monotonic() - started < 9
    client.close()


def test_each_command_restarts_the_idle_timeout(smtp: Smtp) -> None:
    settings.save_settings(smtp.store, idle_timeout=5)
    smtp.index_follows()
    client = Raw(smtp.port)
    started = time.monotonic()
    while time.monotonic() - started < 7:  # past the first deadline, never 5 s silent
        assert client.command("NOOP").startswith(b"250")
        last = time.monotonic()
        time.sleep(1.5)  # under test: a client that is slow, but never 5 s silent
    with pytest.raises(ConnectionError):
        client.reply()
    assert 4 <= time.monotonic() - last < 9
    client.close()
