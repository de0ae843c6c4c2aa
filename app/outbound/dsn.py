"""RFC 3464 delivery status notifications: whether to send one, and its bytes (any thread)."""

from __future__ import annotations

import enum
import logging
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.generator import BytesGenerator
from email.header import Header, decode_header, make_header
from email.message import Message
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesHeaderParser, BytesParser
from email.utils import format_datetime, make_msgid
from io import BytesIO

from app.errors import PostroomError
from app.outbound.envelope import NULL_SENDER, Notify, OutboundMessage, Recipient, Ret
from app.outbound.sender import Outcome, RecipientResult

log = logging.getLogger(__name__)

# compat32 writes an unchanged header back as it came, so the returned original stays intact.
_POLICY = policy.compat32.clone(linesep="\r\n")

_HEADER_END = re.compile(rb"\r?\n\r?\n")

# RFC 3461 §4.1 leaves the default to the MTA; like Postfix and Exchange, failures and delays.
DEFAULT_NOTIFY = frozenset({Notify.FAILURE, Notify.DELAY})


class Action(enum.Enum):
    """RFC 3464 Action: what happened to one recipient."""

    FAILED = "failed"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    RELAYED = "relayed"  # passed to a hop that does not send DSNs (RFC 3461 §5.2.2)
    EXPANDED = "expanded"  # delivered to a group's members


_ASKED_BY = {
    Action.FAILED: Notify.FAILURE,
    Action.DELAYED: Notify.DELAY,
    Action.DELIVERED: Notify.SUCCESS,
    Action.RELAYED: Notify.SUCCESS,
    Action.EXPANDED: Notify.SUCCESS,
}


@dataclass(frozen=True)
class RecipientStatus:
    """One recipient's line in a notification."""

    recipient: Recipient
    action: Action
    status: str  # RFC 3463 x.y.z
    remote_mta: str | None = None  # the host that answered
    diagnostic: str | None = None  # its SMTP reply, e.g. "550 5.1.1 No such user"
    last_attempt: datetime | None = None
    will_retry_until: datetime | None = None  # for delayed: when the message expires


@dataclass(frozen=True)
class Notification:
    """A notification ready to queue: to the original envelope sender, from the null sender."""

    recipient: str
    content: bytes  # CRLF line endings, as a queue file holds a message

    @property
    def sender(self) -> str:
        return NULL_SENDER


def status_from(
    result: RecipientResult, *, attempted: datetime, retry_until: datetime | None = None
) -> RecipientStatus | None:
    """The notification line for a sender's result: failed, delayed (the caller decides when a
    deferral is worth a delay notice) or relayed. None for a recipient the next hop took with
    DSN passed on: from then on that hop reports success (RFC 3461 §5.2.2.1)."""
    if result.outcome is Outcome.DELIVERED and result.dsn_passed:
        return None
    action = {
        Outcome.FAILED: Action.FAILED,
        Outcome.DEFERRED: Action.DELAYED,
        Outcome.DELIVERED: Action.RELAYED,  # a hop without DSN: we can only say it went on
    }[result.outcome]
    return RecipientStatus(
        recipient=result.recipient,
        action=action,
        status=result.status,
        remote_mta=result.remote_host,
        diagnostic=result.diagnostic,
        last_attempt=attempted,
        will_retry_until=retry_until if action is Action.DELAYED else None,
    )


def is_dsn(content: bytes) -> bool:
    """Whether the message is itself a delivery status notification."""
    headers = BytesHeaderParser(policy=_POLICY).parsebytes(content)
    report_type = headers.get_param("report-type", header="content-type")
    return (
        headers.get_content_type() == "multipart/report"
        and isinstance(report_type, str)
        and report_type.lower() == "delivery-status"
    )


def wants_dsn(message: OutboundMessage, recipient: Recipient, action: Action) -> bool:
    """Whether ``action`` for ``recipient`` calls for a notification to the message's sender:
    never to the null sender, never about a notification, and only when NOTIFY asks for it."""
    if message.sender == NULL_SENDER or is_dsn(message.content):
        return False
    notify = DEFAULT_NOTIFY if recipient.notify is None else recipient.notify
    return Notify.NEVER not in notify and _ASKED_BY[action] in notify


