"""Send messages to one next hop with aiosmtplib; coroutines run on the outbound runner's loop."""

from __future__ import annotations

import asyncio
import enum
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiosmtplib
from aiosmtplib.protocol import SMTPProtocol

from app.directory.addressing import AddressError, normalize_domain
from app.errors import PostroomError
from app.outbound.envelope import OutboundMessage, Recipient, notify_text, xtext_encode

log = logging.getLogger(__name__)

_QUIT_TIMEOUT = 5.0  # a polite QUIT, never worth waiting long for
_CLOSE_TIMEOUT = 5.0  # the peer's TLS close_notify after QUIT; then the socket is aborted


@dataclass(frozen=True)
class SendOptions:
    """How to speak to the hop: EHLO name, TLS and AUTH policy, time-outs in seconds."""

    helo_name: str  # our FQDN, said in EHLO
    # STARTTLS is used whenever offered; required: a host without it gets nothing (deferred).
    require_tls: bool = False
    # Check the certificate against the host name; a failed check defers, never falls back to
    # plain text (unchecked opportunistic TLS that fails to handshake does fall back).
    verify_certificates: bool = False
    username: str | None = None  # AUTH PLAIN or LOGIN, only ever over TLS
    password: str | None = None
    connect_timeout: float = 30.0  # TCP connection and the greeting
    command_timeout: float = 300.0  # each command's reply (RFC 5321 §4.5.3.2: 5 minutes)
    data_timeout: float = 600.0  # the reply after the message's final dot (10 minutes)


class Outcome(enum.Enum):
    """What became of one recipient at this attempt."""

    DELIVERED = "delivered"  # the hop answered 2xx: it is theirs now
    DEFERRED = "deferred"  # 4xx, or no usable connection: try again later
    FAILED = "failed"  # 5xx, or a message the hop cannot take: never try again


@dataclass(frozen=True)
class RecipientResult:
    """One recipient's fate: the outcome, its RFC 3463 status and the reply or error text."""

    recipient: Recipient
    outcome: Outcome
    status: str  # x.y.z, from the reply when it carries one
    diagnostic: str  # the remote reply ("550 5.1.1 No such user") or what went wrong
    reply_code: int | None  # the remote reply's code; None when no reply decided it
    remote_host: str | None  # the host that answered (for Remote-MTA); None if none did
    dsn_passed: bool = False  # the hop advertised DSN and was given NOTIFY / ORCPT


@dataclass(frozen=True)
class DeliveryResult:
    """What one attempt did with one message: a result per recipient, in the message's order."""

    message: OutboundMessage
    recipients: tuple[RecipientResult, ...]
    host: str | None  # the host that took the transaction, None if no host could be used
    tls: bool

    def of(self, outcome: Outcome) -> list[RecipientResult]:
        """The recipients that ended with ``outcome``."""
        return [result for result in self.recipients if result.outcome is outcome]


class _HostUnusable(Exception):
    """No transaction can start on this host (connection, greeting, EHLO, TLS or AUTH)."""

    def __init__(self, status: str, diagnostic: str, code: int | None = None) -> None:
        super().__init__(diagnostic)
        self.status = status
        self.diagnostic = diagnostic
        self.code = code


class _TlsFailed(_HostUnusable):
    """The TLS handshake failed; an opportunistic sender may try again in plain text."""


