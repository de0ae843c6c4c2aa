"""IMAP4 and POP3 through the real Dovecot with Postroom's configuration, on free loopback ports:
users made with the ``postroom`` command log in by address or alias and read what Postroom's SMTP
service delivered; flags, EXPUNGE, RETR and DELE reach the Maildir; every bad input is refused."""

from __future__ import annotations

import base64
import hashlib
import imaplib
import os
import poplib
import shutil
import signal
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.directory import recipients
from app.dovecot import config
from app.dovecot.service import DovecotService
from app.errors import PostroomError
from app.mailstore import mailboxes, ownership
from app.settings import save_settings
from app.store import Store
from app.store import directory as rows
from tests.dovecot_support import (
    PASSWORD,
    MailServer,
    free_ports,
    listen_on_free_ports,
    make_user,
    new_store,
    postroom_with_input,
    reachable_folder,
    refusal,
    start_mail_server,
    stop_mail_server,
)
from tests.smtp_support import Serve, tls_client

pytestmark = pytest.mark.skipif(
    shutil.which("dovecot", path=os.environ.get("PATH", "") + ":/usr/sbin") is None,
    reason="needs Dovecot (./run installs dovecot-imapd, dovecot-pop3d, dovecot-sqlite)",
)


@pytest.fixture(scope="module")
def server() -> Iterator[MailServer]:
    """One Dovecot for the module, with ann, bob and carol (no password) made by the CLI."""
    folder = reachable_folder()
    data_dir = folder / "data"
    new_store(data_dir).close()
    make_user(data_dir, "ann", "Ann")
    make_user(data_dir, "bob", "Bob")
    make_user(data_dir, "carol", "Carol", password=None)
    running = start_mail_server(data_dir)
    pid = running.dovecot.pid
    assert pid is not None
    yield running
    stop_mail_server(running)
    shutil.rmtree(folder)
    assert not _alive(pid), "Dovecot outlived its service"


@pytest.fixture
def open_store() -> Iterator[Store]:
    """A new organisation in a folder Dovecot's mail user can reach."""
    folder = reachable_folder()
    store = new_store(folder / "data")
    yield store
    store.close()
    shutil.rmtree(folder)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _subjects(client: imaplib.IMAP4) -> dict[str, bytes]:
    """Subject → message sequence number of the selected mailbox."""
    found: dict[str, bytes] = {}
    typ, data = client.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    for item in data:
        if isinstance(item, tuple):
            number = item[0].split()[0]
            found[item[1].decode().split(":", 1)[1].strip()] = number
    return found


# -- reading mail -------------------------------------------------------------------------------


def test_a_user_reads_delivered_mail_by_address_and_by_alias(server: MailServer) -> None:
    sent = server.deliver("ann@example.com", "Read by address")
    for login in ("ann@example.com", "Ann@Example.COM", "ann", "ANN"):
        client = server.imap(login)
        try:
            assert client.select("INBOX")[0] == "OK"
            number = _subjects(client)["Read by address"]
            typ, data = client.fetch(number, "(BODY.PEEK[])")
            assert typ == "OK"
            body = data[0][1]
            assert isinstance(body, bytes) and body.endswith(sent)  # after our Received line
        finally:
            client.logout()


def test_mail_dovecot_sees_belongs_to_its_mail_user_when_postroom_is_root(
    server: MailServer,
) -> None:
    server.deliver("ann@example.com", "Owned")
    owner = ownership.mail_owner()
    if os.geteuid() != 0:
        assert owner is None
        return
    assert owner is not None
    folder = server.store.paths.mailbox("ann")
    for path in (folder, folder / "new", *(folder / "new").iterdir()):
        assert (path.stat().st_uid, path.stat().st_gid) == (owner.uid, owner.gid), path
    assert server.store.paths.database.stat().st_mode & 0o077 == 0  # the database stays private


