"""The stored recipient policies: list, create, save, edit, move, apply, delete; their rules."""

from __future__ import annotations

import dataclasses
import logging
from typing import Literal

from app.directory.filters import parse_filter
from app.errors import ConflictError, NotFoundError, PostroomError
from app.model import (
    DEFAULT_POLICY_FILTER,
    DEFAULT_POLICY_NAME,
    SMTP,
    RecipientPolicy,
    now,
)
from app.policies.rules import check_rules, find_rule, make_rule, with_primary
from app.store import Connection, ConstraintError, Store
from app.store import policies as rows
from app.store.database import next_usn

log = logging.getLogger(__name__)

MAX_NAME_LENGTH = 64


# -- reading ----------------------------------------------------------------------------------


def list_policies(store: Store) -> list[RecipientPolicy]:
    """Every policy in priority order, the Default Policy last."""
    with store.read() as conn:
        return rows.load_policies(conn)


def get_policy(store: Store, name: str) -> RecipientPolicy:
    with store.read() as conn:
        return _get(conn, name)


def _get(conn: Connection, name: str) -> RecipientPolicy:
    policy = rows.find_policy(conn, name.strip())
    if policy is None:
        raise NotFoundError(
            f"There is no recipient policy named '{name}'. See the names with: postroom policy list"
        )
    return policy


# -- writing ------------------------------------------------------------------------------------


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise PostroomError("The policy name is empty. Type a name for the policy.")
    if len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise PostroomError(
            f"The policy name must be printable text of at most {MAX_NAME_LENGTH} characters."
        )
    return name


def _check_filter(text: str) -> str:
    text = text.strip()
    if text:
        return str(parse_filter(text))
    return ""


def _insert(conn: Connection, policy: RecipientPolicy) -> RecipientPolicy:
    try:
        policy_id = rows.insert_policy(conn, policy)
    except ConstraintError as error:
        raise ConflictError(
            f"A recipient policy named '{policy.name}' already exists. Choose another name."
        ) from error
    return dataclasses.replace(policy, id=policy_id)


def create_default_policy(conn: Connection, domain: str) -> RecipientPolicy:
    """The Default Policy of a new organisation, with ``@<domain>`` as its primary SMTP rule."""
    rule = make_rule(f"@{domain}", primary=True)
    stamp = now()
    policy = RecipientPolicy(
        name=DEFAULT_POLICY_NAME,
        filter=DEFAULT_POLICY_FILTER,
        is_default=True,
        rules=(rule,),
        created=stamp,
        modified=stamp,
    )
    return _insert(conn, policy)


def create_policy(
    store: Store, name: str, filter_text: str = "", note: str = ""
) -> RecipientPolicy:
    """A new custom policy with the lowest custom priority and no rules.

    With an empty filter it matches nobody until a filter is set, as in Exchange.
    """
    name = _check_name(name)
    filter_text = _check_filter(filter_text)
    with store.write() as conn:
        stamp = now()
        policy = RecipientPolicy(
            name=name,
            filter=filter_text,
            priority=rows.policy_count(conn) + 1,
            note=note,
            created=stamp,
            modified=stamp,
        )
        created = _insert(conn, policy)
    log.info("created recipient policy %s", name)
    return created


def save_policy(store: Store, policy: RecipientPolicy) -> RecipientPolicy:
    """Store an edited policy (name, filter, note, rules) after checking every invariant.

    ``policy`` is a changed copy of one read from the store; its ``id`` says which it replaces.
    Priority and applied state are not taken from it (see ``move_policy``, ``apply_policy``).
    """
    with store.write() as conn:
        old = next((p for p in rows.load_policies(conn) if p.id == policy.id), None)
        if old is None:
            raise NotFoundError(
                f"The recipient policy '{policy.name}' no longer exists; another program may "
                "have deleted it. Refresh the list."
            )
        new = dataclasses.replace(
            policy,
            name=_check_name(policy.name),
            filter=_check_filter(policy.filter),
            rules=tuple(
                make_rule(
                    r.address,
                    r.type,
                    enabled=r.enabled,
                    primary=r.primary,
                    responsible=r.responsible,
                )
                for r in policy.rules
            ),
            priority=old.priority,
            is_default=old.is_default,
            apply_pending=old.apply_pending,
            applied_usn=old.applied_usn,
            created=old.created,
            modified=now(),
        )
        if old.is_default:
            _check_default(old, new)
        check_rules(new)
        if _content(new) == _content(old):
            return old  # nothing changed
        try:
            rows.update_policy(conn, new)
        except ConstraintError as error:
            raise ConflictError(
                f"A recipient policy named '{new.name}' already exists. Choose another name."
            ) from error
        return _get(conn, new.name)


def _content(policy: RecipientPolicy) -> tuple[object, ...]:
    """What an administrator edits in a policy, for telling whether anything changed."""
    rules = tuple(dataclasses.replace(rule, id=None) for rule in policy.rules)
    return (policy.name, policy.filter, policy.note, rules)


