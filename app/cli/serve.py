"""``postroom serve``: SMTP, Dovecot (IMAP4, POP3) and the RUS until a signal."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType
from typing import Any

from app.cli.common import Context
from app.dovecot.service import DovecotService
from app.errors import PostroomError
from app.rus import RecipientUpdateService
from app.settings import format_host_port, parse_host_port
from app.smtp.events import SmtpEvent
from app.smtp.lock import ServeLock
from app.smtp.service import SmtpService

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run SMTP, Dovecot (IMAP4, POP3) and the Recipient Update Service until a signal",
    )
    parser.add_argument(
        "--listen",
        action="append",
        metavar="HOST:PORT",
        help="listen here instead of the listen setting (repeat for several addresses); "
        "submission then listens only where --submission-listen says",
    )
    parser.add_argument(
        "--submission-listen",
        action="append",
        metavar="HOST:PORT",
        help="take authenticated submission here instead of the submission_listen setting",
    )
    parser.set_defaults(func=serve_command)


def _print_event(event: SmtpEvent) -> None:
    """One line per message accepted, refused or not stored (called on the events thread)."""
    if event.kind == "received":
        line = (
            f"received {event.queue_id} from <{event.sender}> [{event.client}]"
            f" {event.message_id} {event.reason}"
        )
    elif event.kind == "failed":
        line = f"failed from <{event.sender}> [{event.client}]: {event.code} {event.reason}"
    elif event.kind == "rejected" and event.recipients:
        line = (
            f"rejected <{event.sender}> -> {', '.join(event.recipients)} [{event.client}]:"
            f" {event.code} {event.reason}"
        )
    else:  # the queue's process prints what it sends (app.outbound.process)
        return
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def serve_command(args: argparse.Namespace, context: Context) -> int:
    listen = None
    if args.listen:
        listen = [format_host_port(*parse_host_port(text, any_port=True)) for text in args.listen]
    submission = None
    if args.submission_listen:
        submission = [
            format_host_port(*parse_host_port(text, 587, any_port=True))
            for text in args.submission_listen
        ]
    store = context.store()
    lock = ServeLock(store.paths)
    lock.acquire()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    if not args.verbose:
        # aiosmtpd logs every AUTH as a deprecation warning; it is noise for an administrator.
        logging.getLogger("mail.log").setLevel(logging.ERROR)
    service = SmtpService(
        store,
        listen=listen,
        submission_listen=submission,
        on_event=_print_event,
        print_queue=True,
    )
    rus: RecipientUpdateService | None = None
    dovecot = DovecotService(store)
    try:
        service.start()
        for address in service.addresses:
            sys.stdout.write(f"listening on {address}\n")
        for address in service.submission_addresses:
            sys.stdout.write(f"listening on {address} (submission)\n")
        if service.rspamd is not None and service.rspamd.error:
            sys.stderr.write(service.rspamd.error + "\n")  # one line; SMTP runs on
        try:
            for item in dovecot.start():
                sys.stdout.write(f"listening on {item.host}:{item.port} ({item.name})\n")
        except PostroomError as error:
            # One line among the others, not an error of serve's: SMTP runs on without them.
            sys.stdout.write(f"IMAP4 and POP3 are not served: {error}\n")
        sys.stdout.flush()
        rus = RecipientUpdateService(store)
        rus.start()
        while not stop.wait(0.5):
            pass
    finally:
        if rus is not None:
            rus.stop()
        dovecot.stop()
        service.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        lock.release()
    sys.stdout.write("stopped\n")
    sys.stdout.flush()
    return 0
