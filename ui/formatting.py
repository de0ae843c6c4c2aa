"""How the console writes times, counts and addresses (shared by views and dialogs)."""

from __future__ import annotations

import logging
from datetime import datetime

from app.directory import addressing
from app.model import SMTP, AddressRule, ProxyAddress

log = logging.getLogger(__name__)


def local_time(stamp: str) -> str:
    """An ISO 8601 time from the store, shown in local time to the minute ('' stays '')."""
    if not stamp:
        return ""
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp


def local_timestamp(seconds: float) -> str:
    """A Unix time in local time, to the second."""
    return datetime.fromtimestamp(seconds).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 policy``, ``3 policies``."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count:,} {word}"


def shown_smtp(address: str | None) -> str:
    """An SMTP address with its domain in Unicode (U-labels)."""
    if not address:
        return ""
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    return f"{local}@{addressing.display_domain(domain)}"


def shown_address(item: AddressRule | ProxyAddress) -> str:
    """A policy's rule or a recipient's address as lists show it: SMTP domains in Unicode."""
    return shown_smtp(item.address) if item.type.upper() == SMTP else item.address