def dsn_for(
    message: OutboundMessage,
    statuses: Sequence[RecipientStatus],
    *,
    reporting_mta: str,
    arrival: datetime,
    now: datetime | None = None,
) -> Notification | None:
    """The notification for the statuses that call for one (``wants_dsn``), or None if none do."""
    wanted = [s for s in statuses if wants_dsn(message, s.recipient, s.action)]
    if not wanted:
        return None
    return build_dsn(message, wanted, reporting_mta=reporting_mta, arrival=arrival, now=now)


def build_dsn(
    message: OutboundMessage,
    statuses: Sequence[RecipientStatus],
    *,
    reporting_mta: str,
    arrival: datetime,
    now: datetime | None = None,
) -> Notification:
    """A multipart/report notification about ``message`` for ``statuses`` (not filtered: see
    ``dsn_for``). A failure report returns the whole message when RET=FULL, else its headers."""
    if not statuses:
        raise PostroomError("A delivery status notification needs at least one recipient status.")
    if message.sender == NULL_SENDER:
        raise PostroomError("No delivery status notification goes to the null sender <>.")
    now = now or datetime.now(UTC)
    original = BytesParser(policy=_POLICY).parsebytes(message.content)
    subject = _original_subject(original)

    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = f"MAILER-DAEMON <postmaster@{reporting_mta}>"
    report["To"] = _header_text(message.sender)
    report["Subject"] = _header_text(f"{_subject_prefix(statuses)}: {subject}".rstrip(": "))
    report["Date"] = format_datetime(now)
    report["Message-ID"] = make_msgid(domain=reporting_mta)
    report["Auto-Submitted"] = "auto-replied"  # RFC 3834: no automatic reply to this one
    original_id = original.get("Message-ID")
    if original_id:
        report["In-Reply-To"] = str(original_id).strip()
        report["References"] = str(original_id).strip()

    text = _human_text(reporting_mta, subject, statuses)
    report.attach(MIMEText(text, "plain", "us-ascii" if text.isascii() else "utf-8"))
    report.attach(_status_part(message, statuses, reporting_mta, arrival))
    report.attach(_original_part(message, original, statuses))

    buffer = BytesIO()
    BytesGenerator(buffer, mangle_from_=False, policy=_POLICY).flatten(report)
    log.info(
        "notification to <%s> about %d recipient(s): %s",
        message.sender,
        len(statuses),
        ", ".join(sorted({s.action.value for s in statuses})),
    )
    return Notification(recipient=message.sender, content=buffer.getvalue())


def _header_text(value: str) -> str:
    return value if value.isascii() else Header(value, "utf-8").encode()


def _original_subject(original: Message) -> str:
    raw = original.get("Subject")
    if raw is None:
        return ""
    try:
        return " ".join(str(make_header(decode_header(str(raw)))).split())
    except (UnicodeError, LookupError, ValueError):
        return " ".join(str(raw).split())


def _subject_prefix(statuses: Sequence[RecipientStatus]) -> str:
    actions = {status.action for status in statuses}
    if Action.FAILED in actions:
        return "Undeliverable"
    if Action.DELAYED in actions:
        return "Delayed"
    return "Delivered"


def _when(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC))


