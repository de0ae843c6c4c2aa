"""``postroom smtp show | set KEY VALUE``: the SMTP virtual server's settings."""

from __future__ import annotations

import argparse
from typing import Any

from app.cli.common import Context, add_json_flag, emit, setting_text, settings_table
from app.directory import recipients
from app.errors import PostroomError
from app.queue import spool
from app.settings import SETTING_FIELDS, Settings, load_settings, parse_setting, save_settings
from app.smtp import lock
from app.smtp.tls import CERT_NAME

# Settings read when the service starts; the others apply to the next connection or at once.
RESTART_KEYS = frozenset({"listen", "submission_listen", "tls_cert", "tls_key"})


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("smtp", help="the SMTP service's settings")
    commands = parser.add_subparsers(dest="smtp_command", metavar="ACTION", required=True)

    p = commands.add_parser("show", help="show every setting and the service's state")
    add_json_flag(p)
    p.set_defaults(func=show_command)

    p = commands.add_parser(
        "set",
        help="change one setting (lists: comma-separated; '' clears)",
        description="Keys: " + ", ".join(SETTING_FIELDS),
    )
    p.add_argument("key", help="a setting name, as 'smtp show' lists them")
    p.add_argument("value")
    add_json_flag(p)
    p.set_defaults(func=set_command)


def _postmaster(context: Context, settings: Settings) -> str:
    if settings.postmaster:
        return settings.postmaster
    try:
        return recipients.get_recipient(context.store(), "postmaster").alias
    except PostroomError:
        return str(context.store().paths.mailbox("postmaster")) + "/ (no recipient)"


def show_command(args: argparse.Namespace, context: Context) -> int:
    store = context.store()
    settings = load_settings(store)
    pid = lock.holder(store.paths)
    state = {
        "serve": "not running" if pid is None else f"running (process {pid})",
        "postmaster mail goes to": _postmaster(context, settings),
        "host name": settings.host_name,
        "TLS certificate": settings.tls_cert or str(store.paths.tls / CERT_NAME) + " (self-signed)",
        "queue": f"{spool.queue_length(store.paths.queue)} message(s) waiting",
    }
    text = settings_table(settings, SETTING_FIELDS) + "\n\n"
    text += "\n".join(f"{key}: {value}" for key, value in state.items())
    return emit(args, text, {"settings": settings.as_dict(), "state": state})


def set_command(args: argparse.Namespace, context: Context) -> int:
    store = context.store()
    value = parse_setting(args.key, args.value)
    if args.key == "postmaster" and value:
        alias = recipients.get_recipient(store, value).alias
        value = alias
    settings = save_settings(store, **{args.key: value})
    new = getattr(settings, args.key)
    when = (
        "it takes effect when the SMTP service next starts"
        if args.key in RESTART_KEYS
        else "the SMTP service uses it within a second"
    )
    return emit(args, f"{args.key} = {setting_text(args.key, new)} ({when})", {args.key: new})
