"""Real SMTP receivers for outbound tests: aiosmtpd on free 127.0.0.x ports, told how to answer.

The ``smtp_receiver`` fixture in conftest.py starts them and stops them all at the end.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from app.smtp.tls import make_self_signed

log = logging.getLogger(__name__)

_ADDRESSES = itertools.cycle(f"127.0.0.{n}" for n in range(10, 250))
_DSN_MAIL = ("RET", "ENVID")
_DSN_RCPT = ("NOTIFY", "ORCPT")


def shared_port() -> int:
    """A port free on every 127.0.0.x address receivers use: DNS-routed mail goes to one port
    (the ``outbound_port`` setting) on each MX host's address."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if all(_free(f"127.0.0.{n}", port) for n in range(10, 250)):
            return port


def _free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_address() -> tuple[str, int]:
    """A loopback address and a port nobody listens on there."""
    host = next(_ADDRESSES)
    with socket.socket() as sock:
        sock.bind((host, 0))
        return host, int(sock.getsockname()[1])


@dataclass(frozen=True)
class Received:
    """One message a receiver accepted, as it arrived."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    helo: str
    tls: bool
    mail_options: tuple[str, ...]
    login: str | None


@dataclass
class Receiver:
    """An aiosmtpd receiver. By default it accepts everything; the fields change its answers.

    ``rcpt_replies`` maps an address to the reply its RCPT TO gets; ``mail_reply`` and
    ``data_reply`` answer every MAIL FROM / DATA; ``drop_after_rcpt`` closes the connection when
    a RCPT TO arrives; ``hang_at_data`` never answers the message's final dot; ``tls_dir`` offers
    STARTTLS with a self-signed certificate made there (``tls_broken``: a handshake that fails);
    ``password`` requires AUTH (after TLS) as ``user``; ``dsn`` advertises RFC 3461 DSN and
    records its parameters in ``dsn_params``; ``temporary_failures`` answers that many RCPTs
    with 451 before accepting; ``data_delay`` waits that many seconds before answering each
    message's final dot. ``port`` (0: any free one) is where it listens.
    """

    rcpt_replies: dict[str, str] = field(default_factory=dict)
    mail_reply: str | None = None
    data_reply: str | None = None
    drop_after_rcpt: bool = False
    hang_at_data: bool = False
    smtputf8: bool = True
    tls_dir: Path | None = None
    tls_broken: bool = False
    user: str = "relay"
    password: str | None = None
    dsn: bool = False
    temporary_failures: int = 0
    data_delay: float = 0.0

    host: str = ""
    port: int = 0
    received: list[Received] = field(default_factory=list)
    dsn_params: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    connections: int = 0
    commands: list[str] = field(default_factory=list)
    _controller: Controller | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Receiver:
        self.host = next(_ADDRESSES)
        kwargs: dict[str, Any] = {"enable_SMTPUTF8": self.smtputf8}
        if self.tls_dir is not None:
            cert, key = self.tls_dir / "receiver.crt", self.tls_dir / "receiver.key"
            make_self_signed(cert, key, self.host)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            if self.tls_broken:
                # A client certificate demanded in TLS 1.2: the handshake fails on the client.
                context.maximum_version = ssl.TLSVersion.TLSv1_2
                context.verify_mode = ssl.CERT_REQUIRED
                context.load_verify_locations(cert)
            kwargs["tls_context"] = context
        if self.password is not None:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_require_tls"] = True
            kwargs["auth_required"] = True
        receiver = self

        class _Controller(Controller):
            def _trigger_server(self) -> None:
                # Bound to port 0 (no race for a free port): learn the port before the check.
                assert self.server is not None
                self.port = receiver.port = int(self.server.sockets[0].getsockname()[1])
                super()._trigger_server()

            def factory(self) -> SMTP:
                with receiver._lock:
                    receiver.connections += 1
                return _ReceiverSmtp(receiver, self.handler, **self.SMTP_kwargs)

        self._controller = _Controller(_Handler(self), hostname=self.host, port=self.port, **kwargs)
        self._controller.start()
        with self._lock:
            self.connections = 0  # start() made one connection to see the server answer
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def _authenticate(
        self, _server: SMTP, _session: Session, _envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            mechanism in ("PLAIN", "LOGIN")
            and isinstance(data, LoginPassword)
            and data.login == self.user.encode()
            and data.password == (self.password or "").encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=data)


def _split(arg: str, names: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """The MAIL/RCPT argument without the DSN parameters aiosmtpd does not know, and those."""
    kept: list[str] = []
    taken: dict[str, str] = {}
    for word in arg.split(" "):
        name, _, value = word.partition("=")
        if name.upper() in names:
            taken[name.upper()] = value
        else:
            kept.append(word)
    return " ".join(kept), taken


class _ReceiverSmtp(SMTP):
    """aiosmtpd's SMTP, recording commands and (when DSN is on) taking RFC 3461 parameters."""

    def __init__(self, receiver: Receiver, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.receiver = receiver

    async def smtp_MAIL(self, arg: str) -> None:
        self.receiver.commands.append(f"MAIL {arg}")
        if self.receiver.dsn and arg:
            arg, taken = _split(arg, _DSN_MAIL)
            self.receiver.dsn_params.append(("MAIL", taken))
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str) -> None:
        self.receiver.commands.append(f"RCPT {arg}")
        if self.receiver.dsn and arg:
            arg, taken = _split(arg, _DSN_RCPT)
            self.receiver.dsn_params.append(("RCPT", taken))
        await super().smtp_RCPT(arg)


class _Handler:
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    async def handle_EHLO(
        self,
        _server: SMTP,
        session: Session,
        _envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self.receiver.dsn:
            responses.insert(1, "250-DSN")
        return responses

    async def handle_MAIL(
        self, _server: SMTP, _session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.receiver.mail_reply is not None:
            return self.receiver.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, _session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.receiver.drop_after_rcpt:
            assert server.transport is not None
            server.transport.close()
            return "250 OK"  # never reaches the client: the connection is gone
        reply = self.receiver.rcpt_replies.get(address)
        if reply is not None:
            return reply
        with self.receiver._lock:
            if self.receiver.temporary_failures > 0:
                self.receiver.temporary_failures -= 1
                return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.receiver.hang_at_data:
            await asyncio.Event().wait()  # cancelled when the receiver stops
        if self.receiver.data_delay:
            await asyncio.sleep(self.receiver.data_delay)
        if self.receiver.data_reply is not None:
            return self.receiver.data_reply
        content = envelope.original_content or b""
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        self.receiver.received.append(
            Received(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                content=content,
                helo=session.host_name or "",
                tls=session.ssl is not None,
                mail_options=tuple(envelope.mail_options),
                login=login,
            )
        )
        return "250 2.0.0 Ok: queued as TEST"


ReceiverFactory = Callable[..., Receiver]
