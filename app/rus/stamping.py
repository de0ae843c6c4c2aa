"""Exchange's stamping rules for one recipient: whether to stamp it (``judge``), and what to write.

Per object (DESIGN §5): skip it if auto-update is off; find its effective policy; write addresses
only if it was never stamped, has no address, or its effective policy was applied since it was
last stamped. Writing adds what the enabled rules generate (collision-resolved against every
proxy address in the directory), makes the policy's primary the primary, demotes the old primary
and never deletes an address.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from app.directory import addressing
from app.directory.addressing import NameValues
from app.model import SMTP, Recipient, RecipientPolicy
from app.policies.effective import ActiveRule
from app.rus.collisions import TakenAddresses
from app.store import Connection
from app.store.rus import DecisionKind, Provenance, address_key

log = logging.getLogger(__name__)


def applied_since_stamp(policy: RecipientPolicy, recipient: Recipient) -> bool:
    """Rule (b): the policy is in the applied state since the object was last stamped."""
    return applied_since(policy, recipient.stamped_usn)


def applied_since(policy: RecipientPolicy, stamped_usn: int | None) -> bool:
    """Rule (b) for an object last stamped at change ``stamped_usn`` (None: never stamped)."""
    return (
        policy.apply_pending
        and policy.applied_usn is not None
        and (stamped_usn is None or policy.applied_usn > stamped_usn)
    )


@dataclass(frozen=True)
class Judgement:
    """What the rules of DESIGN §5 say about one object: its decision and why."""

    decision: DecisionKind
    policy: RecipientPolicy | None
    reason: str


def judge(recipient: Recipient, policy: RecipientPolicy | None) -> Judgement:
    """Apply the per-object rules to a recipient whose effective policy is ``policy``."""
    return judge_fields(
        recipient.auto_update, recipient.stamped_usn, bool(recipient.addresses), policy
    )


def judge_fields(
    auto_update: bool, stamped_usn: int | None, has_address: bool, policy: RecipientPolicy | None
) -> Judgement:
    """``judge`` for an object known only by the fields the rules look at (as a run reads it)."""
    if not auto_update:
        return Judgement(
            "skipped",
            policy,
            "'Automatically update e-mail addresses based on recipient policy' is off",
        )
    if policy is None:
        return Judgement("skipped", None, "no recipient policy's filter matches it")
    if stamped_usn is None:
        return Judgement("stamped", policy, "it had never been stamped")
    if not has_address:
        return Judgement("stamped", policy, "it had no e-mail address")
    if applied_since(policy, stamped_usn):
        return Judgement(
            "stamped",
            policy,
            f"its policy was applied (change {policy.applied_usn}) after it was last stamped "
            f"(change {stamped_usn})",
        )
    return Judgement(
        "kept",
        policy,
        f"its policy '{policy.name}' has not been applied since it was last stamped; "
        f"to update its addresses: postroom policy apply '{policy.name}'",
    )


@dataclass
class Stamp:
    """The writes that stamp one recipient, and where each of its stamped addresses came from."""

    demote: list[tuple[int, str]]
    promote: list[tuple[int, str, str]]
    insert: list[tuple[int, str, str, bool]]
    provenance: list[Provenance]
    new: list[tuple[str, str, int]]
    """(key, plain address, suffix) of each address the recipient did not have."""

    @property
    def changed(self) -> bool:
        return bool(self.demote or self.promote or self.insert)


Address = tuple[str, str, bool]
"""A proxy address as the run handles it: (type, address, primary)."""


def stamp_addresses(
    conn: Connection,
    rid: int,
    addresses: Sequence[Address],
    values: NameValues | None,
    policy: RecipientPolicy,
    rules: Sequence[ActiveRule],
    taken: TakenAddresses,
    run_id: int,
    old_provenance: Sequence[Provenance] = (),
    local_parts: dict[str, str] | None = None,
) -> Stamp:
    """Work out recipient ``rid``'s new addresses under ``policy``; AddressError if it cannot.

    ``addresses`` are those it has; ``rules`` are ``active_rules(policy)``; ``local_parts`` may
    hold local parts generated ahead (template → local part), the others are made from
    ``values``. Every generated address is added unless the recipient has it already; the
    primary rule's address becomes the primary SMTP address.
    """
    present: dict[str, Address] = {address_key(a[0], a[1]): a for a in addresses}
    local_parts = {} if local_parts is None else local_parts
    made: dict[str, Provenance] = {}
    new: dict[str, str] = {}
    fresh: list[tuple[str, str, int]] = []
    primary_key: str | None = None
    for rule in rules:
        template = rule.template
        local = local_parts.get(template.local_template)
        if local is None:
            if values is None:
                raise ValueError("stamp_addresses needs the name values or the local parts")
            local = addressing.generate_local_part(template, values)
            local_parts[template.local_template] = local
        plain = f"{local}@{template.domain}"
        address, suffix = taken.first_free(conn, plain, rid, lambda: [*present, *new])
        key = "SMTP:" + address.lower()
        existing = present.get(key)
        if existing is not None:
            address = existing[1]  # keep the spelling it has
        elif key in new:
            address = new[key]
        else:
            new[key] = address
            fresh.append((key, plain, suffix))
        if key not in made:
            made[key] = Provenance(
                SMTP, address, policy.name, rule.text, suffix, run_id, plain if suffix else ""
            )
        if rule.primary:
            primary_key = key

    stamp = Stamp([], [], [], [], fresh)
    new_primary = None
    if primary_key is not None:
        current = None
        for k, (type_, _, primary) in present.items():
            if primary and type_.upper() == SMTP:
                current = k
        if current != primary_key:
            if current is not None:
                stamp.demote.append((rid, present[current][0]))
            if primary_key in present:
                type_, address, _ = present[primary_key]
                stamp.promote.append((rid, type_, address))
            else:
                new_primary = primary_key
    stamp.insert = [(rid, SMTP, address, key == new_primary) for key, address in new.items()]
    if old_provenance:
        kept = [
            p
            for p in old_provenance
            if (k := address_key(p.type, p.address)) in present and k not in made
        ]
        stamp.provenance = kept + list(made.values())
    else:
        stamp.provenance = list(made.values())
    return stamp
