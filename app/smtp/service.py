"""The embedded SMTP service: aiosmtpd Controllers (one per listen and submission address) with
start/stop."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiosmtpd.controller import Controller

from app.errors import PostroomError
from app.filtering.mail_filter import MailFilter
from app.filtering.supervisor import RspamdSupervisor
from app.outbound.process import QueueProcess
from app.settings import format_host_port, load_settings, parse_host_port
from app.smtp import tls
from app.smtp.delivery import DiskWriter
from app.smtp.events import EventCallback, EventRecorder
from app.smtp.handler import SmtpHandler
from app.smtp.protocol import Connection
from app.smtp.routing import Router
from app.store import Store

log = logging.getLogger(__name__)

# For password checks and DNS; the disk work has a thread of its own (delivery.DiskWriter).
WORKER_THREADS = 4
_BACKLOG = 256
SHUTDOWN_REPLY = "421 4.3.2 Service shutting down, try again later"


def bind(host: str, port: int, option: str = "--listen") -> socket.socket:
    """A listening TCP socket, or a PostroomError that says why not and what to do (``option``
    is the one that chooses another address)."""
    where = format_host_port(host, port)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise PostroomError(
            f"Cannot listen on {where}: {error.strerror}. Give an IP address or a host name of "
            f"this machine, e.g. {option} 127.0.0.1:{port or 2525}."
        ) from error
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(_BACKLOG)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            reason = (
                "the address is already in use (another postroom serve, the console, or another "
                "mail server listens there). Stop that program or choose another address with "
                f"{option} HOST:PORT"
            )
        elif error.errno == errno.EACCES:
            reason = (
                "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE). "
                "Use a port such as 2525, or grant the capability"
            )
        elif error.errno == errno.EADDRNOTAVAIL:
            reason = "this machine has no such address. Use one of its own IP addresses"
        else:
            reason = error.strerror or str(error)
        raise PostroomError(f"Cannot listen on {where}: {reason}.") from error
    return sock


class _Controller(Controller):
    """aiosmtpd's Controller on a socket we bound ourselves (port 0 works, errors are clear)."""

    def __init__(
        self,
        handler: SmtpHandler,
        sock: socket.socket,
        paused: threading.Event,
        greeting: str,
        submission: bool = False,
    ) -> None:
        host, port = sock.getsockname()[:2]
        super().__init__(handler.hooks, hostname=host, port=port, ready_timeout=10.0)
        self.listener = format_host_port(host, port)
        self.submission = submission
        self._sock = sock
        self._smtp_handler = handler
        self._paused = paused
        self._greeting = greeting
        self._triggering = False

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._sock)

    def _trigger_server(self) -> None:
        # The Controller connects once to check its factory; that connection is not a client.
        self._triggering = True
        try:
            super()._trigger_server()  # type: ignore[no-untyped-call]
        finally:
            self._triggering = False

    def factory(self) -> Any:
        if self._paused.is_set() and not self._triggering:
            return _PausedGreeting(self._greeting)
        return self._smtp_handler.new_connection(
            self.listener, quiet=self._triggering, submission=self.submission
        )

    def run(self, coroutine: Coroutine[Any, Any, None], timeout: float) -> None:
        """Run a coroutine on this controller's loop and wait for it (from another thread)."""
        asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


class _PausedGreeting(asyncio.Protocol):
    """A client that connects while the service is paused: 421 (try later) and hang up."""

    def __init__(self, host_name: str) -> None:
        self._reply = f"421 4.3.2 {host_name} Service paused, try again later\r\n".encode()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(self._reply)
        transport.close()


