"""``postroom mailbox-store show | set KEY VALUE``: the Mailbox Store's default mailbox limits.

Exchange 2000 keeps "Issue warning at" and "Prohibit send and receive at" on the Mailbox Store's
Limits tab, for every mailbox that uses the store's defaults; ``show`` also lists each mailbox's
size against the limits that apply to it.
"""

from __future__ import annotations

import argparse
from typing import Any

from app.cli.common import Context, add_json_flag, emit, setting_text, settings_table, table
from app.errors import PostroomError
from app.mailstore.usage import KIB, LimitState, MailboxUse, mailbox_uses
from app.settings import load_settings, parse_setting, save_settings

KEYS = ("mailbox_warn_default", "mailbox_prohibit_default", "mailbox_full_permanent")
_STATES = {
    LimitState.UNDER: "",
    LimitState.WARNING: "over the warning limit",
    LimitState.PROHIBITED: "full: mail to it is refused",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "mailbox-store", help="the Mailbox Store's default limits and each mailbox's size"
    )
    commands = parser.add_subparsers(dest="store_command", metavar="ACTION", required=True)

    p = commands.add_parser("show", help="the default limits, and each mailbox against its own")
    add_json_flag(p)
    p.set_defaults(func=show_command)

    p = commands.add_parser(
        "set",
        help="change one setting (limits in KB; 0 or none for no limit)",
        description="Keys: " + ", ".join(KEYS),
    )
    p.add_argument("key", help="a setting name, as 'mailbox-store show' lists them")
    p.add_argument("value")
    add_json_flag(p)
    p.set_defaults(func=set_command)


def kib(limit: int) -> str:
    """A limit as shown: '1,024 KB', or 'none' for 0."""
    return f"{limit:,} KB" if limit else "none"


def _use_json(use: MailboxUse) -> dict[str, Any]:
    return {
        "alias": use.alias,
        "size": use.size,
        "warn_kib": use.limits.warn,
        "prohibit_kib": use.limits.prohibit,
        "store_defaults": use.limits.from_store,
        "state": use.state.value,
    }


def show_command(args: argparse.Namespace, context: Context) -> int:
    store = context.store()
    settings = load_settings(store)
    uses = mailbox_uses(store)
    text = settings_table(settings, KEYS) + "\n\n"
    text += table(
        ["Mailbox", "Size", "Warning at", "Prohibit at", "Limits", "State"],
        [
            [
                use.alias,
                f"{(use.size + KIB - 1) // KIB:,} KB",
                kib(use.limits.warn),
                kib(use.limits.prohibit),
                "store defaults" if use.limits.from_store else "own",
                _STATES[use.state],
            ]
            for use in uses
        ],
    )
    data = {
        "settings": {key: getattr(settings, key) for key in KEYS},
        "mailboxes": [_use_json(use) for use in uses],
    }
    return emit(args, text, data)


def set_command(args: argparse.Namespace, context: Context) -> int:
    key = args.key.strip().lower()
    if key not in KEYS:
        raise PostroomError(
            f"'{args.key}' is not a Mailbox Store setting; use one of {', '.join(KEYS)}."
        )
    raw = args.value.strip()
    if key != "mailbox_full_permanent" and raw.lower() == "none":
        raw = "0"
    settings = save_settings(context.store(), **{key: parse_setting(key, raw)})
    new = getattr(settings, key)
    value = setting_text(key, new) if isinstance(new, bool) else kib(new)
    when = "the SMTP service uses it within seconds, Dovecot at each user's next login"
    return emit(args, f"{key} = {value} ({when})", {key: new})
