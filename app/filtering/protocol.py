"""rspamd's HTTP protocol: one message and its envelope to ``/checkv2``, and the verdict."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger(__name__)


class ScanFailed(Exception):
    """rspamd did not answer in time, or answered something that is no verdict."""


@dataclass(frozen=True)
class ScanRequest:
    """What rspamd is told besides the message (the SMTP envelope and session)."""

    client_ip: str
    helo: str
    sender: str  # '' for the null sender
    recipients: tuple[str, ...]
    queue_id: str
    host_name: str  # this server's name, the authserv-id of Authentication-Results
    user: str = ""  # the authenticated user: rspamd signs rather than scores


@dataclass(frozen=True)
class Verdict:
    """rspamd's answer: its action, score, the symbols that fired and the headers to add."""

    action: str  # "no action", "add header", "rewrite subject", "soft reject", "greylist", "reject"
    score: float
    required: float
    symbols: dict[str, float]
    message: str = ""  # rspamd's text for the SMTP reply
    add_headers: tuple[tuple[str, str], ...] = field(default=())
    remove_headers: tuple[str, ...] = field(default=())

    def main_symbols(self, count: int = 8) -> list[str]:
        """The symbols that weighed most, heaviest first."""
        ranked = sorted(self.symbols.items(), key=lambda item: -abs(item[1]))
        return [name for name, _ in ranked[:count]]


def request_headers(request: ScanRequest) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"IP", request.client_ip),
        (b"Helo", request.helo or "unknown"),
        (b"From", request.sender),
        (b"Queue-Id", request.queue_id),
        (b"MTA-Name", request.host_name),
    ]
    headers += [(b"Rcpt", address) for address in request.recipients]
    if request.user:
        headers.append((b"User", request.user))
    return [(name, _header_value(value)) for name, value in headers if value]


def _header_value(text: str) -> bytes:
    return "".join(c for c in text if c.isprintable()).encode("utf-8", "replace")


def parse_reply(body: bytes) -> Verdict:
    """The verdict in a ``/checkv2`` reply body; ScanFailed when it is none."""
    try:
        reply = json.loads(body)
        action = str(reply["action"])
        score = float(reply.get("score", 0.0))
        required = float(reply.get("required_score", 0.0))
    except (ValueError, KeyError, TypeError) as error:
        raise ScanFailed(f"rspamd's reply is no verdict: {error}") from None
    symbols: dict[str, float] = {}
    for name, detail in (reply.get("symbols") or {}).items():
        if isinstance(detail, dict):
            symbols[str(name)] = float(detail.get("score", 0.0) or 0.0)
    messages = reply.get("messages") or {}
    text = messages.get("smtp_message", "") if isinstance(messages, dict) else ""
    milter = reply.get("milter") or {}
    return Verdict(
        action=action,
        score=score,
        required=required,
        symbols=symbols,
        message=str(text),
        add_headers=tuple(_added(milter.get("add_headers") or {})),
        remove_headers=tuple(str(name) for name in (milter.get("remove_headers") or {})),
    )


def _added(entries: dict[str, Any]) -> list[tuple[str, str]]:
    """milter add_headers: a name to a string, an object with ``value`` or a list of them."""
    added: list[tuple[str, str]] = []
    for name, value in entries.items():
        for item in value if isinstance(value, list) else [value]:
            text = item.get("value") if isinstance(item, dict) else item
            if isinstance(text, str):
                added.append((str(name), text))
    return added


class RspamdClient:
    """Asks rspamd for verdicts over HTTP. One connection pool per event loop (each SMTP
    listener has its own); ``detach`` closes the running loop's, on that loop."""

    def __init__(self) -> None:
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}

    async def check(
        self, url: str, request: ScanRequest, content: bytes, timeout: float
    ) -> Verdict:
        """rspamd's verdict on ``content``; ScanFailed when there is none within ``timeout``."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = httpx.AsyncClient(trust_env=False)
        try:
            response = await client.post(
                f"{url}/checkv2",
                content=content,
                headers=request_headers(request),
                timeout=timeout,
            )
        except httpx.HTTPError as error:
            raise ScanFailed(f"rspamd did not answer: {error!r}") from None
        if response.status_code != 200:
            raise ScanFailed(f"rspamd answered HTTP {response.status_code}")
        return parse_reply(response.content)

    async def detach(self) -> None:
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
