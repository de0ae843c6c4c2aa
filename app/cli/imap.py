"""``postroom imap show | set KEY VALUE``: the Default IMAP4 Virtual Server's settings.

``postroom pop3`` (app/cli/pop3.py) is the same command over POP3's settings, built here too.
"""

from __future__ import annotations

import argparse
from typing import Any

from app.cli.common import Context, add_json_flag, emit, setting_text, settings_table
from app.errors import PostroomError
from app.settings import load_settings, parse_setting, save_settings

# Each protocol's settings, as 'show' lists them and 'set' takes them.
PROTOCOL_KEYS = {
    "imap": ("imap_enabled", "imap_listen", "imaps_listen", "imap_tls_required"),
    "pop3": ("pop3_enabled", "pop3_listen", "pop3s_listen", "pop3_tls_required"),
}
TITLES = {"imap": "IMAP4", "pop3": "POP3"}
_ARTICLES = {"imap": "an", "pop3": "a"}
WHEN = "Dovecot takes it when Postroom next starts it: postroom serve or the console"


def register(subparsers: Any) -> None:
    register_protocol(subparsers, "imap")


def register_protocol(subparsers: Any, protocol: str) -> None:
    """``postroom PROTOCOL show|set`` over ``PROTOCOL_KEYS[protocol]``."""
    title = TITLES[protocol]
    keys = PROTOCOL_KEYS[protocol]
    parser = subparsers.add_parser(protocol, help=f"the {title} virtual server's settings")
    commands = parser.add_subparsers(dest=f"{protocol}_command", metavar="ACTION", required=True)

    p = commands.add_parser("show", help=f"show the {title} settings")
    add_json_flag(p)
    p.set_defaults(func=show_command, protocol=protocol)

    p = commands.add_parser(
        "set",
        help="change one setting (addresses: comma-separated; '' or off for none)",
        description="Keys: " + ", ".join(keys),
    )
    p.add_argument("key", help=f"a setting name, as '{protocol} show' lists them")
    p.add_argument("value")
    add_json_flag(p)
    p.set_defaults(func=set_command, protocol=protocol)


def show_command(args: argparse.Namespace, context: Context) -> int:
    settings = load_settings(context.store())
    keys = PROTOCOL_KEYS[args.protocol]
    text = settings_table(settings, keys)
    return emit(args, text, {key: getattr(settings, key) for key in keys})


def set_command(args: argparse.Namespace, context: Context) -> int:
    protocol = args.protocol
    key = args.key.strip().lower()
    if key not in PROTOCOL_KEYS[protocol]:
        other = next((name for name, keys in PROTOCOL_KEYS.items() if key in keys), None)
        hint = (
            f"it is {_ARTICLES[other]} {TITLES[other]} one: postroom {other} set" if other else ""
        )
        hint = hint or f"use one of {', '.join(PROTOCOL_KEYS[protocol])}"
        article = _ARTICLES[protocol]
        raise PostroomError(f"'{args.key}' is not {article} {TITLES[protocol]} setting; {hint}.")
    value = parse_setting(key, args.value)
    settings = save_settings(context.store(), **{key: value})
    new = getattr(settings, key)
    return emit(args, f"{key} = {setting_text(key, new)} ({WHEN})", {key: new})
