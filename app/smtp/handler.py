"""The SMTP conversation's decisions: RCPT and DATA replies, AUTH checks, submission's senders,
and their events."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import os
import re
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Executor
from email.utils import getaddresses
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from app.directory import recipients
from app.directory.passwords import needs_rehash, verify_password
from app.errors import PostroomError
from app.filtering.mail_filter import MailFilter, blocked_sender_reply
from app.filtering.protocol import ScanRequest
from app.outbound.envelope import notify_text
from app.smtp import delivery
from app.smtp.events import EventKind, EventRecorder, SmtpEvent
from app.smtp.protocol import (
    Connection,
    Limits,
    PostroomEnvelope,
    PostroomSMTP,
    RcptRequest,
    SubmissionSMTP,
    hook_table,
)
from app.smtp.routing import (
    Accept,
    DirectoryIndex,
    MailboxTarget,
    RemoteTarget,
    Router,
    normal_domain,
)
from app.store import Store
from app.store import directory as directory_rows

log = logging.getLogger(__name__)

_RECEIVED = re.compile(rb"^received:", re.IGNORECASE | re.MULTILINE)
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*([^\r\n]*)", re.IGNORECASE | re.MULTILINE)
# A From: field with its folded continuation lines.
_FROM_FIELD = re.compile(rb"^from[ \t]*:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", re.I | re.M)
# Anything shaped like an address anywhere in a From: field, display names and comments too.
_ADDRESS_LIKE = re.compile(r"[^\s<>()\[\],;:\"@]+@[^\s<>()\[\],;:\"@]+")
# How many of a user's addresses a 553 reply names (a reply line has at most 512 octets).
_ALLOWED_SHOWN = 5
_ECHO_MAX = 100

STORE_FAILED = "451 4.3.0 Could not store the message; try again later"

_serial = itertools.count(1)
# Ids need only be unique and short; no randomness (and no system call) is needed for that.
_ID_PREFIX = f"{int(time.time()) & 0xFFFFFFFF:08X}{os.getpid() & 0xFFFF:04X}"


def new_id() -> str:
    """A new id for a session or a message, unique on this machine."""
    return f"{_ID_PREFIX}{next(_serial):06X}"


class _Busy(asyncio.Protocol):
    """Answers a connection over the cap with 421 and hangs up."""

    def __init__(self, host_name: str) -> None:
        self._greeting = f"421 4.7.0 {host_name} Too many connections, try again later\r\n"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(self._greeting.encode("ascii", "replace"))
        transport.close()


class Hooks:
    """The handler aiosmtpd sees. Kept to the hooks alone: aiosmtpd looks up every attribute
    of its handler (``protocol.hook_table`` does it once)."""

    __slots__ = ("_core",)

    def __init__(self, core: SmtpHandler) -> None:
        self._core = core

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        return self._core.mail(server, envelope, address, options)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        return await self._core.rcpt(server, session, envelope, address, options)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return await self._core.data(server, session, envelope)

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session error", exc_info=error)
        return "451 4.3.0 Internal error; try again later"


class SubmissionHooks(Hooks):
    """The hooks of a submission connection (authenticated by then): the sender must be the
    user's own, and recipients anywhere are taken."""

    __slots__ = ()

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        return self._core.submission_mail(server, envelope, address, options)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        return await self._core.rcpt(server, session, envelope, address, options, may_relay=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return await self._core.submission_data(server, session, envelope)


class SmtpHandler:
    """Every reply Postroom decides itself, and the events they make.

    Runs on the event loop; blocking work goes to the disk writer (messages) or to
    ``executor`` (password checks, DNS).
    """

    def __init__(
        self,
        store: Store,
        router: Router,
        recorder: EventRecorder,
        executor: Executor,
        writer: delivery.DiskWriter,
        tls_context: Any,
        mail_filter: MailFilter | None = None,
    ) -> None:
        self._filter = mail_filter
        self._store = store
        self._router = router
        self._recorder = recorder
        self._executor = executor
        self._writer = writer
        self._tls_context = tls_context
        self._lock = threading.Lock()
        self._connections: dict[int, PostroomSMTP] = {}
        self.hooks = Hooks(self)
        self.hook_table = hook_table(self.hooks)
        self.submission_hook_table = hook_table(SubmissionHooks(self))
        self.inflight = 0

    # -- connections -----------------------------------------------------------------------

    def new_connection(
        self, listener: str, quiet: bool = False, submission: bool = False
    ) -> asyncio.BaseProtocol:
        """The protocol for a new client (the Controller's factory calls this); ``submission``
        for a submission listener's."""
        index = self._router.index
        settings = index.settings
        if len(self._connections) >= settings.max_connections:
            refused = Connection("", "", 0, listener, time.time())
            self._emit("rejected", refused, code=421, reason="4.7.0 Too many connections")
            return _Busy(index.host_name)
        connection = Connection(
            id="" if quiet else new_id(),
            client="",
            port=0,
            listener=listener,
            started=time.time(),
        )
        limits = Limits(
            max_message_size=settings.max_message_size,
            max_line_length=settings.max_line_length,
            max_bad_commands=settings.max_bad_commands,
            idle_timeout=settings.idle_timeout,
        )
        protocol = SubmissionSMTP if submission else PostroomSMTP
        return protocol(
            self,
            connection,
            limits,
            hostname=index.host_name,
            ident=settings.banner,
            tls_context=self._tls_context,
        )

    def session_opened(self, server: PostroomSMTP) -> None:
        connection = server.connection
        peer = server.session.peer if server.session else None
        if isinstance(peer, tuple):
            connection.client, connection.port = str(peer[0]), int(peer[1])
        with self._lock:
            self._connections[id(server)] = server
        if connection.id:
            self._emit("session-opened", connection, reason=f"on {connection.listener}")

    def session_closed(self, server: PostroomSMTP) -> None:
        connection = server.connection
        with self._lock:
            self._connections.pop(id(server), None)
        if connection.id:
            count = connection.messages
            reason = f"{count} message{'s' * (count != 1)}"
            self._emit("session-closed", connection, reason=reason)

    def connections(self) -> list[Connection]:
        """The clients connected now (any thread)."""
        with self._lock:
            servers = list(self._connections.values())
        return [server.connection for server in servers if server.connection.id]

    def close_all(self, reply: str) -> None:
        """Say goodbye to every client and close its connection (on the event loop)."""
        with self._lock:
            servers = list(self._connections.values())
        for server in servers:
            transport = server.transport
            if transport is not None and not transport.is_closing():
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(reply.encode("ascii") + b"\r\n")
                transport.close()

    def command_refused(self, server: PostroomSMTP, reply: str) -> None:
        """aiosmtpd or a hook refused a command (syntax, sequence, failed AUTH)."""
        if server.connection.id:
            self._emit("rejected", server.connection, code=_code(reply), reason=reply[4:])

    def size_refused(self, server: PostroomSMTP, sender: str, reply: str) -> None:
        """MAIL FROM was refused for the SIZE it declared."""
        connection = server.connection
        self._emit("rejected", connection, sender=_sender(sender), code=552, reason=reply[4:])

    # -- MAIL ------------------------------------------------------------------------------

    def mail(self, server: SMTP, envelope: Envelope, address: str, options: list[str]) -> str:
        """MAIL FROM on SMTP: refused when the sender is on the blocked list."""
        assert isinstance(server, PostroomSMTP)
        refusal = blocked_sender_reply(self._router.index.settings, _sender(address))
        if refusal:
            self._emit(
                "rejected", server.connection, sender=_sender(address), code=550, reason=refusal[4:]
            )
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"  # aiosmtpd's own reply

    # -- RCPT ------------------------------------------------------------------------------

    async def rcpt(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
        may_relay: bool | None = None,
    ) -> str:
        """The RCPT reply; ``may_relay`` as the caller knows it, else by the relay rules."""
        assert isinstance(server, PostroomSMTP) and isinstance(envelope, PostroomEnvelope)
        index = self._router.index
        if len(envelope.rcpt_tos) >= index.settings.max_recipients:
            return "452 4.5.3 Too many recipients"
        if may_relay is None:
            may_relay = index.may_relay(server.connection.client, bool(session.authenticated))
        decision = index.decide(address, may_relay=may_relay)
        if not isinstance(decision, Accept):
            return self._refuse_rcpt(server, envelope, address, decision.reply)
        refusal = self._router.limit_refusal(decision, address)  # a full mailbox
        if refusal:
            return self._refuse_rcpt(server, envelope, address, refusal)
        if decision.route_domain:
            loop = asyncio.get_running_loop()
            refusal = await loop.run_in_executor(
                self._executor, self._router.loop_check, decision.route_domain, address
            )
            if refusal:
                return self._refuse_rcpt(server, envelope, address, refusal)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        envelope.decisions.append(decision)
        envelope.requests.append(envelope.rcpt_request)
        return "250 2.1.5 Ok"

    def _refuse_rcpt(
        self, server: PostroomSMTP, envelope: Envelope, address: str, reply: str
    ) -> str:
        connection = server.connection
        connection.bad_recipients += 1
        self._emit(
            "rejected",
            connection,
            sender=_sender(envelope.mail_from or ""),
            recipients=(address,),
            code=_code(reply),
            reason=reply[4:],
        )
        if connection.bad_recipients > self._router.index.settings.max_bad_recipients:
            return "421 4.7.0 Too many refused recipients, closing the connection"
        return reply

    # -- DATA ------------------------------------------------------------------------------

    async def data(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(server, PostroomSMTP) and isinstance(envelope, PostroomEnvelope)
        content = envelope.original_content or b""
        refusal = self._check_content(server, envelope, content)
        if refusal:
            self._emit_message(
                "rejected", server, envelope, "", code=_code(refusal), reason=refusal[4:]
            )
            return refusal
        end = content.find(b"\r\n\r\n")
        found = _MESSAGE_ID.search(content if end < 0 else content[: end + 2])
        message_id = found.group(1).strip().decode("utf-8", "replace")[:250] if found else ""
        message = self._message(server, session, envelope, content, message_id)
        if self._filter is not None and self._router.index.settings.filtering:
            refusal, message = await self._screen(server, session, message)
            if refusal:
                self._emit_message(
                    "rejected",
                    server,
                    envelope,
                    message_id,
                    code=_code(refusal),
                    reason=refusal[4:],
                    queue_id=message.queue_id,
                )
                return refusal
        self.inflight += 1
        try:
            stored = await self._writer.store(message)
        except Exception as error:
            log.error("could not store message %s: %s", message.queue_id, error)
            reason = f"{STORE_FAILED[10:]}: {error}"
            self._emit_message(
                "failed",
                server,
                envelope,
                message_id,
                code=451,
                reason=reason,
                queue_id=message.queue_id,
            )
            return STORE_FAILED
        finally:
            self.inflight -= 1
        server.connection.messages += 1
        self._report(server, envelope, message, stored)
        return f"250 2.0.0 Ok: queued as {message.queue_id}"

    async def _screen(
        self, server: PostroomSMTP, session: Session, message: delivery.Message
    ) -> tuple[str, delivery.Message]:
        """rspamd's say on a message: a refusal, or the message to store (headers added, and
        the Junk folder when it is spam)."""
        assert self._filter is not None
        index = self._router.index
        user = server.connection.user if session.authenticated else ""
        request = ScanRequest(
            client_ip=message.client_ip,
            helo=message.helo,
            sender=message.sender,
            recipients=tuple(t.address for t in message.mailboxes + message.remote),
            queue_id=message.queue_id,
            host_name=message.host_name,
            user=user,
        )
        outgoing = bool(user) or index.may_relay(message.client_ip, False)
        outcome = await self._filter.check(request, message.content, index.settings, outgoing)
        if outcome.verdict:
            log.info("message %s: %s", message.queue_id, outcome.verdict)
        if outcome.reply:
            return outcome.reply, message
        return "", dataclasses.replace(message, content=outcome.content, folder=outcome.folder)

    def _check_content(
        self, server: PostroomSMTP, envelope: PostroomEnvelope, content: bytes
    ) -> str:
        """The refusal for a message that breaks a limit or the line-ending rule, else ''."""
        limits = server.limits
        if envelope.too_big:
            return (
                "552 5.3.4 Message size exceeds fixed maximum message size "
                f"({limits.max_message_size})"
            )
        if envelope.line_too_long:
            return f"500 5.5.2 Line too long (the limit is {limits.max_line_length} octets)"
        # Every line ends in CRLF, so any other CR or LF is bare: refused, never normalised.
        lines = content.count(b"\r\n")
        if content.count(b"\n") != lines or content.count(b"\r") != lines:
            return "554 5.6.0 Message contains a bare CR or LF; end every line with CRLF"
        end = content.find(b"\r\n\r\n")
        hops = len(_RECEIVED.findall(content if end < 0 else content[: end + 2]))
        max_received = self._router.index.settings.max_received
        if hops > max_received:
            return f"554 5.4.6 Too many hops ({hops} Received headers): a mail loop?"
        return ""

    def _message(
        self,
        server: PostroomSMTP,
        session: Session,
        envelope: PostroomEnvelope,
        content: bytes,
        message_id: str,
    ) -> delivery.Message:
        mailboxes: dict[str, MailboxTarget] = {}
        remote: dict[str, RemoteTarget] = {}
        dsn: dict[str, dict[str, str]] = {}
        accepted = zip(envelope.rcpt_tos, envelope.decisions, envelope.requests, strict=True)
        for address, decision, request in accepted:
            for target in decision.targets:
                if isinstance(target, MailboxTarget):
                    mailboxes.setdefault(target.alias.lower(), target)
                elif target.address.lower() not in remote:
                    # A target two RCPTs reach keeps the first one's requests.
                    remote[target.address.lower()] = target
                    requests = _dsn_requests(request, address, target)
                    if requests:
                        dsn[target.address] = requests
        connection = server.connection
        protocol = "ESMTP" if session.extended_smtp else "SMTP"
        if connection.tls:
            protocol += "S"
        if session.authenticated:
            protocol += "A"
        return delivery.Message(
            queue_id=new_id(),
            sender=_sender(envelope.mail_from or ""),
            content=content,
            message_id=message_id,
            client_ip=connection.client,
            helo=session.host_name or "",
            protocol=protocol,
            host_name=server.hostname,
            time=time.time(),
            mailboxes=tuple(mailboxes.values()),
            remote=tuple(remote.values()),
            smtputf8=bool(envelope.smtp_utf8),
            ret=envelope.ret,
            envid=envelope.envid,
            dsn=dsn,
        )

    def _report(
        self,
        server: PostroomSMTP,
        envelope: Envelope,
        message: delivery.Message,
        stored: delivery.Stored,
    ) -> None:
        places = [f"mailbox {target.alias}" for target, _ in stored.mailboxes]
        if message.remote:
            places.append("queue for " + ", ".join(t.address for t in message.remote))
        reason = "to " + "; ".join(places)
        self._emit_message(
            "received",
            server,
            envelope,
            message.message_id,
            code=250,
            reason=reason,
            queue_id=message.queue_id,
        )
        for target, name in stored.mailboxes:
            self._emit(
                "delivered",
                server.connection,
                message_id=message.message_id,
                sender=message.sender,
                recipients=(target.address,),
                code=250,
                reason=f"mailbox {target.alias} ({name})",
                queue_id=message.queue_id,
            )
        if stored.queue_file is not None:
            self._emit(
                "queued",
                server.connection,
                message_id=message.message_id,
                sender=message.sender,
                recipients=tuple(t.address for t in message.remote),
                code=250,
                reason=f"waiting in the queue ({stored.queue_file})",
                queue_id=message.queue_id,
            )

    # -- submission ------------------------------------------------------------------------

    def submission_mail(
        self, server: SMTP, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """MAIL FROM on submission: taken only when it is one of the user's own addresses
        (Exchange's Send As); the null sender is never the user's."""
        assert isinstance(server, PostroomSMTP)
        user = server.connection.user
        index = self._router.index
        if address == "<>":
            refusal = "553 5.7.1 The null sender <> is for delivery reports; "
        elif _not_own(index, user, (address,)):
            refusal = f"553 5.7.1 <{_echo(address)}> is not your address; "
        else:
            envelope.mail_from = address
            envelope.mail_options.extend(options)
            return "250 2.1.0 Ok"
        refusal += _send_as(index, user)
        self._emit(
            "rejected", server.connection, sender=_sender(address), code=553, reason=refusal[4:]
        )
        return refusal

    async def submission_data(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """DATA on submission: every address in From: must be the user's own too, else 553 and
        nothing is stored; then as any message."""
        assert isinstance(server, PostroomSMTP) and isinstance(envelope, PostroomEnvelope)
        if not (envelope.too_big or envelope.line_too_long):
            refusal = _from_refusal(
                self._router.index, server.connection.user, envelope.original_content or b""
            )
            if refusal:
                self._emit_message("rejected", server, envelope, "", code=553, reason=refusal[4:])
                return refusal
        return await self.data(server, session, envelope)

    # -- AUTH ------------------------------------------------------------------------------

    async def authenticate(self, server: PostroomSMTP, login: bytes, password: bytes) -> str | None:
        """The alias of the user these credentials belong to, or None (checked off the loop).

        The login is the user's alias or any of its SMTP addresses.
        """
        try:
            name, secret = login.decode("utf-8"), password.decode("utf-8")
        except UnicodeDecodeError:
            return None
        index = self._router.index
        alias = index.addresses.get(name.lower(), name.lower())
        entry = index.entries.get(alias)
        if entry is None or entry.kind != "user":
            return None
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(self._executor, self._check_password, entry.alias, secret)
        return entry.alias if ok else None

    def _check_password(self, alias: str, secret: str) -> bool:
        with self._store.read() as conn:
            stored = directory_rows.password_hash(conn, alias)
        if not verify_password(secret, stored):
            return False
        if stored and needs_rehash(stored):  # an older scrypt hash becomes one Dovecot reads
            try:
                recipients.rehash_password(self._store, alias, secret, stored)
            except PostroomError as error:
                log.warning("could not re-hash the password of %s: %s", alias, error)
        return True

    # -- events ----------------------------------------------------------------------------

    def _emit_message(
        self,
        kind: EventKind,
        server: PostroomSMTP,
        envelope: Envelope,
        message_id: str,
        **fields: Any,
    ) -> None:
        self._emit(
            kind,
            server.connection,
            message_id=message_id,
            sender=_sender(envelope.mail_from or ""),
            recipients=tuple(envelope.rcpt_tos),
            **fields,
        )

    def _emit(self, kind: EventKind, connection: Connection, **fields: Any) -> None:
        self._recorder.emit(
            SmtpEvent(
                kind=kind,
                stamp=time.time(),
                session=connection.id,
                client=connection.client,
                **fields,
            )
        )


def _dsn_requests(request: RcptRequest, address: str, target: RemoteTarget) -> dict[str, str]:
    """What the queue keeps of a RCPT's DSN requests for one remote target of it: NOTIFY as
    given, and ORCPT as given, else the RCPT address when the target differs from it (a
    contact's), so that a notification names the address the sender wrote."""
    requests: dict[str, str] = {}
    if request.notify is not None:
        requests["notify"] = notify_text(request.notify)
    orcpt = request.orcpt
    if orcpt is None and target.address != address:
        orcpt = f"rfc822;{address}"
    if orcpt is not None:
        requests["orcpt"] = orcpt
    return requests


def _address_key(address: str) -> str:
    """``address`` as the directory index keys it (lower case, A-label domain); '' when it
    is no address."""
    local, at, domain = address.rpartition("@")
    if not (local and at):
        return ""
    try:
        return f"{local.lower()}@{normal_domain(domain)}"
    except PostroomError:
        return ""


def _echo(address: str) -> str:
    """An address the client gave, short enough to repeat in a reply line."""
    return address if len(address) <= _ECHO_MAX else address[: _ECHO_MAX - 3] + "..."


def _not_own(index: DirectoryIndex, user: str, addresses: Iterable[str]) -> list[str]:
    """Those of ``addresses`` that are not SMTP addresses of the user ``user`` (an alias)."""
    key = user.lower()
    owners = index.addresses
    return [a for a in addresses if not (k := _address_key(a)) or owners.get(k) != key]


def _send_as(index: DirectoryIndex, user: str) -> str:
    """The end of a 553 reply: which addresses ``user`` may send as (the primary first)."""
    key = user.lower()
    entry = index.entries.get(key)
    primary = entry.address.lower() if entry is not None else ""
    own = sorted(a for a, owner in index.addresses.items() if owner == key)
    if not own:
        return f"{user or 'this login'} has no address to send as; ask the administrator for one"
    own.sort(key=lambda address: address != primary)
    shown = ", ".join(own[:_ALLOWED_SHOWN])
    more = len(own) - _ALLOWED_SHOWN
    if more > 0:
        shown += f" (and {more} more)"
    return f"{user} may send as {shown}"


def _from_addresses(content: bytes) -> list[str]:
    """Every address in the message's From: fields: what the parser finds, and anything shaped
    like an address in display names or comments (a reader's program may show those)."""
    end = content.find(b"\r\n\r\n")
    head = b"" if content.startswith(b"\r\n") else content if end < 0 else content[: end + 2]
    found: list[str] = []
    for field in _FROM_FIELD.findall(head):
        value = field.replace(b"\r\n", b"").decode("utf-8", "replace")
        for address in [a for _, a in getaddresses([value])] + _ADDRESS_LIKE.findall(value):
            address = address.strip()
            if address and address not in found:
                found.append(address)
    return found


def _from_refusal(index: DirectoryIndex, user: str, content: bytes) -> str:
    """The 553 reply when the From: addresses are missing or not all the user's; else ''."""
    addresses = _from_addresses(content)
    if not addresses:
        return "553 5.7.1 The message has no From: address; " + _send_as(index, user)
    foreign = _not_own(index, user, addresses)
    if foreign:
        return f"553 5.7.1 From: <{_echo(foreign[0])}> is not your address; " + _send_as(
            index, user
        )
    return ""


def _code(reply: str) -> int:
    try:
        return int(reply[:3])
    except ValueError:
        return 0


def _sender(address: str) -> str:
    """The envelope sender as stored: '' for the null sender."""
    return "" if address == "<>" else address
