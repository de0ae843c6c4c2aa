"""The outbound queue over a loopback internet: a real DNS server serves a test zone whose MX
records point at aiosmtpd receivers on 127.0.0.x, each told how to answer; Postroom's SMTP
service takes mail from a relay-allowed client and its queue sends it on. Every outcome is
checked on what the receivers got, on the queue's files and on the notification in the sender's
Maildir. Retry intervals are seconds here, set through the settings."""

from __future__ import annotations

import email
import json
import smtplib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from app.connectors.catalog import create_connector
from app.errors import PostroomError
from app.mailstore import maildir
from app.model import AddressSpace, SmartHost, SmtpConnector
from app.outbound import control
from app.outbound.queue import Action, Request, load_items
from app.queue import spool, state
from app.settings import save_settings
from app.store import Store, tracking
from tests.dns_responder import DnsResponder, Mode, serving
from tests.smtp_receivers import Receiver, shared_port
from tests.smtp_support import Smtp, organisation, start

SENDER = "jsmith@example.com"  # a local user: notifications land in its Maildir


@dataclass
class Internet:
    dns: DnsResponder
    port: int
    receivers: dict[str, Receiver]

    def __getitem__(self, name: str) -> Receiver:
        return self.receivers[name]


BEHAVIOURS: dict[str, dict[str, Any]] = {
    "accept": {},
    "flaky": {"temporary_failures": 2},
    "reject": {"rcpt_replies": {"nobody@reject.test": "550 5.1.1 No such user here"}},
    "drop": {"drop_after_rcpt": True},
    "slow": {"hang_at_data": True},
    "tls": {"tls_dir": None},  # filled with tmp_path
    "auth": {"password": "s3cret", "tls_dir": None},
    "aonly": {},
}


def _zone(internet: dict[str, Receiver]) -> str:
    lines = []
    for name, receiver in internet.items():
        if name == "aonly":
            lines.append(f"aonly.test. 60 IN A {receiver.host}")
        else:
            lines.append(f"{name}.test. 60 IN MX 10 mx.{name}.test.")
            lines.append(f"mx.{name}.test. 60 IN A {receiver.host}")
    lines += [
        "nullmx.test. 60 IN MX 0 .",
        "loop.test. 60 IN MX 10 mx.loop.test.",
        "mx.loop.test. 60 IN A 127.0.0.1",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def internet(smtp_receiver: Callable[..., Receiver], tmp_path: Path) -> Iterator[Internet]:
    port = shared_port()
    receivers: dict[str, Receiver] = {}
    for name, behaviour in BEHAVIOURS.items():
        chosen = dict(behaviour)
        if "tls_dir" in chosen:
            chosen["tls_dir"] = tmp_path / name
            chosen["tls_dir"].mkdir()
        receivers[name] = smtp_receiver(port=port, **chosen)
    with serving(_zone(receivers)) as dns:
        yield Internet(dns, port, receivers)


def configure(store: Store, internet: Internet, **changes: Any) -> None:
    values: dict[str, Any] = {
        "smart_host": "",
        "nameservers": [f"{internet.dns.address[0]}:{internet.dns.address[1]}"],
        "dns_timeout": 1,
        "outbound_port": internet.port,
        "outbound_timeout": 3,
        "retry_intervals": "1,1,1,1",
        "delay_notification": "1h",
        "expiration_timeout": "2h",
        "relay_ips": ["127.0.0.1"],
    }
    values.update(changes)
    save_settings(store, **values)


@pytest.fixture
def postroom(store: Store, internet: Internet) -> Iterator[Smtp]:
    organisation(store)
    configure(store, internet)
    running = start(store)
    yield running
    running.service.stop()


def send(smtp: Smtp, *recipients: str, sender: str = SENDER, subject: str = "Hello") -> None:
    body = (
        f"From: {sender}\r\nTo: {', '.join(recipients)}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@example.com>\r\n\r\nHello there.\r\n"
    )
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=10) as client:
        client.sendmail(sender, list(recipients), body.encode())


