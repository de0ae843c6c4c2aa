"""Recipient policies: the Default Policy's invariants, priorities, rules, and refusals."""

from __future__ import annotations

import dataclasses
import re

import pytest

from app import policies
from app.directory import recipients
from app.directory.filters import FilterError
from app.errors import ConflictError, NotFoundError, PostroomError
from app.model import DEFAULT_POLICY_NAME, AddressRule
from app.store import Store


def names_by_priority(store: Store) -> list[tuple[str, str]]:
    return [(p.name, p.priority_text) for p in policies.list_policies(store)]


def test_new_organisation_has_the_default_policy(store: Store) -> None:
    (default,) = policies.list_policies(store)
    assert default.name == DEFAULT_POLICY_NAME
    assert default.is_default and default.priority is None and default.priority_text == "Lowest"
    assert default.filter == "(mailNickname=*)"
    assert [(r.type, r.address, r.enabled, r.primary, r.responsible) for r in default.rules] == [
        ("SMTP", "@example.com", True, True, True)
    ]


def test_priorities_after_create_delete_and_move(store: Store) -> None:
    for name in ("A", "B", "C"):
        policies.create_policy(store, name)
    assert names_by_priority(store) == [
        ("A", "1"),
        ("B", "2"),
        ("C", "3"),
        (DEFAULT_POLICY_NAME, "Lowest"),
    ]
    policies.move_policy(store, "C", "up")
    assert names_by_priority(store)[:3] == [("A", "1"), ("C", "2"), ("B", "3")]
    policies.move_policy(store, "A", "down")
    assert names_by_priority(store)[:3] == [("C", "1"), ("A", "2"), ("B", "3")]
    policies.delete_policy(store, "C")
    assert names_by_priority(store) == [("A", "1"), ("B", "2"), (DEFAULT_POLICY_NAME, "Lowest")]
    policies.create_policy(store, "D")
    assert names_by_priority(store)[2] == ("D", "3")


def test_moving_past_either_end_is_refused(store: Store) -> None:
    policies.create_policy(store, "A")
    policies.create_policy(store, "B")
    with pytest.raises(PostroomError, match="already has the highest priority"):
        policies.move_policy(store, "A", "up")
    with pytest.raises(PostroomError, match="already has the lowest priority"):
        policies.move_policy(store, "B", "down")
    assert names_by_priority(store)[:2] == [("A", "1"), ("B", "2")]


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda s: policies.delete_policy(s, DEFAULT_POLICY_NAME), "cannot be deleted"),
        (
            lambda s: policies.edit_policy(s, DEFAULT_POLICY_NAME, new_name="Other"),
            "cannot be renamed",
        ),
        (lambda s: policies.move_policy(s, DEFAULT_POLICY_NAME, "up"), "cannot be moved"),
        (lambda s: policies.move_policy(s, DEFAULT_POLICY_NAME, "down"), "cannot be moved"),
        (lambda s: policies.edit_policy(s, DEFAULT_POLICY_NAME, filter_text="(sn=x)"), "is fixed"),
        (
            lambda s: policies.remove_rule(s, DEFAULT_POLICY_NAME, "@example.com"),
            "primary SMTP address of the Default Policy cannot be removed",
        ),
        (
            lambda s: policies.save_policy(
                s,
                dataclasses.replace(
                    default := policies.get_policy(s, DEFAULT_POLICY_NAME),
                    rules=(dataclasses.replace(default.rules[0], responsible=False),),
                ),
            ),
            "must keep 'This organization is responsible",
        ),
        (
            lambda s: policies.set_rule_enabled(s, DEFAULT_POLICY_NAME, "@example.com", False),
            "must be selected",
        ),
    ],
)
def test_default_policy_invariants(store: Store, action, message: str) -> None:  # type: ignore[no-untyped-def]
    before = policies.list_policies(store)
    counter = store.change_counter()
    with pytest.raises(PostroomError, match=message):
        action(store)
    assert policies.list_policies(store) == before
    assert store.change_counter() == counter


def test_default_policy_primary_can_move_to_another_rule(store: Store) -> None:
    policies.add_rule(store, DEFAULT_POLICY_NAME, "@example.net")
    policy = policies.set_rule_primary(store, DEFAULT_POLICY_NAME, "@example.net")
    assert policy.primary_rule().address == "@example.net"  # type: ignore[union-attr]
    policy = policies.remove_rule(store, DEFAULT_POLICY_NAME, "@example.com")
    assert [r.address for r in policy.rules] == ["@example.net"]


def test_rules_are_normalised_and_the_first_of_a_type_is_primary(store: Store) -> None:
    policies.create_policy(store, "Sales", "(department=Sales)")
    policy = policies.add_rule(store, "Sales", "%g.%s@Bücher.Example")
    assert policy.rules[0] == AddressRule(
        "SMTP", "%g.%s@xn--bcher-kva.example", True, True, True, id=policy.rules[0].id
    )
    policy = policies.add_rule(store, "Sales", "@shared.example", responsible=False, enabled=False)
    assert [(r.address, r.primary, r.enabled, r.responsible) for r in policy.rules] == [
        ("%g.%s@xn--bcher-kva.example", True, True, True),
        ("@shared.example", False, False, False),
    ]
    policy = policies.add_rule(store, "Sales", "sales:mailbox", type_="X400")
    assert policy.primary_rule("X400") is not None


