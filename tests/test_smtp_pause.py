"""Pause: new connections get 421 4.3.2 while sessions under way go on; Resume accepts again."""

from __future__ import annotations

import smtplib
import socket

import pytest

from tests.smtp_support import Smtp, message


def greeting(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.settimeout(10)
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = sock.recv(1024)
            if not chunk:
                break
            data += chunk
        return data


def test_pause_refuses_new_sessions_and_lets_open_ones_finish(smtp: Smtp) -> None:
    service = smtp.service
    assert greeting(smtp.port).startswith(b"220 ")
    with smtp.client() as under_way:
        service.pause()
        assert service.is_paused and service.is_running
        reply = greeting(smtp.port)
        assert reply.startswith(b"421 4.3.2 mx.example.test Service paused")
        with pytest.raises(smtplib.SMTPConnectError):
            smtplib.SMTP("127.0.0.1", smtp.port, timeout=10)
        # The session opened before the pause still delivers.
        under_way.sendmail("sender@outside.test", ["jsmith@example.com"], message("Before"))
    assert len(smtp.maildir("jsmith")) == 1

    service.resume()
    assert not service.is_paused
    with smtp.client() as client:
        client.sendmail("sender@outside.test", ["jsmith@example.com"], message("After"))
    assert len(smtp.maildir("jsmith")) == 2


def test_stop_forgets_the_pause(smtp: Smtp) -> None:
    service = smtp.service
    service.pause()
    service.stop()
    assert not service.is_paused
    service.pause()  # not running: nothing to pause
    assert not service.is_paused
