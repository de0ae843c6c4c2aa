"""RFC 3464 notifications: the parsed report's every field, and when none is sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message

import pytest

from app.errors import PostroomError
from app.outbound.dsn import (
    Action,
    RecipientStatus,
    build_dsn,
    dsn_for,
    is_dsn,
    status_from,
    wants_dsn,
)
from app.outbound.envelope import Notify, OutboundMessage, Recipient, Ret
from app.outbound.sender import Outcome, RecipientResult

FQDN = "mail.postroom.test"
ARRIVAL = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
ATTEMPT = ARRIVAL + timedelta(minutes=15)
EXPIRY = ARRIVAL + timedelta(days=2)
ORIGINAL = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: bob@partner.test, carol@partner.test\r\n"
    b"Subject: Quarterly figures\r\n"
    b"Message-ID: <q1@example.com>\r\n"
    b"\r\n"
    b"The figures are attached.\r\n"
)
BOB = Recipient("bob@partner.test", orcpt="rfc822;Bob@Partner.test")
CAROL = Recipient("carol@partner.test")


def original(**extra: object) -> OutboundMessage:
    fields: dict[str, object] = {
        "sender": "alice@example.com",
        "recipients": (BOB, CAROL),
        "content": ORIGINAL,
    }
    fields.update(extra)
    return OutboundMessage(**fields)  # type: ignore[arg-type]


def failed(recipient: Recipient = BOB) -> RecipientStatus:
    return RecipientStatus(
        recipient=recipient,
        action=Action.FAILED,
        status="5.1.1",
        remote_mta="mx.partner.test",
        diagnostic="550 5.1.1 <bob@partner.test>: No such user",
        last_attempt=ATTEMPT,
    )


def delayed(recipient: Recipient = CAROL) -> RecipientStatus:
    return RecipientStatus(
        recipient=recipient,
        action=Action.DELAYED,
        status="4.4.1",
        remote_mta="mx.partner.test",
        diagnostic="451 4.4.1 Try again later",
        last_attempt=ATTEMPT,
        will_retry_until=EXPIRY,
    )


def parts(content: bytes) -> tuple[Message, Message, list[Message], Message]:
    report = message_from_bytes(content)
    human, status, returned = report.get_payload()
    blocks = status.get_payload()
    assert isinstance(blocks, list)
    return report, human, blocks, returned


def test_failure_report_fields() -> None:
    sent = build_dsn(
        original(envid="Q1-2026"), [failed()], reporting_mta=FQDN, arrival=ARRIVAL, now=ATTEMPT
    )
    assert sent.sender == "" and sent.recipient == "alice@example.com"
    assert b"\r\n" in sent.content and b"\n" not in sent.content.replace(b"\r\n", b"")
    report, human, blocks, returned = parts(sent.content)

    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert report["From"] == f"MAILER-DAEMON <postmaster@{FQDN}>"
    assert report["To"] == "alice@example.com"
    assert report["Subject"] == "Undeliverable: Quarterly figures"
    assert report["Auto-Submitted"] == "auto-replied"
    assert report["In-Reply-To"] == "<q1@example.com>"
    assert report["Message-ID"].endswith(f"@{FQDN}>")
    assert is_dsn(sent.content)

    assert human.get_content_type() == "text/plain"
    text = human.get_payload(decode=True).decode()
    assert "<bob@partner.test>: could not be delivered" in text
    assert "550 5.1.1 <bob@partner.test>: No such user" in text
    assert "mx.partner.test" in text
    assert "What to do" in text

    per_message, bob = blocks
    assert per_message["Reporting-MTA"] == f"dns; {FQDN}"
    assert per_message["Original-Envelope-Id"] == "Q1-2026"
    assert per_message["Arrival-Date"] == "Sat, 05 Dec 2026 09:30:00 +0000"
    assert bob["Original-Recipient"] == "rfc822; Bob@Partner.test"
    assert bob["Final-Recipient"] == "rfc822; bob@partner.test"
    assert bob["Action"] == "failed"
    assert bob["Status"] == "5.1.1"
    assert bob["Remote-MTA"] == "dns; mx.partner.test"
    assert bob["Diagnostic-Code"] == "smtp; 550 5.1.1 <bob@partner.test>: No such user"
    assert bob["Last-Attempt-Date"] == "Sat, 05 Dec 2026 09:45:00 +0000"
    assert bob["Will-Retry-Until"] is None

    assert returned.get_content_type() == "text/rfc822-headers"  # RET not given: headers
    headers = returned.get_payload()
    assert "Subject: Quarterly figures" in headers
    assert "The figures are attached." not in headers


def test_delay_report_says_until_when() -> None:
    sent = build_dsn(original(), [delayed()], reporting_mta=FQDN, arrival=ARRIVAL, now=ATTEMPT)
    report, human, blocks, _ = parts(sent.content)
    assert report["Subject"] == "Delayed: Quarterly figures"
    text = human.get_payload(decode=True).decode()
    assert (
        "<carol@partner.test>: has not yet been delivered, will keep trying until "
        "Mon, 07 Dec 2026 09:30:00 +0000" in text
    )
    assert "451 4.4.1 Try again later" in text
    per_message, carol = blocks
    assert per_message["Original-Envelope-Id"] is None
    assert carol["Action"] == "delayed"
    assert carol["Status"] == "4.4.1"
    assert carol["Will-Retry-Until"] == "Mon, 07 Dec 2026 09:30:00 +0000"
    assert carol["Original-Recipient"] is None


def test_one_report_for_a_failure_and_a_delay() -> None:
    sent = build_dsn(original(), [failed(), delayed()], reporting_mta=FQDN, arrival=ARRIVAL)
    report, human, blocks, _ = parts(sent.content)
    assert report["Subject"].startswith("Undeliverable:")
    assert [block["Action"] for block in blocks[1:]] == ["failed", "delayed"]
    text = human.get_payload(decode=True).decode()
    assert "could not be delivered" in text and "has not yet been delivered" in text


def test_success_report() -> None:
    done = RecipientStatus(BOB, Action.DELIVERED, "2.0.0", remote_mta="mx.partner.test")
    sent = build_dsn(original(), [done], reporting_mta=FQDN, arrival=ARRIVAL)
    report, human, blocks, _ = parts(sent.content)
    assert report["Subject"] == "Delivered: Quarterly figures"
    assert blocks[1]["Action"] == "delivered"
    assert "was delivered" in human.get_payload(decode=True).decode()


def test_ret_full_returns_the_whole_message() -> None:
    sent = build_dsn(original(ret=Ret.FULL), [failed()], reporting_mta=FQDN, arrival=ARRIVAL)
    _, _, _, returned = parts(sent.content)
    assert returned.get_content_type() == "message/rfc822"
    [inner] = returned.get_payload()
    assert inner["Subject"] == "Quarterly figures"
    assert inner.get_payload() == "The figures are attached.\r\n"


def test_ret_hdrs_returns_headers_only() -> None:
    sent = build_dsn(original(ret=Ret.HDRS), [failed()], reporting_mta=FQDN, arrival=ARRIVAL)
    _, _, _, returned = parts(sent.content)
    assert returned.get_content_type() == "text/rfc822-headers"
    assert "Message-ID: <q1@example.com>" in returned.get_payload()


def test_a_delay_report_returns_headers_even_with_ret_full() -> None:
    sent = build_dsn(original(ret=Ret.FULL), [delayed()], reporting_mta=FQDN, arrival=ARRIVAL)
    assert parts(sent.content)[3].get_content_type() == "text/rfc822-headers"


def test_utf8_subject_and_8bit_headers_survive() -> None:
    content = "From: Jörg <jorg@example.com>\r\nSubject: Grüße\r\n\r\nHallo\r\n".encode()
    sent = build_dsn(original(content=content), [failed()], reporting_mta=FQDN, arrival=ARRIVAL)
    report, _, _, returned = parts(sent.content)
    assert "Grüße" in str(report["Subject"]) or "=?utf-8?" in report["Subject"]
    assert "Jörg".encode() in sent.content  # the returned headers are the original bytes
    assert returned.get_content_type() == "text/rfc822-headers"


# --- when a notification is sent ----------------------------------------------------------------


def test_never_to_the_null_sender() -> None:
    bounce = original(sender="")
    assert not wants_dsn(bounce, BOB, Action.FAILED)
    assert dsn_for(bounce, [failed()], reporting_mta=FQDN, arrival=ARRIVAL) is None
    with pytest.raises(PostroomError, match="null sender") as raised:
        build_dsn(bounce, [failed()], reporting_mta=FQDN, arrival=ARRIVAL)
    assert "\n" not in str(raised.value)


def test_never_about_a_notification() -> None:
    first = build_dsn(original(), [failed()], reporting_mta=FQDN, arrival=ARRIVAL)
    about_dsn = original(content=first.content)  # even with a real sender, as if forwarded
    assert not wants_dsn(about_dsn, BOB, Action.FAILED)
    assert dsn_for(about_dsn, [failed()], reporting_mta=FQDN, arrival=ARRIVAL) is None
    assert not is_dsn(ORIGINAL)
    other_report = b"Content-Type: multipart/report; report-type=disposition-notification\r\n\r\n"
    assert not is_dsn(other_report)  # a read receipt is not a DSN


def test_default_notify_is_failure_and_delay() -> None:
    assert wants_dsn(original(), BOB, Action.FAILED)
    assert wants_dsn(original(), BOB, Action.DELAYED)
    assert not wants_dsn(original(), BOB, Action.DELIVERED)


@pytest.mark.parametrize(
    ("notify", "action", "wanted"),
    [
        ({Notify.NEVER}, Action.FAILED, False),
        ({Notify.NEVER}, Action.DELAYED, False),
        ({Notify.SUCCESS}, Action.FAILED, False),
        ({Notify.SUCCESS}, Action.DELIVERED, True),
        ({Notify.SUCCESS}, Action.RELAYED, True),
        ({Notify.DELAY}, Action.FAILED, False),
        ({Notify.DELAY}, Action.DELAYED, True),
        ({Notify.FAILURE}, Action.DELAYED, False),
        ({Notify.FAILURE}, Action.FAILED, True),
        ({Notify.FAILURE, Notify.DELAY}, Action.DELAYED, True),
    ],
)
def test_notify_decides(notify: set[Notify], action: Action, wanted: bool) -> None:
    recipient = Recipient("bob@partner.test", notify=frozenset(notify))
    assert wants_dsn(original(), recipient, action) is wanted


def test_dsn_for_reports_only_those_who_asked() -> None:
    quiet = Recipient("bob@partner.test", notify=frozenset({Notify.NEVER}))
    sent = dsn_for(original(), [failed(quiet), delayed(CAROL)], reporting_mta=FQDN, arrival=ARRIVAL)
    assert sent is not None
    _, _, blocks, _ = parts(sent.content)
    assert [block["Final-Recipient"] for block in blocks[1:]] == ["rfc822; carol@partner.test"]
    assert dsn_for(original(), [failed(quiet)], reporting_mta=FQDN, arrival=ARRIVAL) is None


def test_no_statuses_is_refused() -> None:
    with pytest.raises(PostroomError, match="at least one recipient status"):
        build_dsn(original(), [], reporting_mta=FQDN, arrival=ARRIVAL)


# --- from the sender's results ------------------------------------------------------------------


def result(outcome: Outcome, *, dsn_passed: bool = False) -> RecipientResult:
    code = {Outcome.DELIVERED: 250, Outcome.DEFERRED: 451, Outcome.FAILED: 550}[outcome]
    status = f"{code // 100}.1.1"
    return RecipientResult(
        BOB, outcome, status, f"{code} {status} text", code, "mx.partner.test", dsn_passed
    )


def test_status_from_a_failure_and_a_deferral() -> None:
    bounced = status_from(result(Outcome.FAILED), attempted=ATTEMPT, retry_until=EXPIRY)
    assert bounced == RecipientStatus(
        BOB, Action.FAILED, "5.1.1", "mx.partner.test", "550 5.1.1 text", ATTEMPT, None
    )
    waiting = status_from(result(Outcome.DEFERRED), attempted=ATTEMPT, retry_until=EXPIRY)
    assert waiting is not None
    assert (waiting.action, waiting.will_retry_until) == (Action.DELAYED, EXPIRY)


def test_status_from_a_delivery_depends_on_dsn_passed_on() -> None:
    relayed = status_from(result(Outcome.DELIVERED), attempted=ATTEMPT)
    assert relayed is not None and relayed.action is Action.RELAYED
    assert status_from(result(Outcome.DELIVERED, dsn_passed=True), attempted=ATTEMPT) is None