def wait_for(check: Callable[[], Any], timeout: float = 15, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")


def queue_empty(store: Store) -> bool:
    return spool.queue_length(store.paths.queue) == 0


def notices(smtp: Smtp, alias: str = "jsmith") -> list[Message]:
    return [email.message_from_bytes(data) for data in smtp.maildir(alias)]


def report(notice: Message) -> list[Message]:
    """The per-recipient field groups of a notification's message/delivery-status part."""
    assert notice.get_content_type() == "multipart/report"
    part = notice.get_payload()[1]
    assert part.get_content_type() == "message/delivery-status"
    return list(part.get_payload())[1:]


def events(store: Store, kind: str) -> list[tracking.TrackingRow]:
    return [row for row in tracking.search(store.connection()) if row.event == kind]


# -- outcomes ---------------------------------------------------------------------------------


def test_delivered_to_the_mx_and_gone_from_the_queue(postroom: Smtp, internet: Internet) -> None:
    send(postroom, "someone@accept.test")
    [got] = wait_for(lambda: internet["accept"].received, what="the message at the MX")
    assert got.rcpt_tos == ("someone@accept.test",)
    assert got.mail_from == SENDER
    assert got.helo == "mx.example.test"
    assert b"Subject: Hello" in got.content
    wait_for(lambda: queue_empty(postroom.store), what="the queue to empty")
    assert notices(postroom) == []  # success asks for no notification by default
    sent = wait_for(lambda: events(postroom.store, "sent"), what="a sent event")
    assert sent[0].recipients == ("someone@accept.test",)


def test_domain_with_only_an_a_record(postroom: Smtp, internet: Internet) -> None:
    send(postroom, "someone@aonly.test")
    wait_for(lambda: internet["aonly"].received, what="the implicit MX")
    wait_for(lambda: queue_empty(postroom.store))


def test_retried_after_temporary_failures_then_delivered(
    postroom: Smtp, internet: Internet
) -> None:
    send(postroom, "someone@flaky.test")
    [got] = wait_for(lambda: internet["flaky"].received, timeout=20, what="delivery at last")
    assert got.rcpt_tos == ("someone@flaky.test",)
    wait_for(lambda: queue_empty(postroom.store))
    deferred = events(postroom.store, "deferred")
    assert len(deferred) == 2 and "451" in deferred[0].reason
    assert "next retry" in deferred[0].reason
    assert notices(postroom) == []


def test_permanent_failure_bounces_with_a_report(postroom: Smtp, internet: Internet) -> None:
    send(postroom, "nobody@reject.test", subject="Bouncing")
    [notice] = wait_for(lambda: notices(postroom), what="the NDR in the sender's Maildir")
    assert notice["From"].startswith("MAILER-DAEMON")
    assert "Bouncing" in notice["Subject"]
    [fields] = report(notice)
    assert fields["Final-Recipient"] == "rfc822; nobody@reject.test"
    assert fields["Action"] == "failed"
    assert fields["Status"] == "5.1.1"
    assert "550 5.1.1 No such user here" in fields["Diagnostic-Code"]
    assert internet["reject"].host in fields["Remote-MTA"]
    wait_for(lambda: queue_empty(postroom.store))
    assert internet["reject"].received == []
    bounced = wait_for(lambda: events(postroom.store, "bounced"), what="the bounce logged")
    assert bounced[0].recipients == ("nobody@reject.test",)


def test_one_message_split_per_hop_each_fate_once(postroom: Smtp, internet: Internet) -> None:
    send(postroom, "a@accept.test", "nobody@reject.test", "b@flaky.test", subject="Split")
    wait_for(lambda: internet["flaky"].received, timeout=20)
    wait_for(lambda: queue_empty(postroom.store))
    assert [r.rcpt_tos for r in internet["accept"].received] == [("a@accept.test",)]
    assert [r.rcpt_tos for r in internet["flaky"].received] == [("b@flaky.test",)]
    [notice] = notices(postroom)
    assert [f["Final-Recipient"] for f in report(notice)] == ["rfc822; nobody@reject.test"]


def test_no_notification_to_the_null_sender(postroom: Smtp, internet: Internet) -> None:
    send(postroom, "nobody@reject.test", sender="")
    wait_for(lambda: events(postroom.store, "bounced"), what="the bounce")
    wait_for(lambda: queue_empty(postroom.store))
    assert notices(postroom) == []


def test_delay_warning_once_then_ndr_at_expiry(
    store: Store, internet: Internet, smtp_receiver: Callable[..., Receiver]
) -> None:
    organisation(store)
    configure(store, internet, delay_notification="1s", expiration_timeout="4s")
    running = start(store)
    try:
        send(running, "someone@drop.test", subject="Late")
        [warning] = wait_for(lambda: notices(running), what="the delay warning")
        [fields] = report(warning)
        assert fields["Action"] == "delayed"
        assert fields["Will-Retry-Until"]
        # Still waiting (once the warning's own queue file has left for the Maildir).
        wait_for(
            lambda: (
                [i.entry.recipients for i in load_items(store.paths.queue)]
                == [("someone@drop.test",)]
            ),
            what="the message still queued",
        )
        notes = wait_for(lambda: len(notices(running)) == 2 and notices(running), timeout=20)
        [fields] = report(notes[1])
        assert fields["Action"] == "failed" and fields["Status"] == "4.4.7"
        wait_for(lambda: queue_empty(store))
        wait_for(lambda: events(store, "expired"), what="the expiry logged")
        assert internet["drop"].received == []
    finally:
        running.service.stop()


def test_time_out_and_dropped_connection_are_deferred_not_bounced(
    postroom: Smtp, internet: Internet
) -> None:
    send(postroom, "someone@slow.test", "someone@drop.test")
    deferred = wait_for(
        lambda: (
            {r for e in events(postroom.store, "deferred") for r in e.recipients}
            >= {"someone@slow.test", "someone@drop.test"}
        ),
        timeout=20,
        what="both deferred",
    )
    assert deferred
    assert spool.queue_length(postroom.store.paths.queue) == 1
    assert events(postroom.store, "bounced") == []
    assert notices(postroom) == []


def test_dns_that_does_not_answer_defers(postroom: Smtp, internet: Internet) -> None:
    internet.dns.mode = Mode.SILENT
    # Accepted: the route onward cannot be confirmed, and unknown is not missing.
    send(postroom, "someone@accept.test")
    wait_for(lambda: events(postroom.store, "deferred"), what="a deferral")
    assert spool.queue_length(postroom.store.paths.queue) == 1
    assert events(postroom.store, "bounced") == []
    internet.dns.mode = Mode.ANSWER
    wait_for(lambda: internet["accept"].received, timeout=20, what="delivery once DNS answers")


def test_starttls_used_when_offered(postroom: Smtp, internet: Internet) -> None:
    send(postroom, "someone@tls.test")
    [got] = wait_for(lambda: internet["tls"].received)
    assert got.tls


def test_connector_with_basic_authentication(postroom: Smtp, internet: Internet) -> None:
    host, port = internet["auth"].address
    create_connector(
        postroom.store,
        SmtpConnector(
            name="Partner",
            address_spaces=(AddressSpace("partner.example", 1),),
            use_dns=False,
            smart_hosts=(SmartHost(f"[{host}]", port),),
            tls="required",
            auth_user="relay",
            password="s3cret",
        ),
    )
    postroom.index_follows()
    send(postroom, "someone@partner.example")
    [got] = wait_for(lambda: internet["auth"].received)
    assert got.login == "relay" and got.tls


def _enqueue(store: Store, recipient: str, sender: str = SENDER) -> str:
    """A queue file put straight into the queue (as if DNS changed after RCPT accepted it)."""
    header = spool.envelope(
        queue_id="T1",
        sender=sender,
        recipients=[recipient],
        received=datetime.now(UTC).isoformat(),
        client="127.0.0.1",
        message_id="<t1@example.com>",
        reason="test",
    )
    staged = spool.stage(
        store.paths.queue, header, b"From: x@example.com\r\nSubject: Direct\r\n\r\nHi.\r\n"
    )
    maildir.publish([staged], maildir.DirectorySyncs())
    return staged.final.name


@pytest.mark.parametrize(
    ("recipient", "status"),
    [("someone@nullmx.test", "5.1.10"), ("someone@loop.test", "5.4.6")],
)
def test_null_mx_and_a_loop_bounce_at_once(
    postroom: Smtp, internet: Internet, recipient: str, status: str
) -> None:
    # At RCPT both are refused outright; mail already queued meets them in the queue.
    with smtplib.SMTP("127.0.0.1", postroom.port, timeout=10) as client:
        client.ehlo()
        client.mail(SENDER)
        code, _ = client.rcpt(recipient)
        assert code >= 550
    _enqueue(postroom.store, recipient)
    [notice] = wait_for(lambda: notices(postroom), what="the NDR")
    [fields] = report(notice)
    assert fields["Status"] == status
    wait_for(lambda: queue_empty(postroom.store))


# -- the administrator's actions ----------------------------------------------------------------


def test_frozen_queue_waits_until_forced(postroom: Smtp, internet: Internet) -> None:
    text = control.submit(postroom.store, Request(Action.FREEZE, hop="accept.test"))
    assert "frozen" in text
    assert state.frozen_hops(postroom.store.paths.queue) == {"accept.test"}
    send(postroom, "someone@accept.test")
    time.sleep(1.5)  # the queue looks 4 times a second: give it several chances to misbehave
    assert internet["accept"].received == []
    control.submit(postroom.store, Request(Action.UNFREEZE, hop="accept.test"))
    control.submit(postroom.store, Request(Action.RETRY, hop="accept.test"))
    wait_for(lambda: internet["accept"].received, what="delivery after unfreezing")


def test_delete_with_ndr_by_a_running_queue(postroom: Smtp, internet: Internet) -> None:
    send(postroom, "someone@drop.test", subject="Doomed")
    wait_for(lambda: events(postroom.store, "deferred"))
    [item] = load_items(postroom.store.paths.queue)
    text = control.submit(postroom.store, Request(Action.DELETE, message=item.name, ndr=True))
    assert "with an NDR" in text
    [notice] = wait_for(lambda: notices(postroom), what="the NDR")
    [fields] = report(notice)
    assert fields["Action"] == "failed" and fields["Status"] == "5.3.0"
    wait_for(lambda: queue_empty(postroom.store))
    wait_for(lambda: events(postroom.store, "deleted"), what="the deletion logged")


def test_requests_without_a_running_queue(store: Store, internet: Internet) -> None:
    organisation(store)
    configure(store, internet)
    name = _enqueue(store, "someone@accept.test")
    assert "frozen" in control.submit(store, Request(Action.FREEZE, message=name))
    assert state.load(store.paths.queue, name).frozen
    assert "Deleted 1 recipient(s) of 1 message without an NDR" in control.submit(
        store, Request(Action.DELETE, message=name)
    )
    assert queue_empty(store)
    assert not (store.paths.queue / "state" / name).exists()
    with pytest.raises(PostroomError, match="not in the queue"):
        control.submit(store, Request(Action.DELETE, message=name))


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (Request(Action.DELETE), "Say which message or queue"),
        (Request(Action.FREEZE, message="x", hop="y"), "not both"),
        (Request(Action.RETRY, message="x", ndr=True), "--ndr goes with delete only"),
    ],
)
def test_bad_requests_refused(store: Store, request_: Request, message: str) -> None:
    with pytest.raises(PostroomError, match=message):
        control.submit(store, request_)


