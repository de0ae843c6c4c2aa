"""``postroom pop3 show | set KEY VALUE``: the Default POP3 Virtual Server's settings."""

from __future__ import annotations

from typing import Any

from app.cli.imap import register_protocol


def register(subparsers: Any) -> None:
    register_protocol(subparsers, "pop3")
