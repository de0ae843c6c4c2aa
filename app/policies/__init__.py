"""Recipient policies: Exchange's rules for the Default Policy, priorities and generation rules.

- ``catalog``: the stored policies: list, read, create, save, edit, delete, move, apply, and the
  edits of their rules.
- ``rules``: one generation rule (``make_rule``), finding one, choosing the primary, checking a set.
- ``effective``: a recipient's effective policy (``effective_policy``, ``PolicySet``) and what its
  rules generate addresses from.
- ``domains``: the mail domains the rules host (``hosted_domains``).
"""

from app.model import now
from app.policies.catalog import (
    MAX_NAME_LENGTH,
    add_rule,
    apply_policy,
    create_default_policy,
    create_policy,
    delete_policy,
    edit_policy,
    get_policy,
    list_policies,
    move_policy,
    remove_rule,
    save_policy,
    set_rule_enabled,
    set_rule_primary,
)
from app.policies.domains import HostedDomain, hosted_domains
from app.policies.effective import PolicySet, compiled_filter, effective_policy, name_values
from app.policies.rules import check_rules, find_rule, make_rule, with_primary

__all__ = [
    "MAX_NAME_LENGTH",
    "HostedDomain",
    "PolicySet",
    "add_rule",
    "apply_policy",
    "check_rules",
    "compiled_filter",
    "create_default_policy",
    "create_policy",
    "delete_policy",
    "edit_policy",
    "effective_policy",
    "find_rule",
    "get_policy",
    "hosted_domains",
    "list_policies",
    "make_rule",
    "move_policy",
    "name_values",
    "now",
    "remove_rule",
    "save_policy",
    "set_rule_enabled",
    "set_rule_primary",
    "with_primary",
]
