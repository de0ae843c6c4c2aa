"""aiosmtpd's SMTP protocol, tightened: DATA limits and line endings, error caps, async AUTH, the
RFC 3461 DSN parameters of MAIL and RCPT, and submission's STARTTLS-then-AUTH rule."""

from __future__ import annotations

import asyncio
import binascii
import inspect
import logging
import re
import ssl
from base64 import b64decode
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from aiosmtpd import smtp as aiosmtpd_smtp
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, syntax

from app.errors import PostroomError
from app.outbound.envelope import Notify, Ret, parse_notify, xtext_decode

if TYPE_CHECKING:
    from app.smtp.routing import Accept

log = logging.getLogger(__name__)

# Replies that mean the client sent a command it should not have; too many end the session.
_BAD_COMMAND_CODES = frozenset({"500", "501", "502", "503", "504", "530", "535", "538", "555"})
_SIZE = re.compile(r"\sSIZE=(\d+)", re.IGNORECASE)
# How much DATA may arrive between two resets of the idle timer (it then counts per chunk).
_TIMEOUT_CHUNK = 64 * 1024
# The address shape nearly every client sends in MAIL FROM and RCPT TO: <local@domain>, a
# dot-atom local part and a domain of letters, digits and hyphens. aiosmtpd parses every address
# with the email package's RFC 5322 parser (and defines a class on each call): a seventh of the
# event loop's time per message. This shape gets the parser's own answer cheaply; any other goes
# to the parser (a test compares the two).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"<((?:{_ATEXT}\.)*{_ATEXT}@(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+)>")

# RFC 3461 (DSN) parameters. Postroom reads them itself, before aiosmtpd sees the command:
# aiosmtpd upper-cases every parameter (ENVID and ORCPT keep their case) and refuses any it
# does not know. A command without one of these words goes to aiosmtpd untouched.
_MAIL_DSN = ("RET", "ENVID")
_RCPT_DSN = ("NOTIFY", "ORCPT")
_DSN_WORD = re.compile(r"\s(?:RET|ENVID|NOTIFY|ORCPT)(?:[=\s]|$)", re.IGNORECASE)
# xtext (RFC 3461 §4): printable ASCII but '+' and '=', which are written +XX.
_XTEXT = re.compile(r"(?:[!-*,-<>-~]|\+[0-9A-Fa-f]{2})*")
_ADDRESS_TYPE = re.compile(_ATEXT)
ENVID_MAX = 100  # RFC 3461 §4.4
ORCPT_MAX = 500  # RFC 3461 §5.2: what ORCPT and NOTIFY may add to RCPT TO
# Command line lengths after EHLO: RFC 5321's 512 plus what the extensions add (SIZE 26,
# SMTPUTF8 10, DSN 110 to MAIL and 500 to RCPT: RFC 1870, 6531, 3461 §5.2).
_ESMTP_LINE_LIMITS = {"MAIL": 512 + 26 + 10 + 110, "RCPT": 512 + ORCPT_MAX}


class _EsmtpLineLimits(dict[str, int]):
    """``SMTP.command_size_limits`` for Postroom: fixed, computed, never stored.

    aiosmtpd keeps one dict for every connection, raises it at each EHLO and clears it at each
    new connection: one client's limits changed with the others' (a long RCPT with ORCPT was
    refused once another client had connected, and a client saying EHLO again and again
    raised them without bound). aiosmtpd applies them only after EHLO.
    """

    def __missing__(self, command: str) -> int:
        return _ESMTP_LINE_LIMITS.get(command, SMTP.command_size_limit)


class Limits(NamedTuple):
    """The per-connection limits, taken from the settings when the client connects."""

    max_message_size: int
    max_line_length: int
    max_bad_commands: int
    idle_timeout: int


class HookTable(NamedTuple):
    """What aiosmtpd would look up on the handler for every connection, looked up once."""

    hooks: dict[str, Callable[..., Any]]  # 'DATA' -> handler.handle_DATA, ...
    auth: dict[str, Any]  # AUTH mechanisms the handler implements (auth_* methods)


