"""``postroom policy …``: recipient policies and their generation rules."""

from __future__ import annotations

import argparse
from typing import Any

from app import policies
from app.cli.common import Context, add_json_flag, emit, table
from app.directory import addressing
from app.model import AddressRule, RecipientPolicy


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("policy", help="recipient policies")
    commands = parser.add_subparsers(dest="policy_command", metavar="ACTION", required=True)

    p = commands.add_parser("list", help="list policies in priority order")
    add_json_flag(p)
    p.set_defaults(func=list_command)

    p = commands.add_parser("show", help="show one policy with its rules")
    p.add_argument("name")
    add_json_flag(p)
    p.set_defaults(func=show_command)

    p = commands.add_parser("new", help="create a policy (lowest custom priority)")
    p.add_argument("name")
    p.add_argument("--filter", default="", metavar="LDAP", help="e.g. (company=Contoso)")
    add_json_flag(p)
    p.set_defaults(func=new_command)

    p = commands.add_parser("edit", help="rename a policy, change its filter or note")
    p.add_argument("name")
    p.add_argument("--rename", metavar="NEW")
    p.add_argument("--filter", metavar="LDAP")
    p.add_argument("--note", metavar="TEXT")
    add_json_flag(p)
    p.set_defaults(func=edit_command)

    for action, help_text in (
        ("delete", "delete a custom policy"),
        ("apply", "apply this policy now (the RUS stamps its recipients)"),
    ):
        p = commands.add_parser(action, help=help_text)
        p.add_argument("name")
        add_json_flag(p)
        p.set_defaults(func=delete_command if action == "delete" else apply_command)

    p = commands.add_parser("move", help="raise or lower a custom policy's priority")
    p.add_argument("name")
    p.add_argument("direction", choices=["up", "down"])
    add_json_flag(p)
    p.set_defaults(func=move_command)

    rule = commands.add_parser("rule", help="generation rules (e-mail addresses) of a policy")
    rules = rule.add_subparsers(dest="rule_command", metavar="ACTION", required=True)
    p = rules.add_parser(
        "add", help="add an address rule, e.g. @example.net or %%g.%%s@example.net"
    )
    p.add_argument("name")
    p.add_argument("address")
    p.add_argument("--type", default="SMTP", help="address type (default SMTP)")
    p.add_argument(
        "--not-responsible",
        action="store_true",
        help="shared namespace: mail for unknown users of the domain is routed onward",
    )
    p.add_argument("--disabled", action="store_true", help="add the rule unticked")
    p.add_argument("--primary", action="store_true", help="make it the primary of its type")
    add_json_flag(p)
    p.set_defaults(func=rule_add_command)
    for action in ("remove", "enable", "disable", "primary"):
        p = rules.add_parser(action, help=f"{action} an address rule")
        p.add_argument("name")
        p.add_argument("address")
        p.add_argument("--type", default=None, help="address type, when not SMTP")
        add_json_flag(p)
        p.set_defaults(func=rule_change_command, action=action)


def rule_json(rule: AddressRule) -> dict[str, Any]:
    return {
        "type": rule.type,
        "address": rule.address,
        "display_address": display_rule(rule),
        "enabled": rule.enabled,
        "primary": rule.primary,
        "responsible": rule.responsible,
    }


def policy_json(policy: RecipientPolicy) -> dict[str, Any]:
    return {
        "name": policy.name,
        "priority": policy.priority_text,
        "default": policy.is_default,
        "filter": policy.filter,
        "note": policy.note,
        "created": policy.created,
        "modified": policy.modified,
        "apply_pending": policy.apply_pending,
        "rules": [rule_json(rule) for rule in policy.rules],
    }


def display_rule(rule: AddressRule) -> str:
    """The rule as shown to people: the domain in Unicode (U-label)."""
    if not rule.is_smtp:
        return rule.address
    local, domain = addressing.split_address(rule.address)
    return f"{local}@{addressing.display_domain(domain)}"


