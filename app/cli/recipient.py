"""``postroom recipient …``: users, contacts and groups, and their proxy addresses."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.cli.common import Context, add_json_flag, emit, table
from app.directory import recipients
from app.errors import PostroomError
from app.mailstore.usage import KIB, LimitState, limits_of, mailbox_size
from app.model import SMTP, Recipient
from app.settings import load_settings
from app.store import Store


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("recipient", help="users, contacts and groups")
    commands = parser.add_subparsers(dest="recipient_command", metavar="ACTION", required=True)

    p = commands.add_parser("list", help="list recipients")
    add_json_flag(p)
    p.set_defaults(func=list_command)

    p = commands.add_parser("show", help="show one recipient")
    p.add_argument("alias")
    add_json_flag(p)
    p.set_defaults(func=show_command)

    p = commands.add_parser("new", help="create a user, contact or group")
    p.add_argument("alias")
    p.add_argument("--type", choices=["user", "contact", "group"], default="user")
    _add_fields(p)
    p.add_argument("--no-auto-update", action="store_true", help="RUS leaves its addresses alone")
    add_json_flag(p)
    p.set_defaults(func=new_command)

    p = commands.add_parser("edit", help="change a recipient")
    p.add_argument("alias")
    p.add_argument("--rename", metavar="NEW", help="new alias")
    _add_fields(p)
    p.add_argument("--clear-password", action="store_true", help="remove the user's password")
    p.add_argument("--auto-update", choices=["on", "off"])
    p.add_argument("--imap", choices=["on", "off"], help="a user may read mail over IMAP4")
    p.add_argument("--pop3", choices=["on", "off"], help="a user may read mail over POP3")
    p.add_argument(
        "--quota-warn",
        metavar="KIB|default",
        help="issue warning at this many KB (0: never; default: the Mailbox Store's)",
    )
    p.add_argument(
        "--quota-prohibit",
        metavar="KIB|default",
        help="prohibit send and receive at this many KB (0: never; default: the store's)",
    )
    add_json_flag(p)
    p.set_defaults(func=edit_command)

    p = commands.add_parser(
        "password",
        help="set a user's password (read from standard input, one line)",
        description="Reads the new password from standard input; IMAP4, POP3 and SMTP AUTH "
        "take it at once.",
    )
    p.add_argument("alias")
    add_json_flag(p)
    p.set_defaults(func=password_command)

    p = commands.add_parser("delete", help="delete a recipient (a user's Maildir stays on disk)")
    p.add_argument("alias")
    add_json_flag(p)
    p.set_defaults(func=delete_command)

    address = commands.add_parser("address", help="a recipient's proxy addresses")
    actions = address.add_subparsers(dest="address_command", metavar="ACTION", required=True)
    for action in ("add", "remove", "primary"):
        p = actions.add_parser(action, help=f"{action} a proxy address")
        p.add_argument("alias")
        p.add_argument("address")
        if action == "add":
            p.add_argument("--type", default=SMTP)
            p.add_argument("--primary", action="store_true")
        add_json_flag(p)
        p.set_defaults(func=address_command, action=action)


def _add_fields(p: argparse.ArgumentParser) -> None:
    p.add_argument("--given", metavar="G", help="given name (givenName)")
    p.add_argument("--surname", metavar="S", help="surname (sn)")
    p.add_argument("--initials", metavar="I")
    p.add_argument("--display", metavar="D", help="display name")
    p.add_argument(
        "--attr", action="append", default=[], metavar="NAME=VALUE", help="any LDAP attribute"
    )
    p.add_argument("--target", metavar="ADDR", help="a contact's external address")
    p.add_argument("--member", action="append", default=None, metavar="ALIAS", help="group member")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the SMTP password from stdin"
    )


def _attributes(args: argparse.Namespace) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for item in args.attr:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise PostroomError(f"--attr '{item}' is not NAME=VALUE, e.g. --attr company=Contoso.")
        attrs[name.strip()] = value
    for option, name in (
        ("given", "givenName"),
        ("surname", "sn"),
        ("initials", "initials"),
        ("display", "displayName"),
    ):
        value = getattr(args, option)
        if value is not None:
            attrs[name] = value
    return attrs


def _password(args: argparse.Namespace) -> str | None:
    if not args.password_stdin:
        return None
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise PostroomError("No password was read from standard input.")
    return password


def _on(value: str | None) -> bool | None:
    return None if value is None else value == "on"


def _limit(option: str, value: str | None) -> int | None | object:
    """A --quota-* value: KEEP when not given, None for 'default', else whole KiB."""
    if value is None:
        return recipients.KEEP
    text = value.strip().lower()
    if text == "default":
        return None
    try:
        return int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise PostroomError(
            f"{option} '{value}' is not a number of KB: write e.g. {option} 102400, "
            f"{option} 0 for no limit, or {option} default for the Mailbox Store's."
        ) from None


def _read_password() -> str:
    """One line of standard input, the new password (its line ending removed)."""
    line = sys.stdin.readline()
    password = line.removesuffix("\n").removesuffix("\r")
    if not password:
        raise PostroomError(
            "No password was read from standard input: give the new password on one line "
            "(postroom recipient edit ALIAS --clear-password removes it)."
        )
    return password


def _over_limit_warning(store: Store, recipient: Recipient) -> str:
    """A one-line warning when the user's mailbox is already over a limit just set."""
    limits = limits_of(recipient, load_settings(store))
    size = mailbox_size(store.paths.mailbox(recipient.alias))
    state = limits.state(size)
    if state is LimitState.UNDER:
        return ""
    held = f"{(size + KIB - 1) // KIB:,} KB"
    if state is LimitState.PROHIBITED:
        return (
            f"warning: the mailbox of '{recipient.alias}' already holds {held}, over its "
            f"prohibit limit of {limits.prohibit:,} KB: mail to it is refused until it is emptied."
        )
    return (
        f"warning: the mailbox of '{recipient.alias}' already holds {held}, over its warning "
        f"limit of {limits.warn:,} KB."
    )