def hook_table(handler: Any) -> HookTable:
    """The hooks and AUTH mechanisms of ``handler``, as aiosmtpd's SMTP.__init__ finds them."""
    hooks = {
        name.replace("handle_", ""): getattr(handler, name)
        for name in dir(handler)
        if name.startswith("handle_")
    }
    if "EHLO" in hooks:
        raise TypeError("handle_EHLO needs aiosmtpd's own set-up; Postroom does not use it")
    auth = {
        _mechanism_name(name, member): aiosmtpd_smtp._AuthMechAttr(member, False)
        for name, member in inspect.getmembers(handler)
        if name.startswith("auth_")
    }
    return HookTable(hooks, auth)


def _mechanism_name(attribute: str, member: Any) -> str:
    default = attribute.replace("auth_", "").replace("__", "-")
    return str(getattr(member, "__auth_mechanism_name__", default))


class _Members(NamedTuple):
    commands: tuple[tuple[str, str], ...]  # (command, method name), in dir() order
    auth: tuple[tuple[str, str], ...]  # (mechanism, method name), in getmembers() order


_MEMBERS: dict[type, _Members] = {}


def _members(cls: type) -> _Members:
    """The SMTP command and AUTH methods of a protocol class (found once per class)."""
    found = _MEMBERS.get(cls)
    if found is None:
        commands = tuple(
            (name.replace("smtp_", ""), name) for name in dir(cls) if name.startswith("smtp_")
        )
        auth = tuple(
            (_mechanism_name(name, member), name)
            for name, member in inspect.getmembers(cls)
            if name.startswith("auth_")
        )
        found = _MEMBERS[cls] = _Members(commands, auth)
    return found


@dataclass(frozen=True)
class RcptRequest:
    """The RFC 3461 requests one RCPT TO carried: NOTIFY (None when not given) and ORCPT as
    ``addr-type;address`` with the xtext decoded (``rfc822;user@example.com``), or None."""

    notify: frozenset[Notify] | None = None
    orcpt: str | None = None


NO_REQUEST = RcptRequest()


class PostroomEnvelope(Envelope):
    """aiosmtpd's envelope plus the routing decisions, the DSN requests and what DATA found
    wrong. ``decisions`` and ``requests`` have an entry for each accepted RCPT, in
    ``rcpt_tos`` order; ``rcpt_request`` is the request of the RCPT being answered."""

    def __init__(self) -> None:
        super().__init__()
        self.decisions: list[Accept] = []
        self.requests: list[RcptRequest] = []
        self.rcpt_request = NO_REQUEST
        self.ret: str | None = None  # RET: FULL or HDRS
        self.envid: str | None = None  # ENVID, decoded
        self.too_big = False
        self.line_too_long = False


