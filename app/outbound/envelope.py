"""A message going out with its envelope and RFC 3461 DSN requests (plain data, any thread)."""

from __future__ import annotations

import enum
import logging
import re
from dataclasses import dataclass

from app.errors import PostroomError

log = logging.getLogger(__name__)

NULL_SENDER = ""  # MAIL FROM:<>, the sender of every delivery status notification


class Notify(enum.Enum):
    """An RFC 3461 NOTIFY keyword: when the sender wants a delivery status notification."""

    NEVER = "NEVER"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    DELAY = "DELAY"


class Ret(enum.Enum):
    """RFC 3461 RET: what a failure notification returns of the original message."""

    FULL = "FULL"
    HDRS = "HDRS"


@dataclass(frozen=True)
class Recipient:
    """One envelope recipient with the DSN requests its RCPT TO carried.

    ``notify`` is None when the client gave no NOTIFY; ``orcpt`` is the original recipient as
    ``addr-type;address`` with the xtext decoded (``rfc822;user@example.com``), or None.
    """

    address: str
    notify: frozenset[Notify] | None = None
    orcpt: str | None = None


@dataclass(frozen=True)
class OutboundMessage:
    """One message to send: envelope sender ('' for <>), recipients, content with CRLF endings.

    ``ret`` and ``envid`` are the RFC 3461 MAIL FROM parameters the client gave (None if not);
    ``smtputf8`` is True when the client sent SMTPUTF8 (the headers may be UTF-8).
    """

    sender: str
    recipients: tuple[Recipient, ...]
    content: bytes
    ret: Ret | None = None
    envid: str | None = None
    smtputf8: bool = False


_NOTIFY_ORDER = (Notify.SUCCESS, Notify.FAILURE, Notify.DELAY)


def parse_notify(value: str) -> frozenset[Notify]:
    """The NOTIFY parameter's value (``SUCCESS,DELAY`` or ``NEVER``) as keywords."""
    words = [word.strip().upper() for word in value.split(",")]
    try:
        notify = frozenset(Notify(word) for word in words)
    except ValueError:
        raise PostroomError(
            f"NOTIFY={value} is not valid: use NEVER, or one or more of SUCCESS, FAILURE and "
            "DELAY separated by commas."
        ) from None
    if Notify.NEVER in notify and len(notify) > 1:
        raise PostroomError(f"NOTIFY={value} is not valid: NEVER cannot be combined with others.")
    return notify


def notify_text(notify: frozenset[Notify]) -> str:
    """The NOTIFY parameter's value for ``notify``, keywords in a fixed order."""
    if Notify.NEVER in notify:
        return Notify.NEVER.value
    return ",".join(word.value for word in _NOTIFY_ORDER if word in notify)


def xtext_encode(text: str) -> str:
    """RFC 3461 xtext: '+', '=', controls, space and non-ASCII as +XX (UTF-8 bytes)."""
    out: list[str] = []
    for byte in text.encode("utf-8"):
        if 33 <= byte <= 126 and byte not in (ord("+"), ord("=")):
            out.append(chr(byte))
        else:
            out.append(f"+{byte:02X}")
    return "".join(out)


_XTEXT_HEX = re.compile(r"\+([0-9A-Fa-f]{2})")


def xtext_decode(text: str) -> str:
    """The text an RFC 3461 xtext stands for (a '+' not followed by two hex digits stays)."""
    raw = _XTEXT_HEX.sub(lambda match: chr(int(match.group(1), 16)), text)
    return raw.encode("latin-1", "replace").decode("utf-8", "replace")
