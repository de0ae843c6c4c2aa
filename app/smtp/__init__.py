"""The embedded SMTP service: accepts mail for the hosted addresses and stores it durably."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.smtp.events import EventCallback, SmtpEvent
    from app.smtp.protocol import Connection
    from app.smtp.service import SmtpService

__all__ = ["Connection", "EventCallback", "SmtpEvent", "SmtpService"]

# Imported on first use, so that the disk writer process (app.smtp.writer) starts light.
_HOMES = {
    "Connection": "app.smtp.protocol",
    "EventCallback": "app.smtp.events",
    "SmtpEvent": "app.smtp.events",
    "SmtpService": "app.smtp.service",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'app.smtp' has no attribute {name!r}")
