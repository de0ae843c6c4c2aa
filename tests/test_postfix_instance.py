"""The harness that benchmarks and interoperability tests share: a private Postfix on loopback
relaying to smtp-sink, stopped without a trace, and the CPU time of a process tree."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postfix_instance import (
    HarnessError,
    PostfixInstance,
    SmtpSink,
    tree_cpu_seconds,
    wait_for_greeting,
)

SYSTEM_MAIN_CF = Path("/etc/postfix/main.cf")


def message(subject: str, body: str = "Hello from the harness test.") -> bytes:
    return (
        f"From: sender@outside.test\r\nTo: someone\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@outside.test>\r\n\r\n{body}\r\n"
    ).encode()


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    with SmtpSink(dump_dir=tmp_path / "sink") as running:
        yield running


@pytest.fixture
def postfix(sink: SmtpSink) -> Iterator[PostfixInstance]:
    with PostfixInstance("127.0.0.1", sink.port) as running:
        yield running


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def running(pid: int) -> bool:
    """Whether the process runs; ended but not yet reaped by init (a zombie) is ended."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def processes_with(config_directory: Path) -> list[int]:
    """Every process on the machine whose environment or command line names the directory
    (Postfix's master passes MAIL_CONFIG to each daemon it runs)."""
    needle = str(config_directory).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/environ").read_bytes()
            text += Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if needle in text:
            found.append(int(entry))
    return found


def test_a_message_sent_to_the_private_postfix_reaches_the_sink(
    postfix: PostfixInstance, sink: SmtpSink
) -> None:
    postfix.send("sender@outside.test", ["someone@domain1.test"], message("Through Postfix"))

    assert sink.wait_for(1, timeout=30), postfix.log()
    (dumped,) = sink.messages()
    assert b"X-Rcpt-Args: <someone@domain1.test>" in dumped
    assert b"X-Mail-Args: <sender@outside.test>" in dumped
    # It came by way of the private instance, not straight from this test.
    assert b"X-Helo-Args: postfix.loopback.test" in dumped
    assert b"by postfix.loopback.test (Postfix)" in dumped
    assert b"Subject: Through Postfix" in dumped
    assert b"Hello from the harness test." in dumped
    assert postfix.queued() == 0
    assert "status=sent" in postfix.log()
    assert sink.first_at is not None and sink.last_at is not None


def test_many_messages_to_many_domains_are_counted_once_each(
    postfix: PostfixInstance, sink: SmtpSink
) -> None:
    for n in range(20):
        postfix.send("sender@outside.test", [f"user{n}@domain{n % 5}.test"], message(f"M {n}"))

    assert sink.wait_for(20, timeout=30), postfix.log()
    time.sleep(0.5)  # nothing more is on its way: the count stays at 20
    assert sink.received == 20
    recipients = sorted(
        line for m in sink.messages() for line in m.splitlines() if line.startswith(b"X-Rcpt")
    )
    assert len(recipients) == 20
    assert len(set(recipients)) == 20
    assert sink.first_at is not None and sink.last_at is not None
    assert sink.first_at <= sink.last_at


def test_mail_waits_in_the_queue_while_the_relay_host_is_down() -> None:
    down = SmtpSink()  # a port of its own, never started: nothing listens there
    with PostfixInstance("127.0.0.1", down.port) as postfix:
        postfix.send("sender@outside.test", ["someone@domain1.test"], message("Deferred"))
        deadline = time.monotonic() + 30
        while "status=deferred" not in postfix.log():
            assert time.monotonic() < deadline, postfix.log()
            time.sleep(0.1)
        assert postfix.queued() == 1  # kept, not lost
        assert "Connection refused" in postfix.log()


def test_the_instance_is_private_and_stop_leaves_nothing_behind(sink: SmtpSink) -> None:
    system_before = SYSTEM_MAIN_CF.stat().st_mtime_ns if SYSTEM_MAIN_CF.exists() else None
    postfix = PostfixInstance("127.0.0.1", sink.port).start()
    try:
        config = postfix.config_directory
        pids = postfix.processes()
        assert postfix.master_pid in pids and len(pids) > 1  # master and its daemons
        assert set(pids) <= set(processes_with(config))
        assert listening(postfix.port)
        assert postfix.root.parent == Path(tempfile.gettempdir())
        assert f"configuration {config}" in postfix.log()
    finally:
        postfix.stop()

    assert processes_with(config) == []
    assert not any(running(pid) for pid in pids)
    assert not listening(postfix.port)
    assert not postfix.root.exists()
    assert postfix.processes() == []
    system_after = SYSTEM_MAIN_CF.stat().st_mtime_ns if SYSTEM_MAIN_CF.exists() else None
    assert system_after == system_before
    postfix.stop()  # a second stop is harmless


def test_a_port_in_use_fails_the_start_with_postfix_s_reason_and_leaves_nothing(
    sink: SmtpSink,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        postfix = PostfixInstance("127.0.0.1", sink.port, port=port)

        with pytest.raises(HarnessError, match="Address already in use"):
            postfix.start()

        assert processes_with(postfix.config_directory) == []
        assert not postfix.root.exists()
        assert postfix.master_pid is None


def test_a_parent_folder_postfix_cannot_pass_through_is_refused(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)

    with pytest.raises(HarnessError, match="others may pass through"):
        PostfixInstance("127.0.0.1", 2525, parent=closed)
    assert list(closed.iterdir()) == []


def test_the_sink_counts_nothing_until_mail_comes() -> None:
    with SmtpSink() as sink:
        assert wait_for_greeting(sink.port).startswith("220")
        assert sink.wait_for(1, timeout=0.3) is False
        assert sink.received == 0
        assert sink.first_at is None and sink.last_at is None
        with pytest.raises(HarnessError, match="dump_dir"):
            sink.messages()
    assert not listening(sink.port)


def test_cpu_seconds_of_a_tree_count_children_running_and_ended() -> None:
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
    # A parent that runs one child to its end (reaped) and keeps a second one burning.
    parent = (
        "import subprocess, sys\n"
        f"subprocess.run([sys.executable, '-c', {burn!r}])\n"
        f"child = subprocess.Popen([sys.executable, '-c', {burn!r} + 'input()'],"
        " stdin=subprocess.PIPE)\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "child.communicate(b'\\n')\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", parent], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        assert process.stdout.readline() == "ready\n"
        time.sleep(0.5)  # the second child has burned its 0.3 s
        assert tree_cpu_seconds(process.pid) >= 0.55
    finally:
        process.stdin.write("\n")
        process.stdin.close()
        process.wait(10)
        process.stdout.close()
    assert tree_cpu_seconds(process.pid) == 0.0  # ended: nothing left to count