def _check_default(old: RecipientPolicy, new: RecipientPolicy) -> None:
    if new.name != old.name:
        raise PostroomError(f"The {DEFAULT_POLICY_NAME} cannot be renamed.")
    if new.filter != old.filter:
        raise PostroomError(
            f"The filter of the {DEFAULT_POLICY_NAME} is fixed ({DEFAULT_POLICY_FILTER}). "
            "Create a new recipient policy for a narrower set of recipients."
        )
    primary = new.primary_rule(SMTP)
    if primary is None:
        raise PostroomError(
            f"The primary SMTP address of the {DEFAULT_POLICY_NAME} cannot be removed. "
            "Set another SMTP address as primary first."
        )
    if not primary.responsible:
        raise PostroomError(
            f"The primary SMTP address of the {DEFAULT_POLICY_NAME} ({primary.address}) must "
            "keep 'This organization is responsible for all mail delivery to this address'."
        )


def edit_policy(
    store: Store,
    name: str,
    *,
    new_name: str | None = None,
    filter_text: str | None = None,
    note: str | None = None,
) -> RecipientPolicy:
    """Rename a policy, change its filter or its administrative note."""
    policy = get_policy(store, name)
    changed = dataclasses.replace(
        policy,
        name=policy.name if new_name is None else new_name,
        filter=policy.filter if filter_text is None else filter_text,
        note=policy.note if note is None else note,
    )
    return save_policy(store, changed)


def delete_policy(store: Store, name: str) -> None:
    """Delete a custom policy; the ones below it move up one place."""
    with store.write() as conn:
        policy = _get(conn, name)
        if policy.is_default:
            raise PostroomError(f"The {DEFAULT_POLICY_NAME} cannot be deleted.")
        rows.delete_policy(conn, int(policy.id or 0))
        remaining = [p.id for p in rows.load_policies(conn) if not p.is_default]
        rows.set_priorities(conn, [int(pid or 0) for pid in remaining])
    log.info("deleted recipient policy %s", policy.name)


def move_policy(store: Store, name: str, direction: Literal["up", "down"]) -> RecipientPolicy:
    """Swap a custom policy with its neighbour above or below."""
    with store.write() as conn:
        policy = _get(conn, name)
        if policy.is_default:
            raise PostroomError(
                f"The {DEFAULT_POLICY_NAME} always has the lowest priority and cannot be moved."
            )
        order = [int(p.id or 0) for p in rows.load_policies(conn) if not p.is_default]
        index = order.index(int(policy.id or 0))
        other = index - 1 if direction == "up" else index + 1
        if other < 0:
            raise PostroomError(f"'{policy.name}' already has the highest priority.")
        if other >= len(order):
            raise PostroomError(
                f"'{policy.name}' already has the lowest priority a custom policy can have."
            )
        order[index], order[other] = order[other], order[index]
        rows.set_priorities(conn, order)
        return _get(conn, policy.name)


def apply_policy(store: Store, name: str) -> RecipientPolicy:
    """ "Apply this policy now": its recipients get its addresses at the next RUS run."""
    with store.write() as conn:
        policy = _get(conn, name)
        applied = dataclasses.replace(
            policy, apply_pending=True, applied_usn=next_usn(conn), modified=policy.modified
        )
        rows.update_policy(conn, applied)
        log.info("policy %s marked to apply (usn %s)", policy.name, applied.applied_usn)
        return _get(conn, policy.name)


def add_rule(
    store: Store,
    name: str,
    address: str,
    *,
    type_: str = SMTP,
    responsible: bool = True,
    enabled: bool = True,
    primary: bool = False,
) -> RecipientPolicy:
    """Add a generation rule; the first rule of its type becomes the primary."""
    policy = get_policy(store, name)
    rule = make_rule(address, type_, enabled=enabled, responsible=responsible)
    rules = (*policy.rules, rule)
    first_of_type = all(r.type.upper() != rule.type.upper() for r in policy.rules)
    if primary or first_of_type:
        rules = with_primary(rules, len(rules) - 1)
    return save_policy(store, dataclasses.replace(policy, rules=rules))


def remove_rule(store: Store, name: str, address: str, type_: str | None = None) -> RecipientPolicy:
    """Remove a generation rule (never the primary while other rules of its type remain)."""
    policy = get_policy(store, name)
    index = find_rule(policy, address, type_)
    rule = policy.rules[index]
    rules = policy.rules[:index] + policy.rules[index + 1 :]
    if rule.primary:
        if policy.is_default and rule.is_smtp:
            raise PostroomError(
                f"The primary SMTP address of the {DEFAULT_POLICY_NAME} cannot be removed. "
                "Set another SMTP address as primary first."
            )
        if any(r.type.upper() == rule.type.upper() for r in rules):
            raise PostroomError(
                f"{rule.address} is the primary {rule.type} address. "
                "Set another address as primary before removing it."
            )
    return save_policy(store, dataclasses.replace(policy, rules=rules))


def set_rule_enabled(
    store: Store, name: str, address: str, enabled: bool, type_: str | None = None
) -> RecipientPolicy:
    policy = get_policy(store, name)
    index = find_rule(policy, address, type_)
    rules = list(policy.rules)
    rules[index] = dataclasses.replace(rules[index], enabled=enabled)
    return save_policy(store, dataclasses.replace(policy, rules=tuple(rules)))


def set_rule_primary(
    store: Store, name: str, address: str, type_: str | None = None
) -> RecipientPolicy:
    policy = get_policy(store, name)
    index = find_rule(policy, address, type_)
    return save_policy(store, dataclasses.replace(policy, rules=with_primary(policy.rules, index)))
