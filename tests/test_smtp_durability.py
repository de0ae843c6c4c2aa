"""Durability: a 250 means the message is on disk, whole, once; failures answer 451."""

from __future__ import annotations

import mailbox
import os
import shutil
import signal
import smtplib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.store import Store
from tests.smtp_support import Serve, Smtp, message, organisation, rcpt


def files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def test_a_disk_error_answers_451_and_leaves_nothing_in_new(smtp: Smtp) -> None:
    jsmith = smtp.store.paths.mailbox("jsmith")
    shutil.rmtree(jsmith / "tmp")
    (jsmith / "tmp").write_text("not a folder")  # every write into tmp/ fails (ENOTDIR)
    with smtp.client() as client:
        client.mail("sender@outside.test")
        rcpt(client, "<ann@example.net>")
        rcpt(client, "<jsmith@example.com>")
        code, text = client.data(message("Lost?"))
        assert (code, text[:5]) == (451, b"4.3.0")
        assert client.noop()[0] == 250
    ann = smtp.store.paths.mailbox("ann")
    # All or nothing: Ann's copy, which could be written, is not delivered either.
    assert files(jsmith / "new") == [] and files(ann / "new") == [] and files(ann / "tmp") == []
    [failed] = smtp.wait_events("failed")
    assert failed.code == 451 and "Not a directory" in failed.reason
    (jsmith / "tmp").unlink()
    (jsmith / "tmp").mkdir()
    with smtp.client() as client:  # the sender's retry succeeds once the disk is mended
        client.sendmail("sender@outside.test", ["jsmith@example.com"], message("Retry"))
    assert len(smtp.maildir("jsmith")) == 1


def test_a_permission_error_answers_451(hosted_serve: Serve) -> None:
    data = Path(os.environ["POSTROOM_TEST_DATA"])
    new = data / "mailboxes" / "jsmith" / "new"
    os.chmod(new.parent / "tmp", 0o500)
    try:
        with smtplib.SMTP("127.0.0.1", hosted_serve.port, timeout=10) as client:
            client.ehlo("client.test")
            client.mail("sender@outside.test")
            rcpt(client, "<jsmith@example.com>")
            code, text = client.data(message("Denied"))
        assert (code, text[:5]) == (451, b"4.3.0")
    finally:
        os.chmod(new.parent / "tmp", 0o700)
    assert files(new) == [] and files(new.parent / "tmp") == []
    code, out, err = hosted_serve.finish()
    assert code == 0, err
    assert "failed from <sender@outside.test>" in out and "Permission denied" in out


@pytest.fixture
def hosted_serve(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[Serve]:
    """``postroom serve`` without the root privilege of ignoring file permissions."""
    organisation(store)
    monkeypatch.setenv("POSTROOM_TEST_DATA", str(store.paths.root))
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        prefix = ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--")
    serve = Serve(store.paths.root, prefix=prefix).wait_listening()
    yield serve
    serve.finish(signal.SIGKILL)


MARK = "END-OF-MESSAGE"


def sender(port: int, worker: int, acked: list[str], stop: threading.Event) -> None:
    """Send messages until the server dies; remember each one that got 250."""
    n = 0
    while not stop.is_set():
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                while not stop.is_set():
                    token = f"w{worker}-m{n}"
                    n += 1
                    body = f"token {token}\r\n" + "filler line\r\n" * 40 + f"{MARK} {token}"
                    mail = message(token, body)
                    client.sendmail("load@outside.test", ["jsmith@example.com"], mail)
                    acked.append(token)
        except (OSError, smtplib.SMTPException):
            if stop.is_set():
                return
            time.sleep(0.01)  # a load sender's pause before it reconnects, not a wait


def writer_processes(data_dir: Path) -> list[int]:
    """The disk writer processes still running for this data directory."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                command = (Path("/proc") / pid / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"app.smtp.writer" in command and os.fsencode(data_dir) in command:
                found.append(int(pid))
    return found


def test_sigkill_under_load_loses_no_acknowledged_message(store: Store) -> None:
    organisation(store)
    serve = Serve(store.paths.root).wait_listening()
    acked: list[str] = []
    stop = threading.Event()
    threads = [threading.Thread(target=sender, args=(serve.port, n, acked, stop)) for n in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(acked) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    # SIGKILL the service and its disk writer at once, in the middle of the load: whatever
    # got 250 must already be whole in new/, since nothing after the kill finishes it.
    for pid in [serve.process.pid, *writer_processes(store.paths.root)]:
        os.kill(pid, signal.SIGKILL)
    serve.finish()
    stop.set()
    for thread in threads:
        thread.join()
    assert len(acked) >= 200

    new = store.paths.mailbox("jsmith") / "new"
    box = mailbox.Maildir(new.parent, create=False)
    found: dict[str, int] = {}
    for key in box.iterkeys():
        text = box.get_bytes(key).decode()
        token = text.split("token ", 1)[1].split("\n", 1)[0]
        assert text.rstrip("\n").endswith(f"{MARK} {token}"), f"{key} is not whole"
        found[token] = found.get(token, 0) + 1
    assert all(found.get(token) == 1 for token in acked), "an acknowledged message is missing"
    assert all(count == 1 for count in found.values())
    # The kernel released the lock: a new serve may start at once.
    again = Serve(store.paths.root).wait_listening()
    assert again.finish()[0] == 0
