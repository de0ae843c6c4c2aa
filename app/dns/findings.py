"""What a DNS check found (``Status``, ``CheckResult``) and the advice every check shares."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from app.dns.lookup import Outcome, QueryResult

#: How an administrator names this server; quoted in advice when the name is unset.
SET_PUBLIC_NAME_COMMAND = "postroom smtp set public_name mail.example.org"
#: How an administrator picks a nameserver, once or for good; quoted in advice when none is usable.
SET_NAMESERVER_HINT = (
    "--nameserver HOST[:PORT] for one check, or postroom smtp set nameservers IP[:PORT] to keep it"
)


class Status(enum.Enum):
    """How one check came out."""

    OK = "ok"
    WARNING = "warning"
    ERROR = "error"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class CheckResult:
    """One check of one domain (or of this server), with what to do about it."""

    #: The domain as shown to people (U-label), or this server's name for server checks.
    domain: str
    #: Short id: mx, mx-target, null-mx, spf, dmarc, dkim, dkim-pending, route, server-a,
    #: server-aaaa, ptr-v4, ptr-v6.
    check: str
    status: Status
    #: One line saying what was found.
    summary: str
    #: What to do next; "" when the check is OK.
    advice: str = ""
    #: Zone-file line(s) to add; "" when there is nothing exact to add.
    record: str = ""


def unknown_result(domain: str, check: str, what: str, result: QueryResult) -> CheckResult:
    """A check DNS could not answer: says so, and never calls the record missing."""
    if result.outcome is Outcome.NO_RESOLVER:
        advice = (
            f"Set a nameserver to ask ({SET_NAMESERVER_HINT}), or give this machine one in "
            "/etc/resolv.conf, then check again."
        )
    else:
        advice = (
            "This says nothing about whether the record exists. Check that the nameserver is "
            f"reachable and answers for this name (or pick another with {SET_NAMESERVER_HINT}), "
            "then check again."
        )
    return CheckResult(
        domain, check, Status.UNKNOWN, f"Could not check {what}: {result.detail}.", advice
    )


#: What to do when this server's public name is not set; advice ends with it.
PUBLIC_NAME_UNSET = (
    "This server's public host name is not set. Set it to the name the world reaches this "
    f"server by: {SET_PUBLIC_NAME_COMMAND}"
)