def test_flags_are_set_and_kept_and_the_mailboxes_view_agrees(server: MailServer) -> None:
    server.deliver("bob@example.com", "Flag me")
    client = server.imap("bob")
    try:
        client.select("INBOX")
        number = _subjects(client)["Flag me"]
        assert client.store(number, "+FLAGS", r"(\Seen \Flagged)")[0] == "OK"
    finally:
        client.logout()
    client = server.imap("bob@example.com")
    try:
        client.select("INBOX", readonly=True)
        number = _subjects(client)["Flag me"]
        typ, data = client.fetch(number, "(FLAGS)")
        assert typ == "OK" and b"\\Seen" in data[0] and b"\\Flagged" in data[0]
    finally:
        client.logout()
    # Dovecot moved the file to cur/ with its flags in the name; Postroom still reads it.
    maildir = server.store.paths.mailbox("bob")
    moved = [name for name in os.listdir(maildir / "cur") if name.endswith(":2,FS")]
    assert len(moved) == 1
    listed = {message.subject: message for message in mailboxes.list_messages(maildir)}
    assert listed["Flag me"].unread is False
    content = mailboxes.read_message(maildir, listed["Flag me"].key)
    assert content.header("Subject") == "Flag me" and "Hello there." in content.text
    summary = {box.alias: box for box in mailboxes.list_mailboxes(server.store)}["bob"]
    assert summary.items == len(mailboxes.list_messages(maildir))


def test_expunge_removes_the_file_and_the_mailboxes_view_agrees(server: MailServer) -> None:
    server.deliver("bob@example.com", "Expunge me")
    before = server.maildir_files("bob")
    client = server.imap("bob")
    try:
        client.select("INBOX")
        number = _subjects(client)["Expunge me"]
        client.store(number, "+FLAGS", r"(\Deleted)")
        assert client.expunge()[0] == "OK"
        assert "Expunge me" not in _subjects(client)
    finally:
        client.logout()
    after = server.maildir_files("bob")
    assert len(after) == len(before) - 1
    subjects = [m.subject for m in mailboxes.list_messages(server.store.paths.mailbox("bob"))]
    assert "Expunge me" not in subjects


def test_pop3_retr_and_dele(server: MailServer) -> None:
    sent = server.deliver("ann@example.com", "By POP3")
    count = len(server.maildir_files("ann"))
    client = server.pop3("ann@example.com")
    try:
        messages = client.list()[1]
        assert len(messages) == count
        bodies = [b"\r\n".join(client.retr(n + 1)[1]) for n in range(len(messages))]
        index = next(i for i, body in enumerate(bodies) if b"Subject: By POP3" in body)
        assert bodies[index].endswith(sent.rstrip(b"\r\n"))
        assert client.dele(index + 1).startswith(b"+OK")
    finally:
        client.quit()  # the deletion happens at QUIT
    assert len(server.maildir_files("ann")) == count - 1
    subjects = [m.subject for m in mailboxes.list_messages(server.store.paths.mailbox("ann"))]
    assert "By POP3" not in subjects


def test_a_mailbox_limit_reaches_dovecot_quota(server: MailServer) -> None:
    recipients.edit_recipient(server.store, "bob", quota_prohibit=5000)
    client = server.imap("bob")
    try:
        typ, data = client.getquotaroot("INBOX")
        assert typ == "OK"
        assert b"STORAGE" in data[1][0] and b" 5000)" in data[1][0]
    finally:
        client.logout()
    recipients.edit_recipient(server.store, "bob", quota_prohibit=None)


# -- refusals -----------------------------------------------------------------------------------


def _imap_refusal(server: MailServer, login: str, password: str) -> str:
    with pytest.raises(imaplib.IMAP4.error) as refused:
        server.imap(login, password).logout()
    return refusal(refused.value)


def _pop3_refusal(server: MailServer, login: str, password: str) -> str:
    with pytest.raises(poplib.error_proto) as refused:
        server.pop3(login, password).quit()
    return refusal(refused.value)


