"""PostroomSMTP's shortcuts past aiosmtpd give aiosmtpd's own results."""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
import weakref
from types import SimpleNamespace
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import example, given
from hypothesis import strategies as st

from app.smtp.handler import Hooks
from app.smtp.protocol import Connection, Limits, PostroomSMTP, hook_table

LIMITS = Limits(max_message_size=4096, max_line_length=998, max_bad_commands=10, idle_timeout=60)


def _normal(value: Any, owner: object) -> Any:
    """A value made comparable between two protocol objects: bound methods by their function
    and whether they are bound to their own object, readers by their limit, and so on."""
    if hasattr(value, "__func__") and hasattr(value, "__self__"):
        return ("method", value.__func__, value.__self__ is owner or value.__self__)
    if isinstance(value, dict):
        return {key: _normal(item, owner) for key, item in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return (type(value).__name__, *(_normal(item, owner) for item in value))
    if isinstance(value, asyncio.StreamReader):
        return ("reader", value._limit)  # type: ignore[attr-defined]
    if isinstance(value, weakref.ref):
        return ("weakref", type(value()).__name__)
    if isinstance(value, asyncio.Future):
        return ("future", value.done())
    if isinstance(value, collections.deque):
        return ("deque", list(value))
    return value


def _both(tls_context: ssl.SSLContext | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The attributes of a PostroomSMTP set up by Postroom, and by aiosmtpd's SMTP.__init__."""
    hooks = Hooks(None)  # type: ignore[arg-type]
    handler = SimpleNamespace(hooks=hooks, hook_table=hook_table(hooks))

    async def make() -> tuple[dict[str, Any], dict[str, Any]]:
        # Shared by all connections and raised by each EHLO: every new connection resets it.
        PostroomSMTP.command_size_limits["MAIL"] = 1000
        ours = PostroomSMTP(
            handler,  # type: ignore[arg-type]
            Connection("ID", "", 0, "127.0.0.1:25", time.time()),
            LIMITS,
            hostname="mx.example.test",
            ident="Postroom",
            tls_context=tls_context,
        )
        assert dict(PostroomSMTP.command_size_limits) == {}
        theirs = PostroomSMTP.__new__(PostroomSMTP)
        theirs.line_length_limit = LIMITS.max_line_length + 3  # read by SMTP.__init__
        SMTP.__init__(
            theirs,
            hooks,
            data_size_limit=LIMITS.max_message_size,
            timeout=LIMITS.idle_timeout,
            hostname="mx.example.test",
            ident="Postroom",
            tls_context=tls_context,
            enable_SMTPUTF8=True,
            auth_require_tls=True,
        )
        return (
            {key: _normal(value, ours) for key, value in vars(ours).items()},
            {key: _normal(value, theirs) for key, value in vars(theirs).items()},
        )

    return asyncio.run(make())


# What PostroomSMTP keeps besides aiosmtpd's attributes (and line_length_limit, set for both).
OWN = {"connection", "limits", "handler", "_closed_reported", "_idle_deadline", "_idle_timer_at"}


@pytest.mark.parametrize("with_tls", [False, True])
def test_set_up_matches_aiosmtpd(with_tls: bool) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER) if with_tls else None
    ours, theirs = _both(context)
    assert set(ours) - set(theirs) == OWN
    assert set(theirs) - set(ours) == set()
    for key in theirs:
        assert ours[key] == theirs[key], key
    # Command order matters: HELP lists them in this order.
    assert list(ours["_smtp_methods"]) == list(theirs["_smtp_methods"])
    assert sorted(ours["_auth_methods"]) == ["LOGIN", "PLAIN"]


def _parse(limit: int, method: Any, arg: str) -> Any:
    server = PostroomSMTP.__new__(PostroomSMTP)
    if limit:
        server.local_part_limit = limit
    try:
        return method(server, arg)
    except Exception as error:  # the same failure counts as the same answer
        return type(error)


ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
PIECES = [*ATEXT, ".", "@", "<", ">", " ", "\t", "(", ")", '"', "\\", "[", "]", ",", ":", ";"]
PIECES += ["é", "\x0b", "\r", " SIZE=10", " BODY=8BITMIME", "(c)", "example.com", "user"]

plain = st.builds(
    lambda local, domain, rest: f"<{local}@{domain}>{rest}",
    st.text(alphabet=ATEXT + ".", min_size=1, max_size=12),
    st.text(alphabet="abz09-.", min_size=1, max_size=12),
    st.text(alphabet=" \t()=SIZE10\x0bé", max_size=8),
)
anything = st.lists(st.sampled_from(PIECES), min_size=1, max_size=16).map("".join)


@given(st.one_of(plain, anything), st.sampled_from([0, 4]))
@example("<bench@example.com>", 0)
@example("<bench@example.com> SIZE=1024 BODY=8BITMIME", 0)
@example("<bench@example.com>  (comment) SIZE=1", 0)
@example("<bench@example.com>\tSIZE=1", 0)
@example("<bench@example.com>SIZE=1", 0)
@example("<bench@example.com>>", 0)
@example("<a.b@-x.y->", 0)
@example("<a..b@example.com>", 0)
@example("<.a@example.com>", 0)
@example("<a@example.com.>", 0)
@example("<longlocal@example.com>", 4)
@example("<>", 0)
def test_address_parsing_matches_aiosmtpd(arg: str, limit: int) -> None:
    assert _parse(limit, PostroomSMTP._getaddr, arg) == _parse(limit, SMTP._getaddr, arg)
