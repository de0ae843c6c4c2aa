"""What the SMTP tests share: a running service on a free loopback port, a test organisation,
``postroom serve`` in a subprocess, and small client helpers. (No tests here; the ``smtp``
fixture is in conftest.py.)"""

from __future__ import annotations

import mailbox
import signal
import smtplib
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from app import policies, settings
from app.directory import recipients
from app.queue import spool
from app.smtp.events import SmtpEvent
from app.smtp.service import SmtpService
from app.store import Store

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"


@dataclass
class Smtp:
    """A running service on a free loopback port, and what it reported."""

    store: Store
    service: SmtpService
    port: int
    events: list[SmtpEvent] = field(default_factory=list)
    event_threads: set[str] = field(default_factory=set)

    def client(self) -> smtplib.SMTP:
        client = smtplib.SMTP("127.0.0.1", self.port, timeout=10)
        client.ehlo("client.test")
        return client

    def maildir(self, alias: str) -> list[bytes]:
        """The messages in a user's Maildir (new/), as bytes, oldest first."""
        folder = self.store.paths.mailbox(alias)
        if not (folder / "new").is_dir():
            return []
        box = mailbox.Maildir(folder, create=False)
        return [box.get_bytes(key) for key in sorted(box.keys())]

    def queued(self) -> list[spool.QueuedMessage]:
        return spool.list_queue(self.store.paths.queue)

    def index_follows(self, timeout: float = 5) -> None:
        """Wait until the service has reloaded its directory index (recipients and settings)
        with every change committed so far: its watcher thread polls the change counter."""
        committed = self.store.change_counter()
        router = self.service._router  # the index the service answers from; no public handle
        assert router is not None, "the service is not running"
        deadline = time.monotonic() + timeout
        while router.index.counter < committed:
            assert time.monotonic() < deadline, "the service never reloaded its index"
            time.sleep(0.01)  # polls the event (the reload), like qtbot.waitUntil

    def wait_events(self, kind: str, count: int = 1, timeout: float = 5) -> list[SmtpEvent]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.events if e.kind == kind]
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"fewer than {count} {kind} events: {self.events}")


def organisation(store: Store) -> None:
    """example.com (Default Policy) and example.net (a second policy), shared.test (shared)."""
    policies.create_policy(store, "Net", "(company=Net)")
    policies.add_rule(store, "Net", "@example.net")
    policies.create_policy(store, "Shared", "(company=Shared)")
    policies.add_rule(store, "Shared", "@shared.test", responsible=False)
    recipients.create_recipient(store, "jsmith", password=PASSWORD)
    recipients.add_address(store, "jsmith", "jsmith@example.com")
    recipients.create_recipient(store, "ann", attributes={"company": "Net"})
    recipients.add_address(store, "ann", "ann@example.net")
    recipients.add_address(store, "ann", "Ann.Other@example.net")
    recipients.create_recipient(store, "bob", attributes={"company": "Shared"})
    recipients.add_address(store, "bob", "bob@shared.test")
    settings.save_settings(
        store,
        fqdn="mx.example.test",
        # A route onward that needs no DNS: nothing is sent anywhere (the queue only holds it).
        smart_host="relay.partner.test:25",
    )


def start(store: Store) -> Smtp:
    service = SmtpService(store, listen=["127.0.0.1:0"])
    running = Smtp(store, service, 0)

    def record(event: SmtpEvent) -> None:
        running.event_threads.add(threading.current_thread().name)
        running.events.append(event)

    service.add_event_callback(record)
    service.start()
    running.port = int(service.addresses[0].rsplit(":", 1)[1])
    return running


def message(subject: str = "Hello", body: str = "Hello there.") -> bytes:
    return (
        f"From: sender@outside.test\r\nTo: someone\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@outside.test>\r\n\r\n{body}\r\n"
    ).encode()


def rcpt(client: smtplib.SMTP, raw_address: str) -> tuple[int, str]:
    """RCPT TO with the address exactly as given (no quoting by smtplib)."""
    code, text = client.docmd("RCPT", f"TO:{raw_address}")
    return code, text.decode()


def tls_client(smtp: Smtp) -> smtplib.SMTP:
    client = smtp.client()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    client.starttls(context=context)
    client.ehlo("client.test")
    return client


class Serve:
    """``postroom serve`` in a subprocess; ``port`` is known once it said it listens."""

    def __init__(self, data_dir: Path, *args: str, prefix: tuple[str, ...] = ()) -> None:
        command = [*prefix, sys.executable, "-m", "app", "--data-dir", str(data_dir), "serve"]
        self.process = subprocess.Popen(
            [*command, *(args or ("--listen", "127.0.0.1:0"))],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.port = 0

    def wait_listening(self) -> Serve:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:"), (line, self.finish())
        self.port = int(line.strip().rsplit(":", 1)[1])
        return self

    def finish(self, sig: int = signal.SIGTERM, timeout: float = 30) -> tuple[int, str, str]:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        out, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, out, err


def postroom(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "--data-dir", str(data_dir), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