def test_wrong_password_unknown_user_and_no_password_get_the_same_reply(
    server: MailServer,
) -> None:
    attempts = [
        ("ann@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
        ("carol", PASSWORD),  # a user without a password
        ("carol@example.com", ""),
        ("ann", "x" * 1025),  # over the length limit
        ("ann@example.com", "x" * 2000),
    ]
    # Dovecot waits before each refusal; the attempts wait together.
    with ThreadPoolExecutor(len(attempts) * 2) as pool:
        imap = list(pool.map(lambda a: _imap_refusal(server, *a), attempts))
        pop3 = list(pool.map(lambda a: _pop3_refusal(server, *a), attempts))
    # A LOGIN / PASS line has room for about 1 KiB: a longer password is refused before it is
    # checked (Dovecot's own limit; Postroom never stores one longer than 1024 bytes).
    assert set(imap[:-2]) == {"[AUTHENTICATIONFAILED] Authentication failed."}, imap
    assert all("Input buffer full" in reply for reply in imap[-2:]), imap
    assert set(pop3[:-2]) == {"-ERR [AUTH] Authentication failed."}, pop3
    assert all("Input buffer full" in reply for reply in pop3[-2:]), pop3


def test_a_password_over_the_limit_cannot_be_set(server: MailServer) -> None:
    made = postroom_with_input(
        server.store.paths.root, "x" * 1025, "recipient", "new", "dave", "--password-stdin"
    )
    assert made.returncode == 1
    assert made.stderr.strip().splitlines() == ["postroom: The password is longer than 1024 bytes."]
    assert recipients.list_recipients(server.store)[-1].alias != "dave"


def test_a_disabled_protocol_is_refused_with_its_reason_at_once(server: MailServer) -> None:
    recipients.edit_recipient(server.store, "ann", pop3_enabled=False)
    try:
        reply = _pop3_refusal(server, "ann", PASSWORD)
        assert "POP3 is turned off for this user." in reply
        assert "Authentication failed" in _pop3_refusal(server, "ann", "wrong")  # no hint
        server.imap("ann").logout()  # IMAP4 still on
    finally:
        recipients.edit_recipient(server.store, "ann", pop3_enabled=True)
    server.pop3("ann").quit()
    recipients.edit_recipient(server.store, "ann", imap_enabled=False)
    try:
        assert "IMAP is turned off for this user." in _imap_refusal(server, "ann", PASSWORD)
    finally:
        recipients.edit_recipient(server.store, "ann", imap_enabled=True)


def test_a_deleted_user_cannot_log_in(server: MailServer) -> None:
    make_user(server.store.paths.root, "erin", "Erin")
    server.imap("erin@example.com").logout()
    deleted = postroom_with_input(server.store.paths.root, None, "recipient", "delete", "erin")
    assert deleted.returncode == 0, deleted.stderr
    assert "Authentication failed" in _imap_refusal(server, "erin@example.com", PASSWORD)


def test_a_new_password_counts_at_once_and_an_old_scrypt_hash_is_upgraded_by_smtp_auth(
    server: MailServer,
) -> None:
    make_user(server.store.paths.root, "fred", "Fred")
    recipients.set_password(server.store, "fred", "a brand new secret")
    server.imap("fred", "a brand new secret").logout()
    assert "Authentication failed" in _imap_refusal(server, "fred", PASSWORD)
    # A hash from before ARGON2ID: Dovecot cannot check it, SMTP AUTH can and replaces it.
    old = "scrypt$16384$8$1$MDEyMzQ1Njc4OWFiY2RlZg==$" + _scrypt_key(PASSWORD)
    with server.store.write() as conn:
        rows.set_password_hash(
            conn, int(recipients.get_recipient(server.store, "fred").id or 0), old
        )
    assert "Authentication failed" in _imap_refusal(server, "fred", PASSWORD)
    with tls_client(server.smtp) as client:
        assert client.login("fred@example.com", PASSWORD)[0] == 235
    server.imap("fred@example.com").logout()


def _scrypt_key(password: str) -> str:
    key = hashlib.scrypt(password.encode(), salt=b"0123456789abcdef", n=2**14, r=8, p=1, dklen=32)
    return base64.b64encode(key).decode()


# -- starting and stopping ----------------------------------------------------------------------


def test_a_port_taken_by_another_program_is_one_line(open_store: Store) -> None:
    store = open_store
    listen_on_free_ports(store)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        save_settings(store, imap_listen=f"127.0.0.1:{port}")
        service = DovecotService(store)
        with pytest.raises(PostroomError) as refused:
            service.start()
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("Dovecot did not start: ")
    assert f"127.0.0.1, {port}" in message and "Address already in use" in message
    assert service.pid is None and not service.is_running


def test_dovecot_failing_to_start_shows_its_own_error_line(
    open_store: Store, tmp_path: Path
) -> None:
    store = open_store
    listen_on_free_ports(store)
    missing = tmp_path / "no-such-cert.pem"
    save_settings(store, tls_cert=str(missing), tls_key=str(missing))
    service = DovecotService(store)
    with pytest.raises(PostroomError) as refused:
        service.start()
    message = str(refused.value)
    assert "\n" not in message and message.startswith("Dovecot did not start: ")
    assert str(missing) in message
    assert service.pid is None


def test_dovecot_missing_is_one_line(open_store: Store) -> None:
    store = open_store
    listen_on_free_ports(store)
    service = DovecotService(store, executable="/nonexistent/sbin/dovecot")
    with pytest.raises(PostroomError, match="Dovecot is not installed, so IMAP4 and POP3 are off"):
        service.start()


def test_both_protocols_off_start_nothing(open_store: Store) -> None:
    store = open_store
    save_settings(store, imap_enabled=False, pop3_enabled=False)
    service = DovecotService(store)
    assert service.start() == [] and service.pid is None


def test_start_and_stop_by_its_own_pid(open_store: Store) -> None:
    store = open_store
    imap_port, pop3_port = listen_on_free_ports(store)
    service = DovecotService(store)
    listening = service.start()
    assert [(item.name, item.port) for item in listening] == [
        ("IMAP4", imap_port),
        ("POP3", pop3_port),
    ]
    pid = service.pid
    assert pid is not None and _alive(pid)
    assert service.start() == listening  # a second start is the same Dovecot
    service.stop()
    assert not _alive(pid) and service.pid is None
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", imap_port)) != 0
    conf = config.dovecot_paths(store.paths).config.read_text()
    assert f"port = {imap_port}" in conf and "port = 143\n" not in conf


def test_serve_starts_dovecot_beside_smtp_and_stops_it(open_store: Store) -> None:
    store = open_store
    data_dir = store.paths.root
    imap_port, pop3_port = listen_on_free_ports(store)
    (smtp_port,) = free_ports(1)
    serve = Serve(data_dir, "--listen", f"127.0.0.1:{smtp_port}")
    serve.wait_listening()
    assert serve.process.stdout is not None
    lines: list[str] = []
    while not lines or "(POP3)" not in lines[-1]:
        line = serve.process.stdout.readline()
        assert line, serve.finish()
        lines.append(line.strip())
    assert f"listening on 127.0.0.1:{imap_port} (IMAP4)" in lines
    assert f"listening on 127.0.0.1:{pop3_port} (POP3)" in lines
    pid = int(config.dovecot_paths(store.paths).pid_file.read_text().split()[0])
    code, _out, err = serve.finish(signal.SIGTERM)
    assert code == 0, err
    assert not _alive(pid)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the Maildirs to another user")
def test_serve_says_in_one_line_why_imap_is_off_and_smtp_runs_on(
    data_dir: Path, store: Store
) -> None:
    listen_on_free_ports(store)  # pytest's temporary folder (0700) is closed to the mail user
    serve = Serve(data_dir, "--listen", "127.0.0.1:0", "--submission-listen", "127.0.0.1:0")
    serve.wait_listening()
    assert serve.process.stdout is not None
    lines = [serve.process.stdout.readline().strip() for _ in range(2)]
    assert lines[1].startswith("IMAP4 and POP3 are not served: Dovecot's mail user cannot reach")
    with socket.create_connection(("127.0.0.1", serve.port), timeout=10) as smtp:
        assert smtp.recv(100).startswith(b"220 ")
    code, _out, err = serve.finish()
    assert code == 0 and err == ""