def test_hosted_domains_list_enabled_smtp_rules(store: Store) -> None:
    policies.create_policy(store, "Sales", "(department=Sales)")
    policies.add_rule(store, "Sales", "@sales.example")
    policies.add_rule(store, "Sales", "@shared.example", responsible=False)
    policies.add_rule(store, "Sales", "@off.example", enabled=False)
    domains = {d.domain: d for d in policies.hosted_domains(policies.list_policies(store))}
    assert set(domains) == {"example.com", "sales.example", "shared.example"}
    assert domains["shared.example"].kind == "shared"
    assert domains["sales.example"].kind == "authoritative"
    assert domains["example.com"].policies == (DEFAULT_POLICY_NAME,)


def test_effective_policy_is_the_highest_priority_match(store: Store) -> None:
    policies.create_policy(store, "Empty")  # empty filter: matches nobody
    policies.create_policy(store, "Sales", "(department=Sales)")
    policies.create_policy(store, "Contoso", "(company=contoso)")
    ann = recipients.create_recipient(
        store, "ann", attributes={"department": "sales", "company": "Contoso"}
    )
    bob = recipients.create_recipient(store, "bob", attributes={"company": "CONTOSO"})
    carl = recipients.create_recipient(store, "carl")
    ordered = policies.list_policies(store)
    assert policies.effective_policy(ordered, ann).name == "Sales"  # type: ignore[union-attr]
    assert policies.effective_policy(ordered, bob).name == "Contoso"  # type: ignore[union-attr]
    assert policies.effective_policy(ordered, carl).name == DEFAULT_POLICY_NAME  # type: ignore[union-attr]
    policies.move_policy(store, "Contoso", "up")
    ordered = policies.list_policies(store)
    assert policies.effective_policy(ordered, ann).name == "Contoso"  # type: ignore[union-attr]


def test_apply_marks_the_policy_pending(store: Store) -> None:
    policies.create_policy(store, "Sales", "(department=Sales)")
    policy = policies.apply_policy(store, "Sales")
    assert policy.apply_pending and policy.applied_usn is not None
    again = policies.apply_policy(store, "Sales")
    assert again.applied_usn > policy.applied_usn  # type: ignore[operator]


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("%q@example.net", "'%q'"),
        ("%r@example.net", "%r needs two characters"),
        ("%g@", "has no domain"),
        ("@", "has no domain"),
        ("example.net", "@"),
        ("@*.example.net", "wildcard"),
        ("@xn--zz.example", "xn--zz"),
        ("@bad_domain.example", "'_'"),
        ("a" * 65 + "@example.net", "64"),
    ],
)
def test_bad_rule_addresses_are_refused_and_nothing_changes(
    store: Store, address: str, message: str
) -> None:
    policies.create_policy(store, "Sales")
    before = policies.get_policy(store, "Sales")
    with pytest.raises(PostroomError, match=re.escape(message)):
        policies.add_rule(store, "Sales", address)
    assert policies.get_policy(store, "Sales") == before


def test_malformed_filter_says_where_it_breaks(store: Store) -> None:
    with pytest.raises(FilterError, match="at character 13") as error:
        policies.create_policy(store, "Broken", "(&(sn=Smith)")
    assert error.value.position == 13
    assert [p.name for p in policies.list_policies(store)] == [DEFAULT_POLICY_NAME]


def test_duplicates_and_unknowns_are_refused(store: Store) -> None:
    policies.create_policy(store, "Sales")
    with pytest.raises(ConflictError, match="already exists"):
        policies.create_policy(store, "sales")
    with pytest.raises(ConflictError, match="already exists"):
        policies.edit_policy(store, "Sales", new_name=DEFAULT_POLICY_NAME.upper())
    policies.add_rule(store, "Sales", "@example.net")
    with pytest.raises(ConflictError, match="already has the SMTP address"):
        policies.add_rule(store, "Sales", "@EXAMPLE.net")
    with pytest.raises(NotFoundError, match="no recipient policy named 'Nope'"):
        policies.get_policy(store, "Nope")
    with pytest.raises(NotFoundError, match="no address rule"):
        policies.remove_rule(store, "Sales", "@other.example")
    with pytest.raises(PostroomError, match="name is empty"):
        policies.create_policy(store, "   ")


def test_primary_rule_cannot_be_removed_while_others_of_its_type_remain(store: Store) -> None:
    policies.create_policy(store, "Sales")
    policies.add_rule(store, "Sales", "@a.example")
    policies.add_rule(store, "Sales", "@b.example")
    with pytest.raises(PostroomError, match="Set another address as primary"):
        policies.remove_rule(store, "Sales", "@a.example")
    policies.remove_rule(store, "Sales", "@b.example")
    assert policies.remove_rule(store, "Sales", "@a.example").rules == ()


def test_save_policy_checks_rule_sets(store: Store) -> None:
    policy = policies.create_policy(store, "Sales")
    two_primaries = dataclasses.replace(
        policy,
        rules=(
            policies.make_rule("@a.example", primary=True),
            policies.make_rule("@b.example", primary=True),
        ),
    )
    with pytest.raises(PostroomError, match="only one primary"):
        policies.save_policy(store, two_primaries)
    no_primary = dataclasses.replace(policy, rules=(policies.make_rule("@a.example"),))
    with pytest.raises(PostroomError, match="none is primary"):
        policies.save_policy(store, no_primary)
    assert policies.get_policy(store, "Sales").rules == ()