def _take(params: str, names: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """``params`` without the parameters ``names``, and those parameters' values (their case
    kept). Raises PostroomError for one given twice or without a value."""
    kept: list[str] = []
    found: dict[str, str] = {}
    for word in params.split():
        name, equals, value = word.partition("=")
        key = name.upper()
        if key not in names:
            kept.append(word)
        elif key in found:
            raise PostroomError(f"{key} may be given only once")
        elif not equals or not value:
            raise PostroomError(f"{key} needs a value ({key}=...)")
        else:
            found[key] = value
    return " ".join(kept), found


def _xtext(what: str, value: str) -> str:
    """The text an xtext value stands for; PostroomError unless it is xtext for printable
    US-ASCII (RFC 3461 §4: ENVID and ORCPT's address are printable ASCII before encoding)."""
    if _XTEXT.fullmatch(value) is None:
        raise PostroomError(
            f"{what} is not valid xtext: write '+', '=' and characters outside printable "
            "ASCII as +XX (hexadecimal)"
        )
    text = xtext_decode(value)
    if not (text.isascii() and text.isprintable()):
        raise PostroomError(f"{what} must stand for printable US-ASCII text")
    return text


def mail_requests(found: dict[str, str]) -> tuple[str | None, str | None]:
    """RET and ENVID as given to MAIL FROM (``_take``'s values): ('FULL' or 'HDRS' or None,
    the decoded ENVID or None). Raises PostroomError for a bad value."""
    ret = None
    if "RET" in found:
        try:
            ret = Ret(found["RET"].upper()).value
        except ValueError:
            raise PostroomError(
                f"RET={found['RET']} is not valid: use RET=FULL or RET=HDRS"
            ) from None
    envid = None
    if "ENVID" in found:
        value = found["ENVID"]
        if len(value) > ENVID_MAX:
            raise PostroomError(
                f"ENVID is {len(value)} characters long; at most {ENVID_MAX} are allowed"
            )
        envid = _xtext("ENVID", value)
    return ret, envid


def rcpt_request(found: dict[str, str]) -> RcptRequest:
    """NOTIFY and ORCPT as given to RCPT TO (``_take``'s values). Raises PostroomError for a
    bad value."""
    notify = parse_notify(found["NOTIFY"]) if "NOTIFY" in found else None
    orcpt = None
    if "ORCPT" in found:
        value = found["ORCPT"]
        kind, semicolon, encoded = value.partition(";")
        if not semicolon:
            raise PostroomError(
                "ORCPT needs an address type, ';' and the address (ORCPT=rfc822;user@example.com)"
            )
        if _ADDRESS_TYPE.fullmatch(kind) is None:
            raise PostroomError("ORCPT's address type before ';' must be a word such as rfc822")
        if len(value) > ORCPT_MAX:
            raise PostroomError(
                f"ORCPT is {len(value)} characters long; at most {ORCPT_MAX} are allowed"
            )
        address = _xtext("ORCPT's address", encoded)
        if not address:
            raise PostroomError("ORCPT has no address after ';'")
        orcpt = f"{kind};{address}"
    return RcptRequest(notify, orcpt)


@dataclass
class Connection:
    """What the service knows of one client connection (survives STARTTLS, unlike Session)."""

    id: str
    client: str
    port: int
    listener: str
    started: float  # Unix time
    tls: bool = False
    user: str = ""
    messages: int = 0
    bad_commands: int = 0
    bad_recipients: int = 0


class SessionHandler(Protocol):
    """What a connection asks of the service's handler (``handler.SmtpHandler`` implements it).

    Kept here so that the protocol depends on the handler's shape, never on the handler module.
    Every call is made on the event loop.
    """

    @property
    def hooks(self) -> object:
        """The object aiosmtpd calls ``handle_*`` on (its ``event_handler``)."""
        ...

    @property
    def hook_table(self) -> HookTable:
        """``hook_table(hooks)``, looked up once for every connection."""
        ...

    @property
    def submission_hook_table(self) -> HookTable:
        """The hooks of a submission connection (they check the sender), looked up once."""
        ...

    def session_opened(self, server: PostroomSMTP) -> None: ...

    def session_closed(self, server: PostroomSMTP) -> None: ...

    def command_refused(self, server: PostroomSMTP, reply: str) -> None: ...

    def size_refused(self, server: PostroomSMTP, sender: str, reply: str) -> None: ...

    async def authenticate(
        self, server: PostroomSMTP, login: bytes, password: bytes
    ) -> str | None: ...


class PostroomSMTP(SMTP):
    """One client connection. Overrides only what Postroom needs different from aiosmtpd:

    - DATA: the size and line-length limits, a reply chosen by the handler for every outcome;
      DATA ends only at CRLF.CRLF (aiosmtpd reads lines up to CRLF only, so a bare LF or CR never
      ends a line), and the idle timer keeps running while a large message arrives.
    - a cap on bad commands (421 and hang-up), and a 421 reply always hangs up.
    - AUTH PLAIN / LOGIN check the password off the event loop (scrypt takes ~50 ms).
    - cheaper set-up per connection and address parsing (same results as aiosmtpd's).

    Made on the event loop's thread, by the listener's protocol factory.
    """

    command_size_limits = _EsmtpLineLimits()

    def __init__(
        self,
        handler: SessionHandler,
        connection: Connection,
        limits: Limits,
        *,
        hostname: str,
        ident: str,
        tls_context: ssl.SSLContext | None,
    ) -> None:
        # aiosmtpd sizes its stream buffer from this before anything is read: a line longer
        # than it overruns. Our exact check (max_line_length) is made on each line below.
        self.line_length_limit = limits.max_line_length + 3
        self.connection = connection
        self.limits = limits
        self._closed_reported = False
        self.handler = handler
        self._idle_deadline = 0.0  # loop time after which the idle timer closes the connection
        self._idle_timer_at: float | None = None  # when the idle timer is due, while it is set
        self._set_up(self._hooks(handler), hostname=hostname, ident=ident, tls_context=tls_context)

    def _hooks(self, handler: SessionHandler) -> HookTable:
        """The handler's hooks this kind of connection answers with."""
        return handler.hook_table

    def _set_up(
        self,
        table: HookTable,
        *,
        hostname: str,
        ident: str,
        tls_context: ssl.SSLContext | None,
    ) -> None:
        """aiosmtpd 1.4.6's ``SMTP.__init__`` for Postroom's arguments (SMTPUTF8 on, AUTH only
        after TLS, no authenticator, proxy protocol or call limits).

        aiosmtpd looks every method of the protocol and the handler up again for each
        connection (``inspect.getmembers`` and ``dir``): a seventh of the event loop's time per
        message. Here they are looked up once per class and handler and only bound per
        connection. A test checks that this sets the same attributes as ``SMTP.__init__``.
        """
        limits = self.limits
        self.__ident__ = ident or aiosmtpd_smtp.__ident__
        self.loop = asyncio.get_running_loop()
        asyncio.StreamReaderProtocol.__init__(
            self,
            asyncio.StreamReader(loop=self.loop, limit=self.line_length_limit),
            client_connected_cb=self._cb_client_connected,
            loop=self.loop,
        )
        self.event_handler = self.handler.hooks
        self.data_size_limit = limits.max_message_size
        self.enable_SMTPUTF8 = True
        self._decode_data = False
        # aiosmtpd resets its shared limits here; Postroom's are fixed (nothing is stored in them).
        self.command_size_limits.clear()
        self.hostname = hostname
        self.tls_context = tls_context
        if tls_context is not None and tls_context.verify_mode not in {
            ssl.CERT_NONE,
            ssl.CERT_OPTIONAL,
        }:
            log.warning("tls_context.verify_mode not in {CERT_NONE, CERT_OPTIONAL}")
        self.require_starttls = False if tls_context else None
        self._timeout_duration = limits.idle_timeout
        self._timeout_handle = None
        self._tls_handshake_okay = True
        self._tls_protocol = None
        self._original_transport = None
        self.session = None
        self.envelope = None
        self.transport = None
        self._handler_coroutine = None
        self._auth_require_tls = True
        self._proxy_timeout = None
        self._authenticator = None
        self._auth_callback = aiosmtpd_smtp.login_always_fail
        self._auth_required = False
        members = _members(type(self))
        self._auth_methods = {
            mechanism: aiosmtpd_smtp._AuthMechAttr(getattr(self, name), True)
            for mechanism, name in members.auth
        }
        self._auth_methods.update(table.auth)
        self._handle_hooks = dict(table.hooks)
        self._ehlo_hook_ver = None
        self._smtp_methods = {command: getattr(self, name) for command, name in members.commands}
        self._enforce_call_limit = False

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """The address of MAIL FROM / RCPT TO and the rest (parameters), as aiosmtpd gives."""
        found = _PLAIN_ADDRESS.match(arg)
        if found is not None:
            rest = arg[found.end() :]
            # What aiosmtpd's parser does after the '>': skip white space, and comments.
            if rest[:1] in (" ", "\t"):
                rest = rest.lstrip()
            if rest[:1] != "(":
                address = found.group(1)
                limit = self.local_part_limit
                if limit and len(address.rpartition("@")[0]) > limit:
                    return None, None
                return address, rest
        return super()._getaddr(arg)

    def _reset_timeout(self, duration: float | None = None) -> None:
        # aiosmtpd cancels its idle timer and schedules a new one at every command (a timer
        # object and a heap entry each time). Here the deadline moves and one timer follows it:
        # when it comes due early, it waits again for the rest.
        deadline = self.loop.time() + (duration or self._timeout_duration)
        self._idle_deadline = deadline
        due = self._idle_timer_at
        if due is None or due > deadline:
            if self._timeout_handle is not None:
                self._timeout_handle.cancel()
            self._idle_timer_at = deadline
            self._timeout_handle = self.loop.call_at(deadline, self._idle_timer)

    def _idle_timer(self) -> None:
        deadline = self._idle_deadline
        if self.loop.time() < deadline:
            self._idle_timer_at = deadline
            self._timeout_handle = self.loop.call_at(deadline, self._idle_timer)
            return
        self._idle_timer_at = None
        self._timeout_cb()  # type: ignore[no-untyped-call]

    def _create_envelope(self) -> PostroomEnvelope:
        return PostroomEnvelope()

    # -- connection life -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None
        super().connection_made(transport)
        if first:
            self.handler.session_opened(self)
        else:
            self.connection.tls = True

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            if not self._closed_reported:
                self._closed_reported = True
                self.handler.session_closed(self)

    async def push(self, status: str) -> None:  # type: ignore[override]
        await super().push(status)
        code = status[:3]
        if code == "421":
            if self.transport is not None:
                self.transport.close()
            return
        if code in _BAD_COMMAND_CODES:
            self.connection.bad_commands += 1
            self.handler.command_refused(self, status)
            if self.connection.bad_commands >= self.limits.max_bad_commands:
                await self.push("421 4.7.0 Too many errors, closing the connection")

    # -- EHLO ------------------------------------------------------------------------------

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname: str) -> None:
        """aiosmtpd 1.4.6's EHLO (Postroom has no EHLO hook) with DSN among the extensions."""
        if not hostname:
            await self.push("501 Syntax: EHLO hostname")
            return
        self._set_rset_state()  # type: ignore[no-untyped-call]
        session = self.session
        assert session is not None
        session.extended_smtp = True
        # The longer command lines these extensions allow are in command_size_limits.
        response = [f"250-{self.hostname}"]
        if self.data_size_limit:
            response.append(f"250-SIZE {self.data_size_limit}")
        response += ["250-8BITMIME", "250-SMTPUTF8", "250-DSN"]
        if self.tls_context and not self._tls_protocol:
            response.append("250-STARTTLS")
        if not self._auth_require_tls or self._tls_protocol:
            response.append("250-AUTH " + " ".join(sorted(self._auth_methods)))
        session.host_name = hostname
        response.append("250 HELP")
        await self.push("\r\n".join(response))  # one write, not one per line

    def _dsn_parameters(
        self, arg: str, keyword: str, names: tuple[str, ...]
    ) -> tuple[str, dict[str, str]] | None:
        """MAIL's or RCPT's ``arg`` without the DSN parameters ``names``, and their values;
        None when aiosmtpd is to answer the command as it is (no EHLO, no address parsed).
        Raises PostroomError for a bad parameter."""
        session = self.session
        if session is None or not session.extended_smtp:
            return None
        stripped = self._strip_command_keyword(keyword, arg)
        if stripped is None:
            return None
        address, params = self._getaddr(stripped)
        if not address or params is None or not stripped.endswith(params):
            return None
        kept, found = _take(params, names)
        head = stripped[: len(stripped) - len(params)].rstrip()
        return f"{keyword}{head} {kept}" if kept else f"{keyword}{head}", found

    # -- MAIL ------------------------------------------------------------------------------

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        # aiosmtpd refuses an over-large SIZE itself, but without the enhanced code; answer
        # first when the command is otherwise in order.
        found = _SIZE.search(arg or "")
        session = self.session
        limit = self.limits.max_message_size
        if found and session is not None and session.host_name and int(found.group(1)) > limit:
            reply = f"552 5.3.4 Message size exceeds fixed maximum message size ({limit})"
            sender = (arg or "").partition(":")[2].split(maxsplit=1)[0:1]
            self.handler.size_refused(self, sender[0].strip("<>") if sender else "", reply)
            await self.push(reply)
            return
        envelope = self.envelope
        if (
            arg
            and isinstance(envelope, PostroomEnvelope)
            and not envelope.mail_from
            and _DSN_WORD.search(arg)
        ):
            try:
                split = self._dsn_parameters(arg, "FROM:", _MAIL_DSN)
                requests = mail_requests(split[1]) if split is not None else (None, None)
            except PostroomError as error:
                await self.push(f"501 5.5.4 {error}")
                return
            if split is not None:
                await super().smtp_MAIL(split[0])
                if envelope.mail_from:  # accepted
                    envelope.ret, envelope.envid = requests
                return
        await super().smtp_MAIL(arg)

    # -- RCPT ------------------------------------------------------------------------------

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg: str | None) -> None:
        envelope = self.envelope
        if isinstance(envelope, PostroomEnvelope):
            envelope.rcpt_request = NO_REQUEST
            if arg and envelope.mail_from and _DSN_WORD.search(arg):
                try:
                    split = self._dsn_parameters(arg, "TO:", _RCPT_DSN)
                    if split is not None:
                        arg, found = split
                        envelope.rcpt_request = rcpt_request(found)
                except PostroomError as error:
                    await self.push(f"501 5.5.4 {error}")
                    return
        await super().smtp_RCPT(arg)

    # -- DATA ------------------------------------------------------------------------------

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        envelope = self.envelope
        assert isinstance(envelope, PostroomEnvelope)
        if not envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        lines: list[bytes] = []
        size = 0
        since_reset = 0
        max_size = self.limits.max_message_size
        max_line = self.limits.max_line_length + 2  # the line's octets plus its CRLF
        in_long_line = False
        reader = self._reader
        while True:
            try:
                line = await reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError as overrun:
                # Longer than the buffer: throw away what arrived; the rest ends at a CRLF.
                chunk = await reader.read(overrun.consumed)
                size += len(chunk)
                since_reset += len(chunk)
                envelope.line_too_long = in_long_line = True
                lines.clear()
                continue
            if in_long_line:
                in_long_line = False
                size += len(line)
                continue
            if line == b".\r\n":
                break
            size += len(line)
            since_reset += len(line)
            if since_reset > _TIMEOUT_CHUNK:
                since_reset = 0
                self._reset_timeout()
            if line[:1] == b".":
                line = line[1:]
            if len(line) > max_line:
                envelope.line_too_long = True
            if size > max_size:
                envelope.too_big = True
            if envelope.too_big or envelope.line_too_long:
                lines.clear()
            else:
                lines.append(line)
        content = b"".join(lines)
        envelope.content = envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)

    # -- AUTH ------------------------------------------------------------------------------

    async def auth_PLAIN(self, _: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            response = await self.challenge_auth("")
            if response is MISSING:
                return AuthResult(success=False)
        else:
            try:
                response = b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                await self.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        assert isinstance(response, bytes)
        parts = response.split(b"\x00")
        if len(parts) != 3:
            await self.push("501 5.5.2 Can't split auth value")
            return AuthResult(success=False, handled=True)
        return await self._check(parts[1], parts[2])

    async def auth_LOGIN(self, _: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            login = await self.challenge_auth(self.AuthLoginUsernameChallenge)
            if login is MISSING:
                return AuthResult(success=False)
        else:
            try:
                login = b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                await self.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        password = await self.challenge_auth(self.AuthLoginPasswordChallenge)
        if password is MISSING:
            return AuthResult(success=False)
        assert isinstance(login, bytes) and isinstance(password, bytes)
        return await self._check(login, password)

    async def _check(self, login: bytes, password: bytes) -> AuthResult:
        user = await self.handler.authenticate(self, login, password)
        if user is None:
            return AuthResult(success=False, handled=False)
        self.connection.user = user
        return AuthResult(success=True, auth_data=user)


class SubmissionSMTP(PostroomSMTP):
    """A connection to a submission listener (RFC 6409): MAIL only after STARTTLS and AUTH, and
    the handler's submission hooks, which take only the user's own addresses as sender.

    Port 25's connections are PostroomSMTP and never pass through these checks.
    """

    def _hooks(self, handler: SessionHandler) -> HookTable:
        return handler.submission_hook_table

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        if not self._tls_protocol:
            await self.push("530 5.7.0 Must issue a STARTTLS command first")
            return
        session = self.session
        if session is None or not session.authenticated:
            await self.push("530 5.7.0 Authentication required")
            return
        await super().smtp_MAIL(arg)
