"""Why a recipient has each of its addresses, or why the Recipient Update Service left it alone."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.errors import NotFoundError
from app.model import AddressRule, ProxyAddress, Recipient, RecipientPolicy
from app.policies.effective import PolicySet
from app.rus.stamping import applied_since_stamp, judge
from app.store import Store
from app.store import directory as directory_rows
from app.store import policies as policy_rows
from app.store import rus as rows
from app.store.rus import DecisionRecord, Provenance, RunRecord, address_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AddressReason:
    """One of the recipient's addresses and where it came from."""

    address: ProxyAddress
    provenance: Provenance | None
    plain_owner: str | None
    """For an address with a collision suffix: who holds the plain address now."""

    @property
    def text(self) -> str:
        source = self.provenance
        if source is None:
            return (
                "not made by the Recipient Update Service: added by hand, or stamped by a "
                "rule that no longer makes it (the service never deletes an address)"
            )
        text = f"made by the rule {source.rule} of '{source.policy}' in run {source.run_id}"
        if source.suffix:
            holder = f" belongs to '{self.plain_owner}'" if self.plain_owner else " was taken"
            text += f", with collision suffix {source.suffix} because {source.plain}{holder}"
        return text


@dataclass(frozen=True)
class Explanation:
    """Everything ``postroom rus explain`` says about one recipient."""

    recipient: Recipient
    policy: RecipientPolicy | None
    """The effective policy now (the highest-priority policy whose filter matches)."""
    decision: DecisionRecord | None
    """The latest decision of a run about it, None if no run has looked at it yet."""
    run: RunRecord | None
    """The run of that decision, while it is remembered."""
    addresses: tuple[AddressReason, ...]
    idle_rules: tuple[tuple[AddressRule, str], ...]
    """Rules of the effective policy that make no address, and why."""
    next_run: str
    """What the next run will do with it, and which kind of run will look at it."""


def explain(store: Store, alias: str) -> Explanation:
    """Explain one recipient's addresses; raises NotFoundError for an unknown alias."""
    with store.read() as conn:
        recipient = directory_rows.find_recipient(conn, alias.strip())
        if recipient is None or recipient.id is None:
            raise NotFoundError(
                f"There is no recipient with the alias '{alias}'. "
                "See the aliases with: postroom recipient list"
            )
        policy = PolicySet(policy_rows.load_policies(conn)).effective(recipient)
        decision = rows.find_decision(conn, recipient.id)
        run = rows.find_run(conn, decision.run_id) if decision else None
        hwm = rows.high_water_mark(conn)
        made = {address_key(p.type, p.address): p for p in decision.addresses} if decision else {}
        reasons = []
        for proxy in recipient.addresses:
            source = made.get(address_key(proxy.type, proxy.address))
            owner = None
            if source is not None and source.suffix and source.plain:
                owner = directory_rows.address_owner(conn, source.type, source.plain)
            reasons.append(AddressReason(proxy, source, owner))
    idle: list[tuple[AddressRule, str]] = []
    if policy is not None:
        for rule in policy.rules:
            if not rule.enabled:
                idle.append((rule, "unticked, so it generates nothing"))
            elif not rule.is_smtp:
                idle.append(
                    (rule, f"{rule.type} addresses are kept as text; only SMTP ones are generated")
                )
    return Explanation(
        recipient,
        policy,
        decision,
        run,
        tuple(reasons),
        tuple(idle),
        _next_run(recipient, policy, hwm),
    )


def _next_run(recipient: Recipient, policy: RecipientPolicy | None, hwm: int) -> str:
    verdict = judge(recipient, policy)
    action = {"stamped": "stamp it", "skipped": "skip it", "kept": "leave it alone"}.get(
        verdict.decision, verdict.decision
    )
    if recipient.usn > hwm or (policy is not None and applied_since_stamp(policy, recipient)):
        return f"the next Update Now will {action}: {verdict.reason}"
    return (
        "Update Now will not look at it until it changes or its policy is applied; "
        f"a Rebuild would {action}: {verdict.reason}"
    )