def policy_text(policy: RecipientPolicy) -> str:
    lines = [
        f"Name:        {policy.name}",
        f"Priority:    {policy.priority_text}",
        f"Filter:      {policy.filter or '(none: matches no recipient until a filter is set)'}",
        f"Modified:    {policy.modified}",
        f"Created:     {policy.created}",
    ]
    if policy.apply_pending:
        lines.append("State:       applied; the Recipient Update Service has yet to stamp it")
    if policy.note:
        lines.append(f"Note:        {policy.note}")
    lines.append("Generation rules:")
    if not policy.rules:
        lines.append("  (none)")
    for rule in policy.rules:
        marks = [
            "primary" if rule.primary else "",
            "" if rule.enabled else "disabled",
            "" if rule.responsible else "not responsible (shared namespace)",
        ]
        tick = "[x]" if rule.enabled else "[ ]"
        extra = ", ".join(m for m in marks if m)
        lines.append(
            f"  {tick} {rule.type:<5} {display_rule(rule)}" + (f"  ({extra})" if extra else "")
        )
    return "\n".join(lines)


def list_command(args: argparse.Namespace, context: Context) -> int:
    found = policies.list_policies(context.store())
    text = table(
        ["Name", "Priority", "Filter Rule", "Last Modified"],
        [[p.name, p.priority_text, p.filter, p.modified] for p in found],
    )
    return emit(args, text, [policy_json(p) for p in found])


def show_command(args: argparse.Namespace, context: Context) -> int:
    policy = policies.get_policy(context.store(), args.name)
    return emit(args, policy_text(policy), policy_json(policy))


def new_command(args: argparse.Namespace, context: Context) -> int:
    policy = policies.create_policy(context.store(), args.name, args.filter)
    message = f"Created recipient policy '{policy.name}' with priority {policy.priority_text}."
    if not policy.filter:
        message += " It matches no recipient until you set a filter (policy edit --filter)."
    return emit(args, message, policy_json(policy))


def edit_command(args: argparse.Namespace, context: Context) -> int:
    policy = policies.edit_policy(
        context.store(),
        args.name,
        new_name=args.rename,
        filter_text=args.filter,
        note=args.note,
    )
    message = f"Saved recipient policy '{policy.name}'."
    if args.filter is not None:
        message += (
            " Recipients already stamped are not re-evaluated until you apply the policy"
            f" (postroom policy apply '{policy.name}')."
        )
    return emit(args, message, policy_json(policy))


def delete_command(args: argparse.Namespace, context: Context) -> int:
    policy = policies.get_policy(context.store(), args.name)
    policies.delete_policy(context.store(), args.name)
    return emit(args, f"Deleted recipient policy '{policy.name}'.", {"deleted": policy.name})


def apply_command(args: argparse.Namespace, context: Context) -> int:
    policy = policies.apply_policy(context.store(), args.name)
    return emit(
        args,
        f"Recipient policy '{policy.name}' will be applied at the next Recipient Update "
        "Service run (postroom rus update).",
        policy_json(policy),
    )


def move_command(args: argparse.Namespace, context: Context) -> int:
    policy = policies.move_policy(context.store(), args.name, args.direction)
    return emit(
        args, f"'{policy.name}' now has priority {policy.priority_text}.", policy_json(policy)
    )


def rule_add_command(args: argparse.Namespace, context: Context) -> int:
    policy = policies.add_rule(
        context.store(),
        args.name,
        args.address,
        type_=args.type,
        responsible=not args.not_responsible,
        enabled=not args.disabled,
        primary=args.primary,
    )
    added = policy.rules[policies.find_rule(policy, args.address, args.type)]
    message = f"Added {added.type} address {display_rule(added)} to '{policy.name}'."
    if added.enabled:
        message += (
            " To stamp it on existing recipients, apply the policy"
            f" (postroom policy apply '{policy.name}')."
        )
    return emit(args, message, policy_json(policy))


def rule_change_command(args: argparse.Namespace, context: Context) -> int:
    store = context.store()
    if args.action == "remove":
        policy = policies.remove_rule(store, args.name, args.address, args.type)
        done = "Removed"
    elif args.action == "primary":
        policy = policies.set_rule_primary(store, args.name, args.address, args.type)
        done = "Made primary:"
    else:
        enabled = args.action == "enable"
        policy = policies.set_rule_enabled(store, args.name, args.address, enabled, args.type)
        done = "Enabled" if enabled else "Disabled"
    return emit(args, f"{done} {args.address} in '{policy.name}'.", policy_json(policy))
