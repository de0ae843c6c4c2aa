"""The outbound sender against real aiosmtpd receivers on loopback: each reply and failure mode."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.errors import PostroomError
from app.outbound.envelope import Notify, OutboundMessage, Recipient, Ret
from app.outbound.sender import DeliveryResult, Outcome, SendOptions, send, send_batch
from tests.smtp_receivers import Receiver, free_address

StartReceiver = Callable[..., Receiver]

FQDN = "mail.postroom.test"
OPTIONS = SendOptions(helo_name=FQDN, connect_timeout=5, command_timeout=5, data_timeout=5)
CONTENT = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: bob@partner.test\r\n"
    b"Subject: Quarterly figures\r\n"
    b"Message-ID: <q1@example.com>\r\n"
    b"\r\n"
    b"Here they are.\r\n"
    b".A line that starts with a dot.\r\n"
)


def message(
    *recipients: str, sender: str = "alice@example.com", **extra: object
) -> OutboundMessage:
    return OutboundMessage(
        sender=sender,
        recipients=tuple(Recipient(address) for address in recipients),
        content=CONTENT,
        **extra,  # type: ignore[arg-type]
    )


def run_send(
    msg: OutboundMessage, receivers: list[tuple[str, int]], options: SendOptions = OPTIONS
) -> DeliveryResult:
    return asyncio.run(send(msg, receivers, options))


def test_delivers_bytes_envelope_and_ehlo_name(smtp_receiver: StartReceiver) -> None:
    receiver = smtp_receiver()
    result = run_send(message("bob@partner.test", "carol@partner.test"), [receiver.address])

    assert [r.outcome for r in result.recipients] == [Outcome.DELIVERED, Outcome.DELIVERED]
    first = result.recipients[0]
    assert first.reply_code == 250
    assert first.status == "2.0.0"
    assert first.diagnostic == "250 2.0.0 Ok: queued as TEST"
    assert first.remote_host == receiver.host
    assert result.host == receiver.host and result.tls is False
    [got] = receiver.received
    assert got.mail_from == "alice@example.com"
    assert got.rcpt_tos == ("bob@partner.test", "carol@partner.test")
    assert got.helo == FQDN
    assert got.content == CONTENT  # dot-stuffing undone by the receiver: byte for byte
    assert receiver.connections == 1


def test_null_sender_goes_out_as_empty_reverse_path(smtp_receiver: StartReceiver) -> None:
    receiver = smtp_receiver()
    result = run_send(message("bob@partner.test", sender=""), [receiver.address])
    assert result.recipients[0].outcome is Outcome.DELIVERED
    assert receiver.received[0].mail_from == "<>"  # aiosmtpd spells the null sender so
    assert "MAIL FROM:<>" in receiver.commands[0]


def test_4xx_defers_with_the_reply_kept(smtp_receiver: StartReceiver) -> None:
    receiver = smtp_receiver(rcpt_replies={"bob@partner.test": "451 4.7.1 Greylisted, come back"})
    result = run_send(message("bob@partner.test"), [receiver.address])
    [bob] = result.recipients
    assert bob.outcome is Outcome.DEFERRED
    assert (bob.reply_code, bob.status) == (451, "4.7.1")
    assert bob.diagnostic == "451 4.7.1 Greylisted, come back"
    assert receiver.received == []


def test_mail_from_refused_decides_every_recipient(smtp_receiver: StartReceiver) -> None:
    receiver = smtp_receiver(mail_reply="421 4.3.2 Shutting down")
    result = run_send(message("bob@partner.test", "carol@partner.test"), [receiver.address])
    assert {r.outcome for r in result.recipients} == {Outcome.DEFERRED}
    assert all(r.diagnostic == "421 4.3.2 Shutting down" for r in result.recipients)


def test_data_refused_permanently_fails_the_accepted(smtp_receiver: StartReceiver) -> None:
    receiver = smtp_receiver(data_reply="554 5.6.0 Message content rejected")
    result = run_send(message("bob@partner.test"), [receiver.address])
    assert result.recipients[0].outcome is Outcome.FAILED
    assert result.recipients[0].status == "5.6.0"


def test_per_recipient_results(smtp_receiver: StartReceiver) -> None:
    receiver = smtp_receiver(rcpt_replies={"nobody@partner.test": "550 5.1.1 No such user"})
    result = run_send(message("nobody@partner.test", "bob@partner.test"), [receiver.address])
    nobody, bob = result.recipients
    assert (nobody.outcome, nobody.status, nobody.reply_code) == (Outcome.FAILED, "5.1.1", 550)
    assert nobody.diagnostic == "550 5.1.1 No such user"
    assert bob.outcome is Outcome.DELIVERED
    assert result.of(Outcome.FAILED) == [nobody]
    assert receiver.received[0].rcpt_tos == ("bob@partner.test",)


def test_reply_without_enhanced_code_gets_the_class_status(smtp_receiver: StartReceiver) -> None:
    receiver = smtp_receiver(rcpt_replies={"bob@partner.test": "550 mailbox unavailable"})
    [bob] = run_send(message("bob@partner.test"), [receiver.address]).recipients
    assert (bob.outcome, bob.status) == (Outcome.FAILED, "5.0.0")


def test_connection_dropped_after_rcpt_defers(smtp_receiver: StartReceiver) -> None:
    receiver = smtp_receiver(drop_after_rcpt=True)
    result = run_send(message("bob@partner.test"), [receiver.address])
    [bob] = result.recipients
    assert bob.outcome is Outcome.DEFERRED
    assert bob.status == "4.4.2"
    assert "connection to" in bob.diagnostic and "lost" in bob.diagnostic
    assert bob.reply_code is None
    assert receiver.received == []


def test_a_receiver_that_never_answers_times_out(smtp_receiver: StartReceiver) -> None:
    receiver = smtp_receiver(hang_at_data=True)
    options = SendOptions(helo_name=FQDN, connect_timeout=5, command_timeout=5, data_timeout=0.5)
    started = time.monotonic()
    result = run_send(message("bob@partner.test"), [receiver.address], options)
    assert time.monotonic() - started < 4  # the DATA time-out, not the command one
    [bob] = result.recipients
    assert bob.outcome is Outcome.DEFERRED
    assert "Timed out" in bob.diagnostic


@pytest.fixture
def silent_listener() -> Iterator[tuple[str, int]]:
    """A port that takes connections and never says a word (no SMTP greeting)."""
    host, port = free_address()
    with socket.socket() as listener:
        listener.bind((host, port))
        listener.listen(8)
        yield host, port


def test_silent_first_host_times_out_and_the_next_one_delivers(
    smtp_receiver: StartReceiver, silent_listener: tuple[str, int]
) -> None:
    receiver = smtp_receiver()
    options = SendOptions(helo_name=FQDN, connect_timeout=0.5, command_timeout=5, data_timeout=5)
    result = run_send(message("bob@partner.test"), [silent_listener, receiver.address], options)
    assert result.recipients[0].outcome is Outcome.DELIVERED
    assert result.host == receiver.host
    assert len(receiver.received) == 1


def test_no_host_answers_defers_with_the_last_error(silent_listener: tuple[str, int]) -> None:
    refused = free_address()  # nobody listens there
    options = SendOptions(helo_name=FQDN, connect_timeout=0.5, command_timeout=5, data_timeout=5)
    result = run_send(message("bob@partner.test"), [refused, silent_listener], options)
    [bob] = result.recipients
    assert bob.outcome is Outcome.DEFERRED
    assert bob.status == "4.4.1"
    assert silent_listener[0] in bob.diagnostic
    assert result.host is None and bob.remote_host is None


def test_refused_connection_hands_over_to_the_next_candidate(
    smtp_receiver: StartReceiver,
) -> None:
    receiver = smtp_receiver()
    result = run_send(message("bob@partner.test"), [free_address(), receiver.address])
    assert result.recipients[0].outcome is Outcome.DELIVERED
    assert result.host == receiver.host


def test_starttls_offered_is_used(smtp_receiver: StartReceiver, tmp_path: Path) -> None:
    receiver = smtp_receiver(tls_dir=tmp_path)
    result = run_send(message("bob@partner.test"), [receiver.address])
    assert result.recipients[0].outcome is Outcome.DELIVERED
    assert result.tls is True
    assert receiver.received[0].tls is True


def test_certificate_checked_when_asked(smtp_receiver: StartReceiver, tmp_path: Path) -> None:
    receiver = smtp_receiver(tls_dir=tmp_path)
    checking = SendOptions(helo_name=FQDN, verify_certificates=True, command_timeout=5)
    [bob] = run_send(message("bob@partner.test"), [receiver.address], checking).recipients
    assert bob.outcome is Outcome.DEFERRED
    assert bob.status == "4.7.5"
    assert "certificate" in bob.diagnostic.lower()
    assert receiver.received == []


def test_tls_required_but_not_offered_defers(smtp_receiver: StartReceiver) -> None:
    receiver = smtp_receiver()
    required = SendOptions(helo_name=FQDN, require_tls=True, command_timeout=5)
    [bob] = run_send(message("bob@partner.test"), [receiver.address], required).recipients
    assert bob.outcome is Outcome.DEFERRED
    assert bob.status == "4.7.4"
    assert "requires TLS" in bob.diagnostic
    assert receiver.received == []


def test_auth_wrong_password_then_right(smtp_receiver: StartReceiver, tmp_path: Path) -> None:
    receiver = smtp_receiver(tls_dir=tmp_path, user="relay", password="s3cret")

    wrong = SendOptions(helo_name=FQDN, username="relay", password="guess", command_timeout=5)
    [bob] = run_send(message("bob@partner.test"), [receiver.address], wrong).recipients
    assert bob.outcome is Outcome.FAILED  # aiosmtpd answers 535 5.7.8: a permanent refusal
    assert bob.reply_code == 535 and bob.status == "5.7.8"
    assert "refused the session" in bob.diagnostic
    assert receiver.received == []

    right = SendOptions(helo_name=FQDN, username="relay", password="s3cret", command_timeout=5)
    result = run_send(message("bob@partner.test"), [receiver.address], right)
    assert result.recipients[0].outcome is Outcome.DELIVERED
    assert receiver.received[0].login == "relay"
    assert receiver.received[0].tls is True


def test_auth_never_without_tls(smtp_receiver: StartReceiver) -> None:
    receiver = smtp_receiver()
    options = SendOptions(helo_name=FQDN, username="relay", password="s3cret", command_timeout=5)
    [bob] = run_send(message("bob@partner.test"), [receiver.address], options).recipients
    assert bob.outcome is Outcome.DEFERRED
    assert "without TLS" in bob.diagnostic
    assert not any(command.startswith("AUTH") for command in receiver.commands)
    assert receiver.received == []


def test_utf8_address_to_a_server_without_smtputf8_fails_unsent(
    smtp_receiver: StartReceiver,
) -> None:
    receiver = smtp_receiver(smtputf8=False)
    result = run_send(message("jörg@partner.test", "bob@partner.test"), [receiver.address])
    jorg, bob = result.recipients
    assert (jorg.outcome, jorg.status) == (Outcome.FAILED, "5.6.7")
    assert "SMTPUTF8" in jorg.diagnostic
    assert bob.outcome is Outcome.DELIVERED  # the ASCII recipient still gets it
    assert receiver.received[0].rcpt_tos == ("bob@partner.test",)
    assert all("jörg" not in command for command in receiver.commands)


def test_utf8_sender_to_a_server_without_smtputf8_sends_nothing(
    smtp_receiver: StartReceiver,
) -> None:
    receiver = smtp_receiver(smtputf8=False)
    result = run_send(message("bob@partner.test", sender="jörg@example.com"), [receiver.address])
    assert [(r.outcome, r.status) for r in result.recipients] == [(Outcome.FAILED, "5.6.7")]
    assert receiver.commands == [] and receiver.received == []


def test_utf8_address_with_smtputf8_goes_through(smtp_receiver: StartReceiver) -> None:
    receiver = smtp_receiver(smtputf8=True)
    result = run_send(message("jörg@partner.test"), [receiver.address])
    assert result.recipients[0].outcome is Outcome.DELIVERED
    assert receiver.received[0].rcpt_tos == ("jörg@partner.test",)
    assert "SMTPUTF8" in receiver.received[0].mail_options


def test_international_domain_goes_as_its_a_label(smtp_receiver: StartReceiver) -> None:
    receiver = smtp_receiver(smtputf8=False)
    result = run_send(message("bob@bücher.test"), [receiver.address])
    assert result.recipients[0].outcome is Outcome.DELIVERED
    assert receiver.received[0].rcpt_tos == ("bob@xn--bcher-kva.test",)


def test_8bit_body_is_declared_8bitmime(smtp_receiver: StartReceiver) -> None:
    receiver = smtp_receiver()
    eight_bit = CONTENT.replace(b"Here they are.", "Grüße.".encode())
    msg = OutboundMessage("alice@example.com", (Recipient("bob@partner.test"),), eight_bit)
    assert run_send(msg, [receiver.address]).recipients[0].outcome is Outcome.DELIVERED
    assert "BODY=8BITMIME" in receiver.received[0].mail_options
    assert receiver.received[0].content == eight_bit

    seven_bit = smtp_receiver()
    run_send(message("bob@partner.test"), [seven_bit.address])
    assert "BODY=8BITMIME" not in seven_bit.received[0].mail_options


def test_several_messages_over_one_connection(smtp_receiver: StartReceiver) -> None:
    receiver = smtp_receiver(rcpt_replies={"nobody@partner.test": "550 5.1.1 No such user"})
    batch = [
        message("bob@partner.test"),
        message("nobody@partner.test"),  # refused: the next message must still go
        message("carol@partner.test", sender="dave@example.com"),
    ]
    results = asyncio.run(send_batch(batch, [receiver.address], OPTIONS))
    assert [r.recipients[0].outcome for r in results] == [
        Outcome.DELIVERED,
        Outcome.FAILED,
        Outcome.DELIVERED,
    ]
    assert [r.message for r in results] == batch
    assert receiver.connections == 1
    assert [(got.mail_from, got.rcpt_tos) for got in receiver.received] == [
        ("alice@example.com", ("bob@partner.test",)),
        ("dave@example.com", ("carol@partner.test",)),
    ]


def test_dsn_parameters_only_where_advertised(smtp_receiver: StartReceiver) -> None:
    msg = OutboundMessage(
        sender="alice@example.com",
        recipients=(
            Recipient(
                "bob@partner.test",
                notify=frozenset({Notify.FAILURE, Notify.DELAY}),
                orcpt="rfc822;Bob+Sales@partner.test",
            ),
            Recipient("carol@partner.test", notify=frozenset({Notify.NEVER})),
        ),
        content=CONTENT,
        ret=Ret.HDRS,
        envid="Q1 report=1",
    )
    with_dsn = smtp_receiver(dsn=True)
    result = run_send(msg, [with_dsn.address])
    assert all(r.outcome is Outcome.DELIVERED and r.dsn_passed for r in result.recipients)
    assert with_dsn.dsn_params == [
        ("MAIL", {"RET": "HDRS", "ENVID": "Q1+20report+3D1"}),
        ("RCPT", {"NOTIFY": "FAILURE,DELAY", "ORCPT": "rfc822;Bob+2BSales@partner.test"}),
        ("RCPT", {"NOTIFY": "NEVER"}),
    ]

    without = smtp_receiver(dsn=False)  # aiosmtpd refuses parameters it does not know (555)
    result = run_send(msg, [without.address])
    assert all(r.outcome is Outcome.DELIVERED and not r.dsn_passed for r in result.recipients)
    assert not any("NOTIFY" in c or "RET=" in c for c in without.commands)


def test_no_recipients_is_refused() -> None:
    empty = OutboundMessage("alice@example.com", (), CONTENT)
    with pytest.raises(PostroomError, match="has no recipients") as raised:
        asyncio.run(send(empty, [("127.0.0.1", 25)], OPTIONS))
    assert "\n" not in str(raised.value)


def test_no_hosts_is_refused() -> None:
    with pytest.raises(PostroomError, match="No next-hop host") as raised:
        asyncio.run(send(message("bob@partner.test"), [], OPTIONS))
    assert "\n" not in str(raised.value)


def test_a_port_out_of_range_is_refused() -> None:
    with pytest.raises(PostroomError, match="port from 1 to 65535"):
        asyncio.run(send(message("bob@partner.test"), [("127.0.0.1", 70000)], OPTIONS))


def test_failed_opportunistic_tls_falls_back_to_plain_text(
    smtp_receiver: StartReceiver, tmp_path: Path
) -> None:
    receiver = smtp_receiver(tls_dir=tmp_path, tls_broken=True)
    result = run_send(message("bob@partner.test"), [receiver.address])
    assert result.recipients[0].outcome is Outcome.DELIVERED
    assert result.tls is False and receiver.received[0].tls is False
    assert receiver.connections == 2  # the failed handshake, then plain text

    required = SendOptions(helo_name=FQDN, require_tls=True, command_timeout=5)
    [bob] = run_send(message("bob@partner.test"), [receiver.address], required).recipients
    assert (bob.outcome, bob.status) == (Outcome.DEFERRED, "4.7.5")
    assert len(receiver.received) == 1


# --- no socket outlives a send ------------------------------------------------------------------


def connections_to(address: tuple[str, int]) -> int:
    """How many of this process's file descriptors are TCP sockets connected to ``address``
    (read from Linux's /proc, where a socket stays until its descriptor is closed)."""
    host, port = address
    packed = socket.inet_aton(host)
    wanted = f"{(packed[::-1] if sys.byteorder == 'little' else packed).hex().upper()}:{port:04X}"
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[2] == wanted:  # rem_address
            inodes.add(f"socket:[{fields[9]}]")
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the descriptor listdir itself used is gone
            count += os.readlink(f"/proc/self/fd/{fd}") in inodes
    return count


def test_connections_to_sees_an_open_socket(smtp_receiver: StartReceiver) -> None:
    receiver = smtp_receiver()
    with socket.create_connection(receiver.address, timeout=5):
        assert connections_to(receiver.address) == 1
    assert connections_to(receiver.address) == 0


def send_then_count(
    msg: OutboundMessage, hosts: list[tuple[str, int]], options: SendOptions
) -> tuple[DeliveryResult, list[int]]:
    """Send, and count the sockets still open to each host the moment send() returns, on the
    same loop: a socket the sender left for the loop's last turns to close counts."""

    async def go() -> tuple[DeliveryResult, list[int]]:
        result = await send(msg, hosts, options)
        return result, [connections_to(host) for host in hosts]

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("behaviour", "options", "outcome"),
    [
        pytest.param({"tls": True}, OPTIONS, Outcome.DELIVERED, id="tls-delivered"),
        pytest.param(
            {"tls": True},
            SendOptions(helo_name=FQDN, verify_certificates=True, command_timeout=5),
            Outcome.DEFERRED,
            id="certificate-refused",
        ),
        pytest.param(
            {"tls": True, "tls_broken": True}, OPTIONS, Outcome.DELIVERED, id="tls-fallback"
        ),
        pytest.param(
            {"tls": True, "tls_broken": True},
            SendOptions(helo_name=FQDN, require_tls=True, command_timeout=5),
            Outcome.DEFERRED,
            id="tls-required-broken",
        ),
        pytest.param(
            {"tls": True, "password": "s3cret"},
            SendOptions(helo_name=FQDN, username="relay", password="guess", command_timeout=5),
            Outcome.FAILED,
            id="auth-refused",
        ),
        pytest.param({"drop_after_rcpt": True}, OPTIONS, Outcome.DEFERRED, id="drop-after-rcpt"),
        pytest.param(
            {"hang_at_data": True},
            SendOptions(helo_name=FQDN, command_timeout=5, data_timeout=0.3),
            Outcome.DEFERRED,
            id="data-timeout",
        ),
        pytest.param({"mail_reply": "421 4.3.2 Bye"}, OPTIONS, Outcome.DEFERRED, id="421"),
    ],
)
def test_no_socket_outlives_a_send(
    smtp_receiver: StartReceiver,
    tmp_path: Path,
    behaviour: dict[str, object],
    options: SendOptions,
    outcome: Outcome,
) -> None:
    tls = behaviour.pop("tls", False)
    receiver = smtp_receiver(tls_dir=tmp_path if tls else None, **behaviour)
    for _ in range(5):  # the leak this guards against was a race: give it several chances
        result, still_open = send_then_count(
            message("bob@partner.test"), [receiver.address], options
        )
        assert result.recipients[0].outcome is outcome
        assert still_open == [0]


def test_no_socket_outlives_a_refused_or_silent_host(silent_listener: tuple[str, int]) -> None:
    refused = free_address()
    options = SendOptions(helo_name=FQDN, connect_timeout=0.3, command_timeout=5)
    result, still_open = send_then_count(
        message("bob@partner.test"), [refused, silent_listener], options
    )
    assert result.recipients[0].outcome is Outcome.DEFERRED
    assert "Timed out" in result.recipients[0].diagnostic  # the greeting never came
    assert still_open == [0, 0]
