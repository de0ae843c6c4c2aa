"""``postroom queue …``: the outbound queues (one per next hop) and the messages in them."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from app.cli.common import Context, add_json_flag, emit, table
from app.errors import NotFoundError
from app.outbound import control
from app.outbound.queue import Action, HopView, Request


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("queue", help="the outbound queues and their messages")
    commands = parser.add_subparsers(dest="queue_command", metavar="ACTION", required=True)

    p = commands.add_parser("list", help="list the queues: state, messages, size, next retry")
    add_json_flag(p)
    p.set_defaults(func=list_command)

    p = commands.add_parser("show", help="list the messages waiting in one queue")
    p.add_argument("queue", help="the queue's name (postroom queue list)")
    add_json_flag(p)
    p.set_defaults(func=show_command)

    helps = {
        Action.RETRY: "try now (Force Connection): a queue, a message, or everything",
        Action.FREEZE: "hold a queue or a message until unfrozen",
        Action.UNFREEZE: "let a frozen queue or message go again",
        Action.DELETE: "delete a queue's messages or one message (no NDR unless --ndr)",
    }
    for action, text in helps.items():
        p = commands.add_parser(action.value, help=text)
        p.add_argument("queue", nargs="?", help="the queue's name (postroom queue list)")
        p.add_argument("--message", metavar="ID", help="one message: its ID or queue id")
        if action is Action.DELETE:
            p.add_argument("--ndr", action="store_true", help="tell the senders (Delete, send NDR)")
        add_json_flag(p)
        p.set_defaults(func=change_command, action=action)


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp).astimezone().strftime("%Y-%m-%d %H:%M") if stamp else ""


def list_command(args: argparse.Namespace, context: Context) -> int:
    hops = control.snapshot(context.store())
    if not hops:
        return emit(args, "The queues are empty.", [])
    rows = [
        [
            hop.name,
            hop.state.value,
            str(hop.count),
            f"{hop.size / 1024:.1f} KB",
            _when(hop.oldest),
            _when(hop.next_retry),
            hop.last_error,
        ]
        for hop in hops
    ]
    text = table(["Queue", "State", "Messages", "Size", "Oldest", "Next retry", "Last error"], rows)
    return emit(args, text, [hop.as_json() for hop in hops])


def _find(hops: list[HopView], name: str) -> HopView:
    for hop in hops:
        if hop.name.casefold() == name.casefold():
            return hop
    known = ", ".join(hop.name for hop in hops) or "none: the queues are empty"
    raise NotFoundError(f"There is no queue '{name}'. The queues: {known}.")


def show_command(args: argparse.Namespace, context: Context) -> int:
    hop = _find(control.snapshot(context.store()), args.queue)
    rows = [
        [
            message.name,
            f"<{message.sender}>",
            ", ".join(message.recipients),
            str(message.size),
            _when(message.submitted),
            _when(message.expires),
            "frozen" if message.frozen else _when(message.next_retry),
        ]
        for message in hop.messages
    ]
    text = f"{hop.name}: {hop.state.value}, {hop.count} message(s)"
    if hop.last_error:
        text += f"; last error: {hop.last_error}"
    text += "\n" + table(["ID", "From", "To", "Size", "Submitted", "Expires", "Next retry"], rows)
    return emit(args, text, hop.as_json(with_messages=True))


def change_command(args: argparse.Namespace, context: Context) -> int:
    store = context.store()
    queue = args.queue
    if queue is not None:
        queue = _find(control.snapshot(store), queue).name
    request = Request(args.action, message=args.message, hop=queue, ndr=getattr(args, "ndr", False))
    text = control.submit(store, request)
    return emit(args, text, {"done": text, **request.as_json()})