def _human_text(reporting_mta: str, subject: str, statuses: Sequence[RecipientStatus]) -> str:
    lines = [f"This is the mail system at {reporting_mta}.", ""]
    if subject:
        lines += [f'About your message "{subject}":', ""]
    failed = [s for s in statuses if s.action is Action.FAILED]
    delayed = [s for s in statuses if s.action is Action.DELAYED]
    done = [s for s in statuses if s.action not in (Action.FAILED, Action.DELAYED)]
    if failed:
        lines.append("It could not be delivered to these recipients and will not be sent again:")
        for status in failed:
            lines.append(f"  <{status.recipient.address}>: could not be delivered.")
            lines += _reply_lines(status)
        lines += [
            "",
            "What to do: check each address above for typing errors and send the message again. "
            "If the address is right, the reply above says what the receiving server objected "
            "to; reach the recipient another way, or show this message to your administrator.",
            "",
        ]
    if delayed:
        lines.append("It has not yet been delivered to these recipients:")
        for status in delayed:
            until = status.will_retry_until
            keep = f", will keep trying until {_when(until)}" if until else ", will keep trying"
            lines.append(f"  <{status.recipient.address}>: has not yet been delivered{keep}.")
            lines += _reply_lines(status)
        lines += [
            "",
            "What to do: nothing yet; there is no need to send the message again. If it still "
            "cannot be delivered when the time above has passed, you will be told.",
            "",
        ]
    if done:
        lines.append("It was delivered as you asked to be told:")
        for status in done:
            verb = {
                Action.RELAYED: "was passed on to a server that does not report delivery",
                Action.EXPANDED: "was delivered to the members of the list",
            }.get(status.action, "was delivered")
            where = f" ({status.remote_mta})" if status.remote_mta else ""
            lines.append(f"  <{status.recipient.address}>: {verb}{where}.")
        lines.append("")
    # Paragraphs wrapped for mail readers that do not; indented lines (replies) stay whole.
    wrapped = [line if line.startswith(" ") else textwrap.fill(line, 76) for line in lines]
    return "\r\n".join("\r\n".join(line.splitlines()) or line for line in wrapped)


def _reply_lines(status: RecipientStatus) -> list[str]:
    if status.diagnostic and status.remote_mta:
        return [f"    {status.remote_mta} replied: {status.diagnostic}"]
    if status.diagnostic:
        return [f"    Reason: {status.diagnostic}"]
    return []


def _fields(pairs: Sequence[tuple[str, str | None]]) -> Message:
    block = Message(policy=_POLICY)
    for name, value in pairs:
        if value is not None:
            block[name] = value
    return block


def _status_part(
    message: OutboundMessage,
    statuses: Sequence[RecipientStatus],
    reporting_mta: str,
    arrival: datetime,
) -> Message:
    blocks: list[Message | str] = [
        _fields(
            [
                ("Reporting-MTA", f"dns; {reporting_mta}"),
                ("Original-Envelope-Id", message.envid),
                ("Arrival-Date", _when(arrival)),
            ]
        )
    ]
    for status in statuses:
        orcpt = status.recipient.orcpt
        if orcpt is not None:
            kind, _, address = orcpt.partition(";")
            orcpt = f"{kind.strip()}; {address.strip()}"
        blocks.append(
            _fields(
                [
                    ("Original-Recipient", orcpt),
                    ("Final-Recipient", f"rfc822; {status.recipient.address}"),
                    ("Action", status.action.value),
                    ("Status", status.status),
                    ("Remote-MTA", f"dns; {status.remote_mta}" if status.remote_mta else None),
                    (
                        "Diagnostic-Code",
                        f"smtp; {status.diagnostic}" if status.diagnostic else None,
                    ),
                    (
                        "Last-Attempt-Date",
                        _when(status.last_attempt) if status.last_attempt else None,
                    ),
                    (
                        "Will-Retry-Until",
                        _when(status.will_retry_until)
                        if status.will_retry_until and status.action is Action.DELAYED
                        else None,
                    ),
                ]
            )
        )
    part = Message(policy=_POLICY)
    part["Content-Type"] = "message/delivery-status"
    part.set_payload(blocks)
    return part


def _original_part(
    message: OutboundMessage, original: Message, statuses: Sequence[RecipientStatus]
) -> Message:
    failed = any(status.action is Action.FAILED for status in statuses)
    if message.ret is Ret.FULL and failed:
        # RFC 3461 §4.3: RET applies to failures; a delay or success report carries headers only.
        return MIMEMessage(original)
    head = _HEADER_END.split(message.content, maxsplit=1)[0]
    part = Message(policy=_POLICY)
    part["Content-Type"] = "text/rfc822-headers"
    part["Content-Transfer-Encoding"] = "7bit" if head.isascii() else "8bit"
    part.set_payload(head.decode("ascii", "surrogateescape") + "\r\n")
    return part