def recipient_json(store: Store, recipient: Recipient) -> dict[str, Any]:
    data: dict[str, Any] = {
        "alias": recipient.alias,
        "type": recipient.kind,
        "display_name": recipient.display_name,
        "attributes": dict(recipient.attributes),
        "primary_smtp_address": recipient.primary_address(),
        "addresses": [
            {"type": a.type, "address": a.address, "primary": a.primary}
            for a in recipient.addresses
        ],
        "auto_update": recipient.auto_update,
        "usn": recipient.usn,
        "created": recipient.created,
        "modified": recipient.modified,
    }
    if recipient.kind == "user":
        data["maildir"] = str(store.paths.mailbox(recipient.alias))
        data["has_password"] = recipient.has_password
        data["imap_enabled"] = recipient.imap_enabled
        data["pop3_enabled"] = recipient.pop3_enabled
        data["quota_warn"] = recipient.quota_warn
        data["quota_prohibit"] = recipient.quota_prohibit
    if recipient.kind == "contact":
        data["target"] = recipient.target
    if recipient.kind == "group":
        data["members"] = list(recipient.members)
    return data


def recipient_text(store: Store, recipient: Recipient) -> str:
    lines = [
        f"Alias:        {recipient.alias}",
        f"Type:         {recipient.kind}",
        f"Display name: {recipient.display_name}",
    ]
    for name, value in recipient.attributes.items():
        if name != "displayName":
            lines.append(f"{name + ':':<13} {value}")
    if recipient.kind == "user":
        lines.append(f"Maildir:      {store.paths.mailbox(recipient.alias)}")
        lines.append(f"Password:     {'set' if recipient.has_password else 'not set'}")
        on = {True: "on", False: "off"}
        lines.append(f"IMAP4:        {on[recipient.imap_enabled]}")
        lines.append(f"POP3:         {on[recipient.pop3_enabled]}")
        for label, own in (
            ("Warning at:", recipient.quota_warn),
            ("Prohibit at:", recipient.quota_prohibit),
        ):
            value = (
                "the Mailbox Store's default"
                if own is None
                else (f"{own:,} KB" if own else "no limit")
            )
            lines.append(f"{label:<13} {value}")
    if recipient.kind == "contact":
        lines.append(f"Target:       {recipient.target}")
    if recipient.kind == "group":
        lines.append(f"Members:      {', '.join(recipient.members) or '(none)'}")
    lines.append(
        "Automatically update e-mail addresses based on recipient policy: "
        + ("on" if recipient.auto_update else "off")
    )
    lines.append("E-mail addresses:")
    lines += [f"  {proxy}" for proxy in recipient.addresses] or ["  (none yet)"]
    return "\n".join(lines)


