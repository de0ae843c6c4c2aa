"""What the Dovecot tests share: Postroom's Dovecot on free loopback ports beside a real SMTP
service, users made through the ``postroom`` command, and imaplib / poplib helpers. (No tests
here.)"""

from __future__ import annotations

import imaplib
import os
import poplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from app import organization
from app.dovecot.service import DovecotService
from app.settings import save_settings
from app.store import Store
from tests.smtp_support import ROOT, Smtp, postroom, start

PASSWORD = "correct horse battery staple"
TIMEOUT = 15


def free_ports(count: int) -> list[int]:
    """Loopback ports nobody listens on, all different (held open together while chosen)."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def reachable_folder() -> Path:
    """A new folder Dovecot's mail user can enter: pytest's own temporary folders are closed
    to other users (0700), and Postroom refuses a data directory there when it runs as root."""
    folder = Path(tempfile.mkdtemp(prefix="postroom-dovecot-test-"))
    folder.chmod(0o711)
    return folder


def new_store(data_dir: Path) -> Store:
    store = Store.open(data_dir)
    organization.initialize(store, "Test Organization", "example.com")
    return store


def listen_on_free_ports(store: Store) -> tuple[int, int]:
    """Point IMAP4 and POP3 at free loopback ports; (imap port, pop3 port)."""
    imap_port, pop3_port = free_ports(2)
    save_settings(store, imap_listen=f"127.0.0.1:{imap_port}", pop3_listen=f"127.0.0.1:{pop3_port}")
    return imap_port, pop3_port


def make_user(data_dir: Path, alias: str, given: str, password: str | None = PASSWORD) -> None:
    """A user made as an administrator does: ``postroom recipient new``, then the RUS stamps
    its address (``<alias>@example.com``)."""
    args = ["recipient", "new", alias, "--given", given]
    if password is not None:
        args.append("--password-stdin")
    made = postroom_with_input(data_dir, password, *args)
    assert made.returncode == 0, made.stderr
    stamped = postroom(data_dir, "rus", "update")
    assert stamped.returncode == 0, stamped.stderr


def postroom_with_input(
    data_dir: Path, text: str | None, *args: str
) -> subprocess.CompletedProcess[str]:
    """``postroom ARGS`` with ``text`` (and a newline) on its standard input."""
    return subprocess.run(
        [sys.executable, "-m", "app", "--data-dir", str(data_dir), *args],
        cwd=ROOT,
        input=None if text is None else text + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )


@dataclass
class MailServer:
    """Postroom's SMTP service and its Dovecot, on one store."""

    store: Store
    smtp: Smtp
    dovecot: DovecotService
    imap_port: int
    pop3_port: int

    def imap(self, login: str, password: str = PASSWORD) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=TIMEOUT)
        try:
            client.login(login, password)
        except BaseException:
            client.shutdown()  # imaplib leaves the socket open after a refused LOGIN
            raise
        return client

    def pop3(self, login: str, password: str = PASSWORD) -> poplib.POP3:
        client = poplib.POP3("127.0.0.1", self.pop3_port, timeout=TIMEOUT)
        try:
            client.user(login)
            client.pass_(password)
        except BaseException:
            client.close()
            raise
        return client

    def deliver(self, to: str, subject: str, body: str = "Hello there.") -> bytes:
        """Send a message through Postroom's SMTP service; the bytes sent."""
        data = (
            f"From: sender@outside.test\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}@outside.test>\r\n\r\n{body}\r\n"
        ).encode()
        with self.smtp.client() as client:
            client.sendmail("sender@outside.test", [to], data)
        return data

    def maildir_files(self, alias: str) -> list[str]:
        """Every message file name in the user's Maildir (new/ and cur/)."""
        folder = self.store.paths.mailbox(alias)
        return sorted(
            f"{sub}/{name}" for sub in ("new", "cur") for name in os.listdir(folder / sub)
        )


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def refusal(error: BaseException) -> str:
    """The text of an imaplib / poplib refusal."""
    text = error.args[0] if error.args else error
    return text.decode() if isinstance(text, bytes) else str(text)


def start_mail_server(data_dir: Path) -> MailServer:
    store = new_store(data_dir)
    imap_port, pop3_port = listen_on_free_ports(store)
    smtp = start(store)
    dovecot = DovecotService(store)
    try:
        dovecot.start()
    except BaseException:
        smtp.service.stop()
        raise
    return MailServer(store, smtp, dovecot, imap_port, pop3_port)


def stop_mail_server(server: MailServer) -> None:
    server.dovecot.stop()
    server.smtp.service.stop()
    server.store.close()