class SmtpService:
    """Postroom's SMTP virtual server for one data directory.

    ``start()`` and ``stop()`` may be called from any one thread (the console's GUI thread
    or ``postroom serve``'s main thread); each listener runs aiosmtpd's Controller thread with
    its own event loop. Event callbacks are called on the thread "postroom-smtp-events".

    ``listen`` and ``submission_listen`` replace the settings of the same names. Given
    ``listen`` alone, submission is off: a caller that chooses the SMTP addresses chooses all.
    A submission address that cannot be bound does not stop SMTP: ``submission_errors`` says
    why.
    """

    def __init__(
        self,
        store: Store,
        *,
        listen: Sequence[str] | None = None,
        submission_listen: Sequence[str] | None = None,
        on_event: EventCallback | None = None,
        print_queue: bool = False,
    ) -> None:
        self._store = store
        self._print_queue = print_queue  # the queue's process prints its events (serve does)
        self._listen = list(listen) if listen else None
        self._submission_listen = None if submission_listen is None else list(submission_listen)
        if self._listen is not None and submission_listen is None:
            self._submission_listen = []
        self.submission_errors: list[str] = []
        self._recorder = EventRecorder(store)
        if on_event is not None:
            self._recorder.add_callback(on_event)
        self._lock = threading.Lock()
        self._controllers: list[_Controller] = []
        self._handler: SmtpHandler | None = None
        self._router: Router | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._writer: DiskWriter | None = None
        self._paused = threading.Event()
        self._queue: QueueProcess | None = None
        self._rspamd: RspamdSupervisor | None = None
        self._filter: MailFilter | None = None

    # -- listeners -------------------------------------------------------------------------

    def add_event_callback(self, callback: EventCallback) -> None:
        """Also call ``callback(event)`` for every event (on the events thread)."""
        self._recorder.add_callback(callback)

    def remove_event_callback(self, callback: EventCallback) -> None:
        self._recorder.remove_callback(callback)

    # -- state -----------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return bool(self._controllers)

    @property
    def is_paused(self) -> bool:
        return self._paused.is_set()

    def pause(self) -> None:
        """Refuse new connections with 421 4.3.2 while sessions under way go on (IIS's Pause).

        Any thread; takes effect at once. The listening sockets stay bound, so no other program
        can take the port meanwhile.
        """
        if self.is_running:
            self._paused.set()
            log.info("SMTP service paused: new connections get 421")

    def resume(self) -> None:
        """Accept new connections again (any thread)."""
        if self._paused.is_set():
            self._paused.clear()
            log.info("SMTP service resumed")

    @property
    def addresses(self) -> list[str]:
        """The SMTP addresses listened on, as ``HOST:PORT`` (the real port when 0 was asked)."""
        return [c.listener for c in self._controllers if not c.submission]

    @property
    def submission_addresses(self) -> list[str]:
        """The submission addresses listened on, as ``HOST:PORT``."""
        return [c.listener for c in self._controllers if c.submission]

    @property
    def queue(self) -> QueueProcess | None:
        """The queue's process, while the service runs (it sends once it holds the lock)."""
        return self._queue

    @property
    def rspamd(self) -> RspamdSupervisor | None:
        """The rspamd this service runs (when filtering was on at its start)."""
        return self._rspamd

    def sessions(self) -> list[Connection]:
        """The clients connected now (a snapshot; any thread)."""
        return self._handler.connections() if self._handler else []

    # -- start / stop ----------------------------------------------------------------------

    def start(self) -> None:
        """Listen and serve; raises PostroomError (nothing left running) if it cannot."""
        with self._lock:
            if self._controllers:
                return
            settings = load_settings(self._store)
            wanted = [
                parse_host_port(text, any_port=True) for text in (self._listen or settings.listen)
            ]
            sockets: list[socket.socket] = []
            try:
                for host, port in wanted:
                    sockets.append(bind(host, port))
                context = tls.server_context(settings, self._store.paths)
            except BaseException:
                for sock in sockets:
                    sock.close()
                raise
            listeners = [sock.getsockname()[:2] for sock in sockets]
            submission = self._bind_submission(settings.submission_listen, wanted)
            self._router = Router(self._store, listeners)
            self._router.start()
            self._recorder.start()
            self._executor = ThreadPoolExecutor(WORKER_THREADS, "postroom-smtp-worker")
            self._writer = DiskWriter(self._store.paths)
            if settings.filtering:
                # rspamd starts beside SMTP; until it answers, the failure action applies.
                self._rspamd = RspamdSupervisor(self._store)
                self._rspamd.start()
                self._filter = MailFilter(self._rspamd)
            self._handler = SmtpHandler(
                self._store,
                self._router,
                self._recorder,
                self._executor,
                self._writer,
                context,
                self._filter,
            )
            kinds = [False] * len(sockets) + [True] * len(submission)
            try:
                for sock, is_submission in zip(sockets + submission, kinds, strict=True):
                    controller = _Controller(
                        self._handler, sock, self._paused, settings.host_name, is_submission
                    )
                    controller.start()
                    self._controllers.append(controller)
                    controller.run(self._writer.attach(), timeout=30)
            except BaseException as error:
                for sock in sockets + submission:
                    sock.close()
                self._shutdown(0)
                raise PostroomError(f"The SMTP service could not start: {error}") from error
            # The virtual server sends what waits in the queue too (its Queues in Exchange).
            self._queue = QueueProcess(
                self._store.paths, listeners=listeners, print_events=self._print_queue
            )
            self._queue.start()
            log.info("SMTP service listening on %s", ", ".join(self.addresses))
            if self.submission_addresses:
                log.info("submission listening on %s", ", ".join(self.submission_addresses))

    def _bind_submission(
        self, configured: list[str], smtp: list[tuple[str, int]]
    ) -> list[socket.socket]:
        """The submission sockets that could be bound; ``submission_errors`` says why not
        for each of the others."""
        self.submission_errors = []
        wanted = configured if self._submission_listen is None else self._submission_listen
        sockets: list[socket.socket] = []
        for text in wanted:
            host, port = parse_host_port(text, 587, any_port=True)
            where = format_host_port(host, port)
            try:
                if port and (host, port) in smtp:
                    raise PostroomError(
                        f"Cannot listen on {where} for submission: SMTP listens there. "
                        "Choose another port for submission_listen, such as 2587."
                    )
                sockets.append(bind(host, port, "--submission-listen"))
            except PostroomError as error:
                log.error("%s SMTP runs on without submission there.", error)
                self.submission_errors.append(str(error))
        return sockets

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, let messages being stored finish (up to ``timeout`` seconds), say
        421 to the remaining clients and end every thread."""
        with self._lock:
            self._shutdown(timeout)

    def _shutdown(self, timeout: float) -> None:
        self._paused.clear()  # a later start() starts accepting
        controllers, self._controllers = self._controllers, []
        for controller in controllers:
            server = controller.server
            if server is not None:
                controller.loop.call_soon_threadsafe(server.close)
        handler = self._handler
        if handler is not None:
            deadline = time.monotonic() + timeout
            while handler.inflight and time.monotonic() < deadline:
                time.sleep(0.01)
            for controller in controllers:
                try:
                    controller.run(_close_all(handler), timeout=5)
                except Exception:
                    log.exception("could not close the SMTP connections on %s", controller.listener)
        writer = self._writer
        for controller in controllers:
            if writer is not None:
                try:
                    controller.run(writer.detach(), timeout=60)
                except Exception:
                    log.exception("could not stop the disk writer of %s", controller.listener)
            if self._filter is not None:
                try:
                    controller.run(self._filter.detach(), timeout=5)
                except Exception:
                    log.exception("could not close the connections to rspamd")
            controller.stop()
        self._writer = None
        self._filter = None
        if self._rspamd is not None:
            self._rspamd.stop()
            self._rspamd = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._queue is not None:
            self._queue.stop()
            self._queue = None
        if self._router is not None:
            self._router.stop()
            self._router = None
        self._recorder.stop()
        self._handler = None
        if controllers:
            log.info("SMTP service stopped")


async def _close_all(handler: SmtpHandler) -> None:
    handler.close_all(SHUTDOWN_REPLY)