class _Client(aiosmtplib.SMTP):
    """aiosmtplib's client, told when its connection is really gone.

    ``close()`` only starts closing: over TLS the socket stays open until the peer answers
    our close_notify, a few loop turns later. ``closed`` is set when the transport has closed
    the socket, so the sender can wait for it before the runner's loop ends.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.closed = asyncio.Event()
        self.last_transport: asyncio.BaseTransport | None = None  # the one close() closed

    def close(self) -> None:
        if self.transport is not None:
            self.last_transport = self.transport
        super().close()

    def _on_connection_lost(self, protocol: SMTPProtocol) -> None:
        # aiosmtplib's one hook for the end of a connection (one connection per client here).
        self.closed.set()
        super()._on_connection_lost(protocol)


@dataclass
class _Session:
    client: _Client
    host: str
    tls: bool


_CONNECTION_ERRORS = (
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPTimeoutError,
    OSError,
)

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)")


def _reply_text(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}".strip()


def _status(code: int, message: str) -> str:
    """The RFC 3463 status the reply carries, or the class alone (x.0.0) when it has none."""
    found = _ENHANCED.match(message.strip())
    if found and found.group(1) == str(code // 100):
        return ".".join(found.groups())
    return f"{code // 100}.0.0"


def _outcome(code: int) -> Outcome:
    if 200 <= code < 300:
        return Outcome.DELIVERED
    return Outcome.FAILED if code >= 500 else Outcome.DEFERRED


def _by_reply(recipient: Recipient, code: int, message: str, session: _Session) -> RecipientResult:
    return RecipientResult(
        recipient=recipient,
        outcome=_outcome(code),
        status=_status(code, message),
        diagnostic=_reply_text(code, message),
        reply_code=code,
        remote_host=session.host,
    )


def _deferred(recipient: Recipient, status: str, text: str, host: str | None) -> RecipientResult:
    return RecipientResult(recipient, Outcome.DEFERRED, status, text, None, host)


def _error_text(error: BaseException) -> str:
    return str(error) or type(error).__name__


def _wire_address(address: str) -> str:
    """The address as sent: an internationalised domain as its A-label, so only a non-ASCII
    local part needs SMTPUTF8."""
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        return f"{local}@{normalize_domain(domain)}"
    except AddressError:
        return address


def _has_8bit(content: bytes) -> bool:
    return not content.isascii()


def check_request(messages: Sequence[OutboundMessage], hosts: Sequence[tuple[str, int]]) -> None:
    """Refuse a batch the sender cannot act on, with one line saying why."""
    if not hosts:
        raise PostroomError(
            "No next-hop host to send to: give at least one host and port (an MX host or a "
            "smart host)."
        )
    for host, port in hosts:
        if not host or not 0 < port < 65536:
            raise PostroomError(
                f"The next-hop host {host or '(empty)'}:{port} is not usable: give a host name "
                "or IP address and a port from 1 to 65535."
            )
    for message in messages:
        if not message.recipients:
            raise PostroomError(
                "The message has no recipients: give at least one recipient to send it to."
            )


async def send(
    message: OutboundMessage, hosts: Sequence[tuple[str, int]], options: SendOptions
) -> DeliveryResult:
    """Send one message to the first of ``hosts`` that takes a connection."""
    return (await send_batch([message], hosts, options))[0]


async def send_batch(
    messages: Sequence[OutboundMessage],
    hosts: Sequence[tuple[str, int]],
    options: SendOptions,
    on_sent: Callable[[int, DeliveryResult], None] | None = None,
) -> list[DeliveryResult]:
    """Send ``messages`` over one connection to the first usable host of ``hosts`` (MX hosts by
    preference or smart hosts, in order); a result per message, in the same order.

    A host that cannot be connected to, or that fails before a transaction starts, hands over
    to the next one; so does a connection lost mid-batch, for the messages not yet begun.
    Messages no host took are deferred with the last host's error (failed if it was a 5xx).
    ``on_sent(index, result)`` is called as soon as a host has answered for a message, so the
    caller can record it at once rather than after the whole batch.
    """
    check_request(messages, hosts)
    results: list[DeliveryResult | None] = [None] * len(messages)
    pending = list(range(len(messages)))
    last = _HostUnusable("4.4.1", "no host was tried")
    for host, port in hosts:
        if not pending:
            break
        try:
            session = await _open(host, port, options)
        except _HostUnusable as error:
            log.info("next hop %s:%d not usable: %s", host, port, error.diagnostic)
            last = error
            continue
        try:
            while pending and session.client.is_connected:
                index = pending.pop(0)
                decided: dict[int, RecipientResult] = {}
                try:
                    await _transfer(session, messages[index], options, decided)
                except _CONNECTION_ERRORS as error:
                    text = f"connection to {host} lost: {_error_text(error)}"
                    last = _HostUnusable("4.4.2", text)
                    for number, recipient in enumerate(messages[index].recipients):
                        decided.setdefault(number, _deferred(recipient, "4.4.2", text, host))
                result = _result(messages[index], decided, session.host, session.tls)
                results[index] = result
                if on_sent is not None:
                    on_sent(index, result)
        finally:
            await _close(session)
    for index in pending:
        results[index] = _unsent(messages[index], last)
    done = [result for result in results if result is not None]
    assert len(done) == len(messages)  # every message got a result above
    return done


def _result(
    message: OutboundMessage, decided: dict[int, RecipientResult], host: str, tls: bool
) -> DeliveryResult:
    ordered = tuple(decided[number] for number in range(len(message.recipients)))
    for result in ordered:
        log.info(
            "%s to %s via %s: %s %s",
            result.outcome.value,
            result.recipient.address,
            host,
            result.status,
            result.diagnostic,
        )
    return DeliveryResult(message, ordered, host, tls)


def _unsent(message: OutboundMessage, error: _HostUnusable) -> DeliveryResult:
    outcome = Outcome.FAILED if error.code is not None and error.code >= 500 else Outcome.DEFERRED
    recipients = tuple(
        RecipientResult(recipient, outcome, error.status, error.diagnostic, error.code, None)
        for recipient in message.recipients
    )
    log.info("%s to %d recipient(s): %s", outcome.value, len(recipients), error.diagnostic)
    return DeliveryResult(message, recipients, None, False)


async def _open(host: str, port: int, options: SendOptions) -> _Session:
    """A connection ready for MAIL FROM: greeted, TLS as asked, authenticated if asked."""
    try:
        return await _open_once(host, port, options, try_tls=True)
    except _TlsFailed as error:
        if options.require_tls or options.verify_certificates or options.username is not None:
            raise
        # Opportunistic TLS that fails is no worse than none: say so and go on in plain text.
        log.warning("TLS with %s:%d failed (%s); sending without TLS", host, port, error)
        return await _open_once(host, port, options, try_tls=False)


async def _open_once(host: str, port: int, options: SendOptions, *, try_tls: bool) -> _Session:
    client = _Client(
        hostname=host,
        port=port,
        local_hostname=options.helo_name,
        timeout=options.command_timeout,
        start_tls=False,  # STARTTLS is decided below, after EHLO, as the options say
        validate_certs=options.verify_certificates,
    )
    session = _Session(client, host, tls=False)
    try:
        await client.connect(timeout=options.connect_timeout)
        await _greet(client)
        if client.supports_extension("starttls") and try_tls:
            await _start_tls(session, host)
        elif options.require_tls:
            raise _HostUnusable(
                "4.7.4",
                f"{host} does not offer STARTTLS and this route requires TLS; "
                "nothing was sent in plain text",
            )
        if options.username is not None:
            await _authenticate(session, options)
    except aiosmtplib.SMTPResponseException as error:
        await _close(session)
        raise _HostUnusable(
            _status(error.code, error.message),
            f"{host} refused the session: {_reply_text(error.code, error.message)}",
            error.code,
        ) from error
    except _TlsFailed:
        await _abandon(session)
        raise
    except _HostUnusable:
        await _close(session)
        raise
    except _CONNECTION_ERRORS as error:
        await _abandon(session)
        raise _HostUnusable("4.4.1", f"{host}:{port}: {_error_text(error)}") from error
    return session


async def _greet(client: _Client) -> None:
    try:
        await client.ehlo()
    except aiosmtplib.SMTPHeloError:
        await client.helo()  # an old server without ESMTP: plain SMTP still carries mail


async def _start_tls(session: _Session, host: str) -> None:
    try:
        await session.client.starttls(server_hostname=host)
    except (aiosmtplib.SMTPResponseException, *_CONNECTION_ERRORS) as error:
        # A refused STARTTLS or a failed handshake (ssl.SSLError is an OSError; a server that
        # gives up mid-handshake shows as a reset): this connection is spent either way.
        raise _TlsFailed("4.7.5", f"TLS with {host} failed: {_error_text(error)}") from error
    session.tls = True
    await session.client.ehlo()  # RFC 3207: forget what was said before TLS, ask again


async def _authenticate(session: _Session, options: SendOptions) -> None:
    client, host = session.client, session.host
    if not session.tls:
        raise _HostUnusable(
            "4.7.4", f"not sending the password to {host} without TLS: it does not offer STARTTLS"
        )
    methods = client.server_auth_methods
    username, password = options.username or "", options.password or ""
    if "plain" in methods:
        await client.auth_plain(username, password)
    elif "login" in methods:
        await client.auth_login(username, password)
    else:
        raise _HostUnusable(
            "4.7.4",
            f"{host} offers no AUTH PLAIN or LOGIN (it offers {', '.join(methods) or 'none'}); "
            "cannot sign in",
        )


async def _abandon(session: _Session) -> None:
    """Drop a connection that cannot carry a QUIT (a broken handshake, a dead peer) at once:
    a polite close would wait for unsent bytes that never leave, and leak the socket."""
    transport = session.client.transport
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    session.client.close()
    await asyncio.sleep(0)  # one loop turn: the transport's connection_lost closes the socket


async def _close(session: _Session) -> None:
    """QUIT, close, and return only once the socket is closed: over TLS, aiosmtplib's close
    sends close_notify and the socket closes when the peer answers; returning before that
    leaves the socket to a loop that may end first (an unclosed-transport leak)."""
    client = session.client
    transport = client.transport
    if client.is_connected:
        try:
            await client.quit(timeout=_QUIT_TIMEOUT)
        except (aiosmtplib.SMTPException, OSError) as error:
            log.debug("QUIT to %s: %s", session.host, error)
    client.close()
    transport = transport or client.last_transport
    if transport is None:
        return  # no connection was ever made
    try:
        await asyncio.wait_for(client.closed.wait(), _CLOSE_TIMEOUT)
    except TimeoutError:
        # A peer that never answers close_notify: drop the connection instead.
        log.debug("%s did not end TLS in %.0f s; aborting", session.host, _CLOSE_TIMEOUT)
        if isinstance(transport, asyncio.WriteTransport):
            transport.abort()
        try:
            await asyncio.wait_for(client.closed.wait(), _CLOSE_TIMEOUT)
        except TimeoutError:  # never seen: an aborted transport ends on the next loop turn
            log.warning("the connection to %s did not close after an abort", session.host)


async def _reset(session: _Session) -> None:
    """RSET after a refused transaction, so the next message starts clean."""
    if session.client.is_connected:
        try:
            await session.client.rset()
        except aiosmtplib.SMTPResponseException as error:
            log.debug("RSET to %s: %s", session.host, error)


async def _transfer(
    session: _Session,
    message: OutboundMessage,
    options: SendOptions,
    decided: dict[int, RecipientResult],
) -> None:
    """One transaction (MAIL, RCPT per recipient, DATA), each recipient's result in
    ``decided`` as it becomes known; a lost connection raises and leaves the rest undecided."""
    client, host = session.client, session.host
    utf8_offered = client.supports_extension("smtputf8")
    dsn_offered = client.supports_extension("dsn")
    sender_utf8 = message.smtputf8 or not message.sender.isascii()
    wire: list[tuple[int, Recipient, str]] = []
    for number, recipient in enumerate(message.recipients):
        address = _wire_address(recipient.address)
        if not utf8_offered and (sender_utf8 or not address.isascii()):
            decided[number] = RecipientResult(
                recipient,
                Outcome.FAILED,
                "5.6.7",
                f"the message needs SMTPUTF8 (a non-ASCII address or header) and {host} does "
                "not offer it; it was not sent there",
                None,
                host,
            )
        else:
            wire.append((number, recipient, address))
    if not wire:
        return
    utf8 = utf8_offered and (sender_utf8 or any(not a.isascii() for _, _, a in wire))
    encoding = "utf-8" if utf8 else "ascii"

    mail_options: list[str] = []
    if client.supports_extension("size"):
        mail_options.append(f"SIZE={len(message.content)}")
    if _has_8bit(message.content) and client.supports_extension("8bitmime"):
        mail_options.append("BODY=8BITMIME")
    if utf8:
        mail_options.append("SMTPUTF8")
    if dsn_offered:
        if message.ret is not None:
            mail_options.append(f"RET={message.ret.value}")
        if message.envid is not None:
            mail_options.append(f"ENVID={xtext_encode(message.envid)}")
    try:
        await client.mail(
            message.sender, options=mail_options, encoding=encoding, timeout=options.command_timeout
        )
    except aiosmtplib.SMTPResponseException as error:
        for number, recipient, _ in wire:
            decided[number] = _by_reply(recipient, error.code, error.message, session)
        await _reset(session)
        return
    except ValueError as error:  # a sender aiosmtplib will not put on a command line
        for number, recipient, _ in wire:
            decided[number] = RecipientResult(
                recipient, Outcome.FAILED, "5.1.7", f"bad sender address: {error}", None, host
            )
        return

    accepted: list[tuple[int, Recipient]] = []
    for number, recipient, address in wire:
        rcpt_options: list[str] = []
        if dsn_offered:
            if recipient.notify is not None:
                rcpt_options.append(f"NOTIFY={notify_text(recipient.notify)}")
            if recipient.orcpt is not None:
                kind, _, original = recipient.orcpt.partition(";")
                rcpt_options.append(f"ORCPT={kind.strip()};{xtext_encode(original.strip())}")
        try:
            await client.rcpt(
                address, options=rcpt_options, encoding=encoding, timeout=options.command_timeout
            )
        except aiosmtplib.SMTPResponseException as error:
            decided[number] = _by_reply(recipient, error.code, error.message, session)
        except ValueError as error:
            decided[number] = RecipientResult(
                recipient, Outcome.FAILED, "5.1.3", f"bad recipient address: {error}", None, host
            )
        else:
            accepted.append((number, recipient))
    if not accepted:
        await _reset(session)
        return

    try:
        reply = await client.data(message.content, timeout=options.data_timeout)
    except aiosmtplib.SMTPResponseException as error:
        for number, recipient in accepted:
            decided[number] = _by_reply(recipient, error.code, error.message, session)
        await _reset(session)
        return
    for number, recipient in accepted:
        result = _by_reply(recipient, reply.code, reply.message, session)
        decided[number] = RecipientResult(
            recipient,
            result.outcome,
            result.status,
            result.diagnostic,
            result.reply_code,
            host,
            dsn_passed=dsn_offered,
        )
