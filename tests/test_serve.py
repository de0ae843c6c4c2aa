"""``postroom serve`` and ``postroom smtp``: listening, signals, refusals, settings."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import settings
from app.directory import recipients
from app.store import Store
from tests.smtp_support import Serve, message, organisation, postroom


@pytest.fixture
def hosted(store: Store) -> Iterator[Path]:
    organisation(store)
    yield store.paths.root


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_listens_logs_each_message_and_stops_cleanly(hosted: Path, sig: int) -> None:
    serve = Serve(hosted).wait_listening()
    with smtplib.SMTP("127.0.0.1", serve.port, timeout=10) as client:
        client.sendmail("sender@outside.test", ["jsmith@example.com"], message("Logged"))
        client.mail("sender@outside.test")
        client.rcpt("ghost@example.com")
    code, out, err = serve.finish(sig)
    assert code == 0, err
    lines = out.splitlines()
    assert any(line.startswith("received ") and "<Logged@outside.test>" in line for line in lines)
    assert any(line.startswith("rejected ") and "ghost@example.com" in line for line in lines)
    assert lines[-1] == "stopped"
    assert len(os.listdir(hosted / "mailboxes" / "jsmith" / "new")) == 1


def test_serve_listens_on_several_addresses(hosted: Path) -> None:
    serve = Serve(hosted, "--listen", "127.0.0.1:0", "--listen", "127.0.0.2:0")
    assert serve.process.stdout is not None
    first = serve.process.stdout.readline()
    second = serve.process.stdout.readline()
    assert first.startswith("listening on 127.0.0.1:")
    assert second.startswith("listening on 127.0.0.2:")
    port = int(second.strip().rsplit(":", 1)[1])
    with smtplib.SMTP("127.0.0.2", port, timeout=10) as client:
        assert client.noop()[0] == 250
    assert serve.finish()[0] == 0


def test_serve_refuses_a_port_that_is_taken(hosted: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = postroom(hosted, "serve", "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert f"127.0.0.1:{port}" in line and "already in use" in line


def test_serve_refuses_a_data_directory_another_serve_holds(hosted: Path) -> None:
    first = Serve(hosted).wait_listening()
    try:
        result = postroom(hosted, "serve", "--listen", "127.0.0.1:0")
        assert result.returncode == 1
        [line] = result.stderr.splitlines()
        assert "Another postroom serve" in line and str(first.process.pid) in line
        show = postroom(hosted, "smtp", "show")
        assert f"serve: running (process {first.process.pid})" in show.stdout
    finally:
        assert first.finish()[0] == 0
    assert "serve: not running" in postroom(hosted, "smtp", "show").stdout


def test_serve_refuses_a_bad_listen_address(hosted: Path) -> None:
    result = postroom(hosted, "serve", "--listen", "127.0.0.1:99999")
    assert result.returncode == 1 and "is not a listen address" in result.stderr


def test_smtp_show_and_set(hosted: Path) -> None:
    result = postroom(hosted, "smtp", "set", "max_recipients", "250")
    assert result.returncode == 0 and "max_recipients = 250" in result.stdout
    shown = json.loads(postroom(hosted, "smtp", "show", "--json").stdout)
    assert shown["settings"]["max_recipients"] == 250
    assert shown["state"]["serve"] == "not running"
    text = postroom(hosted, "smtp", "show").stdout
    assert "max_recipients" in text and "250" in text
    result = postroom(hosted, "smtp", "set", "postmaster", "ann")
    assert result.returncode == 0
    assert "postmaster mail goes to: ann" in postroom(hosted, "smtp", "show").stdout


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("max_recipients", "99", "out of range"),
        ("relay_ips", "not-an-ip", "is not an IP address"),
        ("postmaster", "nobody-here", "no recipient with the alias"),
        ("no_such_key", "1", "is not a setting"),
        ("listen", "127.0.0.1:0", "is not a listen address"),
    ],
)
def test_smtp_set_refuses_bad_values_and_changes_nothing(
    hosted: Path, key: str, value: str, says: str
) -> None:
    before = postroom(hosted, "smtp", "show", "--json").stdout
    result = postroom(hosted, "smtp", "set", key, value)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert says in line
    assert postroom(hosted, "smtp", "show", "--json").stdout == before


def test_settings_keep_listen_ports_above_zero(store: Store) -> None:
    with pytest.raises(Exception, match="is not a listen address"):
        settings.save_settings(store, listen="127.0.0.1:0")


def test_serve_runs_the_recipient_update_service(hosted: Path) -> None:
    store = Store.open(hosted)
    recipients.create_recipient(store, "carol")  # no address yet: the RUS stamps one
    store.close()
    serve = Serve(hosted).wait_listening()
    try:
        with smtplib.SMTP("127.0.0.1", serve.port, timeout=10) as client:
            client.ehlo("client.test")
            client.mail("sender@outside.test")
            deadline = time.monotonic() + 15
            while client.rcpt("carol@example.com")[0] != 250:
                assert time.monotonic() < deadline, "carol@example.com was never accepted"
                time.sleep(0.1)  # between asks: the reply is the event (the RUS stamped carol)
    finally:
        assert serve.finish()[0] == 0