def test_restart_keeps_retry_times_and_delivers(store: Store, internet: Internet) -> None:
    organisation(store)
    configure(store, internet, retry_intervals="3s,3s,3s,3s")
    running = start(store)
    try:
        send(running, "someone@flaky.test")
        wait_for(lambda: events(store, "deferred"))
    finally:
        running.service.stop()
    [item] = load_items(store.paths.queue)
    assert item.state.attempts == 1 and item.state.next_retry > time.time() - 1
    raw = json.loads((store.paths.queue / "state" / item.name).read_bytes())
    assert raw["deferred"]["someone@flaky.test"]["status"].startswith("4.")
    running = start(store)
    try:
        wait_for(lambda: internet["flaky"].received, timeout=30, what="delivery after restart")
        wait_for(lambda: queue_empty(store))
    finally:
        running.service.stop()


# -- what the sender asked for (RFC 3461) -------------------------------------------------------


def _send_with(smtp: Smtp, recipient: str, rcpt_options: list[str], subject: str) -> None:
    body = (
        f"From: {SENDER}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@example.com>\r\n"
        "\r\nHi.\r\n"
    )
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("dsn")
        client.sendmail(SENDER, [recipient], body.encode(), ["RET=HDRS"], rcpt_options)


def test_notify_never_means_no_ndr(postroom: Smtp, internet: Internet) -> None:
    _send_with(postroom, "nobody@reject.test", ["NOTIFY=NEVER"], "Quiet")
    wait_for(lambda: events(postroom.store, "bounced"), what="the bounce")
    wait_for(lambda: queue_empty(postroom.store))
    assert notices(postroom) == []


