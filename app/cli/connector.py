"""``postroom connector …``: SMTP connectors, their address spaces, route and outbound security."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from typing import Any

from app import connectors
from app.cli.common import Context, add_json_flag, emit, table
from app.errors import PostroomError
from app.model import CONNECTOR_TLS, SmtpConnector
from app.outbound.control import queued_for_connector

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("connector", help="SMTP connectors (mail going out)")
    commands = parser.add_subparsers(dest="connector_command", metavar="ACTION", required=True)

    p = commands.add_parser("list", help="list connectors with their address spaces and route")
    add_json_flag(p)
    p.set_defaults(func=list_command)

    p = commands.add_parser("show", help="show one connector (never its password)")
    p.add_argument("name")
    add_json_flag(p)
    p.set_defaults(func=show_command)

    p = commands.add_parser("new", help="create a connector (default route: DNS)")
    p.add_argument("name")
    _add_fields(p)
    add_json_flag(p)
    p.set_defaults(func=new_command)

    p = commands.add_parser("edit", help="change a connector; a list given replaces the old one")
    p.add_argument("name")
    p.add_argument("--rename", metavar="NEW")
    _add_fields(p)
    p.add_argument(
        "--anonymous", action="store_true", help="send without authentication (drops the user)"
    )
    add_json_flag(p)
    p.set_defaults(func=edit_command)

    p = commands.add_parser("delete", help="delete a connector")
    p.add_argument("name")
    p.add_argument(
        "--force", action="store_true", help="delete it even while mail is queued for it"
    )
    add_json_flag(p)
    p.set_defaults(func=delete_command)


def _add_fields(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--address-space",
        action="append",
        default=None,
        metavar="PATTERN[:COST]",
        help="*, example.com or *.example.com, cost 1-100 (default 1); repeat for more",
    )
    p.add_argument(
        "--relay",
        choices=["on", "off"],
        help="allow messages to be relayed to these domains (from anyone)",
    )
    p.add_argument(
        "--smart-host",
        action="append",
        default=None,
        metavar="HOST[:PORT]",
        help="forward all mail to this host (a name, or an IP in brackets); repeat for more",
    )
    p.add_argument("--dns", action="store_true", help="use DNS to route to each address space (MX)")
    p.add_argument("--tls", choices=CONNECTOR_TLS, help="TLS to the next hop")
    p.add_argument("--auth-user", metavar="U", help="basic authentication as this user")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the basic-authentication password from stdin",
    )
    p.add_argument("--note", metavar="TEXT")


def _password(args: argparse.Namespace) -> str | None:
    if not args.password_stdin:
        return None
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise PostroomError("No password was read from standard input.")
    return password


def _changes(args: argparse.Namespace, old: SmtpConnector) -> SmtpConnector:
    """``old`` with what the options say; the engine checks the result."""
    changes: dict[str, Any] = {}
    if args.address_space is not None:
        changes["address_spaces"] = tuple(
            connectors.parse_address_space(text) for text in args.address_space
        )
    if args.relay is not None:
        changes["relay"] = args.relay == "on"
    if args.smart_host is not None:
        changes["smart_hosts"] = tuple(
            connectors.parse_smart_host(text) for text in args.smart_host
        )
        # With --dns as well, use_dns stays True and the engine refuses the pair.
        changes["use_dns"] = bool(args.dns)
    elif args.dns:
        changes["use_dns"], changes["smart_hosts"] = True, ()
    if args.tls is not None:
        changes["tls"] = args.tls
    if getattr(args, "anonymous", False):
        if args.auth_user is not None or args.password_stdin:
            raise PostroomError(
                "Choose either --anonymous or basic authentication (--auth-user, "
                "--password-stdin), not both."
            )
        changes["auth_user"], changes["password"] = "", ""
    if args.auth_user is not None:
        changes["auth_user"] = args.auth_user
    password = _password(args)
    if password is not None:
        changes["password"] = password
    if args.note is not None:
        changes["note"] = args.note
    if getattr(args, "rename", None) is not None:
        changes["name"] = args.rename
    return dataclasses.replace(old, **changes)


def connector_json(connector: SmtpConnector) -> dict[str, Any]:
    """The connector as ``--json`` prints it: the password only as "set" (or null)."""
    return {
        "name": connector.name,
        "address_spaces": [
            {
                "type": space.type,
                "pattern": space.pattern,
                "display_pattern": connectors.display_pattern(space.pattern),
                "cost": space.cost,
            }
            for space in connector.address_spaces
        ],
        "relay": connector.relay,
        "route": "dns" if connector.use_dns else "smart hosts",
        "smart_hosts": [str(host) for host in connector.smart_hosts],
        "tls": connector.tls,
        "auth": connector.auth,
        "auth_user": connector.auth_user,
        "password": "set" if connector.has_password else None,
        "note": connector.note,
        "created": connector.created,
        "modified": connector.modified,
    }


def _spaces_text(connector: SmtpConnector) -> str:
    return ", ".join(
        f"{connectors.display_pattern(space.pattern)} ({space.cost})"
        for space in connector.address_spaces
    )


def connector_text(connector: SmtpConnector) -> str:
    if connector.auth_user:
        security = f"basic authentication as {connector.auth_user} (password set)"
    else:
        security = "anonymous"
    lines = [
        f"Name:            {connector.name}",
        f"Route:           {connector.route_text}",
        "Address spaces:",
        *(
            f"  {space.type:<5} {connectors.display_pattern(space.pattern):<40} cost {space.cost}"
            for space in connector.address_spaces
        ),
        f"Relay:           {'allowed to these domains' if connector.relay else 'not allowed'}",
        f"TLS:             {connector.tls}",
        f"Authentication:  {security}",
        f"Modified:        {connector.modified}",
        f"Created:         {connector.created}",
    ]
    if connector.note:
        lines.append(f"Note:            {connector.note}")
    return "\n".join(lines)


def list_command(args: argparse.Namespace, context: Context) -> int:
    found = connectors.list_connectors(context.store())
    text = table(
        ["Name", "Address spaces (cost)", "Route", "Relay", "Last Modified"],
        [
            [
                c.name,
                _spaces_text(c),
                c.route_text,
                "yes" if c.relay else "no",
                c.modified,
            ]
            for c in found
        ],
    )
    return emit(args, text if found else "No SMTP connectors.", [connector_json(c) for c in found])


def show_command(args: argparse.Namespace, context: Context) -> int:
    connector = connectors.get_connector(context.store(), args.name)
    return emit(args, connector_text(connector), connector_json(connector))


def new_command(args: argparse.Namespace, context: Context) -> int:
    connector = connectors.create_connector(
        context.store(), _changes(args, SmtpConnector(name=args.name))
    )
    return emit(args, f"Created SMTP connector '{connector.name}'.", connector_json(connector))


def edit_command(args: argparse.Namespace, context: Context) -> int:
    store = context.store()
    old = connectors.get_connector(store, args.name)
    connector = connectors.save_connector(store, _changes(args, old))
    return emit(args, f"Saved SMTP connector '{connector.name}'.", connector_json(connector))


def delete_command(args: argparse.Namespace, context: Context) -> int:
    store = context.store()
    waiting = queued_for_connector(store, args.name)
    connector = connectors.delete_connector(
        store, args.name, queued_messages=waiting, force=args.force
    )
    return emit(args, f"Deleted SMTP connector '{connector.name}'.", {"deleted": connector.name})
