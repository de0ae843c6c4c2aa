"""Generation rules of a policy: making one, finding one, choosing the primary, checking a set."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from app.directory import addressing
from app.errors import ConflictError, NotFoundError, PostroomError
from app.model import SMTP, AddressRule, RecipientPolicy

log = logging.getLogger(__name__)


def make_rule(
    address: str,
    type_: str = SMTP,
    *,
    enabled: bool = True,
    primary: bool = False,
    responsible: bool = True,
) -> AddressRule:
    """A validated generation rule; SMTP templates are normalised (domain stored as A-label)."""
    type_ = type_.strip()
    if not type_ or not type_.isprintable() or ":" in type_ or len(type_) > 32:
        raise PostroomError(
            f"'{type_}' is not an address type. Use SMTP, or a custom type name such as X400."
        )
    address = address.strip()
    if type_.upper() == SMTP:
        type_ = SMTP
        address = str(addressing.parse_template(address))
    elif not address or not address.isprintable():
        raise PostroomError(
            f"The {type_} address is empty or has control characters. Type it again."
        )
    return AddressRule(
        type=type_,
        address=address,
        enabled=enabled,
        primary=primary,
        responsible=responsible if type_ == SMTP else True,
    )


def find_rule(policy: RecipientPolicy, address: str, type_: str | None = None) -> int:
    """The index of the rule with this address (matched as it would be stored)."""
    wanted_type = (type_ or SMTP).upper()
    try:
        wanted = make_rule(address, wanted_type).address.lower()
    except PostroomError:
        wanted = address.strip().lower()
    for index, rule in enumerate(policy.rules):
        if rule.address.lower() == wanted and (type_ is None or rule.type.upper() == wanted_type):
            return index
    raise NotFoundError(
        f"The policy '{policy.name}' has no address rule '{address}'. "
        f"See its rules with: postroom policy show '{policy.name}'"
    )


def with_primary(rules: Sequence[AddressRule], index: int) -> tuple[AddressRule, ...]:
    """The rules with ``rules[index]`` made primary of its type (and ticked, as Exchange does)."""
    chosen = rules[index]
    result = []
    for i, rule in enumerate(rules):
        if i == index:
            rule = dataclasses.replace(rule, primary=True, enabled=True)
        elif rule.type.upper() == chosen.type.upper() and rule.primary:
            rule = dataclasses.replace(rule, primary=False)
        result.append(rule)
    return tuple(result)


def check_rules(policy: RecipientPolicy) -> None:
    """Refuse rule sets Exchange would refuse: duplicates, several or disabled primaries."""
    seen: set[tuple[str, str]] = set()
    primaries: dict[str, AddressRule] = {}
    types: dict[str, str] = {}
    for rule in policy.rules:
        key = (rule.type.upper(), rule.address.lower())
        if key in seen:
            raise ConflictError(
                f"The policy '{policy.name}' already has the {rule.type} address {rule.address}."
            )
        seen.add(key)
        types.setdefault(rule.type.upper(), rule.type)
        if rule.primary:
            if rule.type.upper() in primaries:
                raise PostroomError(
                    f"The policy '{policy.name}' can have only one primary {rule.type} address."
                )
            if not rule.enabled:
                raise PostroomError(
                    f"The primary address {rule.address} must be selected (ticked). "
                    "Set another address as primary before clearing it."
                )
            primaries[rule.type.upper()] = rule
    for upper, type_ in types.items():
        if upper not in primaries:
            raise PostroomError(
                f"The policy '{policy.name}' has {type_} addresses but none is primary. "
                "Select one and choose Set as Primary."
            )