def test_notify_success_reports_relayed_to_a_hop_without_dsn(
    postroom: Smtp, internet: Internet
) -> None:
    _send_with(postroom, "someone@accept.test", ["NOTIFY=SUCCESS,FAILURE"], "Tell")
    [notice] = wait_for(lambda: notices(postroom), what="the success notice")
    [fields] = report(notice)
    assert fields["Action"] == "relayed"
    assert fields["Status"].startswith("2.")
    # RET=HDRS: the original's headers come back, not its body.
    assert "Hi." not in notice.get_payload()[2].as_string()


def test_ndr_copy_goes_to_the_configured_address(store: Store, internet: Internet) -> None:
    organisation(store)
    configure(store, internet, ndr_copy_to="ann@example.net")
    running = start(store)
    try:
        send(running, "nobody@reject.test", subject="Copied")
        wait_for(lambda: notices(running), what="the NDR to the sender")
        [copy] = wait_for(lambda: notices(running, "ann"), what="the copy")
        assert report(copy)[0]["Action"] == "failed"
    finally:
        running.service.stop()


def test_local_delivery_that_fails_waits_and_is_retried(postroom: Smtp, internet: Internet) -> None:
    # The sender's Maildir cannot take the NDR (its tmp/ is a file: as root, permissions
    # would not stop us); the notification waits in the "Local delivery" queue, then arrives.
    blocker = postroom.store.paths.mailbox("jsmith") / "tmp"
    blocker.rmdir()
    blocker.write_text("in the way")
    send(postroom, "nobody@reject.test", subject="Blocked")

    def waiting_locally() -> bool:
        items = load_items(postroom.store.paths.queue)
        return any(
            item.entry.sender == "" and item.state.attempts >= 1 and item.state.last_error
            for item in items
        )

    wait_for(waiting_locally, what="the NDR deferred in the Local delivery queue")
    hops = control.snapshot(postroom.store)
    assert [hop.name for hop in hops] == ["Local delivery"]
    assert "mailbox could not be written" in hops[0].last_error
    blocker.unlink()
    blocker.mkdir()
    [notice] = wait_for(lambda: notices(postroom), what="the NDR after the retry")
    assert "Blocked" in notice["Subject"]
    wait_for(lambda: queue_empty(postroom.store))
