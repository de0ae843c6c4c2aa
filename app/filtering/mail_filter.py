"""The filtering decisions the SMTP service asks for: blocked senders at MAIL FROM, and after
DATA the reply and where (and how marked) a message is stored."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.filtering import headers
from app.filtering.protocol import RspamdClient, ScanFailed, ScanRequest, Verdict
from app.filtering.supervisor import RspamdSupervisor
from app.settings import Settings

log = logging.getLogger(__name__)

JUNK = "Junk"
SOFT_ACTIONS = ("soft reject", "greylist")
JUNK_ACTIONS = ("add header", "rewrite subject")
_REPLY_TEXT_MAX = 200


@dataclass(frozen=True)
class Outcome:
    """What to do with a message: refuse it with ``reply``, or store ``content`` in ``folder``
    ('' for the Inbox)."""

    reply: str = ""
    content: bytes = b""
    folder: str = ""
    verdict: str = ""  # one line for the log and events: action, score and main symbols


def blocked_sender_reply(settings: Settings, sender: str) -> str:
    """The 550 reply when ``sender`` (an address, '' for <>) is on the blocked list, else ''."""
    if not settings.blocked_senders or not sender:
        return ""
    address = sender.lower()
    domain = address.rpartition("@")[2]
    for entry in settings.blocked_senders:
        if entry == address or ("@" not in entry and entry == domain):
            return f"550 5.7.1 Mail from <{sender[:100]}> is refused here"
    return ""


def _status(verdict: Verdict, settings: Settings, junk: bool) -> str:
    tests = ", ".join(verdict.main_symbols())
    return (
        f"{'Yes' if junk else 'No'}, score={verdict.score:.2f} "
        f"required={settings.filter_junk_score:.2f}\n tests=[{tests}]"
    )


def _reply_text(verdict: Verdict, default: str) -> str:
    text = "".join(c for c in verdict.message if c.isprintable() and c.isascii()).strip()
    return (text or default)[:_REPLY_TEXT_MAX]


def describe(verdict: Verdict) -> str:
    return f"{verdict.action} score {verdict.score:.2f} ({', '.join(verdict.main_symbols(5))})"


class MailFilter:
    """rspamd's verdicts for the SMTP service. ``check`` runs on an SMTP listener's loop."""

    def __init__(self, supervisor: RspamdSupervisor) -> None:
        self.supervisor = supervisor
        self._client = RspamdClient()

    async def detach(self) -> None:
        """Close the running loop's connections to rspamd (on that loop)."""
        await self._client.detach()

    async def check(
        self, request: ScanRequest, content: bytes, settings: Settings, outgoing: bool
    ) -> Outcome:
        """The outcome for a message. ``outgoing`` mail (authenticated, or from a relay IP) is
        not scored: rspamd only adds its signature, when signing is configured."""
        if outgoing:
            return await self._sign(request, content, settings)
        host = request.host_name
        if len(content) > settings.filter_max_size:
            status = f"unscanned (larger than {settings.filter_max_size} bytes)"
            return self._unscanned(content, host, status)
        if not self.supervisor.installed:
            return self._unscanned(content, host, "unscanned (rspamd is not installed)")
        try:
            if not self.supervisor.is_ready:
                raise ScanFailed(self.supervisor.error or "rspamd is starting")
            verdict = await self._client.check(
                self.supervisor.url, request, content, settings.filter_timeout
            )
        except ScanFailed as error:
            log.warning("message %s not scanned: %s", request.queue_id, error)
            if settings.filter_failure_action == "accept":
                return self._unscanned(content, host, "unscanned (the filter did not answer)")
            return Outcome(
                reply="451 4.7.1 The mail filter is not available; try again later",
                verdict=f"unscanned: {error}",
            )
        return self._decide(verdict, request, content, settings)

    def _decide(
        self, verdict: Verdict, request: ScanRequest, content: bytes, settings: Settings
    ) -> Outcome:
        line = describe(verdict)
        if verdict.action == "reject":
            text = _reply_text(verdict, "Message refused as spam")
            return Outcome(reply=f"550 5.7.1 {text}", verdict=line)
        if verdict.action in SOFT_ACTIONS:
            text = _reply_text(verdict, "Message deferred by the mail filter; try again later")
            return Outcome(reply=f"451 4.7.1 {text}", verdict=line)
        junk = verdict.action in JUNK_ACTIONS
        added = list(verdict.add_headers)
        added.append(("X-Spam-Status", _status(verdict, settings, junk)))
        stored = headers.rewrite(content, request.host_name, added)
        return Outcome(content=stored, folder=JUNK if junk else "", verdict=line)

    async def _sign(self, request: ScanRequest, content: bytes, settings: Settings) -> Outcome:
        signs = self.supervisor.signs
        if not signs or not self.supervisor.is_ready:
            if signs:
                log.warning("message %s goes unsigned: rspamd is not running", request.queue_id)
            return Outcome(content=content)
        try:
            verdict = await self._client.check(
                self.supervisor.url, request, content, settings.filter_timeout
            )
        except ScanFailed as error:
            log.warning("message %s goes unsigned: %s", request.queue_id, error)
            return Outcome(content=content)
        added = [(n, v) for n, v in verdict.add_headers if n.lower() != "authentication-results"]
        if not added:
            return Outcome(content=content)
        return Outcome(content=headers.rewrite(content, request.host_name, added))

    @staticmethod
    def _unscanned(content: bytes, host: str, status: str) -> Outcome:
        return Outcome(
            content=headers.rewrite(content, host, [("X-Spam-Status", status)]),
            verdict=status,
        )