def list_command(args: argparse.Namespace, context: Context) -> int:
    store = context.store()
    found = sorted(recipients.list_recipients(store), key=lambda r: r.display_name.lower())
    text = table(
        ["Display Name", "Alias", "Type", "Primary SMTP Address"],
        [[r.display_name, r.alias, r.kind, r.primary_address() or ""] for r in found],
    )
    return emit(args, text, [recipient_json(store, r) for r in found])


def show_command(args: argparse.Namespace, context: Context) -> int:
    store = context.store()
    recipient = recipients.get_recipient(store, args.alias)
    return emit(args, recipient_text(store, recipient), recipient_json(store, recipient))


def new_command(args: argparse.Namespace, context: Context) -> int:
    store = context.store()
    recipient = recipients.create_recipient(
        store,
        args.alias,
        args.type,
        attributes=_attributes(args),
        target=args.target,
        members=args.member or (),
        password=_password(args),
        auto_update=not args.no_auto_update,
    )
    return emit(
        args, f"Created {recipient.kind} '{recipient.alias}'.", recipient_json(store, recipient)
    )


def edit_command(args: argparse.Namespace, context: Context) -> int:
    store = context.store()
    password: Any = recipients.KEEP
    if args.clear_password:
        password = None
    elif args.password_stdin:
        password = _password(args)
    recipient = recipients.edit_recipient(
        store,
        args.alias,
        new_alias=args.rename,
        attributes=_attributes(args),
        target=args.target,
        members=args.member,
        password=password,
        auto_update=None if args.auto_update is None else args.auto_update == "on",
        imap_enabled=_on(args.imap),
        pop3_enabled=_on(args.pop3),
        quota_warn=_limit("--quota-warn", args.quota_warn),
        quota_prohibit=_limit("--quota-prohibit", args.quota_prohibit),
    )
    if recipient.kind == "user" and (args.quota_warn or args.quota_prohibit):
        # Exchange takes a limit below what the mailbox holds; the user is then over it.
        warning = _over_limit_warning(store, recipient)
        if warning:
            print(f"postroom: {warning}", file=sys.stderr)
    return emit(args, f"Saved '{recipient.alias}'.", recipient_json(store, recipient))


def password_command(args: argparse.Namespace, context: Context) -> int:
    store = context.store()
    recipient = recipients.get_recipient(store, args.alias)
    if recipient.kind != "user":
        raise PostroomError(
            f"'{recipient.alias}' is a {recipient.kind}: only a user has a password."
        )
    recipient = recipients.set_password(store, recipient.alias, _read_password())
    return emit(
        args,
        f"Set the password of '{recipient.alias}' (IMAP4, POP3 and SMTP AUTH take it at once).",
        recipient_json(store, recipient),
    )


def delete_command(args: argparse.Namespace, context: Context) -> int:
    store = context.store()
    recipient = recipients.get_recipient(store, args.alias)
    recipients.delete_recipient(store, args.alias)
    message = f"Deleted {recipient.kind} '{recipient.alias}'."
    if recipient.kind == "user":
        message += f" Its Maildir stays at {store.paths.mailbox(recipient.alias)}."
    return emit(args, message, {"deleted": recipient.alias})


def address_command(args: argparse.Namespace, context: Context) -> int:
    store = context.store()
    if args.action == "add":
        recipient = recipients.add_address(
            store, args.alias, args.address, args.type, primary=args.primary
        )
        done = f"Added {args.address} to"
    elif args.action == "remove":
        recipient = recipients.remove_address(store, args.alias, args.address)
        done = f"Removed {args.address} from"
    else:
        recipient = recipients.set_primary_address(store, args.alias, args.address)
        done = f"{args.address} is now the primary address of"
    return emit(args, f"{done} '{recipient.alias}'.", recipient_json(store, recipient))
