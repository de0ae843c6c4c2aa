"""The effective policy of a recipient: the one policy whose filter decides its addresses.

``effective_policy`` says it for one recipient; ``PolicySet`` says it for many (the RUS, the
recipient list), remembering answers for recipients that look alike to the filters.
``name_values`` and ``active_rules`` are what that policy's rules generate addresses from.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from app.directory import addressing
from app.directory.addressing import AddressTemplate, NameValues
from app.directory.filters import And, LdapFilter, Not, Or, Presence, attribute_names, parse_filter
from app.model import Recipient, RecipientPolicy

log = logging.getLogger(__name__)


@lru_cache(maxsize=256)
def compiled_filter(text: str) -> LdapFilter | None:
    """The parsed filter, or None for an empty filter (which matches nobody)."""
    return parse_filter(text) if text.strip() else None


def effective_policy(
    policies: Sequence[RecipientPolicy], recipient: Recipient
) -> RecipientPolicy | None:
    """The single highest-priority policy whose filter matches; policies are never merged.

    ``policies`` must be in priority order (as ``list_policies`` returns them).
    """
    attributes = recipient.ldap_attributes()
    for policy in policies:
        compiled = compiled_filter(policy.filter)
        if compiled is not None and compiled.matches(attributes):
            return policy
    return None


@dataclass(frozen=True)
class ActiveRule:
    """An enabled SMTP rule of a policy with its template parsed, as stamping uses it."""

    text: str
    template: AddressTemplate
    primary: bool


@lru_cache(maxsize=1024)
def _template(text: str) -> AddressTemplate:
    return addressing.parse_template(text)


def active_rules(policy: RecipientPolicy) -> tuple[ActiveRule, ...]:
    """The rules that generate addresses: enabled SMTP ones (other types are kept as text)."""
    return tuple(
        ActiveRule(rule.address, _template(rule.address), rule.primary)
        for rule in policy.rules
        if rule.enabled and rule.is_smtp
    )


def name_values(recipient: Recipient) -> NameValues:
    """The values address templates draw on, as stored on the recipient."""
    return NameValues(
        alias=recipient.alias,
        given=recipient.attribute("givenName"),
        surname=recipient.attribute("sn"),
        initials=recipient.attribute("initials"),
        display=recipient.attribute("displayName"),
    )


class PolicySet:
    """The policies in priority order with their filters compiled, for finding effective ones."""

    CACHE_LIMIT = 50_000

    def __init__(self, policies: Sequence[RecipientPolicy]) -> None:
        self.policies = tuple(policies)
        self._filters: list[tuple[RecipientPolicy, LdapFilter]] = []
        presence: set[str] = set()
        valued: set[str] = set()
        for policy in self.policies:
            compiled = compiled_filter(policy.filter)
            if compiled is not None:
                self._filters.append((policy, compiled))
                _collect_names(compiled, presence, valued)
        self._valued = frozenset(valued)
        self._presence_only = frozenset(presence - valued)
        self._cache: dict[tuple[tuple[str, object], ...], RecipientPolicy | None] = {}
        self._rules: dict[int | None, tuple[ActiveRule, ...]] = {}
        self._by_id = {policy.id: policy for policy in self.policies}

    def effective(self, recipient: Recipient) -> RecipientPolicy | None:
        """The single highest-priority policy whose filter matches (as ``effective_policy``).

        Filters only look at the attributes they name, and an attribute only tested for
        presence (``mailNickname=*``) only for being non-empty; recipients that look the same
        in those respects have the same effective policy, which is remembered.
        """
        view: dict[str, str | list[str]] = {}
        for name, value in recipient.ldap_attributes().items():
            lower = name.lower()
            if lower in self._valued:
                view[lower] = value
            elif lower in self._presence_only and _present(value):
                view[lower] = "*"
        key = tuple(sorted((k, v if isinstance(v, str) else tuple(v)) for k, v in view.items()))
        try:
            return self._cache[key]
        except KeyError:
            pass
        found = None
        for policy, compiled in self._filters:
            if compiled.matches(view):
                found = policy
                break
        if len(self._cache) >= self.CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = found
        return found

    def by_id(self, policy_id: int | None) -> RecipientPolicy | None:
        return self._by_id.get(policy_id)

    def rules(self, policy: RecipientPolicy) -> tuple[ActiveRule, ...]:
        """The policy's ``active_rules``, parsed once per set."""
        found = self._rules.get(policy.id)
        if found is None:
            found = self._rules[policy.id] = active_rules(policy)
        return found


def _collect_names(f: LdapFilter, presence: set[str], valued: set[str]) -> None:
    """Sort the attribute names a filter tests into presence tests and value comparisons."""
    if isinstance(f, And | Or):
        for child in f.filters:
            _collect_names(child, presence, valued)
    elif isinstance(f, Not):
        _collect_names(f.filter, presence, valued)
    elif isinstance(f, Presence):
        presence.add(f.attribute.lower())
    else:
        valued.update(attribute_names(f))


def _present(value: str | list[str]) -> bool:
    if isinstance(value, str):
        return bool(value)
    return any(isinstance(item, str) and item for item in value)
